"""The AVE and AVSlowFast blocks: shapes, which parameters belong to a modality (for DGM), cross-modal paths,
DropPathway, configuration checks, and training with JoMoLD's denoising, DGM and the MSDU heads."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from train_helpers import make_splits, one_torch_thread, random_features, train_overrides  # noqa: F401

from avvp.data.dataset import Batch
from avvp.errors import InputError
from avvp.models import ParserConfig, build_model
from avvp.models.blocks.ave import AudioGuidedAttention
from avvp.training.config import load_config
from avvp.training.losses import LossConfig, Objective
from avvp.training.noise_ratios import NoiseRatios, write_noise_ratios
from avvp.training.trainer import train

CONFIGS = Path(__file__).resolve().parents[1] / "resources" / "configs"
BLOCKS = {
    "ave": {"block": "ave"},
    "avslowfast": {"block": "avslowfast", "audio_aggregation": "self"},
}


def tiny(name: str, d_model: int = 32, **settings: object) -> torch.nn.Module:
    torch.manual_seed(0)
    return build_model(ParserConfig.model_validate({**BLOCKS[name], "d_model": d_model, **settings})).eval()


@pytest.mark.parametrize("name", sorted(BLOCKS))
@pytest.mark.parametrize("d_model", [16, 48])
def test_output_shapes(name: str, d_model: int) -> None:
    model = tiny(name, d_model)
    output = model(random_features(3))
    assert output.audio_embedding.shape == output.visual_embedding.shape == (3, 10, d_model)
    assert output.projected_audio.shape == (3, 10, d_model)
    assert output.global_prob.shape == output.audio_prob.shape == (3, 25)
    assert output.frame_prob.shape == output.modality_attention.shape == (3, 10, 2, 25)
    assert model(random_features(3), cross_modal=False).frame_prob.shape == (3, 10, 2, 25)


def test_ave_attention_is_a_distribution_over_the_visual_segments() -> None:
    torch.manual_seed(0)
    attention = AudioGuidedAttention(8)
    weights = attention.weights(torch.randn(2, 10, 8), torch.randn(2, 10, 8))
    assert weights.shape == (2, 10, 10) and torch.all(weights >= 0)
    torch.testing.assert_close(weights.sum(dim=-1), torch.ones(2, 10))


@pytest.mark.parametrize(
    ("name", "audio", "visual"),
    [
        ("ave", {"block.audio_lstm"}, {"block.visual_lstm"}),
        (
            "avslowfast",
            {"block.audio_pathway"},
            {"block.slow_pathway", "block.fast_stem", "block.fast_pathway", "block.fast_to_slow", "block.visual_fusion"},
        ),
    ],
)  # fmt: skip
def test_each_block_names_its_modality_specific_parameters(name: str, audio: set, visual: set) -> None:
    model = tiny(name)
    projections = {"audio": {"projections.audio"}, "visual": {"projections.frames", "projections.motion", "projections.visual_fusion"}}  # fmt: skip
    named = {id(p): n for n, p in model.named_parameters()}
    parameters = model.modality_parameters()
    for modality, modules in (("audio", audio), ("visual", visual)):
        prefixes = tuple(f"{m}." for m in modules | projections[modality])
        expected = {n for n, _ in model.named_parameters() if n.startswith(prefixes)}
        assert {named[id(p)] for p in parameters[modality]} == expected
    shared = {n for n, _ in model.named_parameters()} - {
        named[id(p)] for ps in parameters.values() for p in ps
    }
    assert shared and all(n.startswith(("block.", "pooling.")) for n in shared)  # cross-modal parts, pooling


@pytest.mark.parametrize("name", sorted(BLOCKS))
def test_modality_parameters_learn_from_their_own_modality_only(name: str) -> None:
    """Without cross-modal paths, a modality's loss reaches its own parameters and none of the other's."""
    model = tiny(name).train()
    labels = torch.zeros(2, 25)
    labels[:, 3] = 1.0
    batch = Batch(torch.arange(2), ["a", "b"], random_features(2), labels)
    parameters = model.modality_parameters()
    for loss_modality, other in (("audio", "visual"), ("visual", "audio")):
        model.zero_grad()
        output = model(batch.features, cross_modal=False)
        Objective(LossConfig(terms={loss_modality: 1.0}))(output, batch)[0].backward()
        assert all(p.grad is None or not p.grad.any() for p in parameters[other]), (loss_modality, other)
        assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in parameters[loss_modality])


@torch.no_grad()
def _change(model: torch.nn.Module, kind: str, cross_modal: bool = True) -> dict[str, float]:
    """How far each stream moves when feature ``kind`` is replaced by other random values."""
    features = random_features(2)
    changed = {**features, kind: random_features(2, seed=5)[kind]}
    before, after = model(features, cross_modal=cross_modal), model(changed, cross_modal=cross_modal)
    return {
        "audio": float((before.audio_embedding - after.audio_embedding).abs().max()),
        "visual": float((before.visual_embedding - after.visual_embedding).abs().max()),
    }


def test_cross_modal_paths_of_ave() -> None:
    model = tiny("ave")
    assert _change(model, "vggish")["visual"] > 0 and _change(model, "resnet152")["audio"] > 0
    assert _change(model, "vggish", cross_modal=False)["visual"] == 0.0
    assert _change(model, "resnet152", cross_modal=False)["audio"] == 0.0
    self_visual = tiny("ave", visual_aggregation="self")  # no attention, no fusion into the visual stream
    assert _change(self_visual, "vggish")["visual"] == 0.0 and _change(self_visual, "resnet152")["audio"] > 0


def test_avslowfast_fuses_audio_into_the_visual_pathways_only() -> None:
    model = tiny("avslowfast")
    assert _change(model, "vggish")["visual"] > 0
    assert _change(model, "resnet152")["audio"] == 0.0 and _change(model, "r2plus1d")["audio"] == 0.0
    assert _change(model, "vggish", cross_modal=False)["visual"] == 0.0
    assert _change(tiny("avslowfast", visual_aggregation="self"), "vggish")["visual"] == 0.0


def test_drop_pathway_drops_the_audio_connections_in_training_only() -> None:
    always = tiny("avslowfast", avslowfast={"drop_pathway": 0.0}).train()
    never = tiny("avslowfast", avslowfast={"drop_pathway": 0.999999}).train()
    features, changed = (
        random_features(2),
        {**random_features(2), "vggish": random_features(2, seed=5)["vggish"]},
    )
    features = {**changed, "vggish": features["vggish"]}  # same visual inputs, other audio
    torch.manual_seed(1)
    dropped = [never(f).visual_embedding for f in (features, changed)]
    torch.manual_seed(1)
    kept = [always(f).visual_embedding for f in (features, changed)]
    assert torch.equal(dropped[0], dropped[1]) and not torch.equal(kept[0], kept[1])
    assert _change(never.eval(), "vggish")["visual"] > 0  # evaluation always connects them


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"block": "avslowfast"}, "set audio_aggregation: self"),
        ({"block": "avslowfast", "audio_aggregation": "self", "avslowfast": {"alpha": 3}}, "alpha 3 does not divide"),
        ({"block": "han", "avslowfast": {}}, "model.avslowfast configures block avslowfast"),
        ({"block": "ave", "attention": "gcaa"}, "attention 'gcaa' needs block han or base"),
        ({"block": "ave", "d_model": 33, "num_heads": 1}, "block ave needs an even d_model"),
    ],
)  # fmt: skip
def test_inconsistent_backbone_configs_are_refused(settings: dict, message: str) -> None:
    with pytest.raises(InputError, match=message):
        load_config(None, {"model": settings})


@pytest.fixture(scope="module")
def splits(tmp_path_factory):
    return make_splits(tmp_path_factory.mktemp("data"), num_train=32, num_val=12)


@pytest.mark.parametrize("name", ["ave_jomold.yaml", "avslowfast_jomold.yaml"])
def test_backbone_trains_with_jomold_dgm_and_msdu(splits, tmp_path: Path, name: str) -> None:
    ratios = tmp_path / "ratios.npz"
    write_noise_ratios(ratios, NoiseRatios(np.full(25, 0.3), np.full(25, 0.3)))
    overrides = train_overrides(
        splits,
        tmp_path / "run",
        epochs=1,
        batch_size=16,
        **{
            "denoising.noise_ratios": str(ratios),
            "denoising.warmup_epochs": 0.0,
            "gradient_modulation": {"gamma": 0.1},
            "model.heads.modality_separated": {},
            "loss.terms.modality_separated": 1.0,
        },
    )
    config = load_config(CONFIGS / name, overrides)
    train(config)
    record = json.loads((tmp_path / "run" / "history.jsonl").read_text().splitlines()[-1])
    assert record["dropped_audio"] > 0 and 0 < record["mu_visual"] <= 1 and np.isfinite(record["L_ms"])
    assert {"L_a", "L_v", "L_wsl", "L_nce"} <= set(record)
