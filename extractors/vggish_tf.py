"""Google's VGGish through TensorFlow Hub (``google/vggish/1``), and its conversion to the PyTorch model.

The Hub model maps a 16 kHz mono waveform to one embedding per 0.96 s example, taken *before* the final
ReLU; :func:`hub_embeddings` feeds it one 1-s chunk at a time (so each chunk's first 96 frames form its
example, as in :mod:`extractors.vggish`) and applies the ReLU. Needs the ``tfhub`` extra
(``pip install 'avvp[tfhub]'``); TensorFlow is imported only when these functions run.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from avvp.errors import InputError
from avvp.io import atomic_path
from extractors.identity import TFHUB, ExtractorRecord, WeightsIdentity
from extractors.vggish import (
    LAYER_NAMES,
    SAMPLE_RATE,
    TFHUB_BACKEND,
    VGGish,
    VGGishConfig,
    vggish_preprocessing,
)

DEFAULT_HANDLE = "https://tfhub.dev/google/vggish/1"
_VARIABLE = re.compile(r"(?:^|/)(conv\d(?:_\d)?|fc\d(?:_\d)?)/(weights|biases)(?::\d+)?$")


def load_hub_model(handle: str) -> Any:
    """``tensorflow_hub.load(handle)`` (URL, cached in ``$TFHUB_CACHE_DIR``, or a local SavedModel directory).

    Raises :class:`InputError` when TensorFlow is not installed or the model cannot be loaded (offline).
    """
    try:
        import tensorflow_hub as hub
    except ImportError as err:
        raise InputError(
            f"{handle}: the TF-Hub VGGish needs TensorFlow ({err}); install it with pip install 'avvp[tfhub]'"
        ) from None
    try:
        return hub.load(handle)
    except Exception as err:  # TF-Hub raises many error types for a failed download or a bad directory
        raise InputError(
            f"{handle}: cannot load the VGGish model ({type(err).__name__}: {' '.join(str(err).split())[:300]}). "
            "Offline, download google/vggish/1 on a machine with internet and pass the unpacked SavedModel "
            "directory as --vggish-handle DIR, or run 'avvp convert-vggish --handle DIR --output vggish.pt' "
            "there and pass --weights vggish=vggish.pt"
        ) from None


def hub_variables(model: Any) -> dict[str, np.ndarray]:
    """The VGGish weights of a loaded Hub model by layer name, e.g. ``{"conv3_1/weights": array}``."""
    import tensorflow as tf

    found: dict[str, np.ndarray] = {}
    for obj in tf.train.TrackableView(model).descendants():
        if isinstance(obj, tf.Variable):
            match = _VARIABLE.search(obj.name)
            if match:
                found[f"{match[1]}/{match[2]}"] = obj.numpy()
    return found


def state_dict_from_hub(model: Any) -> tuple[dict[str, torch.Tensor], VGGishConfig]:
    """PyTorch :class:`VGGish` state dict and layer widths from a loaded Hub model.

    Convolution kernels go from TF's [3, 3, in, out] to [out, in, 3, 3], dense kernels from [in, out] to
    [out, in]. Raises :class:`InputError` when a VGGish layer is missing.
    """
    variables = hub_variables(model)
    missing = [f"{n}/{p}" for n in LAYER_NAMES for p in ("weights", "biases") if f"{n}/{p}" not in variables]
    if missing:
        raise InputError(f"TF-Hub model has no VGGish variable(s) {missing}; found {sorted(variables)}")
    config = VGGishConfig(
        channels=tuple(variables[f"{n}/biases"].shape[0] for n in ("conv1", "conv2", "conv3_1", "conv4_1")),
        hidden=variables["fc1_1/biases"].shape[0],
        embedding=variables["fc2/biases"].shape[0],
    )
    names = [
        name for name, module in VGGish(config).named_modules() if isinstance(module, nn.Conv2d | nn.Linear)
    ]
    state: dict[str, torch.Tensor] = {}
    for torch_name, tf_name in zip(names, LAYER_NAMES, strict=True):
        kernel = variables[f"{tf_name}/weights"]
        kernel = kernel.transpose(3, 2, 0, 1) if kernel.ndim == 4 else kernel.T
        state[f"{torch_name}.weight"] = torch.from_numpy(np.ascontiguousarray(kernel))
        state[f"{torch_name}.bias"] = torch.from_numpy(variables[f"{tf_name}/biases"].copy())
    return state, config


def torch_vggish_from_hub(model: Any) -> VGGish:
    """A PyTorch :class:`VGGish` carrying the weights of a loaded Hub model."""
    state, config = state_dict_from_hub(model)
    vggish = VGGish(config)
    vggish.load_state_dict(state, strict=True)
    return vggish.eval()


def pretrained_vggish(handle: str) -> tuple[VGGish, WeightsIdentity]:
    """Google's VGGish from the TF-Hub model ``handle`` as the PyTorch model, and its identity."""
    return torch_vggish_from_hub(load_hub_model(handle)), WeightsIdentity(TFHUB, handle)


def hub_record(handle: str) -> ExtractorRecord:
    """The record of VGGish run by TensorFlow Hub from ``handle`` (backend ``tfhub``)."""
    packages = ("torch", "torchvision", "av", "decord", "tensorflow", "tensorflow-hub")
    return ExtractorRecord(
        "vggish", WeightsIdentity(TFHUB, handle), vggish_preprocessing(TFHUB_BACKEND), packages
    )


def convert_hub_to_torch(handle: str, output: str | Path) -> VGGishConfig:
    """Load the Hub model ``handle`` and save its weights as a PyTorch state dict at ``output`` (atomic).

    The file loads with ``--weights vggish=<output>``; returns the layer widths found.
    """
    state, config = state_dict_from_hub(load_hub_model(handle))
    with atomic_path(output) as tmp:
        torch.save(state, tmp)
    return config


def hub_embeddings(model: Any, chunks: np.ndarray) -> np.ndarray:
    """1-s chunks of 16 kHz mono audio float32 [N, 16000] -> ReLU'd Hub embeddings float32 [N, D]."""
    import tensorflow as tf

    if chunks.shape[-1] != SAMPLE_RATE:
        raise ValueError(f"expected 1-s chunks of {SAMPLE_RATE} samples, got shape {chunks.shape}")
    outputs = [model(tf.constant(chunk, dtype=tf.float32)).numpy()[:1] for chunk in chunks]
    return np.maximum(np.concatenate(outputs, axis=0), 0.0)
