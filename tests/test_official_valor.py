"""Checkpoints saved by the original VALOR code (Franklin905/VALOR, ``MMIL_Net``) load and predict.

The state dicts are built under the original key names and shapes (random values), and the loaded parser is
compared with a re-computation of VALOR's forward pass written here from the facts of its ``main_network.py``:
sequence-first multi-head attention, its ``Encoder`` updating audio, then visual over the updated audio,
layer by layer; post- or pre-norm layers (pre-norm with final per-stream norms); the CLAP feature-map path
(64 steps as 2 x 32, bicubic to 2 x 1024, ``fc_a`` on every column, mean over the rows, adaptive average
pooling to 10); ResNet152 projected, then averaged over each second's 8 frames; CLIP projected per segment.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from official_helpers import official_state_dict
from torch.nn import functional
from train_helpers import make_splits, one_torch_thread  # noqa: F401

from avvp.cli import main
from avvp.data.features import FeatureStoreWriter
from avvp.errors import InputError
from avvp.models import ParserConfig, build_model
from avvp.training.checkpoints import VALOR_SETTINGS, load_model, load_weights, map_official, valor_sizes


@dataclass(frozen=True)
class Valor:
    """The sizes of one VALOR network (``main_avvp.py`` arguments)."""

    audio_dim: int = 128  # input_a_dim: 128 VGGish, 768 CLAP feature maps
    visual_dim: int = 2048  # input_v_dim: 2048 ResNet152, 768 CLIP
    hidden: int = 512
    layers: int = 1
    ff: int = 1024
    heads: int = 8


VALOR = Valor()
VALOR_PLUS_PLUS = Valor(audio_dim=768, visual_dim=768, hidden=256, layers=4)


def valor_state_dict(sizes: Valor, seed: int = 0) -> dict[str, torch.Tensor]:
    """Every tensor VALOR's ``MMIL_Net`` registers, under its name and shape, with random values."""
    g = torch.Generator().manual_seed(seed)
    h = sizes.hidden

    def linear(name: str, out_dim: int, in_dim: int) -> dict[str, torch.Tensor]:
        return {
            f"{name}.weight": torch.randn(out_dim, in_dim, generator=g) / in_dim**0.5,
            f"{name}.bias": 0.1 * torch.randn(out_dim, generator=g),
        }

    def norm(name: str) -> dict[str, torch.Tensor]:
        return {
            f"{name}.weight": 1 + 0.1 * torch.randn(h, generator=g),
            f"{name}.bias": 0.1 * torch.randn(h, generator=g),
        }

    def attention(name: str) -> dict[str, torch.Tensor]:
        packed = linear(f"{name}.in_proj", 3 * h, h)
        return {
            f"{name}.in_proj_weight": packed[f"{name}.in_proj.weight"],
            f"{name}.in_proj_bias": packed[f"{name}.in_proj.bias"],
            **linear(f"{name}.out_proj", h, h),
        }

    state = {
        **linear("fc_prob", 25, h), **linear("fc_frame_att", 25, h), **linear("fc_av_att", 25, h),
        **linear("fc_a", h, sizes.audio_dim), **linear("fc_v", h, sizes.visual_dim),
        **linear("fc_st", h, 512), **linear("fc_fusion", h, 2 * h),
    }  # fmt: skip
    for i in range(sizes.layers):
        layer = f"hat_encoder.layers.{i}"
        state.update(attention(f"{layer}.self_attn"), **attention(f"{layer}.cm_attn"))
        state.update(linear(f"{layer}.linear1", sizes.ff, h), **linear(f"{layer}.linear2", h, sizes.ff))
        state.update(norm(f"{layer}.norm1"), **norm(f"{layer}.norm2"))
    state.update(norm("hat_encoder.final_norm_a"), **norm("hat_encoder.final_norm_v"))
    return state


def valor_forward(
    sd: dict[str, torch.Tensor],
    sizes: Valor,
    audio: torch.Tensor,
    visual: torch.Tensor,
    motion: torch.Tensor,
    norm_where: str = "post_norm",
) -> dict[str, torch.Tensor]:
    """VALOR's ``MMIL_Net`` forward in eval mode: ``global_prob``, ``audio_prob``, ``visual_prob`` (B, 25)
    and ``frame_prob`` (B, 10, 2, 25)."""

    def linear(x: torch.Tensor, name: str) -> torch.Tensor:
        return x @ sd[f"{name}.weight"].T + sd[f"{name}.bias"]

    def layer_norm(x: torch.Tensor, name: str) -> torch.Tensor:
        return functional.layer_norm(x, (sizes.hidden,), sd[f"{name}.weight"], sd[f"{name}.bias"], 1e-5)

    def attend(name: str, query: torch.Tensor, memory: torch.Tensor) -> torch.Tensor:
        # sequence-first (T, B, H) as VALOR permutes its inputs; heads split the width in order
        w_q, w_k, w_v = sd[f"{name}.in_proj_weight"].chunk(3)
        b_q, b_k, b_v = sd[f"{name}.in_proj_bias"].chunk(3)
        t, b, h = query.shape
        d = h // sizes.heads

        def heads(x: torch.Tensor) -> torch.Tensor:  # (T, B, H) -> (B, heads, T, d)
            return x.reshape(x.shape[0], b, sizes.heads, d).permute(1, 2, 0, 3)

        q = heads(query @ w_q.T + b_q)
        k, v = heads(memory @ w_k.T + b_k), heads(memory @ w_v.T + b_v)
        weights = torch.softmax(q @ k.transpose(-1, -2) / d**0.5, dim=-1)
        mixed = (weights @ v).permute(2, 0, 1, 3).reshape(t, b, h)
        return linear(mixed, f"{name}.out_proj")

    def han_layer(i: int, src_q: torch.Tensor, src_v: torch.Tensor) -> torch.Tensor:
        layer = f"hat_encoder.layers.{i}"
        q, m = src_q.permute(1, 0, 2), src_v.permute(1, 0, 2)
        if norm_where == "post_norm":
            q = q + attend(f"{layer}.cm_attn", q, m) + attend(f"{layer}.self_attn", q, q)
            q = layer_norm(q, f"{layer}.norm1")
            q = q + linear(functional.relu(linear(q, f"{layer}.linear1")), f"{layer}.linear2")
            q = layer_norm(q, f"{layer}.norm2")
        else:
            n = layer_norm(q, f"{layer}.norm1")
            q = q + attend(f"{layer}.cm_attn", n, m) + attend(f"{layer}.self_attn", n, n)
            n = layer_norm(q, f"{layer}.norm2")
            q = q + linear(functional.relu(linear(n, f"{layer}.linear1")), f"{layer}.linear2")
        return q.permute(1, 0, 2)

    batch = audio.shape[0]
    if audio.shape[1] == 64:  # CLAP feature maps
        grid = audio.permute(0, 2, 1).reshape(batch, sizes.audio_dim, 2, 32)
        upsampled = functional.interpolate(grid, size=(2, 1024), mode="bicubic")
        columns = linear(upsampled.permute(0, 2, 3, 1), "fc_a").permute(0, 3, 1, 2).mean(dim=2)
        a = functional.adaptive_avg_pool1d(columns, 10).permute(0, 2, 1)
    else:
        a = linear(audio, "fc_a")
    frames = linear(visual, "fc_v")
    if visual.shape[1] == 80:  # ResNet152 at 8 frames per second
        frames = functional.avg_pool2d(frames.permute(0, 2, 1).unsqueeze(-1), (8, 1)).squeeze(-1)
        frames = frames.permute(0, 2, 1)
    v = linear(torch.cat((frames, linear(motion, "fc_st")), dim=-1), "fc_fusion")
    for i in range(sizes.layers):
        a = han_layer(i, a, v)
        v = han_layer(i, v, a)
    if norm_where == "pre_norm":
        a, v = layer_norm(a, "hat_encoder.final_norm_a"), layer_norm(v, "hat_encoder.final_norm_v")
    x = torch.stack((a, v), dim=2)
    frame_prob = torch.sigmoid(linear(x, "fc_prob"))
    temporal_prob = torch.softmax(linear(x, "fc_frame_att"), dim=1) * frame_prob
    av_att = torch.softmax(linear(x, "fc_av_att"), dim=2)
    return {
        "global_prob": (temporal_prob * av_att).sum(dim=2).sum(dim=1),
        "audio_prob": temporal_prob[:, :, 0].sum(dim=1),
        "visual_prob": temporal_prob[:, :, 1].sum(dim=1),
        "frame_prob": frame_prob,
    }


def valor_inputs(sizes: Valor, batch: int = 2, seed: int = 1) -> dict[str, torch.Tensor]:
    """Random inputs of the kinds a VALOR network of ``sizes`` reads, by kind."""
    g = torch.Generator().manual_seed(seed)
    audio = ("clap", (64, 768)) if sizes.audio_dim == 768 else ("vggish", (10, 128))
    visual = ("clip", (10, 768)) if sizes.visual_dim == 768 else ("resnet152", (80, 2048))
    return {
        kind: torch.randn(batch, *shape, generator=g)
        for kind, shape in (audio, visual, ("r2plus1d", (10, 512)))
    }


def assert_matches_valor(model: torch.nn.Module, reference: dict[str, torch.Tensor], inputs) -> None:
    with torch.no_grad():
        output = model(inputs)
    for name, expected in reference.items():
        torch.testing.assert_close(getattr(output, name), expected, atol=1e-5, rtol=0)


@pytest.mark.parametrize(
    ("sizes", "kinds"),
    [(VALOR, ("vggish", "resnet152", "r2plus1d")), (VALOR_PLUS_PLUS, ("clap", "clip", "r2plus1d"))],
    ids=["valor", "valor++"],
)
def test_valor_state_dict_matches_the_original_forward(sizes: Valor, kinds: tuple, tmp_path: Path, caplog):
    state = valor_state_dict(sizes)
    path = tmp_path / "checkpoint_best.pt"
    torch.save(state, path)
    with caplog.at_level("INFO"):
        model = load_model(path, "official-valor")
    assert "hat_encoder.final_norm_a.weight" in caplog.text  # post-norm: VALOR's final norms are unused
    config = model.config
    assert model.feature_kinds == kinds
    assert (config.d_model, config.num_layers, config.feedforward, config.num_heads) == (
        sizes.hidden, sizes.layers, sizes.ff, sizes.heads
    )  # fmt: skip
    assert (config.stream_order, config.norm) == ("sequential", "post")
    inputs = valor_inputs(sizes)
    reference = valor_forward(state, sizes, *inputs.values())
    assert_matches_valor(model, reference, inputs)
    # the two stream orders differ on these weights: the parity above is the sequential one's
    parallel = load_model(path, "official-valor")
    parallel.block.sequential = False
    with torch.no_grad():
        assert (parallel(inputs).global_prob - reference["global_prob"]).abs().max() > 1e-3


def test_pre_norm_valor_network_matches_the_original_forward(tmp_path: Path) -> None:
    # VALOR's scripts train post-norm only; its pre_norm variant is our norm: pre, final norms mapped too
    sizes = Valor(audio_dim=768, hidden=64, layers=2, ff=96, heads=4)
    state = valor_state_dict(sizes, seed=3)
    settings = {**VALOR_SETTINGS, **valor_sizes(tmp_path, state), "num_heads": 4, "norm": "pre"}
    config = ParserConfig.model_validate(settings)
    model = build_model(config).eval()
    mapped, ignored = map_official(tmp_path, state, "official-valor", config)
    assert ignored == [] and "block.audio_norm.weight" in mapped
    load_weights(tmp_path, model, mapped)
    inputs = valor_inputs(sizes, seed=4)
    assert_matches_valor(model, valor_forward(state, sizes, *inputs.values(), norm_where="pre_norm"), inputs)


def test_valor_checkpoint_predicts_through_the_cli(tmp_path: Path, caplog) -> None:
    splits = make_splits(tmp_path / "data", num_train=2, num_val=4)
    sizes = Valor(audio_dim=768, visual_dim=768, hidden=64, layers=2, ff=128)
    rng = np.random.default_rng(0)
    teachers = tmp_path / "data" / "teachers.h5"
    arrays = {"clap": (64, 768), "clip": (10, 768)}
    values = {kind: rng.normal(size=(4, *shape)).astype(np.float32) for kind, shape in arrays.items()}
    with FeatureStoreWriter(teachers) as store:
        for kind in arrays:
            store.set_attrs(kind, {"extractor": kind, "weights": "random-init(seed=0)"})
            for i, vid in enumerate(splits.val_ids):
                store.add(kind, vid, values[kind][i])
    state = valor_state_dict(sizes, seed=5)
    torch.save(state, tmp_path / "checkpoint_best.pt")
    out = tmp_path / "pred"
    caplog.set_level(logging.INFO)
    code = main(
        ["predict", "--checkpoint", str(tmp_path / "checkpoint_best.pt"), "--checkpoint-format",
         "official-valor", "--features", str(splits.features), str(teachers), "--split-csv",
         str(splits.annotations_dir / "AVVP_val_pd.csv"), "--output-dir", str(out), "--device", "cpu"]
    )  # fmt: skip
    assert code == 0
    assert json.loads((out / "decision.json").read_text())["rule"] == "fused"
    with h5py.File(splits.features) as handle:
        index = [list(handle["r2plus1d/video_id"].asstr()[:]).index(vid) for vid in splits.val_ids]
        motion = torch.from_numpy(handle["r2plus1d/features"][:][index])
    reference = valor_forward(
        state, sizes, torch.from_numpy(values["clap"]), torch.from_numpy(values["clip"]), motion
    )
    with h5py.File(out / "probabilities.h5") as handle:
        assert [v.decode() for v in handle["video_id"][:]] == splits.val_ids
        np.testing.assert_allclose(handle["global_prob"][:], reference["global_prob"].numpy(), atol=1e-5)
        np.testing.assert_allclose(handle["frame_prob"][:], reference["frame_prob"].numpy(), atol=1e-5)


def test_wrong_files_given_as_valor_are_refused(tmp_path: Path) -> None:
    torch.save(official_state_dict(), tmp_path / "han.pt")
    with pytest.raises(
        InputError, match=r"han\.pt: not an official VALOR .*try --checkpoint-format official-han"
    ):
        load_model(tmp_path / "han.pt", "official-valor")
    torch.save(official_state_dict(han_encoders=False), tmp_path / "jomold_model.pt")
    with pytest.raises(InputError, match=r"jomold_model\.pt: not an official VALOR .*hat_encoder\.norm1"):
        load_model(tmp_path / "jomold_model.pt", "official-valor")
    torch.save(valor_state_dict(VALOR_PLUS_PLUS), tmp_path / "valor++.pt")
    with pytest.raises(InputError, match=r"not an official HAN .*try --checkpoint-format official-valor"):
        load_model(tmp_path / "valor++.pt", "official-han")
    state = valor_state_dict(VALOR)
    del state["hat_encoder.layers.0.cm_attn.out_proj.weight"]
    torch.save(state, tmp_path / "missing.pt")
    with pytest.raises(
        InputError, match=r"missing\.pt: .*missing: block\.layer\.cross_attention\.out_proj\.weight"
    ):
        load_model(tmp_path / "missing.pt", "official-valor")
    state = {**valor_state_dict(VALOR), "fc_a.weight": torch.zeros(512, 512)}
    torch.save(state, tmp_path / "width.pt")
    with pytest.raises(InputError, match=r"width\.pt: fc_a reads features of width 512; VALOR's are 128"):
        load_model(tmp_path / "width.pt", "official-valor")
    torch.save({"fc_prob.weight": torch.zeros(25, 8)}, tmp_path / "bare.pt")
    with pytest.raises(InputError, match=r"bare\.pt: not an official VALOR .*no 2-d tensor"):
        load_model(tmp_path / "bare.pt", "official-valor")
