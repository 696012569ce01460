"""State dicts of the original ``MMIL_Net`` (HAN's and JoMoLD's) under their original key names and shapes,
with random values, and the original forward pass in eval mode written from its description."""

from __future__ import annotations

import random

import numpy as np
import torch
from torch import nn
from torch.nn import functional

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


def official_state_dict(seed: int = 0, han_encoders: bool = True) -> dict[str, torch.Tensor]:
    """Every parameter ``MMIL_Net`` registers, under its original name and shape: HAN's (with the
    ``audio_encoder``, ``visual_encoder`` and ``cmt_encoder`` it builds but never uses) or, with
    ``han_encoders=False``, JoMoLD's (the heads, projections and ``hat_encoder`` only)."""
    g = torch.Generator().manual_seed(seed)
    modules: dict[str, dict[str, torch.Tensor]] = {
        "fc_prob": _linear(25, D, g), "fc_frame_att": _linear(25, D, g), "fc_av_att": _linear(25, D, g),
        "fc_a": _linear(D, 128, g), "fc_v": _linear(D, 2048, g), "fc_st": _linear(D, 512, g),
        "fc_fusion": _linear(D, 1024, g),
    }  # fmt: skip
    encoders: tuple[tuple[str, tuple[str, ...]], ...] = (("hat_encoder", ("self_attn", "cm_attn")),)
    if han_encoders:
        for encoder in ("audio_encoder", "visual_encoder"):
            for part, tensors in _layer(g, ("self_attn",)).items():
                modules[f"{encoder}.layers.0.{part}"] = tensors
        encoders = (("cmt_encoder", ("self_attn",)), *encoders)
    for encoder, attentions in encoders:
        for part, tensors in _layer(g, attentions).items():
            modules[f"{encoder}.layers.0.{part}"] = tensors
        modules[f"{encoder}.norm1"], modules[f"{encoder}.norm2"] = _norm(g), _norm(g)
    return {
        f"{module}.{name}": value for module, tensors in modules.items() for name, value in tensors.items()
    }


def jomold_checkpoint(state: dict[str, torch.Tensor]) -> dict[str, object]:
    """The dict the original JoMoLD ``main.py`` saves around a ``model`` state dict: a real Adam state (one
    step taken) and StepLR state, ``epochs``, and the torch, CUDA, Python and NumPy RNG states."""
    parameters = [nn.Parameter(value.clone()) for value in state.values()]
    optimizer = torch.optim.Adam(parameters, lr=5e-4)
    for parameter in parameters:
        parameter.grad = torch.ones_like(parameter)
    optimizer.step()
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=6, gamma=0.25)
    return {
        "torch_rng": torch.get_rng_state(),
        "cuda_rng": torch.get_rng_state(),  # a CUDA RNG state is a byte tensor too (no GPU here)
        "random_rng": random.getstate(),
        "numpy_rng": np.random.get_state(),
        "model": state,
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "epochs": 25,
    }


def reference_forward(
    sd: dict[str, torch.Tensor],
    audio: torch.Tensor,
    frames: torch.Tensor,
    motion: torch.Tensor,
    cross_modal: bool = True,
) -> dict[str, torch.Tensor]:
    """The original forward pass in eval mode (dropout off), written from its description: ``global_prob``,
    ``audio_prob``, ``visual_prob`` (B, 25) and ``frame_prob`` (B, 10, 2, 25). ``cross_modal=False`` is
    JoMoLD's ``with_ca=False``: the shared layer without its ``cm_attn`` term."""

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
        x = query + attend(f"{layer}.self_attn", query, query)
        if cross_modal:
            x = x + attend(f"{layer}.cm_attn", query, other)
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
    temporal_prob = torch.softmax(linear(x, "fc_frame_att"), dim=1) * frame_prob
    return {
        "global_prob": (temporal_prob * torch.softmax(linear(x, "fc_av_att"), dim=2)).sum(dim=(1, 2)),
        "audio_prob": temporal_prob[:, :, 0].sum(dim=1),
        "visual_prob": temporal_prob[:, :, 1].sum(dim=1),
        "frame_prob": frame_prob,
    }


def original_noise_ratios(
    a: np.ndarray, v: np.ndarray, y: np.ndarray, a_thres: float = 0.6, v_thres: float = 1.8
) -> tuple[np.ndarray, np.ndarray]:
    """calculate_noise_ratio as the original describes it, one clip and class at a time, with exact means:
    ``a``, ``v`` (N, 25) video-level probabilities, ``y`` (N, 25) weak labels; ``P_a = y``, ``P_v = 0.9 y +
    0.05``. Returns the audio and visual ratios (classes without labels: 0)."""
    mean_a, mean_v = a.mean(axis=0), v.mean(axis=0)
    noisy_a, noisy_v, labels = np.zeros(25), np.zeros(25), np.zeros(25)
    for b in range(len(y)):
        for c in range(25):
            if y[b][c] != 0:
                labels[c] += 1
                if v[b][c] * (0.9 * y[b][c] + 0.05) / mean_v[c] < v_thres:
                    noisy_v[c] += 1
                if a[b][c] * y[b][c] / mean_a[c] < a_thres:
                    noisy_a[c] += 1
    with np.errstate(invalid="ignore"):
        return np.nan_to_num(noisy_a / labels), np.nan_to_num(noisy_v / labels)
