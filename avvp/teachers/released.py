"""Import VALOR's released segment-level pseudo-labels (``CLIP/segment_pseudo_labels`` for visual,
``CLAP/segment_pseudo_labels`` for audio: one ``<11-char YouTube id>.npy`` per clip, int64 0/1 [10, 25]
in LLP's class order, as ``utils/clip_preprocess.py`` and ``utils/clap_preprocess.py`` save them)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from avvp.data.import_released import ImportReport, released_arrays
from avvp.data.labels import CLASSES, NUM_SEGMENTS
from avvp.teachers.pseudo_labels import TeacherLabels

RELEASED_TEACHER = "released VALOR pseudo-labels (Franklin905/VALOR, NTUBarista/valor_features)"
SHAPE = (NUM_SEGMENTS, len(CLASSES))


def check_released_labels(array: np.ndarray) -> str | None:
    """Why ``array`` is not one clip's released pseudo-labels (shape [10, 25], values 0 or 1), or None."""
    if array.shape != SHAPE:
        return f"shape {tuple(array.shape)}, expected {SHAPE}"
    if not (np.issubdtype(array.dtype, np.number) or array.dtype == bool):
        return f"dtype {array.dtype}, expected numbers"
    if not np.isin(array, (0, 1)).all():
        return "values other than 0 and 1"
    return None


def released_labels(
    modality: str, folder: str | Path, clips: Sequence[str], report: ImportReport, progress: bool = True
) -> TeacherLabels:
    """The released pseudo-labels of ``modality`` for the ``clips`` (LLP filenames) found in ``folder``;
    missing, extra and invalid files go to ``report``."""
    folder = Path(folder)
    pairs = list(released_arrays(modality, folder, clips, check_released_labels, report, progress))
    labels = (
        np.stack([a for _, a in pairs]).astype(np.float32) if pairs else np.zeros((0, *SHAPE), np.float32)
    )
    identity = {"source": RELEASED_TEACHER, "folder": str(folder)}
    return TeacherLabels([clip for clip, _ in pairs], labels, identity)
