"""``avvp build-graphs``: audio-visual grounding ground truth per clip (paper 002, appendix Algorithm 1)."""

from __future__ import annotations

import argparse
import logging

from avvp.commands import COMMANDS
from avvp.data.labels import read_weak_labels
from avvp.pretraining.graphs import AUDIO_KIND, VISUAL_KIND, ThresholdRule, build_graph_file

log = logging.getLogger(__name__)


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``build-graphs`` and its options."""
    parser = subparsers.add_parser(
        "build-graphs",
        help=COMMANDS["build-graphs"],
        description=(
            "Write OUTPUT with, for each clip, the ground truth of the audio-visual grounding pretraining "
            "task (paper 002, appendix Algorithm 1): a 10x10 boolean matrix over the clip's 1-second "
            "snippets. Snippets are linked when the cosine similarity of their ResNet152 embeddings (the "
            "mean of the second's 8 frames) is >= the visual threshold, or that of their VGGish embeddings "
            "is >= the audio threshold; two snippets are a positive pair exactly when they lie in one "
            "connected component of that graph. Each threshold is given as a value in [-1, 1] or as a "
            "quantile Q in (0, 1) of the similarities of all within-clip snippet pairs of the clips used. "
            "Clips lacking either feature kind are listed in a warning and skipped."
        ),
    )
    parser.add_argument(
        "--features", required=True, help=f"feature store with {VISUAL_KIND} and {AUDIO_KIND}"
    )
    parser.add_argument("--output", required=True, help="graph file (HDF5) to write")
    visual = parser.add_mutually_exclusive_group(required=True)
    visual.add_argument("--visual-threshold", type=float, metavar="VT", help="ResNet152 cosine threshold")
    visual.add_argument(
        "--visual-quantile", type=float, metavar="Q", help="set VT to this quantile of the ResNet152 pairs"
    )
    audio = parser.add_mutually_exclusive_group(required=True)
    audio.add_argument("--audio-threshold", type=float, metavar="AT", help="VGGish cosine threshold")
    audio.add_argument(
        "--audio-quantile", type=float, metavar="Q", help="set AT to this quantile of the VGGish pairs"
    )
    parser.add_argument(
        "--clips",
        nargs="+",
        metavar="CSV",
        help="weak-label split files (e.g. AVVP_train.csv) restricting the clips (default: every clip)",
    )
    return parser


def _requested_clips(paths: list[str] | None) -> list[str] | None:
    """The clips of the split files ``paths`` in order, without repeats; None without files."""
    if paths is None:
        return None
    return list(dict.fromkeys(vid for path in paths for vid in read_weak_labels(path).video_ids))


def run(args: argparse.Namespace) -> int:
    """Build and write the graphs; return 0."""
    report = build_graph_file(
        args.features,
        args.output,
        ThresholdRule("visual", args.visual_threshold, args.visual_quantile),
        ThresholdRule("audio", args.audio_threshold, args.audio_quantile),
        clips=_requested_clips(args.clips),
    )
    log.info(
        "wrote the grounding graphs of %d clip(s) to %s (%d skipped); visual threshold %.6g, audio "
        "threshold %.6g; %.2f components per clip; %.1f%% of snippet pairs positive",
        report["clips"],
        args.output,
        report["clips_skipped"],
        report["visual_threshold"],
        report["audio_threshold"],
        report["components_mean"],
        100 * report["positive_pair_share"],
    )
    seconds = report["seconds"]
    log.info(
        "timing: read %.2f s, compute %.2f s, write %.2f s",
        seconds["read"],
        seconds["compute"],
        seconds["write"],
    )
    return 0
