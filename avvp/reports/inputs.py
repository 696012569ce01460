"""Reading what a report shows: metrics, training history, attention, coverage, weights identity, AVG
pretraining (grounding graphs and pretraining histories)."""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from avvp.data.features import FeatureStore
from avvp.data.pseudo_labels import PseudoLabels
from avvp.decision_rules import DECISION_FILE
from avvp.errors import InputError
from avvp.evaluation import METRIC_NAMES
from avvp.io import read_text
from avvp.preparation.download import read_manifest
from avvp.pretraining.graphs import GraphStore

LEVELS = ("segment", "event")
METRIC_TITLES = ("Audio", "Visual", "Audio-visual", "Type@AV", "Event@AV")
DISCRIMINATOR_ACCURACY = "modality_discriminator_accuracy"
"""Key of a ``history.jsonl`` record: the epoch's mean accuracy of the adversarial modality discriminator."""
MODULATION = {
    "omega": (lambda v: 0 < v < math.inf, "a positive number"),
    "mu_audio": (lambda v: 0 < v <= 1, "in (0, 1]"),
    "mu_visual": (lambda v: 0 < v <= 1, "in (0, 1]"),
}
"""Keys of a ``history.jsonl`` record written by dynamic gradient modulation (epoch means of ``omega_{v-a}``,
``mu_a``, ``mu_v``), each with its check and the range it states."""
GRAPH_SUMMARY = (
    "visual_threshold",
    "visual_quantile",
    "audio_threshold",
    "audio_quantile",
    "clips",
    "clips_skipped",
    "components_mean",
    "components_histogram",
    "positive_pair_share",
)
"""Attributes of a grounding-graph file (``avvp build-graphs``) that the report shows."""


def read_json(path: str | Path) -> Any:
    """Parse a JSON file; an :class:`InputError` naming it when it is absent or malformed."""
    path = Path(path)
    try:
        return json.loads(read_text(path))
    except FileNotFoundError:
        raise InputError(f"{path}: file not found") from None
    except json.JSONDecodeError as err:
        raise InputError(f"{path}: not valid JSON ({err})") from None


def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    """Parse a JSON-lines file (one object per line); empty list when the file is absent."""
    path = Path(path)
    if not path.is_file():
        return []
    lines = read_text(path).splitlines()
    try:
        return [json.loads(line) for line in lines if line.strip()]
    except json.JSONDecodeError as err:
        raise InputError(f"{path}: not valid JSON lines ({err})") from None


def check_metrics(path: str | Path, metrics: dict[str, Any]) -> dict[str, Any]:
    """Return ``metrics`` after checking it holds the ten LLP numbers; :class:`InputError` otherwise."""
    for level in LEVELS:
        missing = [m for m in METRIC_NAMES if not isinstance(metrics.get(level, {}).get(m), int | float)]
        if missing:
            raise InputError(f"{path}: metrics lack {level}-level {', '.join(missing)}")
    return metrics


@dataclass
class Experiment:
    """One experiment of the run: its scores, the paper methods it reproduces, and its training records.

    ``best_epoch`` is the epoch of the selected model (``val_metrics.json``) when known;
    ``discriminator_accuracy`` maps epochs to the modality discriminator's accuracy (adversarial models);
    ``modulation`` maps each key of :data:`MODULATION` to its values by epoch (runs with gradient modulation);
    ``decision_rule`` is the rule its predictions were decided with (``fused``, ``modality``) when recorded;
    ``random_init_teacher`` says that the pseudo-labels it trained on come from a teacher with
    ``random-init`` weights (the offline demo's), which makes its scores meaningless.
    """

    name: str
    paper_methods: list[str]
    metrics: dict[str, Any]
    history: list[dict[str, Any]] = field(default_factory=list)
    attention: dict[str, Any] | None = None
    best_epoch: int | None = None
    discriminator_accuracy: dict[int, float] = field(default_factory=dict)
    modulation: dict[str, dict[int, float]] = field(default_factory=dict)
    decision_rule: str | None = None
    random_init_teacher: bool = False


def trained_on_random_init_teacher(train_dir: str | Path) -> bool:
    """Whether the run in ``train_dir`` trained on pseudo-labels (``pseudo_labels`` of its ``config.yaml``)
    whose teacher has ``random-init`` weights in either modality. A pseudo-label file no longer there is an
    :class:`InputError` naming it."""
    config_path = Path(train_dir) / "config.yaml"
    if not config_path.is_file():
        return False
    pseudo_labels = (yaml.safe_load(read_text(config_path)) or {}).get("pseudo_labels")
    if pseudo_labels is None:
        return False
    with PseudoLabels(pseudo_labels) as labels:
        teacher = labels.teacher
    return any(
        str(teacher.get(modality, {}).get("extractor", {}).get("weights", "")).startswith("random-init")
        for modality in ("audio", "visual")
    )


def epoch_values(
    path: str | Path,
    history: Sequence[dict[str, Any]],
    key: str,
    valid: Callable[[float], bool],
    expected: str,
) -> dict[int, float]:
    """Epoch -> value of ``key``, for the records of ``history`` (read from ``path``) that have it;
    :class:`InputError` naming the epochs whose value is not a number passing ``valid`` (``expected``
    says which range)."""
    values = {r["epoch"]: r[key] for r in history if key in r}
    bad = [e for e, v in values.items() if not (isinstance(v, int | float) and valid(v))]
    if bad:
        raise InputError(f"{path}: {key} is not {expected} in epoch(s) {bad}")
    return {epoch: float(v) for epoch, v in values.items()}


def discriminator_accuracy(path: str | Path, history: Sequence[dict[str, Any]]) -> dict[int, float]:
    """Epoch -> modality discriminator accuracy (see :func:`epoch_values`): a fraction in [0, 1]."""
    return epoch_values(path, history, DISCRIMINATOR_ACCURACY, lambda a: 0 <= a <= 1, "in [0, 1]")


def modulation_curves(path: str | Path, history: Sequence[dict[str, Any]]) -> dict[str, dict[int, float]]:
    """Each key of :data:`MODULATION` that ``history`` records -> its values by epoch (see :func:`epoch_values`)."""
    curves = {key: epoch_values(path, history, key, *check) for key, check in MODULATION.items()}
    return {key: values for key, values in curves.items() if values}


def load_experiment(
    name: str,
    paper_methods: list[str],
    metrics_path: str | Path,
    train_dir: str | Path,
    predict_dir: str | Path,
) -> Experiment:
    """Read an experiment's metrics JSON, ``train_dir/history.jsonl``, the selected epoch of
    ``train_dir/val_metrics.json`` and its attention distribution: ``predict_dir/attention.json``
    (evaluation split) when present, else ``train_dir/attention.json``; the decision rule of
    ``predict_dir/decision.json`` when present."""
    metrics = check_metrics(metrics_path, read_json(metrics_path))
    history_path = Path(train_dir) / "history.jsonl"
    history = read_jsonl(history_path)
    val_metrics = Path(train_dir) / "val_metrics.json"
    best_epoch = read_json(val_metrics).get("epoch") if val_metrics.is_file() else None
    candidates = [Path(predict_dir) / "attention.json", Path(train_dir) / "attention.json"]
    attention = next((read_json(p) for p in candidates if p.is_file()), None)
    decision = Path(predict_dir) / DECISION_FILE
    rule = read_json(decision).get("rule") if decision.is_file() else None
    return Experiment(
        name,
        paper_methods,
        metrics,
        history,
        attention,
        best_epoch,
        discriminator_accuracy(history_path, history),
        modulation_curves(history_path, history),
        rule,
        trained_on_random_init_teacher(train_dir),
    )


@dataclass
class Coverage:
    """How many clips the run has: per download status, and the missing ones."""

    total: int
    by_status: dict[str, int]
    missing: list[str]


def read_coverage(manifests: Sequence[str | Path]) -> Coverage | None:
    """Summarise the download manifests of all shards; None when there are none (imported features)."""
    if not manifests:
        return None
    statuses = [s for path in manifests for s in read_manifest(path)]
    return Coverage(
        total=len(statuses),
        by_status=dict(sorted(Counter(s.status for s in statuses).items())),
        missing=[s.clip for s in statuses if not s.available],
    )


def read_feature_identity(path: str | Path) -> dict[str, dict[str, Any]]:
    """Per feature kind of a store: its attributes (extractor, weights, sampling, versions) and ``clips``."""
    with FeatureStore(path) as store:
        return {kind: {"clips": len(store.video_ids(kind)), **store.attrs(kind)} for kind in store.kinds}


def read_graph_summary(path: str | Path) -> dict[str, Any]:
    """The attributes of a grounding-graph file (thresholds, clips, components, positive pairs);
    :class:`InputError` naming the file when it is absent, not a graph file, or lacks one of
    :data:`GRAPH_SUMMARY`."""
    attrs = GraphStore(path).attrs
    missing = [key for key in GRAPH_SUMMARY if key not in attrs]
    if missing:
        raise InputError(f"{path}: grounding graph file lacks the attribute(s) {', '.join(missing)}")
    return attrs


def read_pretraining_history(directory: str | Path) -> list[dict[str, Any]]:
    """The ``history.jsonl`` of an ``avvp pretrain`` output directory; :class:`InputError` naming the file
    when it is absent, empty, or has a record without a numeric ``epoch`` and ``loss``."""
    path = Path(directory) / "history.jsonl"
    if not path.is_file():
        raise InputError(f"{path}: file not found")
    history = read_jsonl(path)
    if not history:
        raise InputError(f"{path}: no epoch recorded")
    bad = [
        line
        for line, record in enumerate(history, start=1)
        if not all(isinstance(record.get(key), int | float) for key in ("epoch", "loss"))
    ]
    if bad:
        raise InputError(f"{path}: record(s) {bad} lack a numeric epoch or loss")
    return history


def read_pretraining(runs: Sequence[Sequence[str]]) -> dict[str, list[dict[str, Any]]]:
    """Variant -> pretraining history, for ``(variant, directory)`` pairs in the order given;
    :class:`InputError` for a variant given twice or a bad history."""
    histories: dict[str, list[dict[str, Any]]] = {}
    for variant, directory in runs:
        if variant in histories:
            raise InputError(f"pretraining variant {variant!r} is given twice")
        histories[variant] = read_pretraining_history(directory)
    return histories
