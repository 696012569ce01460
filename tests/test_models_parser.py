"""The composable parser: HAN reproduces the earlier implementation, Base, GCAA, skip connections, the
adversarial modality discriminator with gradient reversal, and every shipped config trains a step."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from train_helpers import (  # noqa: F401
    SHIPPED_CONFIGS,
    load_shipped,
    make_splits,
    one_torch_thread,
    random_features,
    train_overrides,
)

from avvp.cli import main
from avvp.data.dataset import Batch
from avvp.data.features import FEATURE_SHAPES, FeatureStoreWriter
from avvp.errors import InputError
from avvp.models import ParserConfig, build_model
from avvp.models.attention import GlobalContextAttention
from avvp.models.heads import reverse_gradient
from avvp.models.projections import FeatureMapProjection
from avvp.training.checkpoints import LEGACY_HAN_FORMAT, LEGACY_HAN_PREFIXES, load_model, save_checkpoint
from avvp.training.config import load_config
from avvp.training.losses import Objective
from avvp.training.noise_ratios import NoiseRatios, write_noise_ratios
from avvp.training.procedures import build_procedure
from avvp.training.trainer import train

CONFIGS = Path(__file__).resolve().parents[1] / "resources" / "configs"
REFERENCE = Path(__file__).resolve().parent / "data" / "han_reference_outputs.npz"
TINY = {"d_model": 32, "feedforward": 48}


def features(batch: int = 2, seed: int = 0) -> dict[str, torch.Tensor]:
    return random_features(batch, seed)


def kind_features(kinds: tuple[str, ...], batch: int, seed: int = 0) -> dict[str, torch.Tensor]:
    """Gaussian inputs (batch, T, D) of each of ``kinds`` in its store shape."""
    generator = torch.Generator().manual_seed(seed)
    return {kind: torch.randn(batch, *FEATURE_SHAPES[kind], generator=generator) for kind in kinds}


def project(model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    return model.projections(batch["vggish"], batch["resnet152"], batch["r2plus1d"])


def tiny(seed: int = 0, **settings: object) -> torch.nn.Module:
    torch.manual_seed(seed)
    return build_model(ParserConfig.model_validate({**TINY, "dropout": 0.0, **settings})).eval()


def assert_float32_equal(actual: np.ndarray, desired: np.ndarray) -> None:
    """Equal up to a few float32 rounding steps (the summation order of the CPU's kernels)."""
    np.testing.assert_allclose(actual, desired, rtol=2e-6, atol=1e-6)


@pytest.mark.parametrize(("audio", "visual"), [(a, v) for a in ("self", "cross") for v in ("self", "cross")])
def test_han_configurations_reproduce_the_previous_implementation(audio: str, visual: str) -> None:
    # tests/data/han_reference_outputs.npz: outputs of the HAN class this parser replaced (commit f13990c),
    # same seed, same input; in train mode the dropout masks must be drawn in the same order too. Equal to
    # float32 rounding, not bit for bit: CPUs with other vector units (AVX-512, AMX) sum in another order
    # (up to 9e-8 apart here); a wrong composition or mask order moves outputs by 1e-2 or more.
    reference = np.load(REFERENCE)
    torch.manual_seed(0)
    config = ParserConfig(
        d_model=32, feedforward=48, dropout=0.1, audio_aggregation=audio, visual_aggregation=visual
    )
    model = build_model(config)
    key = f"{audio}_{visual}"
    with torch.no_grad():
        output = model.eval()(features())
        for name in ("global_prob", "audio_prob", "visual_prob", "frame_prob", "modality_attention"):
            assert_float32_equal(getattr(output, name).numpy(), reference[f"{key}/eval/{name}"])
        torch.manual_seed(1)
        output = model.train()(features())
    assert_float32_equal(output.global_prob.numpy(), reference[f"{key}/train/global_prob"])
    assert_float32_equal(output.frame_prob.numpy(), reference[f"{key}/train/frame_prob"])


def test_gradient_reversal_reverses_and_scales() -> None:
    x = torch.randn(3, 4, dtype=torch.double, requires_grad=True)
    weights = torch.randn(3, 4, dtype=torch.double)
    y = reverse_gradient(x, 0.4)
    assert torch.equal(y, x)
    (y * weights).sum().backward()
    torch.testing.assert_close(x.grad, -0.4 * weights)
    # the Jacobian autograd sees is -coefficient x identity, while the forward pass is the identity
    jacobian = torch.autograd.functional.jacobian(lambda t: reverse_gradient(t, 0.4), x.detach())
    torch.testing.assert_close(jacobian, -0.4 * torch.eye(12, dtype=torch.double).reshape(3, 4, 3, 4))


@pytest.mark.parametrize("num_heads", [1, 4])
def test_gcaa_shapes_and_normalised_attention(num_heads: int) -> None:
    torch.manual_seed(0)
    attention = GlobalContextAttention(32, num_heads, dropout=0.0)
    query, source = torch.randn(3, 10, 32), torch.randn(3, 7, 32)
    weights = attention.weights(query, source)
    assert weights.shape == (3, num_heads, 10, 7)
    torch.testing.assert_close(weights.sum(dim=-1), torch.ones(3, num_heads, 10))
    assert attention(query, source).shape == (3, 10, 32)


def test_gcaa_scores_depend_on_the_global_context() -> None:
    # Changing only segment 9 of the query sequence changes its mean, hence the attention of segment 0
    # (plain dot-product attention of segment 0 would not change: its query is the same).
    torch.manual_seed(0)
    attention = GlobalContextAttention(16, 1, dropout=0.0)
    query, source = torch.randn(1, 10, 16), torch.randn(1, 10, 16)
    changed = query.clone()
    changed[0, 9] += 3.0
    with torch.no_grad():
        assert not torch.allclose(
            attention.weights(query, source)[0, 0, 0], attention.weights(changed, source)[0, 0, 0]
        )


def test_base_has_separate_self_attention_and_fuses_self_attended_features() -> None:
    base, han = tiny(block="base"), tiny(block="han")
    audio_params = {p.data_ptr() for p in base.block.audio_self.parameters()}
    visual_params = {p.data_ptr() for p in base.block.visual_self.parameters()}
    assert audio_params and not audio_params & visual_params
    assert not hasattr(han.block, "audio_self")  # HAN: one layer for both streams

    seen: dict[str, list[torch.Tensor]] = {"base": [], "han": []}
    base.block.cross.cross_attention.register_forward_hook(lambda m, args, out: seen["base"].append(args[1]))
    han.block.layer.cross_attention.register_forward_hook(lambda m, args, out: seen["han"].append(args[1]))
    batch = features()
    with torch.no_grad():
        base(batch), han(batch)
        base_audio, base_visual = project(base, batch)
        han_audio, han_visual = project(han, batch)
        # Base: audio attends over the self-attended visual stream, and visual over the self-attended audio
        torch.testing.assert_close(seen["base"][0], base.block.visual_self(base_visual))
        torch.testing.assert_close(seen["base"][1], base.block.audio_self(base_audio))
    # HAN: cross-modal attention over the projected features directly
    torch.testing.assert_close(seen["han"][0], han_visual)
    torch.testing.assert_close(seen["han"][1], han_audio)


def test_base_self_layers_learn_from_their_own_modality_only() -> None:
    model = tiny(block="base", audio_aggregation="self", visual_aggregation="self").train()
    model(features()).audio_embedding.sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.block.audio_self.parameters())
    assert all(p.grad is None for p in model.block.visual_self.parameters())


@pytest.mark.parametrize("modality", ["audio", "visual"])
def test_skip_changes_only_its_own_path(modality: str) -> None:
    plain = tiny(block="base")
    skipped = tiny(block="base", skip={modality: True})
    skipped.load_state_dict(plain.state_dict())
    batch = features()
    with torch.no_grad():
        a, b = plain(batch), skipped(batch)
        own, other = ("audio_embedding", "visual_embedding")[:: 1 if modality == "audio" else -1]
        assert not torch.allclose(getattr(a, own), getattr(b, own))
        torch.testing.assert_close(getattr(a, other), getattr(b, other), rtol=0, atol=0)
        # skip adds the self-attended signal around the cross-modal layer
        audio, visual = project(skipped, batch)
        audio_self, visual_self = skipped.block.audio_self(audio), skipped.block.visual_self(visual)
        query, source = (audio_self, visual_self) if modality == "audio" else (visual_self, audio_self)
        torch.testing.assert_close(getattr(b, own), skipped.block.cross(query, source) + query)


def test_modality_discriminator_head_loss_and_accuracy() -> None:
    model = tiny(
        block="base", skip={"audio": True, "visual": True}, heads={"modality_discriminator": {"hidden": 8}}
    )
    output = model(features(batch=3))
    logits = output.heads["modality_discriminator"]
    assert logits.shape == (3, 10, 2)
    batch = Batch(index=torch.arange(3), video_ids=["a", "b", "c"], features={}, labels=torch.zeros(3, 25))
    config = load_config(CONFIGS / "base_adv_skip.yaml").loss
    total, logged = Objective(config)(output, batch)
    targets = torch.tensor([0.0, 1.0]).expand(3, 10, 2)
    expected = torch.nn.functional.binary_cross_entropy_with_logits(logits, targets)
    torch.testing.assert_close(logged["L_ad"], expected.detach())
    accuracy = ((logits > 0) == targets.bool()).float().mean()
    torch.testing.assert_close(logged["modality_discriminator_accuracy"], accuracy)
    weighted = logged["L_wsl"] + 0.6 * (logged["L_a"] + logged["L_v"]) + 0.4 * logged["L_ad"]
    torch.testing.assert_close(total.detach(), weighted)


def test_adversarial_gradients_train_the_discriminator_and_oppose_it_in_the_encoder() -> None:
    model = tiny(block="base", heads={"modality_discriminator": {"hidden": 8, "reversal": 0.5}}).train()
    batch = features()
    logits = model(batch).heads["modality_discriminator"]
    loss = torch.nn.functional.binary_cross_entropy_with_logits(
        logits, torch.tensor([0.0, 1.0]).expand_as(logits)
    )
    encoder = model.projections.audio.weight
    discriminator = model.heads["modality_discriminator"].classifier[0].weight
    reversed_grads = torch.autograd.grad(loss, (encoder, discriminator))
    # the same graph without the reversal layer, to compare against
    audio, visual = model.block(*project(model, batch))
    plain_logits = (
        model.heads["modality_discriminator"].classifier(torch.stack((audio, visual), dim=2)).squeeze(-1)
    )
    plain = torch.nn.functional.binary_cross_entropy_with_logits(
        plain_logits, torch.tensor([0.0, 1.0]).expand_as(logits)
    )
    plain_grads = torch.autograd.grad(plain, (encoder, discriminator))
    torch.testing.assert_close(reversed_grads[0], -0.5 * plain_grads[0])
    torch.testing.assert_close(reversed_grads[1], plain_grads[1])


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"block": "han", "skip": {"audio": True}}, "skip.audio needs block 'base'"),
        (
            {"block": "base", "visual_aggregation": "self", "skip": {"visual": True}},
            "needs visual_aggregation 'cross'",
        ),
        ({"d_model": 30, "num_heads": 4}, "num_heads 4 does not divide d_model 30"),
        ({"block": "base", "num_layers": 2}, "num_layers 2: these settings shape .* not block 'base'"),
        (
            {"block": "ave", "norm": "pre", "stream_order": "sequential"},
            "stream_order 'sequential', norm 'pre'",
        ),
        (
            {"input_encoder": {}, "inputs": {"audio": "clap"}},
            "model.input_encoder reads VGGish and ResNet152 features: .* not audio clap",
        ),
        ({"inputs": {"visual": "vggish"}}, "inputs.visual"),
    ],
)
def test_inconsistent_model_configs_are_refused(settings: dict, message: str, tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(json.dumps({"model": settings}), encoding="utf-8")
    with pytest.raises(InputError, match=message):
        load_config(path)


def test_adversarial_loss_needs_the_discriminator(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(
        "extends: "
        + str(CONFIGS / "base_adv_skip.yaml")
        + "\nmodel: {heads: {modality_discriminator: null}}\n"
    )
    with pytest.raises(
        InputError,
        match=r"loss term 'modality_adversarial' needs the head model\.heads\.modality_discriminator",
    ):
        load_config(path)


@pytest.mark.parametrize("name", SHIPPED_CONFIGS)
def test_every_shipped_config_trains_one_step(name: str, tmp_path: Path) -> None:
    """Each config's own procedure (one network, denoising, two networks) takes one step on random features
    (pseudo-labels, for a config that trains on them: a random half of the segments of class 3)."""
    config = load_shipped(name)
    ratios = tmp_path / "ratios.npz"
    write_noise_ratios(ratios, NoiseRatios(np.full(25, 0.5), np.full(25, 0.5)))
    for key in ("denoising", "co_training"):
        if getattr(config, key) is not None:
            section = getattr(config, key).model_copy(update={"noise_ratios": ratios, "warmup_epochs": 0.0})
            config = config.model_copy(update={key: section})
    torch.manual_seed(0)
    procedure = build_procedure(config, torch.device("cpu"))
    model = procedure.module.train()
    optimizer = torch.optim.Adam(model.parameters(), lr=config.optimizer.lr)
    labels = torch.zeros(4, 25)
    labels[:, 3] = 1.0
    inputs = kind_features(procedure.feature_kinds, 4)
    pseudo = {m: (torch.rand(4, 10, 25) < 0.5) * labels[:, None, :] for m in ("audio", "visual")}
    batch = Batch(
        index=torch.arange(4), video_ids=list("abcd"), features=inputs, labels=labels, pseudo_labels=pseudo
    )
    before = [p.detach().clone() for p in model.parameters()]
    result = procedure.step(model, batch, 0, 1, False)
    result.total.backward()
    optimizer.step()
    trained_terms = {"L_pseudo_a", "L_pseudo_v"} if config.pseudo_labels else {"L_a", "L_v"}
    assert torch.isfinite(result.total) and set(result.terms) >= {"L_wsl", *trained_terms}
    assert len(result.trained) == len(procedure.networks) == (2 if config.co_training else 1)
    if config.denoising is not None:
        assert {"dropped_audio", "dropped_visual"} <= set(result.terms)
    if config.co_training is not None:  # the 2 largest losses of the 4 positives of class 3 are left out
        assert float(result.terms["dropped_audio"]) == float(result.terms["dropped_visual"]) == 0.5
    changed = [not torch.equal(b, p) for b, p in zip(before, model.parameters(), strict=True)]
    assert sum(changed) >= len(changed) // 2


def test_legacy_han_checkpoint_loads_with_the_same_outputs(tmp_path: Path) -> None:
    model = tiny()
    renamed_back = {v: k for k, v in LEGACY_HAN_PREFIXES.items()}
    legacy_state = {}
    for key, value in model.state_dict().items():
        prefix = next((p for p in renamed_back if key.startswith(p)), "")
        legacy_state[(renamed_back[prefix] + key[len(prefix) :]) if prefix else key] = value
    assert "han_layer.self_attention.in_proj_weight" in legacy_state
    legacy_config = {
        "name": "han",
        **model.config.model_dump(mode="json", exclude={"block", "attention", "skip", "heads"}),
    }
    payload = {
        "format": LEGACY_HAN_FORMAT,
        "model": legacy_config,
        "state_dict": legacy_state,
        "epoch": 1,
        "metrics": {},
    }
    save_checkpoint(tmp_path / "old.pt", payload)
    loaded = load_model(tmp_path / "old.pt")
    with torch.no_grad():
        torch.testing.assert_close(loaded(features()).global_prob, model(features()).global_prob)


def test_adversarial_training_logs_discriminator_accuracy(tmp_path: Path) -> None:
    splits = make_splits(tmp_path / "data", num_train=16, num_val=8)
    overrides = train_overrides(splits, tmp_path / "run", epochs=2, batch_size=8)
    overrides["model.heads.modality_discriminator.hidden"] = 16
    train(load_config(CONFIGS / "base_adv_skip_gcaa.yaml", overrides))
    records = [json.loads(line) for line in (tmp_path / "run" / "history.jsonl").read_text().splitlines()]
    assert len(records) == 2
    for record in records:
        assert 0.0 <= record["modality_discriminator_accuracy"] <= 1.0
        assert record["L_ad"] > 0
    loaded = load_model(tmp_path / "run" / "best.pt")
    assert loaded.config.attention == "gcaa" and "modality_discriminator" in loaded.heads


@pytest.mark.parametrize(
    ("inputs", "kinds"),
    [
        ({}, ("vggish", "resnet152", "r2plus1d")),
        ({"audio": "clap", "visual": "clip"}, ("clap", "clip", "r2plus1d")),
        ({"visual": "clip"}, ("vggish", "clip", "r2plus1d")),
    ],
)
def test_parser_reads_the_feature_kinds_of_its_inputs(inputs: dict, kinds: tuple) -> None:
    model = tiny(inputs=inputs)
    assert model.feature_kinds == kinds and build_model(ParserConfig()).feature_kinds[0] == "vggish"
    widths = {kind: FEATURE_SHAPES[kind][1] for kind in kinds}
    assert model.projections.audio.in_features == widths[kinds[0]]
    assert model.projections.frames.in_features == widths[kinds[1]]
    assert isinstance(model.projections.audio, FeatureMapProjection) == (kinds[0] == "clap")
    with torch.no_grad():
        output = model(kind_features(kinds, 3))
    assert output.frame_prob.shape == (3, 10, 2, 25)
    with pytest.raises(KeyError):
        model({kind: value for kind, value in kind_features(kinds, 1).items() if kind != kinds[0]})


def test_feature_map_projection_pools_the_map_to_ten_segments() -> None:
    torch.manual_seed(0)
    projection = FeatureMapProjection(768, 16)
    row = torch.randn(768)
    constant = row.expand(2, 64, 768)  # interpolation and pooling are averages: a constant map stays
    with torch.no_grad():
        torch.testing.assert_close(
            projection(constant), projection.weight @ row + projection.bias.expand(2, 10, 16)
        )
        identity = FeatureMapProjection(1, 1)
        identity.weight.fill_(1.0)
        identity.bias.zero_()
        ramp = torch.arange(64.0).reshape(1, 64, 1)  # step 32 r + j: row r, column j; rows average to 16 + j
        pooled = identity(ramp)[0, :, 0]
    assert (pooled[1:] > pooled[:-1]).all()  # the columns' order is time: segment t pools columns ~3.2 t on
    torch.testing.assert_close(pooled.mean(), torch.tensor(31.5), atol=0.1, rtol=0)
    # bicubic interpolation reproduces a ramp away from the borders: segment 2 pools columns 204..307,
    # whose source positions (c + 0.5) / 32 - 0.5 average 7.5
    torch.testing.assert_close(pooled[2], torch.tensor(16 + 7.5), atol=1e-4, rtol=0)


def test_a_parser_on_clip_and_clap_features_trains_and_predicts(tmp_path: Path, capsys) -> None:
    splits = make_splits(tmp_path / "data", num_train=8, num_val=4)
    rng = np.random.default_rng(0)
    teacher_shapes = {"clap": (64, 768), "clip": (10, 768)}

    def write_teachers(path: Path, seed: int) -> Path:
        with FeatureStoreWriter(path) as store:
            for kind, shape in teacher_shapes.items():
                store.set_attrs(kind, {"extractor": kind, "weights": f"random-init(seed={seed})"})
                for vid in [*splits.train_ids, *splits.val_ids]:
                    store.add(kind, vid, rng.normal(size=shape).astype(np.float32))
        return path

    teachers = write_teachers(tmp_path / "teachers.h5", 0)
    settings = {"model.inputs.audio": "clap", "model.inputs.visual": "clip", "model.num_layers": 2}
    overrides = train_overrides(splits, tmp_path / "run", epochs=1, **settings)
    train(load_config(None, {**overrides, "features": [str(splits.features), str(teachers)]}))
    payload = torch.load(tmp_path / "run" / "best.pt", weights_only=True)
    assert sorted(payload["features"]) == ["clap", "clip", "r2plus1d"]
    assert payload["features"]["clip"]["weights"] == "random-init(seed=0)"
    predict = ["predict", "--checkpoint", str(tmp_path / "run" / "best.pt"), "--split-csv",
               str(splits.annotations_dir / "AVVP_val_pd.csv"), "--device", "cpu", "--features"]  # fmt: skip
    out = tmp_path / "pred"
    assert main([*predict, str(splits.features), str(teachers), "--output-dir", str(out)]) == 0
    assert (out / "pred_visual.csv").exists()
    other = write_teachers(tmp_path / "other_teachers.h5", 1)
    capsys.readouterr()
    assert main([*predict, str(splits.features), str(other), "--output-dir", str(tmp_path / "refused")]) != 0
    error = capsys.readouterr().err
    assert "the 'clap' features differ" in error
    assert "'random-init(seed=0)' in the checkpoint vs 'random-init(seed=1)'" in error
