"""VALOR's modality-aware segment-level pseudo-labels from CLIP and CLAP features, and their agreement with
the dense labels.

For clip ``n``, segment ``t`` and class ``c`` of modality ``m`` (visual: CLIP image embeddings ``clip``;
audio: per-second CLAP audio embeddings ``clap_segments``), with ``e_nt`` the segment's L2-normalised
embedding, ``p_c`` the L2-normalised embedding of class ``c``'s prompt (both recorded in the feature store)
and ``s`` the model's ``exp(logit_scale)``::

    logit[n, t, c] = s * <e_nt, p_c>
    label[n, t, c] = 1  if  y[n, c] = 1  and  logit[n, t, c] > threshold_m[c],  else 0

``y`` are the clip's video-level (weak) labels, so a teacher only ever confirms classes the clip is
labelled with; the thresholds are VALOR's per-class constants (``utils/clip_preprocess.py``,
``utils/clap_preprocess.py``), on the logit scale (CLIP's ``s`` = 100, CLAP's as trained).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from avvp.data.features import FeatureStore, FeatureStoreError, TextEmbeddings
from avvp.data.labels import CLASSES, WeakLabels, read_dense_labels, read_weak_labels
from avvp.errors import first_items
from avvp.evaluation.metrics import llp_scores
from avvp.feature_identity import VOLATILE_ATTRS

log = logging.getLogger(__name__)

VISUAL_KIND, AUDIO_KIND = "clip", "clap_segments"
VALOR_THRESHOLDS: dict[str, tuple[float, ...]] = {
    VISUAL_KIND: (
        20,
        15,
        18,
        14,
        15,
        18,
        18,
        15,
        15,
        15,
        15,
        18,
        15,
        15,
        15,
        15,
        15,
        15,
        15,
        16,
        14,
        15,
        15,
        15,
        18,
    ),
    AUDIO_KIND: (0, 0, 1, 4, 6, -2, 4, 4, 2, 2, 2, 1, 2, 3, 0, 2, 2, 2, 0, 2, -1, 2, 3, 3, 0),
}
"""VALOR's per-class logit thresholds, in :data:`avvp.data.labels.CLASSES` order."""
RULE = "exp(logit_scale) * cos(segment, prompt) > threshold[class], only for the clip's video-level labels"


def segment_logits(features: np.ndarray, text: TextEmbeddings) -> np.ndarray:
    """Similarity logits ``s * <e, p>``: features float [N, T, D] (L2-normalised), prompts [C, D] ->
    float32 [N, T, C]."""
    if features.shape[-1] != text.embeddings.shape[1]:
        raise ValueError(
            f"features are {features.shape[-1]}-d but the prompt embeddings {text.embeddings.shape[1]}-d"
        )
    return (text.logit_scale * (features @ text.embeddings.T)).astype(np.float32)


def threshold_labels(logits: np.ndarray, thresholds: Sequence[float], weak: np.ndarray) -> np.ndarray:
    """VALOR's rule: ``logits`` [N, T, C] above the per-class ``thresholds`` [C], kept only where the
    clip's video-level labels ``weak`` [N, C] are 1 -> float32 0/1 [N, T, C]."""
    above = logits > np.asarray(thresholds, dtype=np.float32)
    return (above & (np.asarray(weak)[:, None, :] > 0.5)).astype(np.float32)


@dataclass
class TeacherLabels:
    """One modality's pseudo-labels: the clips, labels float32 0/1 [N, T, C], and how they were made."""

    video_ids: list[str]
    labels: np.ndarray
    identity: dict[str, Any]


def _fingerprint(text: TextEmbeddings) -> str:
    return (
        "sha256:"
        + hashlib.sha256(np.ascontiguousarray(text.embeddings, np.float32).tobytes()).hexdigest()[:16]
    )


def teacher_labels(
    store_path: str | Path, kind: str, weak: WeakLabels, thresholds: Sequence[float] | None = None
) -> TeacherLabels:
    """Pseudo-labels of the ``weak`` clips that have ``kind`` features in the raw store ``store_path``
    (clips without them are left out, with one warning naming them).

    Raises :class:`FeatureStoreError` when the kind has no recorded prompt embeddings (a standardised or
    imported store: pseudo-labels need the raw extracted one).
    """
    thresholds = tuple(VALOR_THRESHOLDS[kind] if thresholds is None else thresholds)
    with FeatureStore(store_path) as store:
        text = store.text_embeddings(kind)
        if text is None:
            raise FeatureStoreError(
                f"{store_path}: '{kind}' has no class-prompt embeddings (a standardised or imported store?); "
                "pseudo-labels need the store written by 'avvp extract'"
            )
        if len(text.texts) != len(CLASSES) or len(thresholds) != len(CLASSES):
            raise FeatureStoreError(f"{store_path}: '{kind}' needs {len(CLASSES)} prompts and thresholds")
        missing = set(store.missing(kind, weak.video_ids))
        if missing:
            log.warning(
                "%s: %d of %d clip(s) have no '%s' features and get no pseudo-labels: %s",
                store_path,
                len(missing),
                len(weak.video_ids),
                kind,
                first_items(sorted(missing)),
            )
        rows = [i for i, video_id in enumerate(weak.video_ids) if video_id not in missing]
        video_ids = [weak.video_ids[i] for i in rows]
        logits = segment_logits(store.read(kind, video_ids), text)
        attrs = {k: v for k, v in store.attrs(kind).items() if k not in VOLATILE_ATTRS}
    identity = {
        "features": kind,
        "extractor": attrs,
        "prompt_embeddings": _fingerprint(text),
        "logit_scale": text.logit_scale,
        "thresholds": list(thresholds),
        "rule": RULE,
    }
    return TeacherLabels(video_ids, threshold_labels(logits, thresholds, weak.labels[rows]), identity)


def pair_modalities(
    visual: TeacherLabels, audio: TeacherLabels
) -> tuple[list[str], np.ndarray, np.ndarray, list[str]]:
    """The clips both teachers labelled (in the visual teacher's order), their audio and visual labels
    [N, T, C], and the clips only one of them labelled."""
    audio_rows = {video_id: row for row, video_id in enumerate(audio.video_ids)}
    both = [(row, audio_rows[v]) for row, v in enumerate(visual.video_ids) if v in audio_rows]
    one_sided = sorted(set(visual.video_ids) ^ set(audio.video_ids))
    video_ids = [visual.video_ids[v] for v, _ in both]
    index_v = np.array([v for v, _ in both], dtype=np.int64)
    index_a = np.array([a for _, a in both], dtype=np.int64)
    return video_ids, audio.labels[index_a], visual.labels[index_v], one_sided


def agreement(
    video_ids: Sequence[str],
    audio: np.ndarray,
    visual: np.ndarray,
    splits: Mapping[str, Path],
    gt_audio: Path,
    gt_visual: Path,
) -> dict[str, Any]:
    """The LLP scores (:func:`~avvp.evaluation.metrics.llp_scores`) of the pseudo-labels as predictions
    against the dense labels, per split (``splits``: name -> weak-label file of its clips), on the split's
    clips that have pseudo-labels; ``{split: {"videos", "missing", "segment", "event"}}``."""
    rows = {video_id: row for row, video_id in enumerate(video_ids)}
    result = {}
    for split, path in splits.items():
        split_ids = read_weak_labels(path).video_ids
        present = [v for v in split_ids if v in rows]
        index = np.array([rows[v] for v in present], dtype=np.int64)
        scores = llp_scores(
            audio[index] > 0.5,
            visual[index] > 0.5,
            read_dense_labels(gt_audio, present),
            read_dense_labels(gt_visual, present),
        )
        result[split] = {
            "videos": len(present),
            "missing": len(split_ids) - len(present),
            "segment": scores["segment"],
            "event": scores["event"],
        }
    return result
