"""What a training loop optimises with: Adam or AdamW, a per-epoch learning-rate schedule (HAN's step or VALOR's
warm-up cosine), optional gradient clipping and a gradient scaler, together with the RNG states, saved and
restored as one piece so an interrupted run resumes exactly."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from avvp.training.config import OptimizerConfig


@dataclass
class Optimisation:
    """Optimizer, learning-rate schedule and gradient scaler of one run on ``device``; ``grad_clip`` is the
    largest L2 norm of a network's gradients (None: no clipping)."""

    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    scaler: torch.amp.GradScaler
    device: torch.device
    grad_clip: float | None = None

    @property
    def lr(self) -> float:
        """The current learning rate."""
        return self.optimizer.param_groups[0]["lr"]

    def clip(self, network: nn.Module) -> dict[str, torch.Tensor]:
        """Clip the (unscaled) gradients of ``network`` to L2 norm ``grad_clip``, all its parameters as one
        vector; returns ``{"grad_norm": norm before clipping}``."""
        parameters = [p for p in network.parameters() if p.grad is not None]
        norm = torch.nn.utils.clip_grad_norm_(parameters, self.grad_clip)
        return {"grad_norm": norm.detach()}

    def state_dict(self) -> dict[str, Any]:
        """Optimizer, schedule, scaler and the torch RNG states (CPU, and CUDA when used)."""
        return {
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state_all() if self.device.type == "cuda" else [],
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` saved. The warm-up cosine schedule depends on the run's epochs,
        which ``--resume`` may change: the next epoch's learning rate is recomputed with this run's."""
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        if isinstance(self.scheduler, torch.optim.lr_scheduler.LambdaLR):
            rules = zip(
                self.optimizer.param_groups, self.scheduler.base_lrs, self.scheduler.lr_lambdas, strict=True
            )
            for group, base_lr, rule in rules:
                group["lr"] = base_lr * rule(self.scheduler.last_epoch)
        self.scaler.load_state_dict(state["scaler"])
        torch.set_rng_state(state["rng"])
        if self.device.type == "cuda" and state["cuda_rng"]:
            torch.cuda.set_rng_state_all(state["cuda_rng"])


def warmup_cosine_lr(epoch: int, epochs: int, config: OptimizerConfig) -> float:
    """VALOR's learning rate of 1-based ``epoch`` of ``epochs``: ``lr * epoch / warmup_epochs`` while
    ``epoch < warmup_epochs``, then ``lr_min + (lr - lr_min) (1 + cos(pi (epoch - warmup_epochs) /
    (epochs - warmup_epochs))) / 2`` (``lr`` at the end of the warm-up, ``lr_min`` at the last epoch; the
    fraction is 0 when the run is no longer than the warm-up)."""
    warmup = config.warmup_epochs
    if epoch < warmup:
        return config.lr * epoch / warmup
    fraction = (epoch - warmup) / (epochs - warmup) if epochs > warmup else 0.0
    return config.lr_min + 0.5 * (config.lr - config.lr_min) * (1.0 + math.cos(math.pi * fraction))


def build_scheduler(
    optimizer: torch.optim.Optimizer, config: OptimizerConfig, epochs: int
) -> torch.optim.lr_scheduler.LRScheduler:
    """The per-epoch schedule (stepped once after each epoch): StepLR, or :func:`warmup_cosine_lr` as a
    LambdaLR whose ``k``-th value is that of epoch ``k + 1``."""
    if config.schedule == "step":
        return torch.optim.lr_scheduler.StepLR(optimizer, config.step_size, config.gamma)
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda done: warmup_cosine_lr(done + 1, epochs, config) / config.lr
    )


def build_optimisation(
    parameters: Iterable[torch.nn.Parameter],
    config: OptimizerConfig,
    device: torch.device,
    mixed_precision: bool,
    epochs: int,
) -> Optimisation:
    """Adam or AdamW over the ``parameters`` that require gradients, the schedule of a run of ``epochs``
    (:func:`build_scheduler`), gradient clipping as ``config`` says and a gradient scaler enabled for mixed
    precision."""
    optimizer_class = torch.optim.AdamW if config.name == "adamw" else torch.optim.Adam
    optimizer = optimizer_class(
        [p for p in parameters if p.requires_grad],
        lr=config.lr,
        weight_decay=config.weight_decay,
        betas=config.betas,
        eps=config.eps,
    )
    return Optimisation(
        optimizer,
        build_scheduler(optimizer, config, epochs),
        torch.amp.GradScaler(device.type, enabled=mixed_precision),
        device,
        config.grad_clip,
    )
