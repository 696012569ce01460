"""The modality-bias diagnostics of Pasi et al.: attention distributions (their Fig. 3), loss gaps (Fig. 2).

``attention.json`` / ``attention.npz``: per class, the distribution of the audio share ``W_av[t, audio, c]``
of the audio-visual attention over every segment of a split (the visual share is one minus it): a
histogram over ``[0, 1]``, mean and standard deviation. ``loss_gaps.jsonl``: per epoch, the mean squared
difference between ``L_wsl`` and ``L_a`` and between ``L_wsl`` and ``L_v`` over the training steps of the
epoch and cumulatively since the first epoch (the paper's ``MSE_wsl,a`` and ``MSE_wsl,v``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from avvp.data.labels import CLASSES
from avvp.io import atomic_path, write_json


def attention_distribution(modality_attention: np.ndarray, bins: int = 20) -> dict[str, np.ndarray]:
    """Per-class statistics of the audio attention share from ``modality_attention`` (N, 10, 2, 25).

    Returns ``histogram`` (25, bins) counts of segments, ``bin_edges`` (bins + 1,), ``mean_audio`` and
    ``std_audio`` (25,) and ``mean_visual`` (25,).
    """
    audio_share = modality_attention[:, :, 0, :].reshape(-1, modality_attention.shape[-1])  # (N*10, 25)
    edges = np.linspace(0.0, 1.0, bins + 1)
    histogram = np.stack([np.histogram(column, bins=edges)[0] for column in audio_share.T])
    return {
        "histogram": histogram.astype(np.int64),
        "bin_edges": edges,
        "mean_audio": audio_share.mean(axis=0),
        "std_audio": audio_share.std(axis=0),
        "mean_visual": 1.0 - audio_share.mean(axis=0),
    }


def write_attention(output_dir: str | Path, stats: dict[str, np.ndarray], split: str) -> None:
    """Write ``attention.npz`` (arrays plus ``classes``) and ``attention.json`` (per class) atomically."""
    output_dir = Path(output_dir)
    with atomic_path(output_dir / "attention.npz") as tmp, tmp.open("wb") as handle:
        np.savez(handle, classes=np.array(CLASSES), **stats)
    per_class = {
        name: {
            "mean_audio": float(stats["mean_audio"][c]),
            "mean_visual": float(stats["mean_visual"][c]),
            "std_audio": float(stats["std_audio"][c]),
            "histogram": stats["histogram"][c].tolist(),
        }
        for c, name in enumerate(CLASSES)
    }
    summary = {"split": split, "bin_edges": stats["bin_edges"].tolist(), "classes": per_class}
    write_json(output_dir / "attention.json", summary)


class LossGapTracker:
    """Mean of ``(L_wsl - L_a)^2`` and ``(L_wsl - L_v)^2`` over training steps, per epoch and cumulatively."""

    PAIRS = (("mse_wsl_a", "L_a"), ("mse_wsl_v", "L_v"))

    def __init__(self) -> None:
        self.total = {name: 0.0 for name, _ in self.PAIRS}
        self.total_steps = 0

    def add_epoch(self, epoch: int, step_losses: dict[str, np.ndarray]) -> dict[str, Any]:
        """Record one epoch from its per-step unweighted losses (``{"L_wsl": (steps,), ...}``).

        Returns ``{"epoch", "steps", <pair>, "cumulative_<pair>"}``; a pair whose terms are not trained
        (e.g. no ``L_a``) is left out.
        """
        steps = len(step_losses.get("L_wsl", ()))
        record: dict[str, Any] = {"epoch": epoch, "steps": steps}
        self.total_steps += steps
        for name, other in self.PAIRS:
            if steps and other in step_losses:
                squared = float(np.sum((step_losses["L_wsl"] - step_losses[other]) ** 2))
                self.total[name] += squared
                record[name] = squared / steps
                record[f"cumulative_{name}"] = self.total[name] / self.total_steps
        return record

    def state_dict(self) -> dict[str, Any]:
        """Cumulative sums, for checkpoints."""
        return {"total": dict(self.total), "total_steps": self.total_steps}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore the cumulative sums saved by :meth:`state_dict`."""
        self.total = dict(state["total"])
        self.total_steps = int(state["total_steps"])


def write_jsonl(path: str | Path, records: list[dict[str, Any]]) -> None:
    """Write ``records`` one JSON object per line, atomically (the whole file is rewritten)."""
    with atomic_path(path) as tmp:
        tmp.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
