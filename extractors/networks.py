"""One description per feature kind: what a decoding worker prepares, what the device computes, and the
record of its weights and preprocessing (stamped into the store). :func:`build_networks` builds the ones
asked for."""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from avvp.data.features import FEATURE_SHAPES, TextEmbeddings
from avvp.errors import InputError
from extractors import clap, clip, vggish, visual
from extractors.identity import ExtractorRecord
from extractors.vggish import TFHUB_BACKEND, TORCH_BACKEND
from extractors.vggish_tf import DEFAULT_HANDLE, hub_embeddings, hub_record, load_hub_model, pretrained_vggish

VIDEO, AUDIO, AUDIO_48K = "video", "audio", "audio-48k"
AUDIO_RATES = {AUDIO: vggish.SAMPLE_RATE, AUDIO_48K: clap.SAMPLE_RATE}
"""The rate each audio source is decoded at (VGGish 16 kHz, CLAP 48 kHz)."""
CHANNELS_LAST_MIN_SIZE = 112
"""channels_last speeds up both visual networks on CPU from this input size up (measured: ResNet152 at 224
px 30 s vs 43 s per clip, R(2+1)D at 112 px 6.3 s vs 10.6 s, 2 shared cores); on tiny demo inputs it is not."""


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
    clip_model: str = clip.DEFAULT_MODEL
    clap_model: str = clap.DEFAULT_MODEL
    cache_dir: Path = field(default_factory=lambda: Path(torch.hub.get_dir()) / "checkpoints")


@dataclass(frozen=True)
class FeatureNetwork:
    """One feature kind.

    ``prepare`` runs in a decoding worker on the clip's frames (uint8 [80, H, W, 3]) or audio (float32
    [10 * rate], rate from :data:`AUDIO_RATES`) and returns the clip's input rows (``group * T`` of them,
    T from the feature shape; ``clap`` gives one row per clip that ``forward`` turns into its 64);
    ``forward`` maps ``group * k`` input rows (on ``device``) to ``k`` feature rows [k, D]; ``record`` is
    the identity of the weights and preprocessing, from the network's builder; ``text`` the class prompts'
    embeddings of an image-text or audio-text kind, stored with its features.
    """

    kind: str
    source: str
    prepare: Callable[[np.ndarray], torch.Tensor]
    forward: Callable[[torch.Tensor], torch.Tensor]
    group: int
    device: torch.device
    record: ExtractorRecord
    text: TextEmbeddings | None = None

    @property
    def shape(self) -> tuple[int, int]:
        """Per-clip feature shape (T, D)."""
        return FEATURE_SHAPES[self.kind]

    @property
    def attrs(self) -> dict[str, Any]:
        """The store attributes of the kind (:meth:`ExtractorRecord.attrs`)."""
        return self.record.attrs()


def _torch_forward(model: torch.nn.Module, function: Callable, channels_last: bool, batch: torch.Tensor):
    return function(model, batch, channels_last)


def _use_channels_last(options: NetworkOptions, device: torch.device, size: int) -> bool:
    return options.channels_last and device.type == "cpu" and size >= CHANNELS_LAST_MIN_SIZE


def _resnet(options: NetworkOptions, device: torch.device) -> FeatureNetwork:
    model, record = visual.build_resnet152(
        options.weights["resnet152"], options.seed, options.cache_dir, options.image_size
    )
    channels_last = _use_channels_last(options, device, options.image_size)
    model = model.to(device, memory_format=torch.channels_last if channels_last else torch.preserve_format)
    return FeatureNetwork(
        kind="resnet152",
        source=VIDEO,
        prepare=functools.partial(visual.resnet_inputs, crop=options.image_size),
        forward=functools.partial(_torch_forward, model, visual.resnet_features, channels_last),
        group=1,
        device=device,
        record=record,
    )


def _r2plus1d(options: NetworkOptions, device: torch.device) -> FeatureNetwork:
    model, record = visual.build_r2plus1d(
        options.weights["r2plus1d"], options.seed, options.cache_dir, options.clip_size
    )
    channels_last = _use_channels_last(options, device, options.clip_size)
    model = model.to(device, memory_format=torch.channels_last_3d if channels_last else torch.preserve_format)
    return FeatureNetwork(
        kind="r2plus1d",
        source=VIDEO,
        prepare=functools.partial(visual.r2plus1d_inputs, size=options.clip_size),
        forward=functools.partial(_torch_forward, model, visual.r2plus1d_features, channels_last),
        group=visual.SNIPPET_FRAMES,
        device=device,
        record=record,
    )


def _one_second_chunks(waveform: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(waveform, dtype=np.float32)).view(vggish.SEGMENTS, -1)


def _log_mel_tensor(waveform: np.ndarray) -> torch.Tensor:
    return vggish.log_mel_examples(torch.from_numpy(np.ascontiguousarray(waveform, dtype=np.float32)))


def _hub_forward(model: Any, chunks: torch.Tensor) -> torch.Tensor:
    return torch.from_numpy(hub_embeddings(model, chunks.cpu().numpy()))


def _vggish(options: NetworkOptions, device: torch.device) -> FeatureNetwork:
    if options.vggish_backend == TFHUB_BACKEND:
        return FeatureNetwork(
            kind="vggish",
            source=AUDIO,
            prepare=_one_second_chunks,
            forward=functools.partial(_hub_forward, load_hub_model(options.vggish_handle)),
            group=1,
            device=torch.device("cpu"),
            record=hub_record(options.vggish_handle),
        )
    pretrained = functools.partial(pretrained_vggish, options.vggish_handle)
    model, record = vggish.build_vggish(options.weights["vggish"], options.seed, pretrained)
    if model.config.embedding != FEATURE_SHAPES["vggish"][1]:
        raise InputError(
            f"{options.weights['vggish']}: VGGish embedding size {model.config.embedding}, the store needs "
            f"{FEATURE_SHAPES['vggish'][1]}"
        )
    return FeatureNetwork(
        kind="vggish",
        source=AUDIO,
        prepare=_log_mel_tensor,
        forward=model.to(device),
        group=1,
        device=device,
        record=record,
    )


TEACHER_PACKAGES = ("torch", "torchvision", "torchaudio", "transformers", "av", "decord")


def _model_forward(model: Any, function: Callable, batch: torch.Tensor) -> torch.Tensor:
    return function(model, batch)


def _clip(options: NetworkOptions, device: torch.device) -> FeatureNetwork:
    loaded = clip.load_clip(options.clip_model, options.weights["clip"], options.seed)
    size = clip.image_size(loaded)
    model = loaded.model.to(device)
    return FeatureNetwork(
        kind="clip",
        source=VIDEO,
        prepare=functools.partial(clip.clip_inputs, size=size),
        forward=functools.partial(_model_forward, model, clip.clip_features),
        group=1,
        device=device,
        record=ExtractorRecord(
            "clip",
            loaded.weights,
            clip.clip_preprocessing(loaded, size),
            TEACHER_PACKAGES,
        ),
        text=clip.prompt_embeddings(loaded),
    )


def _clap_network(kind: str, options: NetworkOptions, device: torch.device) -> FeatureNetwork:
    loaded = clap.load_clap(options.clap_model, options.weights[kind], options.seed)
    model = loaded.model.to(device)
    segments = kind == "clap_segments"
    return FeatureNetwork(
        kind=kind,
        source=AUDIO_48K,
        prepare=clap.segment_inputs if segments else clap.map_inputs,
        forward=functools.partial(
            _model_forward, model, clap.segment_features if segments else clap.map_features
        ),
        group=1,
        device=device,
        record=ExtractorRecord(kind, loaded.weights, clap.clap_preprocessing(loaded, kind), TEACHER_PACKAGES),
        text=clap.prompt_embeddings(loaded) if segments else None,
    )


_BUILDERS = {
    "resnet152": _resnet,
    "r2plus1d": _r2plus1d,
    "vggish": _vggish,
    "clip": _clip,
    "clap": functools.partial(_clap_network, "clap"),
    "clap_segments": functools.partial(_clap_network, "clap_segments"),
}


def build_networks(
    kinds: Sequence[str], options: NetworkOptions, device: torch.device
) -> list[FeatureNetwork]:
    """The :class:`FeatureNetwork` of each kind in ``kinds``, models in eval mode on ``device``."""
    return [_BUILDERS[kind](options, device) for kind in kinds]
