"""``avvp evaluate``: score prediction files with the exact LLP protocol."""

from __future__ import annotations

import argparse
import time

from avvp.commands import COMMANDS
from avvp.data.annotations import GT_AUDIO, GT_VISUAL, SPLIT_FILES, annotation_path
from avvp.evaluation.files import evaluate_files, write_metrics
from avvp.evaluation.metrics import format_table


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``evaluate``."""
    parser = subparsers.add_parser(
        "evaluate",
        help=COMMANDS["evaluate"],
        description=(
            "Score predictions with the LLP protocol: segment- and event-level F1 for audio, visual and "
            "audio-visual events, Type@AV and Event@AV, in percent. Prediction files use the format of "
            "AVVP_eval_audio.csv: tab-separated filename, onset, offset, event_labels, one event per row, "
            "onset/offset in whole seconds (offset exclusive). The ground truth and the split default to "
            "the LLP test files in --annotations-dir. Prints the table and writes all numbers (and "
            "per-class F1) to --output as JSON."
        ),
    )
    parser.add_argument(
        "--pred-audio", required=True, help="predicted audio events (AVVP_eval_audio.csv format)"
    )
    parser.add_argument("--pred-visual", required=True, help="predicted visual events (same format)")
    parser.add_argument("--output", required=True, help="metrics JSON to write")
    parser.add_argument(
        "--annotations-dir", default="data/annotations", help="LLP annotations (default: %(default)s)"
    )
    parser.add_argument("--split-csv", help="clips to score (default: AVVP_test_pd.csv in --annotations-dir)")
    parser.add_argument(
        "--gt-audio", help=f"dense audio ground truth (default: {GT_AUDIO} in --annotations-dir)"
    )
    parser.add_argument(
        "--gt-visual", help=f"dense visual ground truth (default: {GT_VISUAL} in --annotations-dir)"
    )
    parser.add_argument(
        "--strict",
        action="store_true",
        help="reject prediction rows with onset >= offset or a malformed filename instead of skipping them "
        "with a warning (the published evaluation ignores such rows, and LLP's own files contain some)",
    )
    return parser


def run(args: argparse.Namespace) -> int:
    """Evaluate, print the table, write the JSON; exit code 0."""
    started = time.perf_counter()
    metrics = evaluate_files(
        split_csv=args.split_csv or annotation_path(args.annotations_dir, SPLIT_FILES["test"]),
        gt_audio=args.gt_audio or annotation_path(args.annotations_dir, GT_AUDIO),
        gt_visual=args.gt_visual or annotation_path(args.annotations_dir, GT_VISUAL),
        pred_audio=args.pred_audio,
        pred_visual=args.pred_visual,
        strict=args.strict,
    )
    write_metrics(args.output, metrics)
    print(format_table(metrics))
    print(
        f"{metrics['videos']} videos scored in {time.perf_counter() - started:.2f} s; written to {args.output}"
    )
    return 0
