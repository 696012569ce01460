"""Dynamic gradient modulation (DGM, paper 004 section III-B, eq. 6-9) as a procedure between a training step's
backward pass and its update (``gradient_modulation:`` in a training config; docs/training.md has the
equations and how we read eq. 9).

Each step: the batch's audio and visual video-level scores give each modality's progress, their ratio
``omega_{v-a}`` (eq. 6) the coefficients ``mu_a``, ``mu_v`` (eq. 7); the gradients of each modality's own
parameters (:meth:`~avvp.models.parser.Parser.modality_parameters`) are multiplied by its coefficient
(eq. 8) and, with noise compensation, perturbed by Gaussian noise of their own spread (eq. 9).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import nn

from avvp.data.dataset import Batch
from avvp.models import Parser, ParserOutput

ImbalanceMetric = Literal["score", "discrepancy", "both"]


class GradientModulationConfig(BaseModel):
    """Dynamic gradient modulation of the modality-specific parameters (``gradient_modulation:``)."""

    model_config = ConfigDict(extra="forbid")

    metric: ImbalanceMetric = Field(
        "both",
        description="progress of a modality (Table V): score (true-class scores), discrepancy (mean "
        "true-class minus mean wrong-class score) or both (their sum, eq. 6; the paper's 'fusion')",
    )
    gamma: float = Field(0.1, gt=0.0, description="modulation degree of eq. 7")
    noise_compensation: bool = Field(
        True, description="eq. 9: add Gaussian noise with the spread of each parameter's gradient"
    )


def modality_progress(scores: torch.Tensor, labels: torch.Tensor, metric: ImbalanceMetric) -> torch.Tensor:
    """One modality's side of eq. 6 for a batch: a scalar from video-level ``scores`` and weak ``labels`` (B, C).

    ``score``: ``sum_n sum_c s_n[c] Y_n[c]``; ``discrepancy``: ``sum_n (mean_{c: Y=1} s_n[c] - mean_{c: Y=0}
    s_n[c])`` (an empty mean counts 0); ``both``: their sum.
    """
    positive = labels > 0.5
    true_scores = (scores * positive).sum(dim=1)
    if metric == "score":
        return true_scores.sum()
    true_mean = true_scores / positive.sum(dim=1).clamp(min=1)
    wrong_mean = (scores * ~positive).sum(dim=1) / (~positive).sum(dim=1).clamp(min=1)
    discrepancy = (true_mean - wrong_mean).sum()
    return discrepancy if metric == "discrepancy" else true_scores.sum() + discrepancy


def imbalance_ratio(audio: torch.Tensor, visual: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``omega_{v-a}`` (eq. 6) of the scalar progresses ``audio`` and ``visual``, and whether it is defined.

    A ratio of progresses means something only when both are positive; otherwise ``omega`` is 1 (no
    modulation) and ``defined`` is false.
    """
    defined = (audio > 0) & (visual > 0)
    return torch.where(defined, visual / audio, torch.ones_like(visual)), defined


def balance_coefficients(omega: torch.Tensor, gamma: float) -> tuple[torch.Tensor, torch.Tensor]:
    """``(mu_a, mu_v)`` of eq. 7 for a positive ``omega_{v-a}`` (scalar tensor).

    ``mu_v = 1 - tanh(gamma * omega_{v-a})`` where ``omega_{v-a} > 1``, else 1; ``mu_a`` likewise with
    ``omega_{a-v} = 1 / omega_{v-a}``. At most one modality is slowed down.
    """

    def coefficient(ratio: torch.Tensor) -> torch.Tensor:
        return torch.where(ratio > 1, 1 - torch.tanh(gamma * ratio), torch.ones_like(ratio))

    return coefficient(1 / omega), coefficient(omega)


def modulate_gradients(parameters: Iterable[nn.Parameter], mu: torch.Tensor, noise: bool) -> None:
    """Eq. 8 and 9 in place: each gradient ``g`` becomes ``mu * g``, plus ``N(0, sigma^2)`` noise per element
    with ``noise`` (``sigma``: the standard deviation of ``g``'s elements before scaling). Parameters
    without a gradient are skipped."""
    for parameter in parameters:
        grad = parameter.grad
        if grad is None:
            continue
        sigma = grad.std(correction=0) if noise else None
        grad.mul_(mu)
        if sigma is not None:
            grad.add_(torch.randn_like(grad) * sigma)


def modality_scores(output: ParserOutput) -> tuple[torch.Tensor, torch.Tensor]:
    """The audio and visual video-level scores (B, C) DGM measures, detached, in float32: the MSDU head's
    (``heads["modality_separated"]``) when the model has one, else ``audio_prob`` and ``visual_prob``."""
    separated = output.heads.get("modality_separated")
    audio, visual = (
        (separated[:, 0], separated[:, 1])
        if separated is not None
        else (output.audio_prob, output.visual_prob)
    )
    return audio.detach().float(), visual.detach().float()


class GradientModulation:
    """The per-step procedure the trainer runs on unscaled gradients before the optimizer step."""

    def __init__(self, config: GradientModulationConfig) -> None:
        self.config = config

    @torch.no_grad()
    def __call__(self, model: Parser, output: ParserOutput, batch: Batch) -> dict[str, torch.Tensor]:
        """Modulate ``model``'s modality gradients for the step of ``batch`` and its ``output``.

        Returns the step's monitors: ``omega`` (``omega_{v-a}``), ``mu_audio``, ``mu_visual`` and
        ``omega_undefined`` (1 when a progress was not positive: ``omega`` is then 1 and both ``mu`` are 1).
        """
        audio, visual = modality_scores(output)
        metric = self.config.metric
        omega, defined = imbalance_ratio(
            modality_progress(audio, batch.labels, metric), modality_progress(visual, batch.labels, metric)
        )
        mu_audio, mu_visual = balance_coefficients(omega, self.config.gamma)
        parameters = model.modality_parameters()
        for modality, mu in (("audio", mu_audio), ("visual", mu_visual)):
            modulate_gradients(parameters[modality], mu, self.config.noise_compensation)
        return {
            "omega": omega,
            "mu_audio": mu_audio,
            "mu_visual": mu_visual,
            "omega_undefined": (~defined).float(),
        }
