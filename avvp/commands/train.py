"""``avvp train``: train a parsing model from a YAML config (see docs/training.md)."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from avvp.commands import COMMANDS
from avvp.errors import InputError
from avvp.training.config import load_config
from avvp.training.run_options import OVERRIDDEN_KEYS, add_run_options, run_overrides
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
        help=COMMANDS["train"],
        description=(
            "Train a parsing model as a YAML config says (resources/configs/han.yaml is the published HAN "
            "recipe). Each epoch is validated on the validation split; the epoch with the best segment-level "
            "Type@AV is kept as best.pt. The output directory receives config.yaml, best.pt, last.pt, "
            "val_metrics.json, history.jsonl, loss_gaps.jsonl and attention.json/.npz."
        ),
    )
    add_run_options(
        parser,
        "--set epochs=2 --set model.visual_aggregation=self --set loss.label_smoothing.variant=No-LS",
    )
    parser.add_argument(
        "--annotations-dir", type=Path, help="directory with the LLP label files (overrides the config)"
    )
    parser.add_argument(
        "--seeds",
        help="train once per seed, e.g. 1,2,3, into OUTPUT_DIR/seed_<s>/ and write OUTPUT_DIR/seeds_summary.json "
        "with the mean and std of the best validation metrics",
    )
    return parser


def run(args: argparse.Namespace) -> int:
    """Validate the config with the overrides applied, then train."""
    overrides = run_overrides(args, ("annotations_dir", *OVERRIDDEN_KEYS))
    config = load_config(args.config, overrides)
    config.require_paths(str(args.config))
    if args.seeds:
        summary = train_seeds(config, parse_seeds(args.seeds), resume=args.resume, overwrite=args.overwrite)
        level, metric = config.selection.level, config.selection.metric
        mean, std = summary["mean"][level][metric], summary["std"][level][metric]
        log.info("seeds %s: val %s %.2f +- %.2f", args.seeds, config.selection.name, mean, std)
    else:
        best = train(config, resume=args.resume, overwrite=args.overwrite)
        log.info("best epoch %d: val %s %.2f", best["epoch"], config.selection.name, best["score"])
    return 0
