"""``avvp merge-features``: merge shard feature stores into one."""

from __future__ import annotations

import argparse
import logging

from avvp.commands import COMMANDS
from avvp.data.features import STORAGE_DTYPES, merge_stores

log = logging.getLogger(__name__)


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``merge-features`` and its options."""
    parser = subparsers.add_parser(
        "merge-features",
        help=COMMANDS["merge-features"],
        description=(
            "Merge feature stores into OUTPUT, kind by kind. A clip present in two inputs, or a kind whose "
            "attributes (extractor, weights, sampling) differ between inputs, is an error."
        ),
    )
    parser.add_argument("inputs", nargs="+", help="shard stores to merge")
    parser.add_argument("--output", required=True, help="merged store to write")
    parser.add_argument(
        "--dtype", choices=STORAGE_DTYPES, default="float32", help="storage precision (default %(default)s)"
    )
    return parser


def run(args: argparse.Namespace) -> int:
    """Merge the stores; return 0."""
    counts = merge_stores(args.inputs, args.output, dtype=args.dtype)
    log.info("merged %d stores into %s: %s", len(args.inputs), args.output, counts)
    return 0
