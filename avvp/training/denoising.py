"""JoMoLD's joint-modal label denoising (Cheng et al., ECCV 2022), as a procedure around any parser's
training step (``denoising:`` in a training config; docs/training.md has the equations).

Before each step, the batch's modality losses are computed without gradient (by default with the parser's
cross-modal attention skipped, in the current training mode); then, per class ``c`` with ``n_v`` visual
positives in the batch and ``k = floor(r_v[c] * n_v)``, a visual label is removed where its clip is both
among the ``k`` largest visual losses and among the ``k`` smallest audio losses of the class's visual
positives; audio labels symmetrically with ``r_a``. The ratios ``r`` come from ``avvp estimate-noise``,
scaled by a warm-up. Removed labels become 0 in that modality's targets for the step.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import nn
from torch.nn import functional

from avvp.data.dataset import Batch
from avvp.device import autocast
from avvp.errors import InputError
from avvp.models.output import ParserOutput
from avvp.training.losses import LossConfig, modality_targets
from avvp.training.noise_ratios import MODALITIES, read_noise_ratios


class DenoisingConfig(BaseModel):
    """Joint-modal label denoising of the modality targets (``denoising:`` of a training config)."""

    model_config = ConfigDict(extra="forbid")

    noise_ratios: Path | None = Field(
        None, description="per-class noise ratios (.npz) written by 'avvp estimate-noise' (required to train)"
    )
    warmup_epochs: float = Field(0.9, ge=0.0, description="epochs over which the ratios rise from 0")
    warmup_schedule: Literal["linear", "original-code"] = Field(
        "linear",
        description="linear: ratio x min(1, step / warm-up steps), as the paper describes; original-code: "
        "the ratio reached at each epoch's first step, held for the epoch (what the released code does)",
    )
    forward_cross_modal: bool = Field(
        False, description="keep cross-modal attention in the no-gradient denoising forward pass"
    )


def warmup_factor(step: int, steps_per_epoch: int, warmup_epochs: float, schedule: str) -> float:
    """The factor scaling the noise ratios at 0-based global ``step`` (``steps_per_epoch`` steps an epoch).

    ``linear``: ``min(1, step / (warmup_epochs * steps_per_epoch))``. ``original-code``: the linear value
    at the first step of the step's epoch (the released code recomputes the ratio as a running minimum
    that restarts each epoch, so it never rises within one).
    """
    if warmup_epochs == 0:
        return 1.0
    if schedule == "original-code":
        step = step - step % steps_per_epoch
    return min(1.0, step / (warmup_epochs * steps_per_epoch))


def rank_in_class(values: torch.Tensor, eligible: torch.Tensor, descending: bool) -> torch.Tensor:
    """Rank (0 = first) of each row among the ``eligible`` rows of its column, by ``values`` (B, C);
    ineligible rows rank after all eligible ones. Ties keep the batch order (a stable sort)."""
    fill = -torch.inf if descending else torch.inf
    order = torch.argsort(values.masked_fill(~eligible, fill), dim=0, descending=descending, stable=True)
    return torch.argsort(order, dim=0, stable=True)


def removal_counts(positive: torch.Tensor, ratio: torch.Tensor) -> torch.Tensor:
    """``floor(ratio[c] * n_c)`` per class (C,), ``n_c`` the positives (B, C) of class ``c``; in float64."""
    return torch.floor(ratio.to(torch.float64) * positive.sum(dim=0)).long()


def largest_losses(losses: torch.Tensor, positive: torch.Tensor, ratio: torch.Tensor) -> torch.Tensor:
    """Bool (B, C): the ``floor(ratio[c] * n_c)`` positives of each class with the largest ``losses``
    (the complement of the small-loss selection of Co-teaching and JoCoR)."""
    return positive & (rank_in_class(losses, positive, descending=True) < removal_counts(positive, ratio))


def joint_modal_removal(
    loss_audio: torch.Tensor,
    loss_visual: torch.Tensor,
    positive_audio: torch.Tensor,
    positive_visual: torch.Tensor,
    ratio_audio: torch.Tensor,
    ratio_visual: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Which labels the joint-modal rule removes: bool masks (B, C) for audio and for visual.

    Inputs: per-clip per-class modality losses (B, C), the modality positives (B, C) bool and the
    per-class ratios (C,). A visual label of class ``c`` goes where its clip is among the
    ``floor(ratio_visual[c] * n)`` largest visual losses and the same number of smallest audio losses of
    the ``n`` visual positives of ``c``; audio labels symmetrically (largest audio, smallest visual losses).
    """

    def removed(own: torch.Tensor, other: torch.Tensor, positive: torch.Tensor, ratio: torch.Tensor):
        count = removal_counts(positive, ratio)
        large_own = rank_in_class(own, positive, descending=True) < count
        small_other = rank_in_class(other, positive, descending=False) < count
        return positive & large_own & small_other

    return (
        removed(loss_audio, loss_visual, positive_audio, ratio_audio),
        removed(loss_visual, loss_audio, positive_visual, ratio_visual),
    )


def read_ratios(path: Path | None, key: str, device: torch.device) -> dict[str, torch.Tensor]:
    """The noise ratios of ``path`` per modality (25,) on ``device``; ``key`` names the config setting in the
    message when no file is set."""
    if path is None:
        raise InputError(
            f"config: {key} is not set; run 'avvp estimate-noise' on a noise estimator and give its file, "
            f"e.g. --set {key}=runs/estimator/noise_ratios.npz"
        )
    ratios = read_noise_ratios(path)
    return {m: torch.from_numpy(getattr(ratios, m)).to(device) for m in MODALITIES}


def label_losses(
    output: ParserOutput, batch: Batch, smoothing: dict[str, float], clamp: float
) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """Per modality, the BCE (B, C) of each label's video-level probability against its target
    (:func:`~avvp.training.losses.modality_targets`, probabilities clamped to ``[clamp, 1-clamp]``), and the
    positives (B, C) of those targets (labels already removed from the batch are not positive)."""
    losses, positives = {}, {}
    for modality in MODALITIES:
        targets = modality_targets(batch, modality, smoothing[modality])
        prob = getattr(output, f"{modality}_prob").float().clamp(clamp, 1.0 - clamp)
        losses[modality] = functional.binary_cross_entropy(prob, targets, reduction="none")
        positives[modality] = targets > 0.5
    return losses, positives


def remove_labels(
    batch: Batch, removed: dict[str, torch.Tensor], positives: dict[str, torch.Tensor]
) -> tuple[Batch, dict[str, torch.Tensor]]:
    """A copy of ``batch`` with the ``removed`` labels (bool (B, C) per modality) removed on top of those it
    already lacks, and the monitors ``dropped_<modality>``: the share of the ``positives`` removed."""
    monitors = {f"dropped_{m}": mask.sum() / positives[m].sum().clamp(min=1) for m, mask in removed.items()}
    return batch.without(removed), monitors


class LabelDenoising:
    """The per-step procedure: ``batch`` in, the same batch with ``dropped`` labels per modality out."""

    def __init__(self, config: DenoisingConfig, loss: LossConfig, device: torch.device) -> None:
        self.ratios = read_ratios(config.noise_ratios, "denoising.noise_ratios", device)
        self.config = config
        self.smoothing = {m: loss.label_smoothing.amount(m) for m in MODALITIES}
        self.clamp = loss.clamp

    @torch.no_grad()
    def __call__(
        self, model: nn.Module, batch: Batch, step: int, steps_per_epoch: int, mixed_precision: bool
    ) -> tuple[Batch, dict[str, torch.Tensor]]:
        """Remove the labels the rule finds noisy at 0-based global ``step``; returns the batch and the
        monitors ``dropped_audio`` / ``dropped_visual`` (share of the batch's positives removed)."""
        factor = warmup_factor(step, steps_per_epoch, self.config.warmup_epochs, self.config.warmup_schedule)
        with autocast(batch.labels.device, mixed_precision):
            output = model(batch.features, cross_modal=self.config.forward_cross_modal)
        losses, positives = label_losses(output, batch, self.smoothing, self.clamp)
        drop_audio, drop_visual = joint_modal_removal(
            losses["audio"],
            losses["visual"],
            positives["audio"],
            positives["visual"],
            self.ratios["audio"] * factor,
            self.ratios["visual"] * factor,
        )
        return remove_labels(batch, {"audio": drop_audio, "visual": drop_visual}, positives)
