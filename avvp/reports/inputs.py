"""Reading what a report shows: metrics, reference numbers, training history, attention, coverage, weights."""

from __future__ import annotations

import csv
import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from avvp.data.features import FeatureStore
from avvp.download import read_manifest
from avvp.errors import InputError

LEVELS = ("segment", "event")
METRICS = ("audio", "visual", "audio_visual", "type", "event")
METRIC_TITLES = ("Audio", "Visual", "Audio-visual", "Type@AV", "Event@AV")


def read_json(path: str | Path) -> Any:
    """Parse a JSON file; an :class:`InputError` naming it when it is absent or malformed."""
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"{path}: file not found") from None
    except json.JSONDecodeError as err:
        raise InputError(f"{path}: not valid JSON ({err})") from None


def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    """Parse a JSON-lines file (one object per line); empty list when the file is absent."""
    path = Path(path)
    if not path.is_file():
        return []
    lines = path.read_text(encoding="utf-8").splitlines()
    try:
        return [json.loads(line) for line in lines if line.strip()]
    except json.JSONDecodeError as err:
        raise InputError(f"{path}: not valid JSON lines ({err})") from None


def check_metrics(path: str | Path, metrics: dict[str, Any]) -> dict[str, Any]:
    """Return ``metrics`` after checking it holds the ten LLP numbers; :class:`InputError` otherwise."""
    for level in LEVELS:
        missing = [m for m in METRICS if not isinstance(metrics.get(level, {}).get(m), int | float)]
        if missing:
            raise InputError(f"{path}: metrics lack {level}-level {', '.join(missing)}")
    return metrics


def read_reference(path: str | Path, paper: str) -> dict[tuple[str, str], dict[str, float]]:
    """Rows of ``paper`` in a reference CSV (paper, table, method, level, five metrics), keyed by (method, level).

    When a method appears in several tables, the first row wins (the main table comes first).
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: reference results not found")
    rows: dict[tuple[str, str], dict[str, float]] = {}
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        missing = {"paper", "method", "level", *METRICS} - set(reader.fieldnames or ())
        if missing:
            raise InputError(f"{path}: missing column(s) {', '.join(sorted(missing))}")
        for row in reader:
            if row["paper"] == paper:
                rows.setdefault((row["method"], row["level"]), {m: float(row[m]) for m in METRICS})
    return rows


@dataclass
class Experiment:
    """One experiment of the run: its scores, the paper method it reproduces, and its training records."""

    name: str
    paper_method: str
    metrics: dict[str, Any]
    history: list[dict[str, Any]] = field(default_factory=list)
    attention: dict[str, Any] | None = None


def load_experiment(
    name: str, paper_method: str, metrics_path: str | Path, train_dir: str | Path, predict_dir: str | Path
) -> Experiment:
    """Read an experiment's metrics JSON, ``train_dir/history.jsonl`` and its attention distribution:
    ``predict_dir/attention.json`` (evaluation split) when present, else ``train_dir/attention.json``."""
    metrics = check_metrics(metrics_path, read_json(metrics_path))
    history = read_jsonl(Path(train_dir) / "history.jsonl")
    candidates = [Path(predict_dir) / "attention.json", Path(train_dir) / "attention.json"]
    attention = next((read_json(p) for p in candidates if p.is_file()), None)
    return Experiment(name, paper_method, metrics, history, attention)


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
