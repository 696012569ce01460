"""Segment-level pseudo-labels: a teacher's per-segment, per-modality label estimates, in one HDF5 file.

Layout::

    /audio     float32 [N, T, C]   per clip, segment and class: the teacher's support for an audible event
    /visual    float32 [N, T, C]   the same for a visible event
    /video_id  utf-8 strings [N]   LLP filename of each row
    /.attrs    format, classes (JSON list of the C class names, in column order), teacher (JSON: the
               identity of the models, prompts and thresholds that made the labels)

Values lie in [0, 1]: 0/1 for hard labels (VALOR's), fractions for soft ones. A teacher only ever supports
classes among a clip's video-level labels. The file is written under a temporary name and renamed into place
when complete, as every other store.
"""

from __future__ import annotations

import contextlib
import json
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from avvp.data.labels import CLASSES, NUM_SEGMENTS
from avvp.errors import InputError, first_items
from avvp.io import atomic_path

FORMAT = "avvp-pseudo-labels/1"
MODALITIES = ("audio", "visual")
_STRING = h5py.string_dtype("utf-8")


class PseudoLabelError(InputError):
    """A pseudo-label file is malformed or lacks requested clips; the message names the file."""


def _check_labels(
    path: Path, video_id: str, modality: str, labels: np.ndarray, shape: tuple[int, int]
) -> None:
    if labels.shape != shape:
        raise PseudoLabelError(
            f"{path}: {modality} pseudo-labels of {video_id} have shape {labels.shape}, expected {shape}"
        )
    if not np.isfinite(labels).all() or labels.min(initial=0) < 0 or labels.max(initial=0) > 1:
        raise PseudoLabelError(f"{path}: {modality} pseudo-labels of {video_id} are not all within [0, 1]")


def write_pseudo_labels(
    path: str | Path,
    video_ids: Sequence[str],
    audio: np.ndarray,
    visual: np.ndarray,
    classes: Sequence[str],
    teacher: Mapping[str, Any],
) -> None:
    """Write pseudo-labels ``audio`` and ``visual`` ``(N, T, C)`` of ``video_ids`` atomically to ``path``.

    ``classes`` names the C columns; ``teacher`` (JSON values) says which models, prompts and thresholds
    made them. Raises :class:`PseudoLabelError` on a bad shape, a value outside [0, 1] or a repeated clip.
    """
    path = Path(path)
    audio, visual = np.asarray(audio, dtype=np.float32), np.asarray(visual, dtype=np.float32)
    shape = (len(video_ids), audio.shape[1] if audio.ndim == 3 else -1, len(classes))
    for modality, labels in zip(MODALITIES, (audio, visual), strict=True):
        if labels.shape != shape:
            raise PseudoLabelError(
                f"{path}: {modality} pseudo-labels have shape {labels.shape}, expected {shape}"
            )
        for row, video_id in enumerate(video_ids):
            _check_labels(path, video_id, modality, labels[row], shape[1:])
    repeated = sorted(v for v, count in Counter(video_ids).items() if count > 1)
    if repeated:
        raise PseudoLabelError(f"{path}: clip(s) given twice: {first_items(repeated)}")
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as handle:
        handle.attrs["format"] = FORMAT
        handle.attrs["classes"] = json.dumps(list(classes))
        handle.attrs["teacher"] = json.dumps(dict(teacher))
        for modality, labels in zip(MODALITIES, (audio, visual), strict=True):
            handle.create_dataset(modality, data=labels, chunks=(1, *shape[1:]) if len(video_ids) else None)
        handle.create_dataset("video_id", data=np.array(list(video_ids), dtype=object), dtype=_STRING)


class PseudoLabels:
    """Read a pseudo-label file; checks its format and layout on opening.

    Usage::

        with PseudoLabels("pseudo_labels.h5") as labels:
            audio, visual = labels.read(["abcdefghijk_0_10"])   # each (1, T, C)
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        try:
            self._handle = h5py.File(self.path, "r")
        except FileNotFoundError:
            raise PseudoLabelError(f"{self.path}: no such pseudo-label file") from None
        except OSError as err:
            raise PseudoLabelError(f"{self.path}: not a readable HDF5 file ({err})") from None
        with contextlib.ExitStack() as undo:
            undo.callback(self._handle.close)
            self._check_layout()
            undo.pop_all()

    def _check_layout(self) -> None:
        attrs = self._handle.attrs
        if attrs.get("format") != FORMAT:
            raise PseudoLabelError(
                f"{self.path}: not a pseudo-label file (format {attrs.get('format')!r}, expected {FORMAT!r})"
            )
        try:
            self.classes: list[str] = json.loads(attrs["classes"])
            self.teacher: dict[str, Any] = json.loads(attrs["teacher"])
        except (KeyError, json.JSONDecodeError):
            raise PseudoLabelError(
                f"{self.path}: attributes 'classes' and 'teacher' are missing or not JSON"
            ) from None
        datasets = [self._handle.get(name) for name in (*MODALITIES, "video_id")]
        if not all(isinstance(d, h5py.Dataset) for d in datasets):
            raise PseudoLabelError(f"{self.path}: lacks one of the datasets audio, visual, video_id")
        audio, visual, ids = datasets
        if (
            audio.ndim != 3
            or audio.shape != visual.shape
            or audio.shape[0] != ids.shape[0]
            or audio.shape[2] != len(self.classes)
        ):
            raise PseudoLabelError(
                f"{self.path}: audio {audio.shape}, visual {visual.shape} and video_id {ids.shape} "
                f"do not agree with each other and with {len(self.classes)} classes"
            )
        self.video_ids: list[str] = [v.decode() if isinstance(v, bytes) else v for v in ids[()]]
        self._rows = {video_id: row for row, video_id in enumerate(self.video_ids)}

    @property
    def num_segments(self) -> int:
        """T, the segments per clip."""
        return int(self._handle["audio"].shape[1])

    def missing(self, video_ids: Sequence[str]) -> list[str]:
        """The clips of ``video_ids`` that have no pseudo-labels here."""
        return [v for v in video_ids if v not in self._rows]

    def read(self, video_ids: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Audio and visual pseudo-labels of ``video_ids``, each float32 ``(N, T, C)``, in that order.

        Raises :class:`PseudoLabelError` naming the missing clips, or a clip whose values leave [0, 1].
        """
        missing = self.missing(video_ids)
        if missing:
            raise PseudoLabelError(
                f"{self.path}: {len(missing)} clip(s) have no pseudo-labels: {first_items(missing)}"
            )
        rows, inverse = np.unique([self._rows[v] for v in video_ids], return_inverse=True)
        result = []
        for modality in MODALITIES:
            shape = (0, self.num_segments, len(self.classes))
            labels = self._handle[modality][rows][inverse] if len(rows) else np.zeros(shape, np.float32)
            labels = labels.astype(np.float32, copy=False)
            for video_id, row in zip(video_ids, labels, strict=True):
                _check_labels(self.path, video_id, modality, row, labels.shape[1:])
            result.append(labels)
        return result[0], result[1]

    def close(self) -> None:
        """Close the file."""
        self._handle.close()

    def __enter__(self) -> PseudoLabels:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def read_split_pseudo_labels(
    path: str | Path, video_ids: Sequence[str], labels: np.ndarray
) -> dict[str, np.ndarray]:
    """The pseudo-labels of a split's clips, modality -> float32 ``(N, 10, 25)`` in ``video_ids`` order.

    ``labels`` (N, 25) are the split's weak labels. Raises :class:`PseudoLabelError` naming ``path`` when a
    clip has no pseudo-labels, when the file's classes are not the 25 LLP classes in their order, its
    segments not 10, or when it supports a class outside a clip's weak labels (made from another label
    file).
    """
    with PseudoLabels(path) as store:
        if store.classes != list(CLASSES):
            raise PseudoLabelError(
                f"{store.path}: its classes are not the {len(CLASSES)} LLP classes in their order "
                f"(first ones: {store.classes[:3]})"
            )
        if store.num_segments != NUM_SEGMENTS:
            raise PseudoLabelError(
                f"{store.path}: {store.num_segments} segments per clip, expected {NUM_SEGMENTS}"
            )
        missing = store.missing(video_ids)
        if missing:
            raise PseudoLabelError(
                f"{store.path}: {len(missing)} clip(s) of the training split have no pseudo-labels: "
                f"{first_items(missing)} (make them for this split with 'avvp pseudo-labels')"
            )
        audio, visual = store.read(video_ids)
    outside = np.flatnonzero(((np.maximum(audio, visual) > 0) & ~(labels[:, None, :] > 0)).any(axis=(1, 2)))
    if len(outside):
        names = [video_ids[i] for i in outside]
        raise PseudoLabelError(
            f"{Path(path)}: {len(names)} clip(s) have pseudo-labels for classes outside their weak labels: "
            f"{first_items(names)} (the file was made from another label file)"
        )
    return {"audio": audio, "visual": visual}
