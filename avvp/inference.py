"""Batched inference over a split, the published decision rule, and the prediction files.

Outputs of :func:`write_predictions` in the output directory:
``pred_audio.csv`` / ``pred_visual.csv`` (the ``AVVP_eval_*.csv`` event format, for ``avvp evaluate``) and
``probabilities.h5`` with ``video_id [N]``, ``global_prob [N,25]``, ``audio_prob [N,25]``,
``visual_prob [N,25]``, ``frame_prob [N,10,2,25]`` (segment x (audio, visual) x class) and
``modality_attention [N,10,2,25]``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from avvp.data.dataset import SplitDataset
from avvp.data.labels import CLASSES, segments_to_events, write_event_rows
from avvp.decision_rules import (
    DECISION_RULES,
    FUSED_RULE,
    MODALITY_RULE,
    PUBLISHED_THRESHOLD,
    DecisionRule,
)
from avvp.device import autocast
from avvp.hdf5_output import hdf5_output
from avvp.io import atomic_path


@dataclass
class Probabilities:
    """Model outputs for ``N`` clips as float32 arrays (shapes as in the module docstring)."""

    video_ids: list[str]
    global_prob: np.ndarray
    audio_prob: np.ndarray
    visual_prob: np.ndarray
    frame_prob: np.ndarray
    modality_attention: np.ndarray


ARRAYS = ("global_prob", "audio_prob", "visual_prob", "frame_prob", "modality_attention")


@torch.no_grad()
def batch_probabilities(
    model: nn.Module,
    features: dict[str, torch.Tensor],
    device: torch.device,
    mixed_precision: bool = True,
    cross_modal: bool = True,
) -> dict[str, np.ndarray]:
    """The model's outputs (float32 arrays by :data:`ARRAYS` name) for one batch of ``features`` on ``device``
    (``cross_modal=False``: without the block's cross-modal attention)."""
    model.eval()
    with autocast(device, mixed_precision):
        output = model(
            {kind: tensor.to(device) for kind, tensor in features.items()}, cross_modal=cross_modal
        )
    return {name: getattr(output, name).float().cpu().numpy() for name in ARRAYS}


def predict_probabilities(
    model: nn.Module,
    dataset: SplitDataset,
    device: torch.device,
    batch_size: int = 256,
    mixed_precision: bool = True,
    desc: str = "predicting",
    cross_modal: bool = True,
) -> Probabilities:
    """Run ``model`` (switched to eval mode) over every clip of ``dataset`` in order (``cross_modal=False``:
    without the block's cross-modal attention, as JoMoLD estimates label noise)."""
    parts: dict[str, list[np.ndarray]] = {name: [] for name in ARRAYS}
    loader = dataset.loader(batch_size, pin_memory=device.type == "cuda")
    for batch in tqdm(loader, desc=desc, unit="batch", disable=None, leave=False):
        arrays = batch_probabilities(model, batch.features, device, mixed_precision, cross_modal)
        for name in ARRAYS:
            parts[name].append(arrays[name])
    arrays = {name: np.concatenate(chunks) for name, chunks in parts.items()}
    return Probabilities(video_ids=list(dataset.video_ids), **arrays)


def decide(
    probabilities: Probabilities,
    segment: float = PUBLISHED_THRESHOLD,
    video: float = PUBLISHED_THRESHOLD,
    rule: DecisionRule = FUSED_RULE,
) -> tuple[np.ndarray, np.ndarray]:
    """Boolean audio and visual segment matrices ``(N, 10, 25)`` under a decision rule.

    A segment is positive for a class where its modality's segment probability is ``>= segment`` and a
    video-level probability of the class is ``>= video``: the fused ``global_prob`` for both modalities
    under ``fused`` (the published HAN rule), the modality's own ``audio_prob`` / ``visual_prob`` under
    ``modality`` (JoMoLD's rule).
    """
    if rule == FUSED_RULE:
        audio_video = visual_video = probabilities.global_prob
    elif rule == MODALITY_RULE:
        audio_video, visual_video = probabilities.audio_prob, probabilities.visual_prob
    else:
        raise ValueError(f"unknown decision rule {rule!r}; known: {', '.join(DECISION_RULES)}")
    segments = probabilities.frame_prob >= segment
    return (
        segments[:, :, 0] & (audio_video >= video)[:, None, :],
        segments[:, :, 1] & (visual_video >= video)[:, None, :],
    )


def write_probabilities(path: str | Path, probabilities: Probabilities) -> None:
    """Write ``probabilities`` to an HDF5 file atomically (datasets named as the fields, plus ``classes``)."""
    with atomic_path(path) as tmp, hdf5_output(tmp, path) as (handle, _):
        string = h5py.string_dtype("utf-8")
        handle.create_dataset("video_id", data=np.array(probabilities.video_ids, dtype=object), dtype=string)
        handle.create_dataset("classes", data=np.array(CLASSES, dtype=object), dtype=string)
        for name in ARRAYS:
            handle.create_dataset(name, data=getattr(probabilities, name), compression="gzip")


def write_predictions(
    output_dir: str | Path,
    probabilities: Probabilities,
    segment: float = PUBLISHED_THRESHOLD,
    video: float = PUBLISHED_THRESHOLD,
    rule: DecisionRule = FUSED_RULE,
) -> dict[str, Path]:
    """Write ``pred_audio.csv``, ``pred_visual.csv`` (decided by :func:`decide`) and ``probabilities.h5``;
    returns their paths."""
    output_dir = Path(output_dir)
    audio, visual = decide(probabilities, segment, video, rule)
    paths = {
        "pred_audio": output_dir / "pred_audio.csv",
        "pred_visual": output_dir / "pred_visual.csv",
        "probabilities": output_dir / "probabilities.h5",
    }
    write_event_rows(paths["pred_audio"], segments_to_events(probabilities.video_ids, audio))
    write_event_rows(paths["pred_visual"], segments_to_events(probabilities.video_ids, visual))
    write_probabilities(paths["probabilities"], probabilities)
    return paths
