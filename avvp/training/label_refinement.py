"""MA's modality-aware label refinement (Wu and Yang, CVPR 2021, "Exploring Heterogeneous Clues for
Weakly-Supervised Audio-Visual Video Parsing"), vectorised over a split; the constants are those of the
authors' code (Yu-Wu/Modaily-Aware-Audio-Visual-Video-Parsing, ``step2_find_exchange``).

A base model, trained on the weak labels, runs in eval mode on every training clip three times: on the clip
itself, with its audio track exchanged for that of a *partner* clip whose labels do not overlap its own, and
with its visual track exchanged for the partner's. For a weak label ``y[n, c] = 1``:

- the **visual** label is removed where, with the partner's audio and the clip's own visual track, both the
  visual and the audio probability of ``c`` are below ``threshold * s_v[c]``;
- the **audio** label is removed where, with the clip's own audio and the partner's visual track, both the
  audio and the visual probability of ``c`` are below ``threshold * s_a[c]``.

``s_m[c] = e_m[c] / max_c' e_m[c']`` scales the threshold by the class's error rate ``e_m[c]``: the share of
the split's clips whose original-input ``m`` probability of ``c`` is on the wrong side of 0.5 (``> 0.5`` for a
positive); classes the base model gets right more often lose fewer labels. The model is then trained anew
on the remaining labels (:class:`RefinedLabelsProcedure`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from avvp.data.dataset import Batch, SplitDataset
from avvp.data.features import AUDIO_KINDS
from avvp.data.labels import CLASSES, WeakLabels
from avvp.errors import InputError, first_items
from avvp.inference import batch_probabilities
from avvp.training.noise_ratios import MODALITIES
from avvp.training.refined_labels import read_refined_labels

log = logging.getLogger(__name__)
THRESHOLD = 0.5
"""The original's threshold on the scaled probabilities."""
PARTNER_CHUNK = 1024
"""Clips whose partners are drawn at once (the candidate matrix is chunk x split)."""


def exchange_partners(labels: np.ndarray, seed: int) -> np.ndarray:
    """For each clip, a clip drawn uniformly from those whose labels share no class with its own (never
    itself), ``-1`` where there is none; ``labels`` (N, 25) multi-hot. Seeded, so reproducible.

    The original draws the partner by rejection sampling from Python's unseeded ``random`` module: the
    same distribution, not the same draws.
    """
    positive = torch.as_tensor(np.asarray(labels) > 0)
    weights = positive.float()
    generator = torch.Generator().manual_seed(seed)
    partners = torch.full((len(positive),), -1, dtype=torch.long)
    for start in range(0, len(positive), PARTNER_CHUNK):
        rows = torch.arange(start, min(start + PARTNER_CHUNK, len(positive)))
        candidates = (weights[rows] @ weights.T) == 0  # (chunk, N): no common class
        candidates[torch.arange(len(rows)), rows] = False
        found = candidates.any(dim=1)
        if found.any():
            drawn = torch.multinomial(candidates[found].float(), 1, generator=generator).squeeze(1)
            partners[rows[found]] = drawn
    return partners.numpy()


def error_scales(prob: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per class, the error rate ``e[c]`` of ``prob`` (N, 25) against ``labels`` (positive where ``prob >
    0.5``) and its scale ``e[c] / max(e)`` (all 0 when the model makes no error)."""
    errors = ((np.asarray(prob) > 0.5) != (np.asarray(labels) > 0)).mean(axis=0)
    peak = errors.max(initial=0.0)
    return errors, errors / peak if peak > 0 else np.zeros_like(errors)


@dataclass
class Refinement:
    """What the refinement found: ``removed[m]`` bool (N, 25) per modality, and per class the error rates
    ``errors[m]`` and threshold scales ``scales[m]`` (25,) of each modality."""

    removed: dict[str, np.ndarray]
    errors: dict[str, np.ndarray]
    scales: dict[str, np.ndarray]


def refine_labels(
    labels: np.ndarray,
    original: dict[str, np.ndarray],
    audio_exchanged: dict[str, np.ndarray],
    visual_exchanged: dict[str, np.ndarray],
    threshold: float = THRESHOLD,
    has_partner: np.ndarray | None = None,
) -> Refinement:
    """MA's removal rule (module docstring) from the base model's video-level probabilities.

    Each of ``original``, ``audio_exchanged`` (the partner's audio, the clip's visual track) and
    ``visual_exchanged`` (the clip's audio, the partner's visual track) maps ``audio`` and ``visual`` to
    probabilities (N, 25); ``labels`` (N, 25) are the weak labels. Clips where ``has_partner`` (N,) is false
    keep their labels (every clip has one when it is None).
    """
    positive = np.asarray(labels) > 0
    paired = (
        np.ones(len(positive), dtype=bool) if has_partner is None else np.asarray(has_partner, dtype=bool)
    )
    refined = positive & paired[:, None]
    errors, scales = {}, {}
    for modality in MODALITIES:
        errors[modality], scales[modality] = error_scales(original[modality], positive)
    visual_bar = threshold * scales["visual"]
    audio_bar = threshold * scales["audio"]
    removed = {
        "visual": refined
        & (audio_exchanged["visual"] < visual_bar)
        & (audio_exchanged["audio"] < visual_bar),
        "audio": refined & (visual_exchanged["audio"] < audio_bar) & (visual_exchanged["visual"] < audio_bar),
    }
    return Refinement(removed, errors, scales)


def refinement_table(labels: np.ndarray, refinement: Refinement) -> list[dict[str, object]]:
    """One row per class: ``class``, ``labels``, then per modality ``m``: ``removed_m``, ``m_error_rate``,
    ``m_scale``."""
    counts = (np.asarray(labels) > 0).sum(axis=0)
    rows = []
    for c, name in enumerate(CLASSES):
        row: dict[str, object] = {"class": name, "labels": int(counts[c])}
        for m in MODALITIES:
            row[f"removed_{m}"] = int(refinement.removed[m][:, c].sum())
            row[f"{m}_error_rate"] = float(refinement.errors[m][c])
            row[f"{m}_scale"] = float(refinement.scales[m][c])
        rows.append(row)
    return rows


def exchanged_probabilities(
    model: nn.Module,
    dataset: SplitDataset,
    partners: np.ndarray,
    device: torch.device,
    batch_size: int,
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], dict[str, np.ndarray]]:
    """The audio and visual video-level probabilities (N, 25) of ``model`` (eval mode, cross-modal attention
    on, as MA) on every clip of ``dataset``: as it is, with the audio track of its partner (``partners``:
    a row of ``dataset`` per clip; a clip without one, ``-1``, is paired with itself), and with the visual
    track of its partner."""
    partners = np.where(partners < 0, np.arange(len(partners)), partners)
    parts: dict[str, list[dict[str, np.ndarray]]] = {"original": [], "audio": [], "visual": []}
    for start in tqdm(
        range(0, len(dataset), batch_size), desc="exchanging tracks", unit="batch", disable=None
    ):
        rows = list(range(start, min(start + batch_size, len(dataset))))
        own = dataset[rows].features
        partner = dataset[partners[rows].tolist()].features
        inputs = {
            "original": own,
            "audio": {k: partner[k] if k in AUDIO_KINDS else v for k, v in own.items()},
            "visual": {k: v if k in AUDIO_KINDS else partner[k] for k, v in own.items()},
        }
        for name, features in inputs.items():
            parts[name].append(batch_probabilities(model, features, device))
    original, audio, visual = (
        {m: np.concatenate([p[f"{m}_prob"] for p in parts[name]]) for m in MODALITIES}
        for name in ("original", "audio", "visual")
    )
    return original, audio, visual


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
