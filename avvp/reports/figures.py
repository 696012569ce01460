"""The report's figures (PNG, matplotlib without a display): per-class F1, modality attention, training curves,
gradient modulation, for AVG pretraining the grounding graphs' connected components and the pretraining loss,
and for label denoising and refinement the shares of each class's labels found noisy or removed."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.ticker import MaxNLocator

from avvp.data.labels import CLASSES
from avvp.io import atomic_path
from avvp.reports.inputs import Experiment
from avvp.training.noise_ratios import NoiseRatios

LOSS_PARTS = {"L_u": "--", "L_x": "-."}
"""Line style of each part of the AVG pretraining loss (``L_avg`` itself is solid)."""


def _save(figure: plt.Figure, path: Path) -> Path:
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
    plt.close(figure)
    return path


def present_classes(methods: Sequence[tuple[str, dict[str, Any]]]) -> list[str]:
    """Classes with a segment-level per-class F1 in any of ``methods`` ((name, metrics) pairs), in class order."""
    first = methods[0][1]["per_class"]["segment"]["audio"]
    return [
        c
        for c in first
        if any(
            m["per_class"]["segment"][mod][c] is not None for _, m in methods for mod in ("audio", "visual")
        )
    ]


def per_class_f1(methods: Sequence[tuple[str, dict[str, Any]]], path: Path) -> Path:
    """Grouped bars of segment-level per-class F1 (%), audio and visual panels, one bar per method; the
    legend sits below the panels, outside them, so that it never hides a bar."""
    classes = present_classes(methods)
    figure, axes = plt.subplots(
        2, 1, figsize=(max(6.0, 0.9 * len(classes) + 2), 7.0), sharex=True, layout="constrained"
    )
    width = 0.8 / len(methods)
    x = np.arange(len(classes))
    for ax, modality in zip(axes, ("audio", "visual"), strict=True):
        for i, (name, metrics) in enumerate(methods):
            scores = [metrics["per_class"]["segment"][modality][c] or 0.0 for c in classes]
            ax.bar(x + (i - (len(methods) - 1) / 2) * width, scores, width, label=name)
        ax.set_ylabel(f"{modality} F1 (%)")
        ax.set_ylim(0, 100)
        ax.grid(axis="y", alpha=0.3)
    axes[1].set_xticks(x, classes, rotation=45, ha="right")
    figure.suptitle("Segment-level F1 per class (TP/FP/FN pooled over the split)")
    handles, labels = axes[0].get_legend_handles_labels()
    figure.legend(handles, labels, loc="outside lower center", fontsize="small", ncols=min(len(methods), 4))
    return _save(figure, path)


def attention(experiments: Sequence[Experiment], classes: Sequence[str], path: Path) -> Path | None:
    """Per experiment, the distribution of the audio share of the modality attention for each class."""
    shown = [e for e in experiments if e.attention]
    if not shown:
        return None
    figure, axes = plt.subplots(1, len(shown), figsize=(5.5 * len(shown), 3.8), squeeze=False)
    for ax, experiment in zip(axes[0], shown, strict=True):
        edges = np.asarray(experiment.attention["bin_edges"])
        centres = (edges[:-1] + edges[1:]) / 2
        for name in classes:
            counts = np.asarray(experiment.attention["classes"][name]["histogram"], dtype=float)
            if counts.sum() > 0:
                ax.plot(centres, counts / counts.sum(), drawstyle="steps-mid", label=name)
        ax.set_xlim(0, 1)
        ax.set_xlabel("audio share of the modality attention (visual = 1 - audio)")
        ax.set_ylabel("fraction of segments")
        ax.set_title(f"{experiment.name} ({experiment.attention.get('split', '?')} split)")
        ax.legend(fontsize="x-small")
    return _save(figure, path)


def _epoch_curve(
    ax: plt.Axes, history: Sequence[dict[str, Any]], key: str, style: str, color: str, label: str
) -> None:
    """Plot ``key`` against the epoch for the records of ``history`` that have it (nothing when none has)."""
    records = [r for r in history if key in r]
    if records:
        ax.plot([r["epoch"] for r in records], [r[key] for r in records], style, color=color, label=label)


def _decorate_epochs(ax: plt.Axes) -> None:
    """Integer epoch ticks, a light grid and a small legend."""
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(alpha=0.3)
    ax.legend(fontsize="x-small")


def _loss_panel(ax: plt.Axes, experiments: Sequence[Experiment], colors: dict[str, str]) -> None:
    for experiment in experiments:
        _epoch_curve(ax, experiment.history, "loss", "-", colors[experiment.name], experiment.name)
    ax.set(xlabel="epoch", ylabel="training loss", title="Training loss")


def _validation_panel(ax: plt.Axes, experiments: Sequence[Experiment], colors: dict[str, str]) -> None:
    for experiment in experiments:
        epochs = [r["epoch"] for r in experiment.history]
        for metric, style in (("type", "-"), ("audio", "--"), ("visual", ":")):
            values = [r.get("val", {}).get("segment", {}).get(metric) for r in experiment.history]
            if any(v is not None for v in values):
                ax.plot(
                    epochs, values, style, color=colors[experiment.name], label=f"{experiment.name} {metric}"
                )
    ax.set(xlabel="epoch", ylabel="F1 (%)", title="Validation, segment level")


def _discriminator_panel(ax: plt.Axes, experiments: Sequence[Experiment], colors: dict[str, str]) -> None:
    for experiment in experiments:
        accuracy = experiment.discriminator_accuracy
        ax.plot(list(accuracy), list(accuracy.values()), color=colors[experiment.name], label=experiment.name)
    ax.axhline(0.5, color="grey", linestyle="--", label="0.5: cannot tell")
    ax.set(xlabel="epoch", ylabel="accuracy", ylim=(0, 1), title="Modality discriminator (audio vs visual)")


def training_curves(experiments: Sequence[Experiment], path: Path) -> Path | None:
    """Training loss and validation segment-level F1 (audio, visual, Type@AV) per epoch and, when some
    experiment records it, the modality discriminator's accuracy (experiments without it are left out).
    Each experiment keeps its colour across the panels."""
    shown = [e for e in experiments if e.history]
    if not shown:
        return None
    colors = {e.name: f"C{i}" for i, e in enumerate(shown)}
    panels = [(_loss_panel, shown), (_validation_panel, shown)]
    adversarial = [e for e in shown if e.discriminator_accuracy]
    if adversarial:
        panels.append((_discriminator_panel, adversarial))
    figure, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels), 3.8))
    for ax, (draw, drawn) in zip(axes, panels, strict=True):
        draw(ax, drawn, colors)
        _decorate_epochs(ax)
    return _save(figure, path)


def gradient_modulation(experiments: Sequence[Experiment], path: Path) -> Path | None:
    """For the experiments trained with gradient modulation (None when there is none): ``omega_{v-a}`` per
    epoch beside the balance line 1, and ``mu_a`` (solid) and ``mu_v`` (dashed) per epoch."""
    shown = [e for e in experiments if e.modulation]
    if not shown:
        return None
    figure, (omega_ax, mu_ax) = plt.subplots(1, 2, figsize=(11.0, 3.8))
    for i, experiment in enumerate(shown):
        curves, color = experiment.modulation, f"C{i}"
        for ax, key, style, label in (
            (omega_ax, "omega", "-", experiment.name),
            (mu_ax, "mu_audio", "-", f"{experiment.name}: audio"),
            (mu_ax, "mu_visual", "--", f"{experiment.name}: visual"),
        ):
            values = curves.get(key, {})
            ax.plot(list(values), list(values.values()), style, color=color, label=label)
    omega_ax.axhline(1.0, color="grey", linestyle=":", label="1: balanced")
    omega_ax.set(xlabel="epoch", ylabel="omega (v-a)", title="Imbalance: visual over audio progress (eq. 6)")
    mu_ax.set(xlabel="epoch", ylabel="mu", title="Gradient coefficients (eq. 7)")
    mu_ax.set_ylim(top=1.02)
    for ax in (omega_ax, mu_ax):
        _decorate_epochs(ax)
    return _save(figure, path)


def components_histogram(histogram: Sequence[int], path: Path) -> Path:
    """Bars of the number of clips whose grounding graph has 1, 2, ... connected components."""
    figure, ax = plt.subplots(figsize=(5.5, 3.5))
    components = np.arange(1, len(histogram) + 1)
    ax.bar(components, histogram)
    ax.set_xticks(components)
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(axis="y", alpha=0.3)
    ax.set(
        xlabel="connected components (1: all snippet pairs positive; 10: none)",
        ylabel="clips",
        title="Grounding graphs: connected components per clip",
    )
    return _save(figure, path)


def pretraining_losses(histories: dict[str, Sequence[dict[str, Any]]], path: Path) -> Path:
    """The AVG pretraining loss per epoch of each variant (``histories``: variant -> history): ``L_avg``
    solid, its parts ``L_u`` dashed and ``L_x`` dash-dotted where recorded, one colour per variant."""
    figure, ax = plt.subplots(figsize=(5.5, 3.8))
    for i, (variant, history) in enumerate(histories.items()):
        _epoch_curve(ax, history, "loss", "-", f"C{i}", f"{variant}: L_avg")
        for part, style in LOSS_PARTS.items():
            _epoch_curve(ax, history, part, style, f"C{i}", f"{variant}: {part}")
    ax.set(xlabel="epoch", ylabel="grounding loss", title="AVG pretraining loss")
    _decorate_epochs(ax)
    return _save(figure, path)


def class_shares(shares: dict[str, NoiseRatios], path: Path, xlabel: str, title: str) -> Path:
    """Horizontal bars per class of a share of its training labels, audio and visual, for each source
    (``shares``: name -> shares per modality, e.g. a noise estimator's ratios); classes in the published
    order, top down."""
    bars = [(name, modality) for name in shares for modality in ("audio", "visual")]
    height = 0.8 / len(bars)
    rows = np.arange(len(CLASSES))
    figure, ax = plt.subplots(figsize=(6.5, 0.28 * len(CLASSES) + 1.2))
    for i, (name, modality) in enumerate(bars):
        label = modality if len(shares) == 1 else f"{name}: {modality}"
        values = getattr(shares[name], modality)
        ax.barh(rows + (i - (len(bars) - 1) / 2) * height, values, height, label=label)
    ax.set_yticks(rows, CLASSES, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.grid(axis="x", alpha=0.3)
    ax.set(xlabel=xlabel, title=title)
    ax.legend(fontsize=8)
    return _save(figure, path)
