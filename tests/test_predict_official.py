"""Checkpoints saved by the original HAN code (YapengTian/AVVP-ECCV20, ``MMIL_Net``) load and predict.

The state dict is built here from the original key names and shapes (random values), and the loaded model
is compared with a direct re-computation of the original forward pass from those weights.
"""

from __future__ import annotations

import logging
from pathlib import Path

import h5py
import pytest
import torch
from torch import nn
from torch.nn import functional
from train_helpers import make_splits, one_torch_thread  # noqa: F401

from avvp.cli import main
from avvp.errors import InputError
from avvp.training.checkpoints import checkpoint_decision, checkpoint_features, load_model

D = 512


def _linear(out_dim: int, in_dim: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
    return {
        "weight": torch.randn(out_dim, in_dim, generator=generator) / in_dim**0.5,
        "bias": torch.randn(out_dim, generator=generator) * 0.1,
    }


def _norm(generator: torch.Generator) -> dict[str, torch.Tensor]:
    return {
        "weight": 1 + 0.1 * torch.randn(D, generator=generator),
        "bias": 0.1 * torch.randn(D, generator=generator),
    }


def _attention(generator: torch.Generator) -> dict[str, torch.Tensor]:
    projection = _linear(3 * D, D, generator)
    out = _linear(D, D, generator)
    return {
        "in_proj_weight": projection["weight"],
        "in_proj_bias": projection["bias"],
        "out_proj.weight": out["weight"],
        "out_proj.bias": out["bias"],
    }


def _layer(generator: torch.Generator, attentions: tuple[str, ...]) -> dict[str, dict[str, torch.Tensor]]:
    parts = {name: _attention(generator) for name in attentions}
    parts.update(
        linear1=_linear(512, D, generator),
        linear2=_linear(D, 512, generator),
        norm1=_norm(generator),
        norm2=_norm(generator),
    )
    return parts


def official_state_dict(seed: int = 0) -> dict[str, torch.Tensor]:
    """Every parameter ``MMIL_Net`` registers, under its original name and shape."""
    g = torch.Generator().manual_seed(seed)
    modules: dict[str, dict[str, torch.Tensor]] = {
        "fc_prob": _linear(25, D, g), "fc_frame_att": _linear(25, D, g), "fc_av_att": _linear(25, D, g),
        "fc_a": _linear(D, 128, g), "fc_v": _linear(D, 2048, g), "fc_st": _linear(D, 512, g),
        "fc_fusion": _linear(D, 1024, g),
    }  # fmt: skip
    for encoder in ("audio_encoder", "visual_encoder"):
        for part, tensors in _layer(g, ("self_attn",)).items():
            modules[f"{encoder}.layers.0.{part}"] = tensors
    for encoder, attentions in (("cmt_encoder", ("self_attn",)), ("hat_encoder", ("self_attn", "cm_attn"))):
        for part, tensors in _layer(g, attentions).items():
            modules[f"{encoder}.layers.0.{part}"] = tensors
        modules[f"{encoder}.norm1"], modules[f"{encoder}.norm2"] = _norm(g), _norm(g)
    return {
        f"{module}.{name}": value for module, tensors in modules.items() for name, value in tensors.items()
    }


def reference_forward(
    sd: dict[str, torch.Tensor], audio, frames, motion
) -> tuple[torch.Tensor, torch.Tensor]:
    """The original forward pass in eval mode, written from its description: (global_prob, frame_prob)."""

    def linear(x: torch.Tensor, name: str) -> torch.Tensor:
        return functional.linear(x, sd[f"{name}.weight"], sd[f"{name}.bias"])

    def attend(name: str, query: torch.Tensor, memory: torch.Tensor) -> torch.Tensor:
        module = nn.MultiheadAttention(D, 1)  # sequence-first, as in the original
        module.load_state_dict({k[len(name) + 1 :]: v for k, v in sd.items() if k.startswith(name + ".")})
        return module.eval()(query.transpose(0, 1), memory.transpose(0, 1), memory.transpose(0, 1))[
            0
        ].transpose(0, 1)

    def norm(x: torch.Tensor, name: str) -> torch.Tensor:
        return functional.layer_norm(x, (D,), sd[f"{name}.weight"], sd[f"{name}.bias"])

    def han(query: torch.Tensor, other: torch.Tensor) -> torch.Tensor:
        layer = "hat_encoder.layers.0"
        x = query + attend(f"{layer}.cm_attn", query, other) + attend(f"{layer}.self_attn", query, query)
        x = norm(x, f"{layer}.norm1")
        return norm(
            x + linear(functional.relu(linear(x, f"{layer}.linear1")), f"{layer}.linear2"), f"{layer}.norm2"
        )

    a = linear(audio, "fc_a")
    v = (
        linear(frames, "fc_v").reshape(frames.shape[0], 10, 8, D).mean(dim=2)
    )  # project, then average per second
    v = linear(torch.cat((v, linear(motion, "fc_st")), dim=-1), "fc_fusion")
    x = torch.stack((han(a, v), han(v, a)), dim=2)
    frame_prob = torch.sigmoid(linear(x, "fc_prob"))
    weights = torch.softmax(linear(x, "fc_frame_att"), dim=1) * torch.softmax(linear(x, "fc_av_att"), dim=2)
    return (weights * frame_prob).sum(dim=(1, 2)), frame_prob


def test_official_state_dict_matches_the_original_forward(tmp_path: Path, caplog) -> None:
    state = official_state_dict()
    path = tmp_path / "MMIL_Net.pt"
    torch.save(state, path)
    with caplog.at_level("INFO"):
        model = load_model(path, "official-han")
    assert "ignored" in caplog.text and "audio_encoder.layers.0.self_attn.in_proj_weight" in caplog.text
    g = torch.Generator().manual_seed(1)
    audio, frames, motion = (
        torch.randn(2, 10, 128, generator=g),
        torch.randn(2, 80, 2048, generator=g),
        torch.randn(2, 10, 512, generator=g),
    )
    with torch.no_grad():
        output = model({"vggish": audio, "resnet152": frames, "r2plus1d": motion})
        global_prob, frame_prob = reference_forward(state, audio, frames, motion)
    torch.testing.assert_close(output.frame_prob, frame_prob, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(output.global_prob, global_prob, atol=1e-5, rtol=1e-4)


def test_official_checkpoint_predicts_through_the_cli(tmp_path: Path, caplog) -> None:
    splits = make_splits(tmp_path / "data", num_train=2, num_val=4)
    state = {f"module.{k}": v for k, v in official_state_dict(seed=2).items()}  # saved from DataParallel
    torch.save(state, tmp_path / "han.pt")
    assert checkpoint_features(tmp_path / "han.pt") is None and checkpoint_decision(state) is None
    out = tmp_path / "pred"
    caplog.set_level(logging.INFO)
    code = main(
        ["predict", "--checkpoint", str(tmp_path / "han.pt"), "--checkpoint-format", "official-han",
         "--features", str(splits.features), "--split-csv", str(splits.annotations_dir / "AVVP_val_pd.csv"),
         "--output-dir", str(out), "--device", "cpu"]
    )  # fmt: skip
    assert code == 0
    assert "han.pt records no feature identity" in caplog.text
    with h5py.File(out / "probabilities.h5") as handle:
        assert handle["frame_prob"].shape == (4, 10, 2, 25)
    assert (out / "pred_audio.csv").read_text().startswith("filename\tonset\toffset\tevent_labels")


def test_wrong_official_architecture_is_rejected(tmp_path: Path) -> None:
    state = official_state_dict()
    del state["hat_encoder.layers.0.cm_attn.in_proj_weight"]
    torch.save(state, tmp_path / "missing.pt")
    with pytest.raises(InputError, match=r"missing: block\.layer\.cross_attention\.in_proj_weight"):
        load_model(tmp_path / "missing.pt", "official-han")
    state = official_state_dict()
    state["fc_extra.weight"] = torch.zeros(3)
    torch.save(state, tmp_path / "extra.pt")
    with pytest.raises(InputError, match=r"not an official HAN .* fc_extra\.weight"):
        load_model(tmp_path / "extra.pt", "official-han")
    state = official_state_dict()
    state["fc_a.weight"] = torch.zeros(512, 64)
    torch.save(state, tmp_path / "shape.pt")
    with pytest.raises(InputError, match=r"wrong shape: projections\.audio\.weight \(512, 64\)"):
        load_model(tmp_path / "shape.pt", "official-han")
    with pytest.raises(InputError, match="try --checkpoint-format official-han"):
        load_model(tmp_path / "shape.pt", "native")
