"""Scoring prediction files in the ``AVVP_eval_*.csv`` format against LLP ground truth."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from avvp.data.labels import events_to_segments, read_dense_labels, read_event_rows, read_weak_labels
from avvp.evaluation.metrics import llp_scores
from avvp.io import write_json

log = logging.getLogger(__name__)


def read_predictions(path: str | Path, video_ids: list[str], strict: bool = False) -> np.ndarray:
    """Rasterise a prediction table for ``video_ids``: bool ``(N, 10, 25)``.

    Rows are validated like ground truth: the two kinds of row the published evaluation ignores (empty
    spans, unparseable filenames) are skipped with a warning unless ``strict``, every other problem raises
    an :class:`~avvp.data.labels.AnnotationError` naming the line. Rows of clips outside the split are
    ignored with one warning giving their count.
    """
    events = read_event_rows(path, lenient=not strict)
    in_split = set(video_ids)
    outside = {e.video_id for e in events if e.video_id not in in_split}
    if outside:
        log.warning("%s: ignored rows of %d clip(s) that are not in the split", path, len(outside))
    return events_to_segments(events, video_ids)


def evaluate_files(
    split_csv: str | Path,
    gt_audio: str | Path,
    gt_visual: str | Path,
    pred_audio: str | Path,
    pred_visual: str | Path,
    strict: bool = False,
) -> dict[str, Any]:
    """Score two prediction tables on the clips of ``split_csv``; returns :func:`llp_scores`' dictionary
    plus ``"videos"`` (the split's size) and ``"files"`` (the inputs)."""
    video_ids = read_weak_labels(split_csv).video_ids
    scores = llp_scores(
        read_predictions(pred_audio, video_ids, strict),
        read_predictions(pred_visual, video_ids, strict),
        read_dense_labels(gt_audio, video_ids),
        read_dense_labels(gt_visual, video_ids),
    )
    inputs = {"split": split_csv, "gt_audio": gt_audio, "gt_visual": gt_visual}
    inputs |= {"pred_audio": pred_audio, "pred_visual": pred_visual}
    return {**scores, "videos": len(video_ids), "files": {k: str(v) for k, v in inputs.items()}}


def write_metrics(path: str | Path, metrics: dict[str, Any]) -> None:
    """Write a metrics dictionary as indented JSON, atomically."""
    write_json(path, metrics)
