"""LLP-scale rehearsal of the workflow on the test SLURM cluster (tests/cluster/slurm.sh), not run in CI.

Synthetic features in the released layout (one ``<YouTube id>.npy`` per clip and kind: VGGish 10x128,
ResNet152 80x2048, R(2+1)D-18 10x512; and for the ``valor`` teacher VALOR's CLIP 10x768 and CLAP 64x768
features and 0/1 segment pseudo-labels within each clip's weak labels; seeded random numbers, not real
features) for the first --clips clips
of the LLP annotations (train, val and test in LLP's proportions), imported with the workflow's
``import_features`` rule, then the whole LLP DAG (config/llp.yaml: 49 experiments, pretraining, noise
estimation, label refinement) through the SLURM executor plugin, with every training cut to one epoch.
It records the wall time of the run and of the dry run, per rule the jobs' wall time and peak memory (the
rules' benchmark files) and the disk each stage's outputs take, in WORKDIR/rehearsal.json and as a table.

    python benchmarks/rehearse_llp.py --clips 1000 --annotations ../shared/llp

Scores are meaningless (random features, one epoch): this sizes a run, it does not reproduce one.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import yaml

from avvp.data.annotations import FULL_DATASET, GT_AUDIO, GT_VISUAL, SPLIT_FILES
from avvp.data.features import FEATURE_SHAPES
from avvp.data.labels import CLASSES, NUM_SEGMENTS

REPO = Path(__file__).resolve().parents[1]
SLURM_SCRIPT = REPO / "tests" / "cluster" / "slurm.sh"
LLP_CLIPS = {"train": 10000, "val": 649, "test": 1200}
FOLDERS = {"vggish": "vggish", "res152": "resnet152", "r2plus1d": "r2plus1d"}
"""The workflow's features.import keys and the feature kinds they hold."""
TEACHER_FOLDERS = {"clip": "clip", "clap": "clap"}
"""The teachers' import keys of feature folders (VALOR's CLIP.zip / CLAP.zip) and the kinds they hold."""
LABEL_FOLDERS = ("visual_labels", "audio_labels")
"""The teachers' import keys of VALOR's released segment-level pseudo-label folders."""
STAGE_OUTPUTS = {
    "released features (input)": "released",
    "feature store": "data/features",  # under WORKDIR (the run's data_root)
    "splits": "results/llp/splits",
    "pretraining (graphs, encoders)": "results/llp/pretraining",
    "noise estimation": "results/llp/denoising",
    "label refinement": "results/llp/refinement",
    "train (all experiments)": "results/llp/train",
    "predict (all experiments)": "results/llp/predict",
    "metrics + report": "results/llp/report",
}


def read_rows(path: Path) -> tuple[list[str], list[list[str]]]:
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle, delimiter="\t"))
    return rows[0], [row for row in rows[1:] if row]


def write_rows(path: Path, header: list[str], rows: list[list[str]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle, delimiter="\t", lineterminator="\n").writerows([header, *rows])


def write_annotations(source: Path, destination: Path, clips: int) -> list[str]:
    """The LLP annotation files cut to ``clips`` clips (the first of each split, in LLP's proportions);
    returns the clips' filenames."""
    destination.mkdir(parents=True, exist_ok=True)
    kept: set[str] = set()
    for split, name in SPLIT_FILES.items():
        header, rows = read_rows(source / name)
        rows = rows[: max(1, round(clips * LLP_CLIPS[split] / sum(LLP_CLIPS.values())))]
        kept |= {row[0] for row in rows}
        write_rows(destination / name, header, rows)
    for name in (FULL_DATASET, GT_AUDIO, GT_VISUAL):
        header, rows = read_rows(source / name)
        write_rows(destination / name, header, [row for row in rows if row[0] in kept])
    return sorted(kept)


def write_released_features(folder: Path, clips: list[str], seed: int = 0) -> None:
    """One seeded random ``<YouTube id>.npy`` per clip and kind, in the released shapes."""
    for option, kind in FOLDERS.items():
        (folder / option).mkdir(parents=True, exist_ok=True)
        for index, clip in enumerate(clips):
            rng = np.random.default_rng([seed, index, len(option)])
            array = rng.standard_normal(FEATURE_SHAPES[kind], dtype=np.float32)
            np.save(folder / option / f"{clip[:11]}.npy", array)


def write_released_teacher(folder: Path, annotations: Path, clips: list[str], seed: int = 1) -> None:
    """VALOR's released layout for the ``valor`` teacher: seeded random CLIP and CLAP features per clip, and
    0/1 pseudo-labels [10, 25] (int64, as VALOR saves them) in a random half of the segments of each of the
    clip's weak labels (a teacher never labels a class the clip is not labelled with)."""
    header, rows = read_rows(annotations / FULL_DATASET)
    weak = {row[header.index("filename")]: row[header.index("event_labels")].split(",") for row in rows}
    for option in (*TEACHER_FOLDERS, *LABEL_FOLDERS):
        (folder / option).mkdir(parents=True, exist_ok=True)
    for index, clip in enumerate(clips):
        rng = np.random.default_rng([seed, index])
        for option, kind in TEACHER_FOLDERS.items():
            np.save(
                folder / option / f"{clip[:11]}.npy",
                rng.standard_normal(FEATURE_SHAPES[kind], dtype=np.float32),
            )
        labelled = np.isin(CLASSES, weak.get(clip, []))
        for option in LABEL_FOLDERS:
            segments = (rng.random((NUM_SEGMENTS, len(CLASSES))) < 0.5) & labelled
            np.save(folder / option / f"{clip[:11]}.npy", segments.astype(np.int64))


def rehearsal_config(workdir: Path, gpus: int) -> dict:
    """The overlay on config/llp.yaml: the cut annotations, imported features, one epoch everywhere, and
    stage resources that fit the test node (1 thread, 8 GB, so that two jobs run side by side)."""
    llp = yaml.safe_load((REPO / "config" / "llp.yaml").read_text())
    stages = {
        stage: {"threads": 1, "mem_mb": 8000, "runtime": spec["runtime"], "gpu": spec["gpu"]}
        for stage, spec in llp["cluster"]["stages"].items()
    }
    one_epoch = {"train": {"epochs": 1}}
    return {
        "annotations_dir": str(workdir / "annotations"),
        "data_root": str(workdir / "data"),
        "features": {
            "source": "import",
            "import": {option: str(workdir / "released" / option) for option in FOLDERS},
        },
        "teachers": {
            "valor": {
                "source": "import",
                "import": {
                    option: str(workdir / "released_teacher" / option)
                    for option in (*TEACHER_FOLDERS, *LABEL_FOLDERS)
                },
            }
        },
        "training": {"epochs": 1},
        "pretraining": {"settings": {"epochs": 1}},
        "noise_estimators": {name: one_epoch for name in llp["noise_estimators"]},
        "label_refiners": {name: one_epoch for name in llp["label_refiners"]},
        "cluster": {"gpus": gpus, "stages": stages},
    }


def link_workflow(run_dir: Path) -> None:
    """The working directory of the run: links to the repository's workflow files."""
    run_dir.mkdir(parents=True, exist_ok=True)
    for name in ("Snakefile", "workflow", "config", "resources", "profiles"):
        link = run_dir / name
        if not link.exists():
            link.symlink_to(REPO / name)


def disk_mb(path: Path) -> float:
    """Size of the files under ``path`` in MB (links not followed)."""
    if not path.exists():
        return 0.0
    files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file() and not p.is_symlink()]
    return sum(p.stat().st_size for p in files) / 1e6


def benchmark_table(folder: Path) -> dict[str, dict]:
    """Per rule: jobs, total and longest wall time (s), largest peak RSS (MB), from the benchmark TSVs."""
    table: dict[str, dict] = {}
    for path in sorted(folder.rglob("*.tsv")):
        rule = path.parent.name if path.parent != folder else path.stem
        with path.open(newline="") as handle:
            row = next(csv.DictReader(handle, delimiter="\t"))
        entry = table.setdefault(rule, {"jobs": 0, "total_s": 0.0, "max_s": 0.0, "max_rss_mb": 0.0})
        seconds, rss = float(row["s"]), float(row["max_rss"]) if row["max_rss"] != "NA" else 0.0
        entry["jobs"] += 1
        entry["total_s"] = round(entry["total_s"] + seconds, 1)
        entry["max_s"] = round(max(entry["max_s"], seconds), 1)
        entry["max_rss_mb"] = round(max(entry["max_rss_mb"], rss), 1)
    return table


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--clips", type=int, default=sum(LLP_CLIPS.values()), help="clips (default: all 11849)"
    )
    parser.add_argument(
        "--annotations", type=Path, required=True, help="folder of the six real AVVP_*.csv files"
    )
    parser.add_argument(
        "--workdir", type=Path, default=Path("/tmp/avvp-rehearsal"), help="default: %(default)s"
    )
    parser.add_argument(
        "--gpus", type=int, default=1, help="cluster.gpus of the run (the node declares 2 GPUs)"
    )
    parser.add_argument(
        "--jobs", type=int, default=4, help="SLURM jobs queued at once (default: %(default)s)"
    )
    args = parser.parse_args()

    workdir = args.workdir.resolve()
    clips = write_annotations(args.annotations, workdir / "annotations", args.clips)
    started = time.perf_counter()
    if not (workdir / "released" / "r2plus1d" / f"{clips[-1][:11]}.npy").is_file():
        write_released_features(workdir / "released", clips)
    if not (workdir / "released_teacher" / "audio_labels" / f"{clips[-1][:11]}.npy").is_file():
        write_released_teacher(workdir / "released_teacher", workdir / "annotations", clips)
    print(
        f"{len(clips)} clips; released features written in {time.perf_counter() - started:.0f} s", flush=True
    )

    run_dir = workdir / "run"
    link_workflow(run_dir)
    (run_dir / "rehearsal.yaml").write_text(yaml.safe_dump(rehearsal_config(workdir, args.gpus)))
    configs = ["--configfile", "config/llp.yaml", "rehearsal.yaml"]
    env = {**os.environ, "SLURM_CONF": "/tmp/avvp-slurm/etc/slurm.conf"}
    snakemake = [sys.executable, "-m", "snakemake"]

    started = time.perf_counter()
    dry = subprocess.run([*snakemake, "-n", *configs], cwd=run_dir, capture_output=True, text=True, env=env)
    dry_run_s = time.perf_counter() - started
    if dry.returncode != 0:
        sys.exit(f"dry run failed:\n{dry.stderr[-3000:]}")

    subprocess.run(["bash", str(SLURM_SCRIPT), "start", "gpu"], check=True)
    command = [
        *snakemake, *configs, "--workflow-profile", "workflow/profiles/slurm", "--jobs", str(args.jobs),
        "--slurm-no-account", "--slurm-status-command", "squeue",
        "--slurm-init-seconds-before-status-checks", "2", "--seconds-between-status-checks", "5",
    ]  # fmt: skip
    started = time.perf_counter()
    with (workdir / "snakemake.log").open("w") as log:
        done = subprocess.run(command, cwd=run_dir, stdout=log, stderr=subprocess.STDOUT, env=env)
    wall_s = time.perf_counter() - started
    subprocess.run(["bash", str(SLURM_SCRIPT), "stop"], check=True)

    summary = {
        "clips": len(clips),
        "returncode": done.returncode,
        "wall_s": round(wall_s, 1),
        "dry_run_s": round(dry_run_s, 1),
        "rules": benchmark_table(run_dir / "results" / "llp" / "benchmarks"),
        "disk_mb": {stage: round(disk_mb(workdir / p if p in ("released", "data/features") else run_dir / p), 1) for stage, p in STAGE_OUTPUTS.items()},
    }  # fmt: skip
    (workdir / "rehearsal.json").write_text(json.dumps(summary, indent=2))
    print(f"returncode {done.returncode}; wall time {wall_s / 60:.1f} min; dry run {dry_run_s:.1f} s")
    print("| rule | jobs | total s | longest s | peak RSS MB |\n|---|---|---|---|---|")
    for rule, entry in summary["rules"].items():
        print(f"| {rule} | {entry['jobs']} | {entry['total_s']} | {entry['max_s']} | {entry['max_rss_mb']} |")
    print("| outputs | MB |\n|---|---|")
    for stage, size in summary["disk_mb"].items():
        print(f"| {stage} | {size} |")
    return done.returncode


if __name__ == "__main__":
    raise SystemExit(main())
