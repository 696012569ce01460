"""``avvp fetch-annotations``: download the LLP annotation files and check their row counts."""

from __future__ import annotations

import argparse

from avvp.commands import COMMANDS
from avvp.data.annotations import ANNOTATION_ROWS, SOURCE_URL, fetch_annotations


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``fetch-annotations``."""
    parser = subparsers.add_parser(
        "fetch-annotations",
        help=COMMANDS["fetch-annotations"],
        description=(
            "Download the LLP annotation files (" + ", ".join(ANNOTATION_ROWS) + ") from the dataset's "
            "public repository, or copy them from a local folder, into DEST; each file's row count is "
            "checked against the published one before it is written. Files already present and complete "
            "are kept."
        ),
    )
    parser.add_argument(
        "--dest", default="data/annotations", help="folder to write to (default: %(default)s)"
    )
    parser.add_argument(
        "--source", default=SOURCE_URL, help="base URL to download from (default: %(default)s)"
    )
    parser.add_argument("--from-dir", help="copy from this local folder instead of downloading")
    return parser


def run(args: argparse.Namespace) -> int:
    """Fetch the files; exit code 0 on success."""
    paths = fetch_annotations(args.dest, source=args.source, from_dir=args.from_dir)
    for path in paths:
        print(f"{path}\t{ANNOTATION_ROWS[path.name]} rows")
    return 0
