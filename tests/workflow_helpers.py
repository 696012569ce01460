"""Shared helpers of the workflow, demo and report tests: synthetic run outputs and the repository root."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from avvp.data.features import FEATURE_SHAPES, LLP_KINDS, FeatureStoreWriter
from avvp.data.labels import CLASSES, NUM_CLASSES, NUM_SEGMENTS
from avvp.evaluation.metrics import llp_scores
from avvp.preparation.download import ClipStatus, write_manifest

REPO = Path(__file__).resolve().parents[1]


def synthetic_metrics(seed: int, n: int = 6, noise: float = 0.2) -> dict:
    """LLP metrics of predictions that flip a fraction ``noise`` of random ground-truth segments."""
    rng = np.random.default_rng(seed)
    gt = np.zeros((2, n, NUM_SEGMENTS, NUM_CLASSES), dtype=bool)
    gt[:, :, :, :4] = rng.random((2, n, NUM_SEGMENTS, 4)) < 0.4
    pred = gt ^ (rng.random(gt.shape) < noise) & (np.arange(NUM_CLASSES) < 4)
    return llp_scores(pred[0], pred[1], gt[0], gt[1])


def write_run(results: Path, experiments: list[str]) -> None:
    """Write metrics JSONs, ``history.jsonl`` and ``attention.json`` of ``experiments`` plus the baseline."""
    for i, name in enumerate([*experiments, "weak_baseline"]):
        path = results / "metrics" / f"{name}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(synthetic_metrics(i, noise=0.1 + 0.2 * (name == "weak_baseline"))))
    for name in experiments:
        train = results / "train" / name
        train.mkdir(parents=True)
        history = [
            {
                "epoch": e,
                "lr": 1e-3,
                "loss": 1.0 / e,
                "val": {"segment": {"audio": 10.0 * e, "visual": 9.0 * e, "type": 8.0 * e}},
            }
            for e in range(1, 4)
        ]
        (train / "history.jsonl").write_text("".join(json.dumps(r) + "\n" for r in history))
        edges = np.linspace(0, 1, 5).tolist()
        classes = {
            c: {"mean_audio": 0.6, "mean_visual": 0.4, "std_audio": 0.1, "histogram": [0, 1, 5, 2]}
            for c in CLASSES
        }
        (train / "attention.json").write_text(
            json.dumps({"split": "val", "bin_edges": edges, "classes": classes})
        )


def write_store(path: Path, video_ids: list[str]) -> None:
    """A feature store with all three kinds of ``video_ids``, stamped as random-init weights."""
    with FeatureStoreWriter(path) as store:
        for kind, shape in ((kind, FEATURE_SHAPES[kind]) for kind in LLP_KINDS):
            store.set_attrs(kind, {"extractor": kind, "weights": "random-init(seed=0)", "frame_size": 64})
            for vid in video_ids:
                store.add(kind, vid, np.zeros(shape, dtype=np.float32))


def write_manifest_with_missing(path: Path, present: list[str], missing: list[str]) -> None:
    """A download manifest where ``present`` clips exist and ``missing`` ones were unavailable."""
    statuses = [ClipStatus(c, "present", f"videos/{c}.mp4") for c in present]
    statuses += [ClipStatus(c, "unavailable", detail="Video unavailable") for c in missing]
    write_manifest(path, statuses)


WORKFLOW_FILES = (
    "Snakefile",
    "workflow",
    "profiles",
    "config",
    "resources/paper_results.csv",
    "resources/configs",
)


def fresh_checkout(destination: Path) -> Path:
    """Copy the workflow's files (Snakefile, workflow/, config/, reference CSV) to ``destination``: a clean
    working directory like a fresh clone, without the repository's data/, results/ or .snakemake/."""
    import shutil

    for name in WORKFLOW_FILES:
        source = REPO / name
        target = destination / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, target)
    return destination


def snakemake(workdir: Path, *args: str, timeout: float = 120):
    """Run ``snakemake`` in ``workdir`` with ``args``; returns the completed process (output captured)."""
    import subprocess
    import sys

    command = [sys.executable, "-m", "snakemake", "--cores", "1", *args]
    return subprocess.run(command, cwd=workdir, capture_output=True, text=True, timeout=timeout, check=False)


def job_counts(output: str) -> dict[str, int]:
    """The 'Job stats' table of a Snakemake dry run as ``{rule: count}``."""
    counts: dict[str, int] = {}
    lines = output.splitlines()
    start = lines.index("Job stats:") + 3
    for line in lines[start:]:
        parts = line.split()
        if len(parts) != 2 or not parts[1].isdigit():
            break
        counts[parts[0]] = int(parts[1])
    return counts
