"""``avvp standardize-features``: zero mean, unit variance per feature dimension, from training clips."""

from __future__ import annotations

import argparse
import logging

from avvp.commands import COMMANDS
from avvp.data.features import STORAGE_DTYPES
from avvp.data.labels import read_weak_labels
from avvp.errors import InputError
from avvp.preparation.feature_scaling import standardize_store

log = logging.getLogger(__name__)


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``standardize-features`` and its options."""
    parser = subparsers.add_parser(
        "standardize-features",
        help=COMMANDS["standardize-features"],
        description=(
            "Write OUTPUT with every feature of INPUT standardised per kind and dimension (zero mean, unit "
            "variance) using the statistics of the clips in --split-csv only (normally AVVP_train.csv). "
            "Needed for random-init features (the offline demo), whose scales differ by orders of magnitude; "
            "the released and pretrained features are used as they are."
        ),
    )
    parser.add_argument("--input", required=True, help="feature store to standardise")
    parser.add_argument(
        "--split-csv", required=True, help="weak-label file of the clips giving the statistics"
    )
    parser.add_argument("--output", required=True, help="standardised feature store to write")
    parser.add_argument(
        "--dtype", choices=STORAGE_DTYPES, default="float32", help="storage precision (default %(default)s)"
    )
    return parser


def run(args: argparse.Namespace) -> int:
    """Standardise the store; return 0."""
    reference = read_weak_labels(args.split_csv).video_ids
    try:
        counts = standardize_store(args.input, reference, args.output, args.dtype)
    except ValueError as err:
        raise InputError(str(err)) from None
    log.info("standardised %s into %s: %s", args.input, args.output, counts)
    return 0
