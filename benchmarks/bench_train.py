"""Benchmark: seconds per training epoch and per full test-split prediction at LLP scale.

Writes LLP-shaped random features (by default 10000 training, 649 validation and 1200 test clips; VGGish
10x128, ResNet152 80x2048, R(2+1)D 10x512, float32 like LLP's released features) and random labels into
``--workdir``, then times, with a training config (default: the published HAN recipe,
resources/configs/han.yaml; ``--config resources/configs/base_adv_skip_gcaa.yaml`` for paper 002's model;
``--set KEY=VALUE`` overrides a setting as in ``avvp train``, e.g. JoMoLD's denoised training with
``--config resources/configs/jomold.yaml --set denoising.noise_ratios=R.npz``):

- loading the training and validation splits into memory (the data-loading cost paid once per run),
- one training epoch (batch 16), with the share of it spent waiting for batches,
- validation on the validation split (part of every epoch),
- ``avvp predict`` on the test split: loading its features, inference, writing the outputs,
- with ``--refine``, ``avvp refine-labels`` (MA's label refinement) on the training split with the trained
  checkpoint: three forward passes per clip (its own tracks, the partner's audio, the partner's picture).

A config whose label denoising or co-training needs noise ratios and has none (``jomold.yaml``,
``han_co_teaching.yaml``, ``han_jocor.yaml``) gets made-up ratios (0.2 for every class and modality,
``noise_ratios.npz`` in the work folder); ``--refined-labels`` trains on made-up refined labels (a random
20 % of each modality's labels removed, as MA's retraining); a config that trains on pseudo-labels
(``valor*.yaml``) without a ``pseudo_labels`` file gets made-up ones (each of a clip's weak labels in a random
half of its segments, per modality). The values change how many labels are left out, not the cost of a step.
Features of every kind are written (CLIP and CLAP too, for ``valor_plus_plus.yaml``); the run loads the ones
its networks read. Results are printed and written as JSON to ``--output``. Run::

    python benchmarks/bench_train.py --workdir /tmp/avvp-bench --output bench_train.json [--config C]
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from avvp.cli import main as avvp_main
from avvp.config_files import read_config_file
from avvp.data.features import FEATURE_SHAPES, FeatureStoreWriter
from avvp.data.labels import CLASSES, NUM_SEGMENTS, read_weak_labels, segments_to_events, write_event_rows
from avvp.data.pseudo_labels import write_pseudo_labels
from avvp.io import atomic_path
from avvp.training.config import TrainConfig, load_config, parse_overrides
from avvp.training.losses import PSEUDO_LABEL_TERMS
from avvp.training.noise_ratios import NoiseRatios, write_noise_ratios
from avvp.training.procedures import build_procedure
from avvp.training.refined_labels import RefinedLabels, write_refined_labels
from avvp.training.trainer import load_data, train

CONFIG = Path(__file__).resolve().parents[1] / "resources" / "configs" / "han.yaml"


def write_dataset(workdir: Path, sizes: dict[str, int], seed: int) -> None:
    """Random features for every clip in ``features.h5`` and random labels in LLP's files."""
    rng = np.random.default_rng(seed)
    annotations = workdir / "annotations"
    annotations.mkdir(parents=True, exist_ok=True)
    ids = {split: [f"{split[:2]}{i:09d}_0_10" for i in range(n)] for split, n in sizes.items()}
    dense = {}
    for split, split_ids in ids.items():
        classes = [rng.choice(len(CLASSES), size=rng.integers(1, 4), replace=False) for _ in split_ids]
        weak = ["filename\tevent_labels"] + [
            f"{v}\t{','.join(CLASSES[c] for c in cs)}" for v, cs in zip(split_ids, classes, strict=True)
        ]
        name = {"train": "AVVP_train.csv", "val": "AVVP_val_pd.csv", "test": "AVVP_test_pd.csv"}[split]
        (annotations / name).write_text("\n".join(weak) + "\n", encoding="utf-8")
        matrix = np.zeros((len(split_ids), NUM_SEGMENTS, len(CLASSES)), dtype=bool)
        for i, cs in enumerate(classes):
            for c in cs:
                onset = rng.integers(0, 9)
                matrix[i, onset : rng.integers(onset + 1, 11), c] = True
        dense[split] = matrix
    events = [e for split in ("val", "test") for e in segments_to_events(ids[split], dense[split])]
    for name in ("AVVP_eval_audio.csv", "AVVP_eval_visual.csv"):  # same random events for both modalities
        write_event_rows(annotations / name, events)
    all_ids = [v for split_ids in ids.values() for v in split_ids]
    with FeatureStoreWriter(workdir / "features.h5") as store:
        for kind in FEATURE_SHAPES:
            store.set_attrs(kind, {"extractor": "benchmark", "weights": f"random-init(seed={seed})"})
        for vid in tqdm(all_ids, desc="writing random features", unit="clip"):
            for kind, shape in FEATURE_SHAPES.items():
                store.add(kind, vid, rng.standard_normal(shape, dtype=np.float32))


def with_made_up_label_files(config: TrainConfig, workdir: Path, refined: bool, seed: int) -> TrainConfig:
    """``config`` with made-up noise ratios where its denoising or co-training has none, and with made-up
    refined labels when ``refined`` (module docstring)."""
    update: dict = {}
    for key in ("denoising", "co_training"):
        section = getattr(config, key)
        if section is not None and section.noise_ratios is None:
            path = workdir / "noise_ratios.npz"
            write_noise_ratios(path, NoiseRatios(np.full(len(CLASSES), 0.2), np.full(len(CLASSES), 0.2)))
            update[key] = section.model_copy(update={"noise_ratios": path})
    if refined:
        split = read_weak_labels(config.split_file("train"))
        labels = split.labels > 0
        rng = np.random.default_rng(seed)
        removed = {m: labels & (rng.random(labels.shape) < 0.2) for m in ("audio", "visual")}
        path = workdir / "refined_labels.npz"
        write_refined_labels(path, RefinedLabels(split.video_ids, labels, removed, [""] * len(labels)))
        update["refined_labels"] = path
    return config.model_copy(update=update)


def made_up_pseudo_labels(workdir: Path, seed: int) -> Path:
    """Write made-up segment-level pseudo-labels of the training clips (module docstring); their path."""
    split = read_weak_labels(workdir / "annotations" / "AVVP_train.csv")
    weak = (split.labels > 0)[:, None, :]
    rng = np.random.default_rng(seed)
    audio, visual = (weak & (rng.random((len(weak), NUM_SEGMENTS, len(CLASSES))) < 0.5) for _ in range(2))
    path = workdir / "pseudo_labels.h5"
    write_pseudo_labels(path, split.video_ids, audio, visual, CLASSES, {"teacher": "benchmark (made up)"})
    return path


def trains_on_pseudo_labels(path: Path, overrides: dict) -> bool:
    """Whether the config at ``path`` (with ``overrides``) names pseudo-label loss terms but no file."""
    raw = read_config_file(path)
    terms = raw.get("loss", {}).get("terms", {})
    return bool(set(terms) & set(PSEUDO_LABEL_TERMS)) and not (
        raw.get("pseudo_labels") or "pseudo_labels" in overrides
    )


def timed_command(argv: list[str]) -> tuple[int, float]:
    """Run an ``avvp`` command in this process; its exit code and wall time in seconds."""
    started = time.perf_counter()
    code = avvp_main(argv)
    return code, time.perf_counter() - started


def write_results(path: Path, results: dict) -> None:
    """Print ``results`` and write them to ``path`` as indented JSON, atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(results, indent=2))


def main() -> int:
    """Parse options, build the dataset if needed, time training and prediction, write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--workdir", type=Path, required=True, help="scratch directory (about 7.5 GB at LLP scale)"
    )
    parser.add_argument("--output", type=Path, required=True, help="JSON file for the results")
    parser.add_argument("--config", type=Path, default=CONFIG, help="training config (default: %(default)s)")
    parser.add_argument("--train-clips", type=int, default=10000)
    parser.add_argument("--val-clips", type=int, default=649)
    parser.add_argument("--test-clips", type=int, default=1200)
    parser.add_argument("--device", default="cpu", help="cpu, cuda or auto (default cpu)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, help="CPU threads for torch (default: torch's own choice)")
    parser.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="override a config setting"
    )
    parser.add_argument(
        "--refined-labels", action="store_true", help="train on made-up refined labels (MA's retraining)"
    )
    parser.add_argument(
        "--refine", action="store_true", help="also time 'avvp refine-labels' on the training split"
    )
    args = parser.parse_args()

    sizes = {"train": args.train_clips, "val": args.val_clips, "test": args.test_clips}
    workdir = args.workdir
    if not (workdir / "features.h5").is_file():
        started = time.perf_counter()
        write_dataset(workdir, sizes, args.seed)
        print(f"dataset written in {time.perf_counter() - started:.1f} s")
    overrides = {
        "features": str(workdir / "features.h5"),
        "annotations_dir": str(workdir / "annotations"),
        "output_dir": str(workdir / "run"),
        "epochs": 1,
        "device": args.device,
        "threads": args.threads,
        **parse_overrides(args.set),
    }
    if trains_on_pseudo_labels(args.config, overrides):
        overrides["pseudo_labels"] = str(made_up_pseudo_labels(workdir, args.seed))
    config = with_made_up_label_files(
        load_config(args.config, overrides), workdir, args.refined_labels, args.seed
    )
    if args.threads:
        torch.set_num_threads(args.threads)
    started = time.perf_counter()
    train_set, val_data = load_data(config, build_procedure(config, torch.device("cpu")).feature_kinds)
    load_seconds = time.perf_counter() - started
    train_set.close()
    val_data.dataset.close()
    train(config, overwrite=True)
    record = json.loads((workdir / "run" / "history.jsonl").read_text().splitlines()[-1])

    options = ["--features", str(workdir / "features.h5"), "--device", args.device]
    options += ["--threads", str(args.threads)] if args.threads else []
    checkpoint = ["--checkpoint", str(workdir / "run" / "best.pt")]
    test_split = ["--split-csv", str(workdir / "annotations" / "AVVP_test_pd.csv")]
    code, predict_seconds = timed_command(
        ["predict", *checkpoint, *test_split, "--output-dir", str(workdir / "pred"), *options]
    )
    if code != 0:
        return code
    refine_seconds = None
    if args.refine:
        train_split = ["--split-csv", str(workdir / "annotations" / "AVVP_train.csv")]
        refined = ["--output", str(workdir / "refined.npz")]
        code, refine_seconds = timed_command(["refine-labels", *checkpoint, *train_split, *refined, *options])
        if code != 0:
            return code
    results = {
        "clips": sizes,
        "config": f"{args.config.name} (batch {config.batch_size}, d_model {config.model.d_model})",
        "overrides": args.set,
        "refined_labels": "made up" if args.refined_labels else None,
        "pseudo_labels": overrides.get("pseudo_labels"),
        "device": args.device,
        "torch_threads": torch.get_num_threads(),
        "machine": {
            "processor": platform.processor() or platform.machine(),
            "python": platform.python_version(),
        },
        "load_train_and_val_into_memory_seconds": load_seconds,
        "train_epoch_seconds": record["seconds"],
        "train_epoch_waiting_for_batches_seconds": record["data_seconds"],
        "train_epoch_data_share": record["data_seconds"] / record["seconds"],
        "train_steps": record["steps"],
        "validation_seconds": record["val_seconds"],
        "predict_test_split_seconds_including_loading": predict_seconds,
        **({"refine_labels_train_split_seconds_including_loading": refine_seconds} if args.refine else {}),
    }
    write_results(args.output, results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
