"""One description per feature kind: what a decoding worker prepares, what the device computes, and the
attributes stamped into the store. :func:`build_networks` builds the ones asked for."""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from avvp.data.features import FEATURE_SHAPES, package_versions
from avvp.errors import InputError
from extractors import decoding, vggish, visual
from extractors.vggish_tf import DEFAULT_HANDLE, hub_embeddings, load_hub_model, pretrained_vggish

VIDEO, AUDIO = "video", "audio"
CHANNELS_LAST_MIN_SIZE = 112
"""channels_last speeds up both visual networks on CPU from this input size up (measured: ResNet152 at 224
px 30 s vs 43 s per clip, R(2+1)D at 112 px 6.3 s vs 10.6 s, 2 shared cores); on tiny demo inputs it is not."""
TORCH_BACKEND, TFHUB_BACKEND = "torch", "tfhub"


@dataclass(frozen=True)
class NetworkOptions:
    """How to build the networks: weights choice per kind, seed, input sizes, VGGish backend, weight cache."""

    weights: Mapping[str, str]
    seed: int = 0
    image_size: int = visual.RESNET_CROP
    clip_size: int = visual.R2PLUS1D_SIZE
    vggish_backend: str = TORCH_BACKEND
    vggish_handle: str = DEFAULT_HANDLE
    channels_last: bool = True
    cache_dir: Path = field(default_factory=lambda: Path(torch.hub.get_dir()) / "checkpoints")


@dataclass(frozen=True)
class FeatureNetwork:
    """One feature kind.

    ``prepare`` runs in a decoding worker on the clip's frames (uint8 [80, H, W, 3]) or audio (float32
    [160000]) and returns the clip's input rows (``group * T`` of them, T from the feature shape);
    ``forward`` maps ``group * k`` input rows (on ``device``) to ``k`` feature rows [k, D]; ``attrs`` go
    into the store.
    """

    kind: str
    source: str
    prepare: Callable[[np.ndarray], torch.Tensor]
    forward: Callable[[torch.Tensor], torch.Tensor]
    group: int
    device: torch.device
    attrs: dict[str, Any]

    @property
    def shape(self) -> tuple[int, int]:
        """Per-clip feature shape (T, D)."""
        return FEATURE_SHAPES[self.kind]


def _common_attrs(kind: str, identity: str) -> dict[str, Any]:
    return {
        "extractor": kind,
        "weights": identity,
        "versions": package_versions("torch", "torchvision", "av", "decord"),
    }


def _frame_sampling() -> dict[str, Any]:
    return {
        "fps": decoding.OUTPUT_FPS,
        "frame_sync": "ffmpeg -r 8 (constant-rate video sync) on presentation timestamps",
        "frames": decoding.NUM_FRAMES,
        "frame_choice": "round(linspace(0, N-1, 80))",
        "short_clip": "last frame repeated to 80 output frames",
    }


def _torch_forward(model: torch.nn.Module, function: Callable, channels_last: bool, batch: torch.Tensor):
    return function(model, batch, channels_last)


def _use_channels_last(options: NetworkOptions, device: torch.device, size: int) -> bool:
    return options.channels_last and device.type == "cpu" and size >= CHANNELS_LAST_MIN_SIZE


def _resnet(options: NetworkOptions, device: torch.device) -> FeatureNetwork:
    model, identity = visual.build_resnet152(options.weights["resnet152"], options.seed, options.cache_dir)
    channels_last = _use_channels_last(options, device, options.image_size)
    model = model.to(device, memory_format=torch.channels_last if channels_last else torch.preserve_format)
    attrs = _common_attrs("resnet152", identity) | _frame_sampling()
    attrs |= {
        "resize_shorter": visual.resize_for_crop(options.image_size),
        "crop": options.image_size,
        "interpolation": "bilinear, antialiased",
        "mean": visual.IMAGENET_MEAN,
        "std": visual.IMAGENET_STD,
        "layer": "global average pool after layer4",
    }
    return FeatureNetwork(
        kind="resnet152",
        source=VIDEO,
        prepare=functools.partial(visual.resnet_inputs, crop=options.image_size),
        forward=functools.partial(_torch_forward, model, visual.resnet_features, channels_last),
        group=1,
        device=device,
        attrs=attrs,
    )


def _r2plus1d(options: NetworkOptions, device: torch.device) -> FeatureNetwork:
    model, identity = visual.build_r2plus1d(options.weights["r2plus1d"], options.seed, options.cache_dir)
    channels_last = _use_channels_last(options, device, options.clip_size)
    model = model.to(device, memory_format=torch.channels_last_3d if channels_last else torch.preserve_format)
    attrs = _common_attrs("r2plus1d", identity) | _frame_sampling()
    attrs |= {
        "frame_size": options.clip_size,
        "resize": "each frame to frame_size x frame_size, aspect not kept, no crop",
        "mean": visual.KINETICS_MEAN,
        "std": visual.KINETICS_STD,
        "snippet_frames": visual.SNIPPET_FRAMES,
        "layer": "global average pool before the classifier",
    }
    return FeatureNetwork(
        kind="r2plus1d",
        source=VIDEO,
        prepare=functools.partial(visual.r2plus1d_inputs, size=options.clip_size),
        forward=functools.partial(_torch_forward, model, visual.r2plus1d_features, channels_last),
        group=visual.SNIPPET_FRAMES,
        device=device,
        attrs=attrs,
    )


def _one_second_chunks(waveform: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(waveform, dtype=np.float32)).view(vggish.SEGMENTS, -1)


def _log_mel_tensor(waveform: np.ndarray) -> torch.Tensor:
    return vggish.log_mel_examples(torch.from_numpy(np.ascontiguousarray(waveform, dtype=np.float32)))


def _hub_forward(model: Any, chunks: torch.Tensor) -> torch.Tensor:
    return torch.from_numpy(hub_embeddings(model, chunks.cpu().numpy()))


def _vggish(options: NetworkOptions, device: torch.device) -> FeatureNetwork:
    attrs = {
        "sample_rate": vggish.SAMPLE_RATE,
        "downmix": "mean of channels ((L+R)/2 for stereo)",
        "chunk": "1 s per segment, first 96 frames of each",
        "stft": {"window": vggish.WINDOW, "hop": vggish.HOP, "fft": vggish.FFT, "window_fn": "periodic hann"},
        "mel": {
            "bands": vggish.MEL_BANDS,
            "low_hz": vggish.MEL_LOW_HZ,
            "high_hz": vggish.MEL_HIGH_HZ,
            "scale": "htk",
        },
        "log_offset": vggish.LOG_OFFSET,
        "embedding": "after the final ReLU, no PCA, no quantisation",
        "backend": options.vggish_backend,
        "short_clip": "silence appended to 10 s",
    }
    if options.vggish_backend == TFHUB_BACKEND:
        model = load_hub_model(options.vggish_handle)
        attrs = _common_attrs("vggish", f"tfhub:{options.vggish_handle}") | attrs
        attrs["versions"] |= package_versions("tensorflow", "tensorflow-hub")
        return FeatureNetwork(
            kind="vggish",
            source=AUDIO,
            prepare=_one_second_chunks,
            forward=functools.partial(_hub_forward, model),
            group=1,
            device=torch.device("cpu"),
            attrs=attrs,
        )
    pretrained = functools.partial(pretrained_vggish, options.vggish_handle)
    model, identity = vggish.build_vggish(options.weights["vggish"], options.seed, pretrained)
    if model.config.embedding != FEATURE_SHAPES["vggish"][1]:
        raise InputError(
            f"{options.weights['vggish']}: VGGish embedding size {model.config.embedding}, the store needs "
            f"{FEATURE_SHAPES['vggish'][1]}"
        )
    model = model.to(device)
    return FeatureNetwork(
        kind="vggish",
        source=AUDIO,
        prepare=_log_mel_tensor,
        forward=model,
        group=1,
        device=device,
        attrs=_common_attrs("vggish", identity) | attrs,
    )


_BUILDERS = {"resnet152": _resnet, "r2plus1d": _r2plus1d, "vggish": _vggish}


def build_networks(
    kinds: Sequence[str], options: NetworkOptions, device: torch.device
) -> list[FeatureNetwork]:
    """The :class:`FeatureNetwork` of each kind in ``kinds``, models in eval mode on ``device``."""
    return [_BUILDERS[kind](options, device) for kind in kinds]
