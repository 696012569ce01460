"""JoMoLD's estimate of the per-class label noise of each modality (the original ``calculate_noise_ratio``),
vectorised over a whole split.

A weak label ``y[n, c] = 1`` is **audio-noisy** where ``a[n, c] * P_a[n, c] / mean_n(a[:, c]) <
audio_threshold`` and **visual-noisy** where ``v[n, c] * P_v[n, c] / mean_n(v[:, c]) < visual_threshold``,
with ``a``, ``v`` the audio and visual video-level probabilities of a model run without cross-modal
attention, ``P_m = (1 - delta_m) y + delta_m / 2`` the smoothed targets (JoMoLD: ``P_a = y``,
``P_v = 0.9 y + 0.05``) and the means taken exactly over every clip of the split. A class's ratio is its
noisy count over its number of labels; a class without labels gets ratio 0 (with a warning).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import torch

from avvp.data.labels import CLASSES
from avvp.errors import first_items
from avvp.training.losses import smooth_labels
from avvp.training.noise_ratios import MODALITIES, NoiseRatios

log = logging.getLogger(__name__)
AUDIO_THRESHOLD = 0.6
VISUAL_THRESHOLD = 1.8
"""The original's thresholds (``--a_thres``, ``--v_thres``)."""
DEFAULT_SMOOTHING = {"audio": 0.0, "visual": 0.1}
"""``delta`` of the targets ``P_a``, ``P_v`` in the original (``P_a = y``, ``P_v = 0.9 y + 0.05``)."""


@dataclass
class NoiseEstimate:
    """The estimated ``ratios`` and what they come from, arrays (25,) per class: ``labels`` (weak labels
    of the class in the split), ``noisy`` (per modality: labels found noisy) and ``mean`` (per modality:
    mean video-level probability over the split, float64)."""

    ratios: NoiseRatios
    labels: np.ndarray
    noisy: dict[str, np.ndarray]
    mean: dict[str, np.ndarray]


def estimate_noise(
    audio_prob: np.ndarray,
    visual_prob: np.ndarray,
    labels: np.ndarray,
    thresholds: dict[str, float] | None = None,
    smoothing: dict[str, float] | None = None,
) -> NoiseEstimate:
    """Noise ratios from the video-level probabilities ``audio_prob``, ``visual_prob`` (N, 25) of a split and
    its weak ``labels`` (N, 25; nonzero = labelled).

    ``thresholds`` and ``smoothing`` map ``audio`` / ``visual`` to the threshold and the ``delta`` of the
    targets (default: the original's 0.6 / 1.8 and 0 / 0.1). Computed in float64.
    """
    thresholds = thresholds or {"audio": AUDIO_THRESHOLD, "visual": VISUAL_THRESHOLD}
    smoothing = smoothing or DEFAULT_SMOOTHING
    weak = torch.as_tensor(np.asarray(labels), dtype=torch.float64)
    positive = weak != 0
    counts = positive.sum(dim=0)
    ratios, noisy, mean = {}, {}, {}
    for modality, prob in zip(MODALITIES, (audio_prob, visual_prob), strict=True):
        prob = torch.as_tensor(np.asarray(prob), dtype=torch.float64)
        mean[modality] = prob.mean(dim=0)
        score = (
            prob * smooth_labels(weak, smoothing[modality]) / mean[modality]
        )  # x/0 -> inf or nan: not noisy
        noisy[modality] = (positive & (score < thresholds[modality])).sum(dim=0)
        ratios[modality] = torch.where(counts > 0, noisy[modality].double() / counts.clamp(min=1), 0.0)
    unlabelled = [CLASSES[c] for c in torch.nonzero(counts == 0).flatten().tolist()]
    if unlabelled:
        log.warning(
            "%d class(es) have no label in the split, ratio 0: %s", len(unlabelled), first_items(unlabelled)
        )
    return NoiseEstimate(
        ratios=NoiseRatios(ratios["audio"].numpy(), ratios["visual"].numpy()),
        labels=counts.numpy(),
        noisy={m: v.numpy() for m, v in noisy.items()},
        mean={m: v.numpy() for m, v in mean.items()},
    )


def noise_table(estimate: NoiseEstimate) -> list[dict[str, object]]:
    """One row per class: ``class``, ``labels``, then per modality ``m``: ``noisy_m``, ``m_ratio``,
    ``mean_m_prob``."""
    rows = []
    for c, name in enumerate(CLASSES):
        row: dict[str, object] = {"class": name, "labels": int(estimate.labels[c])}
        for m in MODALITIES:
            row[f"noisy_{m}"] = int(estimate.noisy[m][c])
            row[f"{m}_ratio"] = float(getattr(estimate.ratios, m)[c])
            row[f"mean_{m}_prob"] = float(estimate.mean[m][c])
        rows.append(row)
    return rows
