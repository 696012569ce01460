"""Refined modality labels: the file MA's label refinement writes (``avvp refine-labels``) and training reads
(``refined_labels:`` in a training config; :class:`~avvp.training.label_refinement.RefinedLabelsProcedure`).

The ``.npz`` file holds, for the clips of one split: ``video_id`` (N,) strings, ``classes`` (25,),
``labels`` (N, 25) bool (the weak labels refined), ``audio_removed`` and ``visual_removed`` (N, 25) bool (the
labels the refinement removed from that modality) and ``partner`` (N,) strings (the clip whose tracks were
exchanged with each clip's, empty where none was found).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from avvp.data.labels import CLASSES
from avvp.errors import InputError
from avvp.io import atomic_path
from avvp.training.noise_ratios import MODALITIES

ARRAYS = ("video_id", "labels", "audio_removed", "visual_removed", "partner")


@dataclass
class RefinedLabels:
    """Per clip of a split: its weak ``labels`` and the labels removed per modality (``removed[m]``), bool
    arrays (N, 25), and the exchange ``partners`` (N,) (``""``: none)."""

    video_ids: list[str]
    labels: np.ndarray
    removed: dict[str, np.ndarray]
    partners: list[str]


def write_refined_labels(path: str | Path, refined: RefinedLabels) -> None:
    """Write ``refined`` as ``.npz`` (the arrays of the module docstring), atomically."""
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        np.savez(
            handle,
            video_id=np.array(refined.video_ids),
            classes=np.array(CLASSES),
            labels=refined.labels.astype(bool),
            audio_removed=refined.removed["audio"].astype(bool),
            visual_removed=refined.removed["visual"].astype(bool),
            partner=np.array(refined.partners),
        )


def read_refined_labels(path: str | Path) -> RefinedLabels:
    """Read and check a refined-label file; :class:`InputError` naming the file and the problem."""
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {name: data[name] for name in ARRAYS if name in data}
    except (OSError, ValueError) as err:
        raise InputError(f"{path}: not a readable .npz refined-label file ({err})") from None
    missing = [name for name in ARRAYS if name not in arrays]
    if missing:
        raise InputError(f"{path}: no {', '.join(missing)} array(s) (written by 'avvp refine-labels'?)")
    clips = len(arrays["video_id"])
    for name in ("labels", "audio_removed", "visual_removed"):
        if arrays[name].shape != (clips, len(CLASSES)) or arrays[name].dtype != bool:
            raise InputError(f"{path}: '{name}' is not a bool array ({clips}, {len(CLASSES)})")
    if arrays["partner"].shape != (clips,):
        raise InputError(f"{path}: 'partner' does not have one entry per clip")
    labels = arrays["labels"]
    removed = {m: arrays[f"{m}_removed"] for m in MODALITIES}
    if any((mask & ~labels).any() for mask in removed.values()):
        raise InputError(f"{path}: it removes labels the clips do not have")
    return RefinedLabels(
        [str(v) for v in arrays["video_id"]], labels, removed, [str(p) for p in arrays["partner"]]
    )
