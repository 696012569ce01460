"""Refined modality labels: the file MA's label refinement writes (``avvp refine-labels``) and the training
procedure that removes its labels (``refined_labels:`` in a training config).

The ``.npz`` file holds, for the clips of one split: ``video_id`` (N,) strings, ``classes`` (25,),
``labels`` (N, 25) bool (the weak labels refined), ``audio_removed`` and ``visual_removed`` (N, 25) bool (the
labels the refinement removed from that modality) and ``partner`` (N,) strings (the clip whose tracks were
exchanged with each clip's, empty where none was found).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from avvp.data.dataset import Batch
from avvp.data.labels import CLASSES, WeakLabels
from avvp.errors import InputError, first_items
from avvp.io import atomic_path
from avvp.training.noise_ratios import MODALITIES

log = logging.getLogger(__name__)
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


class RefinedLabelsProcedure:
    """Removes each training clip's refined labels from its modality targets, every step (a label procedure
    of :class:`~avvp.training.steps.OneNetworkStep`).

    Built from the file and the training split it is for: every clip of the split must be in the file with
    the same weak labels; ``batch.index`` (rows of the split) picks the clip's masks.
    """

    def __init__(self, path: Path, split: WeakLabels, device: torch.device) -> None:
        refined = read_refined_labels(path)
        rows = {video_id: row for row, video_id in enumerate(refined.video_ids)}
        absent = [v for v in split.video_ids if v not in rows]
        if absent:
            raise InputError(
                f"{path}: {len(absent)} clip(s) of the training split have no refined labels: "
                f"{first_items(absent)} (refine the labels of this split with 'avvp refine-labels')"
            )
        order = np.array([rows[v] for v in split.video_ids], dtype=np.int64)
        differing = np.flatnonzero((refined.labels[order] != (split.labels > 0)).any(axis=1))
        if len(differing):
            names = [split.video_ids[i] for i in differing]
            raise InputError(
                f"{path}: the weak labels of {len(names)} clip(s) differ from the training split's: "
                f"{first_items(names)} (the file was refined from another label file)"
            )
        self.removed = {m: torch.from_numpy(refined.removed[m][order]).to(device) for m in MODALITIES}
        log.info(
            "%s: removing %s refined labels",
            path,
            ", ".join(f"{int(mask.sum())} {m}" for m, mask in self.removed.items()),
        )

    def __call__(
        self, model: nn.Module, batch: Batch, step: int, steps_per_epoch: int, mixed_precision: bool
    ) -> tuple[Batch, dict[str, torch.Tensor]]:
        """The batch with its clips' refined labels removed (no monitors: the removal is fixed)."""
        return batch.without({m: mask[batch.index.to(mask.device)] for m, mask in self.removed.items()}), {}
