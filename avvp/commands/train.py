"""``avvp train``: train a parsing model from a YAML config (see docs/training.md)."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from avvp.device import DEVICE_CHOICES
from avvp.errors import InputError
from avvp.training.config import load_config, parse_overrides
from avvp.training.trainer import train, train_seeds

log = logging.getLogger(__name__)


def parse_seeds(text: str) -> list[int]:
    """``"1,2,3"`` -> ``[1, 2, 3]``; :class:`InputError` on anything else."""
    try:
        seeds = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise InputError(f"--seeds {text!r}: expected comma-separated integers, e.g. 1,2,3") from None
    if not seeds or len(set(seeds)) != len(seeds):
        raise InputError(f"--seeds {text!r}: expected distinct comma-separated integers, e.g. 1,2,3")
    return seeds


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``avvp train``."""
    parser = subparsers.add_parser(
        "train",
        help="train a parsing model (HAN and its variants) from a YAML config",
        description=(
            "Train a parsing model as a YAML config says (resources/configs/han.yaml is the published HAN "
            "recipe). Each epoch is validated on the validation split; the epoch with the best segment-level "
            "Type@AV is kept as best.pt. The output directory receives config.yaml, best.pt, last.pt, "
            "val_metrics.json, history.jsonl, loss_gaps.jsonl and attention.json/.npz."
        ),
    )
    parser.add_argument("--config", required=True, type=Path, help="YAML training config")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config setting, dotted keys for nested ones (repeatable), e.g. --set epochs=2 "
        "--set model.visual_aggregation=self --set loss.label_smoothing.variant=No-LS",
    )
    parser.add_argument(
        "--features", nargs="+", type=Path, help="feature store(s) (overrides 'features' in the config)"
    )
    parser.add_argument(
        "--annotations-dir", type=Path, help="directory with the LLP label files (overrides the config)"
    )
    parser.add_argument(
        "--output-dir", type=Path, help="where checkpoints and logs go (overrides the config)"
    )
    parser.add_argument("--epochs", type=int, help="number of epochs (overrides the config)")
    parser.add_argument("--device", choices=DEVICE_CHOICES, help="compute device (overrides the config)")
    parser.add_argument(
        "--threads",
        type=int,
        help="CPU threads for torch (overrides the config); 1 is much faster when other jobs share the cores",
    )
    parser.add_argument(
        "--seeds",
        help="train once per seed, e.g. 1,2,3, into OUTPUT_DIR/seed_<s>/ and write OUTPUT_DIR/seeds_summary.json "
        "with the mean and std of the best validation metrics",
    )
    parser.add_argument(
        "--deterministic", action="store_true", help="use deterministic kernels (same result on every run)"
    )
    parser.add_argument("--resume", action="store_true", help="continue the run saved in OUTPUT_DIR/last.pt")
    parser.add_argument(
        "--overwrite", action="store_true", help="start afresh even if OUTPUT_DIR holds an earlier run"
    )
    return parser


def run(args: argparse.Namespace) -> int:
    """Validate the config with the overrides applied, then train."""
    overrides = parse_overrides(args.set)
    if args.features:
        overrides["features"] = (
            [str(p) for p in args.features] if len(args.features) > 1 else str(args.features[0])
        )
    for key in ("annotations_dir", "output_dir", "epochs", "device", "threads"):
        value = getattr(args, key)
        if value is not None:
            overrides[key] = str(value) if isinstance(value, Path) else value
    if args.deterministic:
        overrides["deterministic"] = True
    config = load_config(args.config, overrides)
    config.require_paths(str(args.config))
    if args.seeds:
        summary = train_seeds(config, parse_seeds(args.seeds), resume=args.resume, overwrite=args.overwrite)
        mean, std = summary["mean"]["segment"]["type"], summary["std"]["segment"]["type"]
        log.info("seeds %s: val segment Type@AV %.2f +- %.2f", args.seeds, mean, std)
    else:
        best = train(config, resume=args.resume, overwrite=args.overwrite)
        log.info("best epoch %d: val segment Type@AV %.2f", best["epoch"], best["score"])
    return 0
