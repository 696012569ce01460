"""HAN and attentive MMIL pooling: shapes, attention normalisation, aggregation variants, label smoothing."""

from __future__ import annotations

import pytest
import torch
from train_helpers import one_torch_thread, random_features  # noqa: F401

from avvp.data.dataset import Batch
from avvp.models import ModelConfig, ParserOutput, build_model
from avvp.training.losses import LabelSmoothing, LossConfig, Objective, smooth_labels

VARIANTS = [(a, v) for a in ("self", "cross") for v in ("self", "cross")]


def features(batch: int = 3, seed: int = 0) -> dict[str, torch.Tensor]:
    return random_features(batch, seed)


def tiny(audio: str = "cross", visual: str = "cross", dropout: float = 0.0) -> torch.nn.Module:
    torch.manual_seed(0)
    config = ModelConfig(
        d_model=32, feedforward=48, dropout=dropout, audio_aggregation=audio, visual_aggregation=visual
    )
    return build_model(config).eval()


@pytest.mark.parametrize(("audio", "visual"), VARIANTS)
def test_output_shapes_and_attention_normalisation(audio: str, visual: str) -> None:
    output = tiny(audio, visual)(features(batch=3))
    assert isinstance(output, ParserOutput)
    for name in ("global_prob", "audio_prob", "visual_prob"):
        assert getattr(output, name).shape == (3, 25)
    for name in ("frame_prob", "temporal_attention", "modality_attention"):
        assert getattr(output, name).shape == (3, 10, 2, 25)
    assert output.audio_embedding.shape == output.visual_embedding.shape == (3, 10, 32)
    ones = torch.ones(3, 2, 25)
    torch.testing.assert_close(output.temporal_attention.sum(dim=1), ones)
    torch.testing.assert_close(output.modality_attention.sum(dim=2), torch.ones(3, 10, 25))
    assert ((output.global_prob >= 0) & (output.global_prob <= 1)).all()
    # eq. 3: p_wsl = sum over time and modality of W_tp * W_av * P
    recomputed = (output.temporal_attention * output.modality_attention * output.frame_prob).sum(dim=(1, 2))
    torch.testing.assert_close(output.global_prob, recomputed)


@pytest.mark.parametrize(("audio", "visual"), VARIANTS)
def test_self_aggregation_ignores_the_other_modality(audio: str, visual: str) -> None:
    model = tiny(audio, visual)
    base = features(seed=1)
    other_visual = {
        **base,
        "resnet152": torch.randn_like(base["resnet152"]),
        "r2plus1d": torch.randn_like(base["r2plus1d"]),
    }
    other_audio = {**base, "vggish": torch.randn_like(base["vggish"])}
    with torch.no_grad():
        reference = model(base)
        audio_changed = not torch.allclose(reference.audio_embedding, model(other_visual).audio_embedding)
        visual_changed = not torch.allclose(reference.visual_embedding, model(other_audio).visual_embedding)
    assert audio_changed == (audio == "cross")
    assert visual_changed == (visual == "cross")


def test_per_second_resnet_average_equals_frame_input() -> None:
    model = tiny()
    frames = features(seed=2)
    averaged = {**frames, "resnet152": frames["resnet152"].reshape(3, 10, 8, 2048).mean(dim=2)}
    with torch.no_grad():
        torch.testing.assert_close(model(frames).global_prob, model(averaged).global_prob)


def test_published_sizes() -> None:
    model = build_model(ModelConfig())
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert shapes["projections.audio.weight"] == (512, 128)
    assert shapes["projections.frames.weight"] == (512, 2048)
    assert shapes["projections.motion.weight"] == (512, 512)
    assert shapes["projections.visual_fusion.weight"] == (512, 1024)
    assert shapes["block.layer.self_attention.in_proj_weight"] == (1536, 512)
    assert shapes["block.layer.feedforward_in.weight"] == (512, 512)
    assert shapes["pooling.classifier.weight"] == (25, 512)


def test_label_smoothing_variants() -> None:
    labels = torch.tensor([[1.0, 0.0]])
    torch.testing.assert_close(smooth_labels(labels, 0.1), torch.tensor([[0.95, 0.05]]))
    settings = {
        v: LabelSmoothing(variant=v, audio=0.2, visual=0.1) for v in ("No-LS", "LS-A", "LS-V", "LS-AV")
    }
    amounts = {v: (s.amount("audio"), s.amount("visual")) for v, s in settings.items()}
    assert amounts == {"No-LS": (0.0, 0.0), "LS-A": (0.2, 0.0), "LS-V": (0.0, 0.1), "LS-AV": (0.2, 0.1)}


def test_objective_is_the_weighted_sum_of_its_terms() -> None:
    model = tiny()
    output = model(features())
    labels = torch.zeros(3, 25)
    labels[:, 0] = 1.0
    batch = Batch(index=torch.arange(3), video_ids=["a", "b", "c"], features={}, labels=labels)
    objective = Objective(LossConfig(terms={"wsl": 1.0, "audio": 0.5, "visual": 2.0}))
    total, terms = objective(output, batch)
    assert objective.names == ["L_wsl", "L_a", "L_v"]
    torch.testing.assert_close(total.detach(), terms["L_wsl"] + 0.5 * terms["L_a"] + 2.0 * terms["L_v"])
    visual_target = 0.9 * labels + 0.05  # HAN's LS-V
    expected_v = torch.nn.functional.binary_cross_entropy(
        output.visual_prob.clamp(1e-7, 1 - 1e-7), visual_target
    )
    torch.testing.assert_close(terms["L_v"], expected_v.detach())


STACKS = [
    {"num_layers": n, "stream_order": order, "norm": norm}
    for n in (1, 3)
    for order in ("parallel", "sequential")
    for norm in ("post", "pre")
]


@pytest.mark.parametrize("settings", STACKS, ids=lambda s: "-".join(str(v) for v in s.values()))
def test_stacked_han_shapes_and_layer_keys(settings: dict) -> None:
    torch.manual_seed(0)
    model = build_model(ModelConfig(d_model=32, feedforward=48, num_heads=4, dropout=0.0, **settings)).eval()
    output = model(features(batch=2))
    assert output.frame_prob.shape == (2, 10, 2, 25)
    assert output.audio_embedding.shape == output.visual_embedding.shape == (2, 10, 32)
    keys = model.state_dict().keys()
    n = settings["num_layers"]
    layer_keys = {k.split(".")[1] if n == 1 else ".".join(k.split(".")[1:3]) for k in keys if ".layer" in k}
    assert layer_keys == ({"layer"} if n == 1 else {f"layers.{i}" for i in range(n)})
    final_norms = {"block.audio_norm.weight", "block.visual_norm.weight"}
    assert final_norms <= keys if settings["norm"] == "pre" else not final_norms & keys


def test_one_post_norm_parallel_layer_keeps_the_han_state_dict() -> None:
    han = build_model(ModelConfig()).state_dict()
    explicit = build_model(ModelConfig(num_layers=1, stream_order="parallel", norm="post")).state_dict()
    assert {k: v.shape for k, v in han.items()} == {k: v.shape for k, v in explicit.items()}


def test_sequential_visual_update_reads_the_updated_audio() -> None:
    parallel, sequential = (
        build_model(ModelConfig(d_model=32, feedforward=48, dropout=0.0, stream_order=order)).eval()
        for order in ("parallel", "sequential")
    )
    sequential.load_state_dict(parallel.state_dict())
    batch = features(seed=3)
    with torch.no_grad():
        first, second = parallel(batch), sequential(batch)
        torch.testing.assert_close(first.audio_embedding, second.audio_embedding)  # audio goes first
        assert (first.visual_embedding - second.visual_embedding).abs().max() > 1e-3
        # the sequential visual update is the shared layer over the updated audio
        projected = sequential.projections(batch["vggish"], batch["resnet152"], batch["r2plus1d"])
        layer = sequential.block.layer
        expected = layer(projected[1], layer(projected[0], projected[1]))
        torch.testing.assert_close(second.visual_embedding, expected)


def test_pre_norm_block_ends_with_its_own_norm_per_stream() -> None:
    torch.manual_seed(0)
    model = build_model(ModelConfig(d_model=32, feedforward=48, dropout=0.0, norm="pre")).eval()
    with torch.no_grad():
        model.block.audio_norm.weight.fill_(2.0)
        model.block.visual_norm.bias.fill_(0.5)
        output = model(features(seed=4))
    audio, visual = output.audio_embedding, output.visual_embedding
    torch.testing.assert_close(audio.std(dim=-1, unbiased=False), torch.full((3, 10), 2.0), atol=1e-3, rtol=0)
    torch.testing.assert_close(visual.mean(dim=-1), torch.full((3, 10), 0.5), atol=1e-5, rtol=0)
    modality = model.modality_parameters()
    assert any(p is model.block.audio_norm.weight for p in modality["audio"])
    assert any(p is model.block.visual_norm.bias for p in modality["visual"])
