"""How each feature network runs its forward passes on a device: items per forward call, memory layout and
precision (:class:`ForwardPlan`), chosen per device from what the network declares (:class:`ForwardSpec`).

A network kind declares its :class:`ForwardSpec` once (the layouts and precisions it supports, the batch
sizes worth timing, and its default plan per device type); :func:`parse_forward_option` reads the
``--forward KIND=BATCH[/LAYOUT[/PRECISION]]`` overrides, :mod:`extractors.calibration` times candidates on
the machine, and :func:`check_precision` falls back to float32 where a reduced precision moves the
features beyond :data:`PRECISION_TOLERANCE`.

Defaults (docs/extraction.md): on CPU small forwards (measured fastest: ResNet152 in forwards of 8 frames,
R(2+1)D-18 of 2 snippets, channels-last layouts from 112 px) in float32; on CUDA large forwards under
float16 autocast (not measured here: no GPU).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

import torch

from avvp.errors import InputError

if TYPE_CHECKING:
    from extractors.networks import FeatureNetwork

log = logging.getLogger(__name__)

CONTIGUOUS, CHANNELS_LAST, CHANNELS_LAST_3D = "contiguous", "channels_last", "channels_last_3d"
MEMORY_FORMATS = {
    CONTIGUOUS: torch.contiguous_format,
    CHANNELS_LAST: torch.channels_last,
    CHANNELS_LAST_3D: torch.channels_last_3d,
}
FLOAT32, FLOAT16, BFLOAT16 = "float32", "float16", "bfloat16"
PRECISIONS = {FLOAT32: torch.float32, FLOAT16: torch.float16, BFLOAT16: torch.bfloat16}
PRECISION_TOLERANCE = 2e-3
"""Largest error a reduced precision may cause on the probe batch, relative to the largest float32 feature:
``max|reduced - fp32| / max|fp32|``. Beyond it the network runs in float32."""


@dataclass(frozen=True)
class ForwardPlan:
    """One network's forward passes: ``batch`` items per call (frames, snippets or examples: the network's
    unit), the input and weights' ``layout`` (a key of :data:`MEMORY_FORMATS`) and the autocast
    ``precision`` (a key of :data:`PRECISIONS`; float32 is no autocast)."""

    batch: int
    layout: str = CONTIGUOUS
    precision: str = FLOAT32

    def __str__(self) -> str:
        return f"{self.batch}/{self.layout}/{self.precision}"


@dataclass(frozen=True)
class ForwardSpec:
    """What a network kind declares about its forward passes.

    ``unit``: what one item of a batch is (``frames``); ``layouts``: the memory layouts it runs in;
    ``batches``: batch sizes worth timing (:mod:`extractors.calibration`); ``defaults``: device type
    (``cpu``, ``cuda``) -> the plan used without measurement or override; ``precisions``: the precisions
    it may run in (float32 only for a network outside torch, e.g. the TF-Hub VGGish).
    """

    unit: str
    layouts: tuple[str, ...]
    batches: tuple[int, ...]
    defaults: Mapping[str, ForwardPlan]
    precisions: tuple[str, ...] = (FLOAT32, FLOAT16, BFLOAT16)
    fallback: ForwardPlan = field(default_factory=lambda: ForwardPlan(16))

    def default(self, device: torch.device) -> ForwardPlan:
        """The plan on ``device`` (its type's default, else :attr:`fallback`)."""
        return self.defaults.get(device.type, self.fallback)

    def check(self, kind: str, plan: ForwardPlan) -> ForwardPlan:
        """``plan`` when this kind supports its layout and precision; else :class:`InputError`."""
        if plan.layout not in self.layouts:
            raise InputError(
                f"--forward {kind}: layout {plan.layout!r} not supported; choose from {self.layouts}"
            )
        if plan.precision not in self.precisions:
            raise InputError(
                f"--forward {kind}: precision {plan.precision!r} not supported; choose from {self.precisions}"
            )
        return plan

    def candidates(self) -> list[ForwardPlan]:
        """Every float32 (batch, layout) pair worth timing."""
        return [ForwardPlan(batch, layout) for layout in self.layouts for batch in self.batches]


def parse_forward_option(values: Sequence[str] | None, kinds: Sequence[str]) -> dict[str, ForwardPlan]:
    """``["resnet152=8/channels_last", "vggish=40"]`` -> kind -> :class:`ForwardPlan` (layout default
    ``contiguous``, precision ``float32``). Values may also be comma-separated. Raises :class:`InputError`
    naming the item for an unknown kind, a batch that is not a positive integer, or an unknown layout or
    precision (whether the network supports them is checked when it is built)."""
    plans = {}
    items = [item.strip() for value in values or () for item in value.split(",") if item.strip()]
    for item in items:
        kind, sep, rest = item.partition("=")
        parts = rest.split("/")
        if not sep or not 1 <= len(parts) <= 3:
            raise InputError(
                f"--forward {item!r}: expected KIND=BATCH[/LAYOUT[/PRECISION]], e.g. resnet152=8"
            )
        if kind not in kinds:
            raise InputError(f"--forward {item!r}: kind {kind!r} is not extracted; kinds: {list(kinds)}")
        batch, layout, precision = parts + [CONTIGUOUS, FLOAT32][len(parts) - 1 :]
        if not batch.isdigit() or int(batch) < 1:
            raise InputError(f"--forward {item!r}: batch {batch!r} is not a positive integer")
        if layout not in MEMORY_FORMATS or precision not in PRECISIONS:
            raise InputError(
                f"--forward {item!r}: layout must be one of {list(MEMORY_FORMATS)}, precision one of "
                f"{list(PRECISIONS)}"
            )
        plans[kind] = ForwardPlan(int(batch), layout, precision)
    return plans


def precision_context(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    """Autocast to ``precision`` on ``device`` (nothing for float32)."""
    if precision == FLOAT32:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=PRECISIONS[precision])


def relative_error(reduced: torch.Tensor, reference: torch.Tensor) -> float:
    """``max|reduced - reference| / max|reference|`` (0 when both are all zeros)."""
    scale = reference.abs().max().item()
    error = (reduced.float() - reference).abs().max().item()
    return error / scale if scale > 0 else error


def check_precision(
    network: FeatureNetwork, rows: torch.Tensor, tolerance: float = PRECISION_TOLERANCE
) -> FeatureNetwork:
    """``network`` as it is when its plan is float32 or its features of the probe ``rows`` (input rows of
    one batch, on any device) stay within ``tolerance`` (:func:`relative_error`) of float32; otherwise the
    network with a float32 plan, with a warning giving the error."""
    plan = network.plan
    if plan.precision == FLOAT32:
        return network
    probe = rows[: plan.batch * network.group].to(network.device)
    with torch.inference_mode():
        reference = network.forward(probe).float()
        with precision_context(network.device, plan.precision):
            reduced = network.forward(probe)
    error = relative_error(reduced, reference)
    if error <= tolerance:
        log.info(
            "%s: %s within %.1e of float32 on the probe batch (%.1e)",
            network.kind,
            plan.precision,
            tolerance,
            error,
        )
        return network
    log.warning(
        "%s: %s moves the features by %.1e of float32 on the probe batch (more than %.1e): using float32",
        network.kind,
        plan.precision,
        error,
        tolerance,
    )
    return network.with_plan(replace(plan, precision=FLOAT32))
