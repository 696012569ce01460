"""What a training loop optimises with: Adam, a step learning-rate schedule and a gradient scaler, together
with the RNG states, saved and restored as one piece so an interrupted run resumes exactly."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import torch

from avvp.training.config import OptimizerConfig


@dataclass
class Optimisation:
    """Optimizer, learning-rate schedule and gradient scaler of one run on ``device``."""

    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    scaler: torch.amp.GradScaler
    device: torch.device

    @property
    def lr(self) -> float:
        """The current learning rate."""
        return self.optimizer.param_groups[0]["lr"]

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
        """Restore what :meth:`state_dict` saved."""
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])
        torch.set_rng_state(state["rng"])
        if self.device.type == "cuda" and state["cuda_rng"]:
            torch.cuda.set_rng_state_all(state["cuda_rng"])


def build_optimisation(
    parameters: Iterable[torch.nn.Parameter],
    config: OptimizerConfig,
    device: torch.device,
    mixed_precision: bool,
) -> Optimisation:
    """Adam over the ``parameters`` that require gradients, ``lr * gamma ** (epoch // step_size)``, and a
    gradient scaler enabled for mixed precision."""
    optimizer = torch.optim.Adam(
        [p for p in parameters if p.requires_grad], lr=config.lr, weight_decay=config.weight_decay
    )
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, config.step_size, config.gamma)
    return Optimisation(
        optimizer, scheduler, torch.amp.GradScaler(device.type, enabled=mixed_precision), device
    )
