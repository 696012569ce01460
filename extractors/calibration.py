"""Timing a network's candidate forward plans on this machine (``avvp extract --calibrate`` and
``benchmarks/bench_extract.py``): every (batch, layout) its :class:`~extractors.forward_plan.ForwardSpec`
declares, in float32, on the input rows of real clips."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from extractors.forward_plan import ForwardPlan
from extractors.networks import FeatureNetwork
from extractors.pipeline import run_network


@dataclass(frozen=True)
class Timing:
    """Wall seconds of one clip's forward passes under ``plan``."""

    plan: ForwardPlan
    seconds_per_clip: float


def calibration_rows(network: FeatureNetwork, clip_rows: torch.Tensor, plans: Sequence[ForwardPlan]) -> int:
    """How many copies of one clip's input rows fill the largest batch among ``plans`` (at least one)."""
    largest = max(plan.batch * network.group for plan in plans)
    return max(1, -(-largest // len(clip_rows)))


def time_plans(
    network: FeatureNetwork,
    clip_rows: torch.Tensor,
    plans: Sequence[ForwardPlan] | None = None,
    repeats: int = 1,
) -> list[Timing]:
    """Seconds per clip of ``network``'s forward passes on ``clip_rows`` (one clip's input rows, repeated to
    fill the largest batch) under each of ``plans`` (default: the spec's candidates), fastest first.

    Each plan gets one untimed warm-up forward of one batch, then the best of ``repeats`` timed runs of all
    the rows (a loaded machine slows runs; the fastest is the closest to the network's own speed).
    Leaves ``network``'s model in the layout of the last plan timed: use the returned network of
    :meth:`FeatureNetwork.with_plan` afterwards.
    """
    plans = list(plans or network.spec.candidates())
    copies = calibration_rows(network, clip_rows, plans)
    rows = torch.cat([clip_rows] * copies)
    timings = []
    for plan in plans:
        candidate = network.with_plan(plan)
        with torch.inference_mode():
            candidate.forward(rows[: candidate.rows_per_forward].to(candidate.device))
        best = float("inf")
        for _ in range(repeats):
            start = time.perf_counter()
            run_network(candidate, rows, copies)
            best = min(best, time.perf_counter() - start)
        timings.append(Timing(plan, best / copies))
    return sorted(timings, key=lambda timing: timing.seconds_per_clip)
