"""Training steps: how one batch becomes the loss the trainer back-propagates.

The trainer's loop (:func:`avvp.training.trainer.train_epoch`) only calls a :class:`TrainingStep` and then
back-propagates, modulates the gradients and updates. A step returns a :class:`StepResult`. Two kinds ship:
:class:`OneNetworkStep` (label procedures such as JoMoLD's denoising, then one forward pass and the
objective) and the two-network step of Co-teaching and JoCoR (:mod:`avvp.training.co_training`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import torch
from torch import nn

from avvp.data.dataset import Batch
from avvp.device import autocast

StepMonitors = dict[str, torch.Tensor]
"""Scalars a procedure reports for one step (logged as epoch means beside the losses, never optimised)."""
LabelProcedure = Callable[[nn.Module, Batch, int, int, bool], tuple[Batch, StepMonitors]]
"""Changes a batch's labels before the forward pass: ``(model, batch, step, steps_per_epoch,
mixed_precision) -> (batch, monitors)`` (JoMoLD's denoising, MA's refined labels)."""


@dataclass
class StepResult:
    """What one training step computed.

    ``total`` is the scalar to back-propagate; ``terms`` the values logged for the step (detached loss
    terms and monitors, by log name); ``trained`` each network trained with its output and the batch its
    loss saw, for procedures that work on a network's gradients (dynamic gradient modulation).
    """

    total: torch.Tensor
    terms: dict[str, torch.Tensor]
    trained: list[tuple[nn.Module, Any, Batch]]


class TrainingStep(Protocol):
    """``(model, batch, step, steps_per_epoch, mixed_precision) -> StepResult`` for 0-based global ``step``."""

    def __call__(
        self, model: nn.Module, batch: Batch, step: int, steps_per_epoch: int, mixed_precision: bool
    ) -> StepResult: ...


def mean_values(records: Sequence[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """The mean of each key over ``records`` (one record: the record itself), in the first record's order."""
    if len(records) == 1:
        return dict(records[0])
    return {key: torch.stack([r[key] for r in records]).mean() for key in records[0]}


class OneNetworkStep:
    """One network: each label procedure in turn, then ``objective(model(batch.features), batch)``.

    ``objective(output, batch)`` returns the total and the logged terms (:class:`~avvp.training.losses.
    Objective`, or the pretraining objective).
    """

    def __init__(
        self,
        objective: Callable[[Any, Batch], tuple[torch.Tensor, StepMonitors]],
        label_procedures: Sequence[LabelProcedure] = (),
    ) -> None:
        self.objective = objective
        self.label_procedures = list(label_procedures)

    def __call__(
        self, model: nn.Module, batch: Batch, step: int, steps_per_epoch: int, mixed_precision: bool
    ) -> StepResult:
        """The loss of one step (see :class:`TrainingStep`)."""
        monitors: StepMonitors = {}
        for procedure in self.label_procedures:
            batch, reported = procedure(model, batch, step, steps_per_epoch, mixed_precision)
            monitors.update(reported)
        with autocast(batch.labels.device, mixed_precision):
            output = model(batch.features)
        total, terms = self.objective(output, batch)
        return StepResult(total, {**terms, **monitors}, [(model, output, batch)])
