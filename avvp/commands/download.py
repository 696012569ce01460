"""``avvp download``: fetch the clips of one shard (local copy or yt-dlp) and write its manifest."""

from __future__ import annotations

import argparse
import logging
from collections import Counter

from avvp.commands import COMMANDS
from avvp.preparation.download import fetch_shard, write_manifest, write_video_list
from avvp.preparation.sharding import read_clip_list

log = logging.getLogger(__name__)


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``download`` and its options."""
    parser = subparsers.add_parser(
        "download",
        help=COMMANDS["download"],
        description=(
            "Make every clip of a shard list available as VIDEO_DIR/<LLP filename>.mp4: clips already "
            "there are kept (so an interrupted run resumes), clips in SOURCE_DIR (named <filename>.mp4 or "
            "<YouTube id>.mp4) are linked, others are downloaded with yt-dlp (10 s, trimmed to the clip). "
            "Unavailable clips are recorded in the manifest and skipped; the command still succeeds."
        ),
    )
    parser.add_argument("--clips", required=True, help="shard list: one LLP filename per line")
    parser.add_argument("--video-dir", required=True, help="directory holding the clips (<filename>.mp4)")
    parser.add_argument(
        "--source-dir", help="take clips from this folder of already downloaded videos instead of YouTube"
    )
    parser.add_argument("--manifest", required=True, help="output: per-clip status table (TSV)")
    parser.add_argument(
        "--video-list", required=True, help="output: paths of the available clips, one per line"
    )
    parser.add_argument("--yt-dlp", default="yt-dlp", help="yt-dlp executable (default %(default)s)")
    return parser


def run(args: argparse.Namespace) -> int:
    """Fetch the shard's clips and write the manifest and the video list; return 0."""
    statuses = fetch_shard(
        read_clip_list(args.clips), args.video_dir, args.source_dir, executable=args.yt_dlp
    )
    write_manifest(args.manifest, statuses)
    write_video_list(args.video_list, statuses)
    counts = Counter(s.status for s in statuses)
    log.info(
        "%d clips: %s", len(statuses), ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
    )
    return 0
