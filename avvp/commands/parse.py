"""``avvp parse``: raw videos in, audio and visual event timelines out (see docs/parsing.md)."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from avvp.commands import COMMANDS
from avvp.commands.predict import add_checkpoint_arguments
from avvp.device import DEVICE_CHOICES
from avvp.errors import InputError

log = logging.getLogger(__name__)


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``avvp parse``."""
    parser = subparsers.add_parser(
        "parse",
        help=COMMANDS["parse"],
        description=(
            "Parse videos of any length with a trained checkpoint. Each video is cut into consecutive 10-s "
            "windows, its features are extracted with the networks, sizes and scaling the checkpoint was "
            "trained on (recorded in it; features made differently are refused; for official HAN and JoMoLD "
            "files, which record none, the published networks), the model runs on every "
            "window with the checkpoint's decision rule, and the windows are stitched into one timeline. "
            "Writes per video DIR/<stem>.json (segment probabilities and events in seconds) and "
            "DIR/<stem>.html (a self-contained page: frames, waveform, one lane per detected class), and for "
            "all videos DIR/pred_audio.csv and DIR/pred_visual.csv in LLP's event format (for 'avvp "
            "evaluate'), DIR/failures.tsv and DIR/parsed.txt (the names parsed). A video that cannot be read "
            "is reported and skipped; the exit code is then 1. The folder then holds this run's results only: "
            "the .json and .html files of videos an earlier run into it parsed (listed in its parsed.txt) and "
            "this one did not are removed."
        ),
    )
    parser.add_argument(
        "videos", nargs="+", type=Path, help="video files, folders of videos, or text files listing videos"
    )
    add_checkpoint_arguments(parser)
    parser.add_argument("--output-dir", required=True, type=Path, help="where the results go")
    parser.add_argument(
        "--weights",
        default="",
        help="KIND=PATH,...: local weights of feature networks the checkpoint names only by a sha256",
    )
    parser.add_argument(
        "--part",
        help="I/K: parse only the I-th of K contiguous parts of the video list (0-based; one cluster job each)",
    )
    parser.add_argument("--device", choices=DEVICE_CHOICES, default="auto", help="compute device")
    parser.add_argument(
        "--cores",
        type=int,
        help="cores this run may use, as torch threads (default: the cores this process may run on); windows "
        "are decoded in this process between the networks' batches",
    )
    parser.add_argument(
        "--forward",
        action="append",
        metavar="KIND=BATCH[/LAYOUT[/PRECISION]]",
        help="forward plan of a feature network, as for 'avvp extract --forward' (default: the device's plan)",
    )
    parser.add_argument(
        "--tolerate-failures",
        action="store_true",
        help="exit 0 even when some videos could not be parsed (they are listed in failures.tsv)",
    )
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    parser.add_argument(
        "--allow-feature-mismatch",
        action="store_true",
        help="parse even when the rebuilt feature networks differ from the checkpoint's record (warns)",
    )
    return parser


def _videos(sources: list[Path]) -> list[Path]:
    """The video files named directly, in folders, or in list files; stems must be unique (output names)."""
    from extractors.pipeline import check_clip_ids, list_videos

    videos: list[Path] = []
    for source in sources:
        is_list = source.is_file() and source.suffix.lower() in (".txt", ".lst")
        videos += list_videos(source) if source.is_dir() or is_list else [source]
    check_clip_ids(videos, "outputs are named after the videos: ")
    return videos


def _part(videos: list[Path], value: str | None) -> list[Path]:
    """The videos of part ``"I/K"`` (all of them when ``value`` is None)."""
    if value is None:
        return videos
    from avvp.preparation.sharding import split_into_shards

    index, sep, count = value.partition("/")
    if not (sep and index.isdigit() and count.isdigit() and int(index) < int(count)):
        raise InputError(f"--part {value!r}: expected I/K with 0 <= I < K, e.g. 0/4")
    parts = split_into_shards(videos, min(int(count), len(videos)))
    return parts[int(index)] if int(index) < len(parts) else []


PARSED_LIST = "parsed.txt"
"""The names (file stems) of the videos a run parsed, one a line: what the next run into the folder removes."""


def _remove_earlier_results(output_dir: Path, parsed: list[str]) -> None:
    """Remove the .json and .html files of videos the folder's previous run parsed and this one did not
    (a video that failed now, or one not given now), so that pages and CSVs tell of the same videos; then
    record ``parsed`` as this run's names."""
    from avvp.preparation.sharding import read_clip_list, write_clip_list

    listed = output_dir / PARSED_LIST
    earlier = read_clip_list(listed) if listed.is_file() else []
    write_clip_list(listed, parsed)
    for stem in sorted(set(earlier) - set(parsed)):
        for suffix in (".json", ".html"):
            stale = output_dir / f"{stem}{suffix}"
            if stale.is_file():
                log.info("removing %s, a result of an earlier run for a video not parsed now", stale)
                stale.unlink()


def _weights_option(value: str) -> dict[str, str]:
    """``"resnet152=a.pt,vggish=b.pt"`` -> ``{"resnet152": "a.pt", "vggish": "b.pt"}``."""
    weights = {}
    for item in filter(None, (part.strip() for part in value.split(","))):
        kind, sep, path = item.partition("=")
        if not sep:
            raise InputError(f"--weights {value!r}: item {item!r} is not KIND=PATH")
        weights[kind] = path
    return weights


def run(args: argparse.Namespace) -> int:
    """Parse every video; 0 when all were parsed, 1 when some failed (listed in failures.tsv)."""
    import torch
    from tqdm import tqdm

    from avvp.data.labels import write_event_rows
    from avvp.device import resolve_device
    from avvp.io import atomic_path, write_json
    from avvp.parsing.page import render_page
    from avvp.parsing.videos import load_parser, parse_video
    from extractors.pipeline import Failure, decoding_plan, failure_reason, write_manifest

    if args.cores is not None and args.cores <= 0:
        raise InputError(f"--cores {args.cores}: must be positive")
    device = resolve_device(args.device)
    torch.set_num_threads(decoding_plan(device, args.cores, workers=0).threads)
    videos = _part(_videos(args.videos), args.part)
    parser = load_parser(
        args.checkpoint,
        args.checkpoint_format,
        device,
        _weights_option(args.weights),
        args.allow_feature_mismatch,
        args.forward,
    )
    try:
        args.output_dir.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise InputError(f"{args.output_dir}: cannot create the output folder ({err.strerror})") from None
    events = {"audio": [], "visual": []}
    failures = []
    for video in tqdm(videos, desc="parsing", unit="video", disable=args.no_progress):
        try:
            result, windows, timeline = parse_video(parser, video)
        except Exception as err:  # one bad video never stops the others; the reason is recorded
            failures.append(Failure(str(video), "parse", failure_reason(err)))
            log.error("%s: %s", video, failure_reason(err))
            continue
        write_json(args.output_dir / f"{video.stem}.json", result)
        page = render_page(result, windows.thumbnails, windows.thumbnail_times, windows.waveform)
        with atomic_path(args.output_dir / f"{video.stem}.html") as tmp:
            tmp.write_text(page, encoding="utf-8")
        events["audio"] += timeline.events["audio"]
        events["visual"] += timeline.events["visual"]
    write_event_rows(args.output_dir / "pred_audio.csv", events["audio"])
    write_event_rows(args.output_dir / "pred_visual.csv", events["visual"])
    write_manifest(args.output_dir / "failures.tsv", failures)
    failed = {failure.video_id for failure in failures}
    _remove_earlier_results(args.output_dir, [video.stem for video in videos if str(video) not in failed])
    log.info("parsed %d of %d video(s) into %s", len(videos) - len(failures), len(videos), args.output_dir)
    return 1 if failures and not args.tolerate_failures else 0
