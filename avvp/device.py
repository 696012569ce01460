"""Choosing the compute device, the matching mixed-precision context, and counting the usable cores."""

from __future__ import annotations

import contextlib
import logging
import os

import torch

from avvp.errors import InputError

log = logging.getLogger(__name__)
DEVICE_CHOICES = ("auto", "cpu", "cuda")


def resolve_device(name: str = "auto") -> torch.device:
    """Map ``auto|cpu|cuda|cuda:N`` to a ``torch.device``; ``auto`` takes CUDA when it is available.

    Raises :class:`InputError` when CUDA is asked for but absent.
    """
    if name == "auto":
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        log.info("device: %s (auto-detected)", device)
        return device
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise InputError(f"--device {name}: CUDA is not available on this machine; use --device cpu or auto")
    try:
        return torch.device(name)
    except RuntimeError:
        raise InputError(f"--device {name!r}: expected one of {DEVICE_CHOICES} or cuda:N") from None


def autocast(device: torch.device, enabled: bool = True) -> contextlib.AbstractContextManager:
    """Mixed precision (float16 autocast) on CUDA; a no-op context on CPU or when ``enabled`` is False."""
    if enabled and device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.float16)
    return contextlib.nullcontext()


def available_cores() -> int:
    """The CPU cores this process may run on (its affinity mask, which cgroups and SLURM narrow; the
    machine's count where the platform has no affinity)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1
