"""Loss terms computed from a :class:`~avvp.models.output.ParserOutput`, combined by weight.

HAN's objective is ``L = L_wsl + L_a + L_v``: binary cross-entropy of the fused, audio and visual
video-level probabilities against the weak labels, the modality targets optionally label-smoothed
(``y_m = (1 - delta_m) y + delta_m / 2``, so LS-V with delta 0.1 is HAN's ``0.9 y + 0.05``). Later methods
add terms to :data:`LOSS_TERMS` and name them in the config; the trainer only sees :class:`Objective`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

import torch
from torch.nn import functional

from avvp.models.output import ParserOutput

if TYPE_CHECKING:
    from avvp.training.config import LossConfig
    from avvp.training.dataset import Batch


class LossTerm(Protocol):
    """A scalar loss of a model output and its batch."""

    def __call__(self, output: ParserOutput, batch: Batch) -> torch.Tensor: ...


def smooth_labels(labels: torch.Tensor, amount: float) -> torch.Tensor:
    """Label smoothing towards 1/2 per class: ``(1 - amount) * labels + amount / 2``; any shape."""
    return (1.0 - amount) * labels + amount / 2.0


class VideoBCE:
    """Binary cross-entropy between a video-level probability of the output (B, C) and smoothed weak labels.

    ``field`` names the :class:`ParserOutput` attribute; probabilities are clamped to ``[clamp, 1-clamp]``
    and computed in float32 (safe under mixed precision). The mean runs over batch and classes.
    """

    def __init__(self, field: str, smoothing: float, clamp: float) -> None:
        self.field = field
        self.smoothing = smoothing
        self.clamp = clamp

    def __call__(self, output: ParserOutput, batch: Batch) -> torch.Tensor:
        """The loss of one batch (a scalar tensor)."""
        prob = getattr(output, self.field).float().clamp(self.clamp, 1.0 - self.clamp)
        return functional.binary_cross_entropy(prob, smooth_labels(batch.labels, self.smoothing))


LOSS_TERMS: dict[str, tuple[str, Callable[[LossConfig], LossTerm]]] = {
    "wsl": ("L_wsl", lambda cfg: VideoBCE("global_prob", 0.0, cfg.clamp)),
    "audio": ("L_a", lambda cfg: VideoBCE("audio_prob", cfg.label_smoothing.amount("audio"), cfg.clamp)),
    "visual": ("L_v", lambda cfg: VideoBCE("visual_prob", cfg.label_smoothing.amount("visual"), cfg.clamp)),
}
"""Config name -> (name in logs, factory from the loss config)."""


class Objective:
    """The weighted sum of the configured loss terms."""

    def __init__(self, config: LossConfig) -> None:
        self.terms = [
            (LOSS_TERMS[name][0], weight, LOSS_TERMS[name][1](config))
            for name, weight in config.terms.items()
        ]

    @property
    def names(self) -> list[str]:
        """Log names of the terms, e.g. ``["L_wsl", "L_a", "L_v"]``."""
        return [name for name, _, _ in self.terms]

    def __call__(self, output: ParserOutput, batch: Batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Return the total loss and each unweighted term (detached) by log name."""
        values = {name: term(output, batch) for name, _, term in self.terms}
        total = sum(weight * values[name] for name, weight, _ in self.terms)
        return total, {name: value.detach() for name, value in values.items()}
