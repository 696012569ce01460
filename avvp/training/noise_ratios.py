"""Per-class noise ratios of the weak labels, per modality: the ``.npz`` file JoMoLD's noise estimation
writes and its denoised training reads (``audio`` and ``visual``, 25 floats each, in the published class
order; the original code's file format, so its files can be used here and ours there)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from avvp.data.labels import CLASSES
from avvp.errors import InputError
from avvp.io import atomic_path

MODALITIES = ("audio", "visual")


@dataclass
class NoiseRatios:
    """Share of each class's training labels estimated to be noisy in the audio and in the visual modality,
    float64 arrays (25,) with values in [0, 1]."""

    audio: np.ndarray
    visual: np.ndarray


def read_noise_ratios(path: str | Path) -> NoiseRatios:
    """Read and check a noise-ratio file (``audio`` and ``visual`` arrays of 25 values in [0, 1])."""
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {name: np.asarray(data[name], dtype=np.float64) for name in MODALITIES if name in data}
    except (OSError, ValueError) as err:
        raise InputError(f"{path}: not a readable .npz noise-ratio file ({err})") from None
    for name in MODALITIES:
        if name not in arrays:
            raise InputError(f"{path}: no '{name}' array (a noise-ratio file holds 'audio' and 'visual')")
        values = arrays[name]
        if values.shape != (len(CLASSES),):
            raise InputError(f"{path}: '{name}' has shape {values.shape}, expected ({len(CLASSES)},)")
        if not np.all(np.isfinite(values)) or values.min() < 0 or values.max() > 1:
            raise InputError(f"{path}: '{name}' holds values outside [0, 1] or non-finite ones")
    return NoiseRatios(arrays["audio"], arrays["visual"])


def write_noise_ratios(path: str | Path, ratios: NoiseRatios) -> None:
    """Write ``ratios`` as ``.npz`` (``audio``, ``visual``, and ``classes`` for readers), atomically."""
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        np.savez(handle, audio=ratios.audio, visual=ratios.visual, classes=np.array(CLASSES))
