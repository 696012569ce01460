"""``avvp filter-splits``: the split files restricted to clips that have features, with a coverage summary."""

from __future__ import annotations

import argparse
import logging

from avvp.commands import COMMANDS
from avvp.preparation.splits import filter_splits

log = logging.getLogger(__name__)


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``filter-splits`` and its options."""
    parser = subparsers.add_parser(
        "filter-splits",
        help=COMMANDS["filter-splits"],
        description=(
            "Write OUTPUT_DIR/AVVP_train.csv, AVVP_val_pd.csv and AVVP_test_pd.csv holding only the clips "
            "of ANNOTATIONS_DIR's split files that have every feature kind of every FEATURES store (the "
            "model's, and a teacher's) and pseudo-labels in every PSEUDO_LABELS file, and "
            "OUTPUT_DIR/coverage.json with, per split, how many clips are available and which are missing "
            "(videos that could not be downloaded or decoded). Every experiment then trains and is scored "
            "on the same clips."
        ),
    )
    parser.add_argument("--features", required=True, nargs="+", help="feature store(s)")
    parser.add_argument(
        "--pseudo-labels", nargs="+", default=[], help="pseudo_labels.h5 file(s) of 'avvp pseudo-labels'"
    )
    parser.add_argument("--annotations-dir", required=True, help="folder with the LLP split files")
    parser.add_argument(
        "--output-dir", required=True, help="folder for the filtered split files and coverage.json"
    )
    return parser


def run(args: argparse.Namespace) -> int:
    """Write the filtered splits; return 0."""
    summary = filter_splits(args.features, args.annotations_dir, args.output_dir, args.pseudo_labels)
    for split, counts in summary["splits"].items():
        log.info(
            "%s: %d of %d clips have features (%d missing)",
            split,
            counts["available"],
            counts["total"],
            counts["missing"],
        )
    return 0
