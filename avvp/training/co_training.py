"""Co-teaching (Han et al., NeurIPS 2018) and JoCoR (Wei et al., CVPR 2020) adapted to audio-visual video
parsing: two parsers trained together, each modality's labels selected by small loss (``co_training:`` in a
training config; docs/denoising.md has the equations and the choices).

Both networks see the same batch. Per modality and class, a share ``r[c] * w`` (the noise ratio of the class
times the warm-up factor, as JoMoLD's denoising) of the class's positive labels in the batch is left out:
those with the largest losses. Co-teaching ranks each network's own losses and removes the large-loss labels
from its *peer's* targets (the cross update); JoCoR ranks one joint loss, ``(1 - lambda) (l_1 + l_2) +
lambda l_con`` with the co-regularisation ``l_con`` (the symmetric KL divergence of the two networks'
probabilities), and trains both networks on the same selection with that joint loss.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import nn

from avvp.data.dataset import Batch
from avvp.device import autocast
from avvp.models import ModelConfig, Parser, ParserOutput
from avvp.training.denoising import (
    label_losses,
    largest_losses,
    read_ratios,
    remove_labels,
    warmup_factor,
)
from avvp.training.losses import LossConfig, Objective
from avvp.training.noise_ratios import MODALITIES
from avvp.training.steps import StepResult, mean_values

CoTrainingMethod = Literal["co_teaching", "jocor"]
NETWORK_NAMES = ("first", "second")
"""The names of the two networks (in logs, ``val_metrics.json`` and the training state)."""


class CoTrainingConfig(BaseModel):
    """Two networks trained with small-loss label selection (``co_training:`` of a training config)."""

    model_config = ConfigDict(extra="forbid")

    method: CoTrainingMethod = Field(
        description="co_teaching: each network selects the labels its peer learns from; jocor: one joint "
        "loss with co-regularisation selects the labels both learn from"
    )
    noise_ratios: Path | None = Field(
        None,
        description="per-class share of each modality's labels left out (.npz of 'avvp estimate-noise'; "
        "required to train): the forget rate of Co-teaching and JoCoR",
    )
    warmup_epochs: float = Field(0.9, ge=0.0, description="epochs over which the forget rates rise from 0")
    co_regularization: float = Field(
        0.9,
        ge=0.0,
        lt=1.0,
        description="JoCoR's lambda (weight of the co-regularisation; unused by co_teaching)",
    )
    peer_model: dict[str, Any] = Field(
        default_factory=dict,
        description="settings of 'model' changed for the second network (empty: the same configuration)",
    )


def symmetric_kl(first: torch.Tensor, second: torch.Tensor, clamp: float) -> torch.Tensor:
    """``KL(B(p)||B(q)) + KL(B(q)||B(p))`` elementwise for Bernoulli probabilities ``p``, ``q`` (any shape),
    clamped to ``[clamp, 1-clamp]``: it equals ``(p - q) (logit p - logit q)``."""
    p = first.float().clamp(clamp, 1.0 - clamp)
    q = second.float().clamp(clamp, 1.0 - clamp)
    return (p - q) * (torch.logit(p) - torch.logit(q))


class NetworkPair(nn.Module):
    """The two parsers of a co-training run, ``first`` and ``second`` (their configs may differ)."""

    def __init__(self, first: ModelConfig, second: ModelConfig) -> None:
        super().__init__()
        self.first = Parser(first)
        self.second = Parser(second)

    def networks(self) -> dict[str, Parser]:
        """Both networks by name (:data:`NETWORK_NAMES`)."""
        return dict(zip(NETWORK_NAMES, (self.first, self.second), strict=True))


@dataclass
class PairOutputs:
    """One step's forward passes: each network's output and its per-label losses and positives."""

    outputs: tuple[ParserOutput, ParserOutput]
    losses: tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]
    positives: dict[str, torch.Tensor]


class CoTrainingStep:
    """One co-training step on a :class:`NetworkPair`: both forward passes, the small-loss selection, the loss.

    Returns a :class:`~avvp.training.steps.StepResult`: the total loss of both networks, the mean of
    each loss term over the two networks (logged under the usual names), ``dropped_audio`` and
    ``dropped_visual`` (share of the positives left out, mean over what the two networks were given) and,
    for JoCoR, ``L_con``.
    """

    def __init__(self, config: CoTrainingConfig, loss: LossConfig, device: torch.device) -> None:
        self.ratios = read_ratios(config.noise_ratios, "co_training.noise_ratios", device)
        self.config = config
        self.objective = Objective(loss)
        self.smoothing = {m: loss.label_smoothing.amount(m) for m in MODALITIES}
        self.clamp = loss.clamp

    def _forward(self, pair: NetworkPair, batch: Batch, mixed_precision: bool) -> PairOutputs:
        with autocast(batch.labels.device, mixed_precision):
            outputs = (pair.first(batch.features), pair.second(batch.features))
        with torch.no_grad():
            (first, positives), (second, _) = (
                label_losses(o, batch, self.smoothing, self.clamp) for o in outputs
            )
        return PairOutputs(outputs, (first, second), positives)

    def _rates(self, step: int, steps_per_epoch: int) -> dict[str, torch.Tensor]:
        factor = warmup_factor(step, steps_per_epoch, self.config.warmup_epochs, "linear")
        return {m: ratio * factor for m, ratio in self.ratios.items()}

    def co_regularization(self, outputs: tuple[ParserOutput, ParserOutput]) -> dict[str, torch.Tensor]:
        """JoCoR's ``l_con`` per modality (B, C): the symmetric KL of the two networks' probabilities."""
        return {
            m: symmetric_kl(getattr(outputs[0], f"{m}_prob"), getattr(outputs[1], f"{m}_prob"), self.clamp)
            for m in MODALITIES
        }

    def _selections(
        self, forward: PairOutputs, rates: dict[str, torch.Tensor]
    ) -> tuple[tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]], torch.Tensor | None]:
        """The labels left out of each network's targets, and JoCoR's mean co-regularisation (None for
        Co-teaching)."""
        if self.config.method == "co_teaching":
            first, second = (
                {m: largest_losses(losses[m], forward.positives[m], rates[m]) for m in MODALITIES}
                for losses in forward.losses
            )
            return (second, first), None  # each network learns from the labels its peer selected
        weight = self.config.co_regularization
        con = self.co_regularization(forward.outputs)
        joint = {
            m: (1 - weight) * (forward.losses[0][m] + forward.losses[1][m]) + weight * con[m].detach()
            for m in MODALITIES
        }
        shared = {m: largest_losses(joint[m], forward.positives[m], rates[m]) for m in MODALITIES}
        return (shared, shared), sum(con[m].mean() for m in MODALITIES)

    def __call__(
        self, pair: NetworkPair, batch: Batch, step: int, steps_per_epoch: int, mixed_precision: bool
    ) -> StepResult:
        """The loss of one step at 0-based global ``step``."""
        forward = self._forward(pair, batch, mixed_precision)
        selections, con = self._selections(forward, self._rates(step, steps_per_epoch))
        trained, totals, logged = [], [], []
        for network, output, removed in zip(
            pair.networks().values(), forward.outputs, selections, strict=True
        ):
            selected, monitors = remove_labels(batch, removed, forward.positives)
            total, terms = self.objective(output, selected)
            trained.append((network, output, selected))
            totals.append(total)
            logged.append({**terms, **monitors})
        total = totals[0] + totals[1]
        terms = mean_values(logged)
        if con is not None:
            weight = self.config.co_regularization
            total = (1 - weight) * total + weight * con
            terms["L_con"] = con.detach()
        return StepResult(total, terms, trained)
