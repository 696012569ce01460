"""One description per feature kind: what a decoding worker prepares, what the device computes, and the
record of its weights and preprocessing (stamped into the store). :func:`build_networks` builds the ones
asked for."""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from avvp.data.features import FEATURE_SHAPES, TextEmbeddings
from avvp.errors import InputError
from extractors import clap, clip, vggish, visual
from extractors.forward_plan import (
    CHANNELS_LAST,
    CHANNELS_LAST_3D,
    CONTIGUOUS,
    FLOAT16,
    FLOAT32,
    MEMORY_FORMATS,
    ForwardPlan,
    ForwardSpec,
)
from extractors.identity import ExtractorRecord
from extractors.vggish import TFHUB_BACKEND, TORCH_BACKEND
from extractors.vggish_tf import DEFAULT_HANDLE, hub_embeddings, hub_record, load_hub_model, pretrained_vggish

VIDEO, AUDIO, AUDIO_48K = "video", "audio", "audio-48k"
AUDIO_RATES = {AUDIO: vggish.SAMPLE_RATE, AUDIO_48K: clap.SAMPLE_RATE}
CHANNELS_LAST_MIN_SIZE = 112
"""channels_last speeds up both visual networks on CPU from this input size up (measured: ResNet152 at 224
px 30 s vs 43 s per clip, R(2+1)D at 112 px 6.3 s vs 10.6 s, 2 shared cores); on tiny demo inputs it is not."""
CUDA_BATCHES = {"resnet152": 128, "r2plus1d": 16, "vggish": 256, "clip": 64, "clap": 8, "clap_segments": 40}
"""Items per forward call on CUDA (frames, snippets, examples): large, as a GPU needs; not measured here."""


@dataclass(frozen=True)
class NetworkOptions:
    """How to build the networks: weights choice per kind, seed, input sizes, VGGish backend, the CLIP and
    CLAP models (hub name, ``name@revision``, local folder or ``tiny``), weight cache, and forward plans that replace the device's defaults (kind -> :class:`ForwardPlan`)."""

    weights: Mapping[str, str]
    seed: int = 0
    image_size: int = visual.RESNET_CROP
    clip_size: int = visual.R2PLUS1D_SIZE
    vggish_backend: str = TORCH_BACKEND
    vggish_handle: str = DEFAULT_HANDLE
    clip_model: str = clip.DEFAULT_MODEL
    clap_model: str = clap.DEFAULT_MODEL
    forward: Mapping[str, ForwardPlan] = field(default_factory=dict)
    cache_dir: Path = field(default_factory=lambda: Path(torch.hub.get_dir()) / "checkpoints")


@dataclass(frozen=True)
class FeatureNetwork:
    """One feature kind.

    ``prepare`` runs in a decoding worker on the clip's frames (uint8 [80, H, W, 3]) or audio (float32
    [10 * rate], rate from :data:`AUDIO_RATES`) and returns the clip's input rows (``group * T`` of them,
    T from the feature shape; ``clap`` gives one row per clip that ``features`` turns into its 64);
    ``features(model, rows, layout)`` maps ``group * k`` input rows (on ``device``) to ``k`` feature rows
    [k, D] with the model in ``layout``; ``record`` is the identity of the weights and preprocessing, from
    the network's builder; ``spec`` what the kind declares about its forward passes and ``plan`` the one
    it runs with (:meth:`with_plan` changes it); ``text`` the class prompts' embeddings of an image-text
    or audio-text kind, stored with its features.
    """

    kind: str
    source: str
    prepare: Callable[[np.ndarray], torch.Tensor]
    model: Any
    features: Callable[[Any, torch.Tensor, str], torch.Tensor]
    group: int
    device: torch.device
    record: ExtractorRecord
    spec: ForwardSpec
    plan: ForwardPlan
    text: TextEmbeddings | None = None

    @property
    def shape(self) -> tuple[int, int]:
        """Per-clip feature shape (T, D)."""
        return FEATURE_SHAPES[self.kind]

    @property
    def attrs(self) -> dict[str, Any]:
        """The store attributes of the kind (:meth:`ExtractorRecord.attrs`)."""
        return self.record.attrs()

    @property
    def rows_per_forward(self) -> int:
        """Input rows per forward call: the plan's batch of items, ``group`` rows each."""
        return self.plan.batch * self.group

    def forward(self, rows: torch.Tensor) -> torch.Tensor:
        """Input rows [group * k, ...] on ``device`` -> features [k, D], in the plan's layout (no autocast:
        :func:`extractors.pipeline.run_network` applies the plan's precision)."""
        return self.features(self.model, rows, self.plan.layout)

    def with_plan(self, plan: ForwardPlan) -> FeatureNetwork:
        """This network running ``plan`` (checked against :attr:`spec`); the model is shared and converted
        to the plan's layout in place."""
        self.spec.check(self.kind, plan)
        if isinstance(self.model, torch.nn.Module):
            self.model.to(memory_format=MEMORY_FORMATS[plan.layout])
        return replace(self, plan=plan)


def _visual_spec(kind: str, unit: str, layout: str, cpu_batch: int, batches: tuple[int, ...], size: int):
    """The forward spec of a visual network: ``layout`` or contiguous, float32 on CPU (``layout`` from
    :data:`CHANNELS_LAST_MIN_SIZE` px), float16 ``layout`` on CUDA."""
    cpu_layout = layout if size >= CHANNELS_LAST_MIN_SIZE else CONTIGUOUS
    return ForwardSpec(
        unit=unit,
        layouts=(CONTIGUOUS, layout),
        batches=batches,
        defaults={
            "cpu": ForwardPlan(cpu_batch, cpu_layout),
            "cuda": ForwardPlan(CUDA_BATCHES[kind], layout, FLOAT16),
        },
    )


def _planned(network: FeatureNetwork, options: NetworkOptions) -> FeatureNetwork:
    """``network`` with the plan ``options`` asks for, else its spec's default on its device."""
    return network.with_plan(options.forward.get(network.kind, network.spec.default(network.device)))


def _resnet_features(model: torch.nn.Module, rows: torch.Tensor, layout: str) -> torch.Tensor:
    return visual.resnet_features(model, rows, layout == CHANNELS_LAST)


def _r2plus1d_features(model: torch.nn.Module, rows: torch.Tensor, layout: str) -> torch.Tensor:
    return visual.r2plus1d_features(model, rows, layout == CHANNELS_LAST_3D)


def _resnet(options: NetworkOptions, device: torch.device) -> FeatureNetwork:
    model, record = visual.build_resnet152(
        options.weights["resnet152"], options.seed, options.cache_dir, options.image_size
    )
    spec = _visual_spec("resnet152", "frames", CHANNELS_LAST, 8, (4, 8, 16, 80), options.image_size)
    network = FeatureNetwork(
        kind="resnet152",
        source=VIDEO,
        prepare=functools.partial(visual.resnet_inputs, crop=options.image_size),
        model=model.to(device),
        features=_resnet_features,
        group=1,
        device=device,
        record=record,
        spec=spec,
        plan=spec.default(device),
    )
    return _planned(network, options)


def _r2plus1d(options: NetworkOptions, device: torch.device) -> FeatureNetwork:
    model, record = visual.build_r2plus1d(
        options.weights["r2plus1d"], options.seed, options.cache_dir, options.clip_size
    )
    spec = _visual_spec("r2plus1d", "snippets", CHANNELS_LAST_3D, 2, (1, 2, 5, 10), options.clip_size)
    network = FeatureNetwork(
        kind="r2plus1d",
        source=VIDEO,
        prepare=functools.partial(visual.r2plus1d_inputs, size=options.clip_size),
        model=model.to(device),
        features=_r2plus1d_features,
        group=visual.SNIPPET_FRAMES,
        device=device,
        record=record,
        spec=spec,
        plan=spec.default(device),
    )
    return _planned(network, options)


def _one_second_chunks(waveform: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(waveform, dtype=np.float32)).view(vggish.SEGMENTS, -1)


def _log_mel_tensor(waveform: np.ndarray) -> torch.Tensor:
    return vggish.log_mel_examples(torch.from_numpy(np.ascontiguousarray(waveform, dtype=np.float32)))


def _hub_features(model: Any, chunks: torch.Tensor, layout: str) -> torch.Tensor:
    return torch.from_numpy(hub_embeddings(model, chunks.cpu().numpy()))


def _module_features(model: torch.nn.Module, rows: torch.Tensor, layout: str) -> torch.Tensor:
    return model(rows)


VGGISH_SPEC = ForwardSpec(
    unit="examples",
    layouts=(CONTIGUOUS,),
    batches=(10, 20, 40),
    defaults={"cpu": ForwardPlan(40), "cuda": ForwardPlan(CUDA_BATCHES["vggish"], CONTIGUOUS, FLOAT16)},
)
"""VGGish (PyTorch): forwards of 40 one-second examples on CPU (4 clips, as extraction always ran it)."""
HUB_SPEC = ForwardSpec(
    unit="examples",
    layouts=(CONTIGUOUS,),
    batches=(10,),
    defaults={},
    precisions=(FLOAT32,),
    fallback=ForwardPlan(10),
)
"""The TF-Hub VGGish runs in TensorFlow on the CPU, one 1-s chunk per call inside :func:`hub_embeddings`."""


def _vggish(options: NetworkOptions, device: torch.device) -> FeatureNetwork:
    if options.vggish_backend == TFHUB_BACKEND:
        network = FeatureNetwork(
            kind="vggish",
            source=AUDIO,
            prepare=_one_second_chunks,
            model=load_hub_model(options.vggish_handle),
            features=_hub_features,
            group=1,
            device=torch.device("cpu"),
            record=hub_record(options.vggish_handle),
            spec=HUB_SPEC,
            plan=HUB_SPEC.fallback,
        )
        return _planned(network, options)
    pretrained = functools.partial(pretrained_vggish, options.vggish_handle)
    model, record = vggish.build_vggish(options.weights["vggish"], options.seed, pretrained)
    if model.config.embedding != FEATURE_SHAPES["vggish"][1]:
        raise InputError(
            f"{options.weights['vggish']}: VGGish embedding size {model.config.embedding}, the store needs "
            f"{FEATURE_SHAPES['vggish'][1]}"
        )
    network = FeatureNetwork(
        kind="vggish",
        source=AUDIO,
        prepare=_log_mel_tensor,
        model=model.to(device),
        features=_module_features,
        group=1,
        device=device,
        record=record,
        spec=VGGISH_SPEC,
        plan=VGGISH_SPEC.default(device),
    )
    return _planned(network, options)


TEACHER_PACKAGES = ("torch", "torchvision", "torchaudio", "transformers", "av", "decord")


def _teacher_spec(kind: str, unit: str, cpu_batch: int, batches: tuple[int, ...]) -> ForwardSpec:
    """The forward spec of a CLIP or CLAP tower (transformers): contiguous, float32 on CPU, float16 on CUDA."""
    return ForwardSpec(
        unit=unit,
        layouts=(CONTIGUOUS,),
        batches=batches,
        defaults={
            "cpu": ForwardPlan(cpu_batch),
            "cuda": ForwardPlan(CUDA_BATCHES[kind], CONTIGUOUS, FLOAT16),
        },
    )


TEACHER_SPECS = {
    "clip": _teacher_spec("clip", "frames", 10, (5, 10, 20)),
    "clap": _teacher_spec("clap", "clips", 1, (1, 2, 4)),
    "clap_segments": _teacher_spec("clap_segments", "seconds", 10, (5, 10, 20)),
}
"""CPU batches not measured per size: a clip's own rows (10 frames, 1 clip, 10 seconds) per forward."""


def _teacher_features(function: Callable, model: Any, rows: torch.Tensor, layout: str) -> torch.Tensor:
    return function(model, rows)


def _clip(options: NetworkOptions, device: torch.device) -> FeatureNetwork:
    loaded = clip.load_clip(options.clip_model, options.weights["clip"], options.seed)
    size = clip.image_size(loaded)
    network = FeatureNetwork(
        kind="clip",
        source=VIDEO,
        prepare=functools.partial(clip.clip_inputs, size=size),
        model=loaded.model.to(device),
        features=functools.partial(_teacher_features, clip.clip_features),
        group=1,
        device=device,
        record=ExtractorRecord(
            "clip", loaded.weights, clip.clip_preprocessing(loaded, size), TEACHER_PACKAGES
        ),
        spec=TEACHER_SPECS["clip"],
        plan=TEACHER_SPECS["clip"].default(device),
        text=clip.prompt_embeddings(loaded),
    )
    return _planned(network, options)


def _clap_network(kind: str, options: NetworkOptions, device: torch.device) -> FeatureNetwork:
    loaded = clap.load_clap(options.clap_model, options.weights[kind], options.seed)
    segments = kind == "clap_segments"
    network = FeatureNetwork(
        kind=kind,
        source=AUDIO_48K,
        prepare=clap.segment_inputs if segments else clap.map_inputs,
        model=loaded.model.to(device),
        features=functools.partial(
            _teacher_features, clap.segment_features if segments else clap.map_features
        ),
        group=1,
        device=device,
        record=ExtractorRecord(kind, loaded.weights, clap.clap_preprocessing(loaded, kind), TEACHER_PACKAGES),
        spec=TEACHER_SPECS[kind],
        plan=TEACHER_SPECS[kind].default(device),
        text=clap.prompt_embeddings(loaded) if segments else None,
    )
    return _planned(network, options)


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
