"""The LLP evaluation protocol (Tian et al., ECCV 2020), vectorised over videos and classes.

All inputs are boolean segment matrices ``(N, 10, 25)`` (video x 1-second segment x class). The
audio-visual matrices are the AND of audio and visual, for predictions and ground truth alike.

Segment level: per video and class, F1 = 2TP / (2TP + FP + FN) over the 10 segments; a video's score is
the mean over the classes present in its prediction or its ground truth (1.0 when there are none); the
split's score is the mean over videos. Event level: the same averaging, with TP/FP/FN counted on events
(maximal runs of positive segments): a predicted event is a TP if its IoU with some ground-truth event of
the class is >= 0.5, else an FP; a ground-truth event matched by no prediction is an FN. Type@AV is the mean
of the audio, visual and audio-visual scores; Event@AV pools the audio and visual TP/FP/FN of each class
before computing F1.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from avvp.data.labels import CLASSES, NUM_SEGMENTS
from avvp.evaluation import METRIC_NAMES

MODALITIES = ("audio", "visual", "audio_visual")
MAX_EVENTS = (NUM_SEGMENTS + 1) // 2
"""At most five separate runs fit in ten segments."""


def _check(name: str, matrix: np.ndarray, shape: tuple[int, ...] | None) -> np.ndarray:
    matrix = np.asarray(matrix)
    if matrix.ndim != 3 or matrix.shape[1:] != (NUM_SEGMENTS, len(CLASSES)):
        raise ValueError(f"{name}: expected shape (N, {NUM_SEGMENTS}, {len(CLASSES)}), got {matrix.shape}")
    if shape is not None and matrix.shape != shape:
        raise ValueError(f"{name}: shape {matrix.shape} differs from the other inputs' {shape}")
    return matrix.astype(bool)


def segment_counts(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """Segment-level TP, FP, FN per video and class: ``(3, N, 25)`` int from bool ``(N, 10, 25)`` inputs."""
    tp = (pred & gt).sum(axis=1)
    fp = (pred & ~gt).sum(axis=1)
    fn = (~pred & gt).sum(axis=1)
    return np.stack([tp, fp, fn])


def extract_events(sequences: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Maximal runs of ``True`` in each row of ``sequences`` (M, 10).

    Returns ``(starts, ends)``, each ``(M, 5)`` int with end exclusive; unused slots hold ``-1``.
    """
    m = sequences.shape[0]
    padded = np.zeros((m, NUM_SEGMENTS + 2), dtype=np.int8)
    padded[:, 1:-1] = sequences
    change = np.diff(padded, axis=1)  # (M, 11): +1 where a run starts, -1 one past where it ends
    starts = np.full((m, MAX_EVENTS), -1, dtype=np.int64)
    ends = np.full((m, MAX_EVENTS), -1, dtype=np.int64)
    for value, out in ((1, starts), (-1, ends)):
        rows, positions = np.nonzero(change == value)
        slot = np.cumsum(change == value, axis=1)[rows, positions] - 1
        out[rows, slot] = positions
    return starts, ends


def event_counts(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """Event-level TP, FP, FN per video and class: ``(3, N, 25)`` int from bool ``(N, 10, 25)`` inputs."""
    n, _, c = pred.shape
    ps, pe = extract_events(pred.transpose(0, 2, 1).reshape(n * c, NUM_SEGMENTS))
    gs, ge = extract_events(gt.transpose(0, 2, 1).reshape(n * c, NUM_SEGMENTS))
    p_valid, g_valid = ps >= 0, gs >= 0
    inter = np.minimum(pe[:, :, None], ge[:, None, :]) - np.maximum(ps[:, :, None], gs[:, None, :])
    inter = np.clip(inter, 0, None)
    union = (pe - ps)[:, :, None] + (ge - gs)[:, None, :] - inter
    match = (2 * inter >= union) & p_valid[:, :, None] & g_valid[:, None, :]  # IoU >= 0.5
    tp = (match.any(axis=2) & p_valid).sum(axis=1)
    fp = p_valid.sum(axis=1) - tp
    fn = (~match.any(axis=1) & g_valid).sum(axis=1)
    return np.stack([tp, fp, fn]).reshape(3, n, c)


def video_f1(counts: np.ndarray) -> np.ndarray:
    """Per-video F1 ``(N,)`` from TP, FP, FN ``(3, N, 25)``: mean over classes with any prediction or
    ground truth, and 1.0 for a video with none (all true negatives)."""
    tp, fp, fn = counts.astype(np.float64)
    present = (tp + fp + fn) > 0
    f1 = np.divide(2 * tp, 2 * tp + fp + fn, out=np.zeros_like(tp), where=present)
    n_present = present.sum(axis=1)
    return np.divide(f1.sum(axis=1), n_present, out=np.ones(len(tp)), where=n_present > 0)


def pooled_class_f1(counts: np.ndarray) -> list[float | None]:
    """Per-class F1 (%) with TP, FP, FN ``(3, N, 25)`` summed over the videos; None for absent classes."""
    tp, fp, fn = counts.sum(axis=1).astype(np.float64)
    denominator = 2 * tp + fp + fn
    return [100 * float(2 * t / d) if d > 0 else None for t, d in zip(tp, denominator, strict=True)]


def llp_scores(
    pred_audio: np.ndarray, pred_visual: np.ndarray, gt_audio: np.ndarray, gt_visual: np.ndarray
) -> dict[str, Any]:
    """Score predictions with the LLP protocol; all inputs bool ``(N, 10, 25)`` in the same video order.

    Returns ``{"segment": {...}, "event": {...}, "per_class": {...}}``: the first two map ``audio``,
    ``visual``, ``audio_visual``, ``type`` (Type@AV) and ``event`` (Event@AV) to the split's F1 in percent,
    unrounded. ``per_class[level][modality][class]`` is the F1 (%) of TP/FP/FN pooled over the split's videos
    (None where a class is in neither prediction nor ground truth): a diagnostic, not part of the protocol.
    """
    pred_audio = _check("pred_audio", pred_audio, None)
    shape = pred_audio.shape
    pred_visual = _check("pred_visual", pred_visual, shape)
    gt_audio = _check("gt_audio", gt_audio, shape)
    gt_visual = _check("gt_visual", gt_visual, shape)
    pairs = {
        "audio": (pred_audio, gt_audio),
        "visual": (pred_visual, gt_visual),
        "audio_visual": (pred_audio & pred_visual, gt_audio & gt_visual),
    }
    result: dict[str, Any] = {"per_class": {}}
    for level, count in (("segment", segment_counts), ("event", event_counts)):
        counts = {name: count(pred, gt) for name, (pred, gt) in pairs.items()}
        scores = {
            name: 100 * float(video_f1(c).mean()) if shape[0] else float("nan") for name, c in counts.items()
        }
        scores["type"] = float(np.mean([scores[m] for m in MODALITIES]))
        pooled = counts["audio"] + counts["visual"]
        scores["event"] = 100 * float(video_f1(pooled).mean()) if shape[0] else float("nan")
        result[level] = scores
        result["per_class"][level] = {
            name: dict(zip(CLASSES, pooled_class_f1(c), strict=True)) for name, c in counts.items()
        }
    return {"segment": result["segment"], "event": result["event"], "per_class": result["per_class"]}


def format_table(scores: dict[str, Any]) -> str:
    """The ten protocol numbers as a fixed-width text table (one decimal, like the papers)."""
    header = f"{'level':<8}" + "".join(f"{name:>14}" for name in METRIC_NAMES)
    rows = [
        f"{level:<8}" + "".join(f"{scores[level][name]:>14.1f}" for name in METRIC_NAMES)
        for level in ("segment", "event")
    ]
    return "\n".join([header, *rows])
