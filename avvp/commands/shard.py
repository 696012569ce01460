"""``avvp shard``: split the dataset's clips into shard lists for the download and extraction jobs."""

from __future__ import annotations

import argparse
import logging

from avvp.commands import COMMANDS
from avvp.preparation.sharding import write_shards

log = logging.getLogger(__name__)


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``shard`` and its options."""
    parser = subparsers.add_parser(
        "shard",
        help=COMMANDS["shard"],
        description=(
            "Split the clips of a weak-label file (normally AVVP_dataset_full.csv) into NUM_SHARDS "
            "contiguous lists of nearly equal size, written as OUTPUT_DIR/000.txt, 001.txt, ..."
        ),
    )
    parser.add_argument(
        "--clips", required=True, help="weak-label file listing the clips (filename, event_labels)"
    )
    parser.add_argument(
        "--extra-clips",
        help="clip list (one '<YouTube id>_<start>_<end>' per line) added after the labelled clips, e.g. "
        "unlabelled clips for AVG pretraining",
    )
    parser.add_argument("--num-shards", type=int, required=True, help="how many shard lists to write")
    parser.add_argument("--output-dir", required=True, help="directory for the NNN.txt shard lists")
    return parser


def run(args: argparse.Namespace) -> int:
    """Write the shard lists; return 0."""
    paths = write_shards(args.clips, args.num_shards, args.output_dir, args.extra_clips)
    log.info("wrote %d shard lists to %s", len(paths), args.output_dir)
    return 0
