"""``avvp weak-baseline``: the trivial parser that puts every weak label on every segment of both modalities."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from avvp.commands import COMMANDS
from avvp.data.labels import NUM_SEGMENTS, read_weak_labels, segments_to_events, write_event_rows


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``weak-baseline`` and its options."""
    parser = subparsers.add_parser(
        "weak-baseline",
        help=COMMANDS["weak-baseline"],
        description=(
            "Write OUTPUT_DIR/pred_audio.csv and pred_visual.csv predicting each clip's video-level labels "
            "in all ten segments of both modalities: the trivial baseline a parser must beat. It uses the "
            "true weak labels of the split, so it knows which events occur but not when or in which modality."
        ),
    )
    parser.add_argument(
        "--split-csv", required=True, help="weak-label file of the split (e.g. AVVP_test_pd.csv)"
    )
    parser.add_argument(
        "--output-dir", required=True, help="directory for pred_audio.csv and pred_visual.csv"
    )
    return parser


def run(args: argparse.Namespace) -> int:
    """Write both prediction tables; return 0."""
    weak = read_weak_labels(args.split_csv)
    segments = np.repeat(weak.labels[:, None, :] > 0, NUM_SEGMENTS, axis=1)
    events = segments_to_events(weak.video_ids, segments)
    for name in ("pred_audio.csv", "pred_visual.csv"):
        write_event_rows(Path(args.output_dir) / name, events)
    return 0
