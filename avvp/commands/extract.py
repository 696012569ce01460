"""``avvp extract``: ResNet152, R(2+1)D-18, VGGish (and VALOR's CLIP / CLAP) features of raw clips into one
feature-store shard."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import TYPE_CHECKING

from avvp.commands import COMMANDS
from avvp.data.features import FEATURE_SHAPES, LLP_KINDS, STORAGE_DTYPES
from avvp.device import DEVICE_CHOICES, resolve_device

if TYPE_CHECKING:
    from extractors.networks import FeatureNetwork

log = logging.getLogger(__name__)


def _kinds(value: str) -> list[str]:
    kinds = [k.strip() for k in value.split(",") if k.strip()]
    unknown = [k for k in kinds if k not in FEATURE_SHAPES]
    if unknown or not kinds:
        raise argparse.ArgumentTypeError(
            f"unknown kind(s) {unknown or value!r}; choose from {list(FEATURE_SHAPES)}"
        )
    return list(dict.fromkeys(kinds))


def _positive(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError(f"{value} is not a positive integer")
    return number


def _non_negative(value: str) -> int:
    number = int(value)
    if number < 0:
        raise argparse.ArgumentTypeError(f"{value} is negative")
    return number


MAX_FRAME_SIZE = 1024
"""Largest crop or frame size accepted (the published sizes are 224 and 112)."""


def _frame_size(value: str) -> int:
    number = _positive(value)
    if number > MAX_FRAME_SIZE:
        raise argparse.ArgumentTypeError(f"{value} is larger than {MAX_FRAME_SIZE} (published: 224 and 112)")
    return number


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``avvp extract``."""
    parser = subparsers.add_parser(
        "extract",
        help=COMMANDS["extract"],
        description=(
            "Decode clips in memory (frames as 'ffmpeg -r 8' would give them, 80 sampled; first 10 s of audio "
            "at 16 kHz, 48 kHz for CLAP), run the feature networks in batches and write one feature-store shard plus a failure "
            "manifest SHARD.failures.tsv (video_id, stage, reason). Bad clips are recorded, never fatal; "
            "clips shorter than 10 s are padded (last frame / silence) and recorded."
        ),
    )
    parser.add_argument(
        "--videos", required=True, help="directory of clips, one clip, or a text file with one path per line"
    )
    parser.add_argument("--output", required=True, help="shard to write, e.g. features/shard-000.h5")
    parser.add_argument(
        "--kinds",
        type=_kinds,
        default=list(LLP_KINDS),
        help=f"comma-separated feature kinds of {list(FEATURE_SHAPES)} (default: LLP's %(default)s; clip, "
        "clap and clap_segments are VALOR's CLIP / CLAP features, needing the 'teachers' extra)",
    )
    parser.add_argument(
        "--weights",
        default="pretrained",
        help=(
            "pretrained (published weights, downloaded once to the torch / TF-Hub cache), random (seeded "
            "random initialisation, stamped random-init), a checkpoint PATH, or per kind, e.g. "
            "'resnet152=pretrained,vggish=vggish.pt'; for clip/clap a model folder (default: %(default)s)"
        ),
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of --weights random (default: %(default)s)")
    parser.add_argument(
        "--device", default="auto", help=f"one of {DEVICE_CHOICES} or cuda:N; auto takes a GPU when present"
    )
    parser.add_argument(
        "--image-size",
        type=_frame_size,
        default=224,
        help="ResNet152 crop size (default 224 as released; e.g. 112 for a fast demo, stamped in the store)",
    )
    parser.add_argument(
        "--clip-size",
        type=_frame_size,
        default=112,
        help="R(2+1)D-18 frame size (default 112 as released; smaller only for fast demos, stamped in the store)",
    )
    parser.add_argument(
        "--vggish-backend",
        choices=("torch", "tfhub"),
        default="torch",
        help="run VGGish in PyTorch (default) or through TensorFlow Hub (needs the tfhub extra)",
    )
    parser.add_argument(
        "--vggish-handle",
        default=None,
        help="TF-Hub handle (URL or local SavedModel directory) of google/vggish/1, for --vggish-backend tfhub "
        "or pretrained PyTorch weights",
    )
    parser.add_argument(
        "--clip-model",
        default=None,
        help="CLIP hub model[@revision] for --weights pretrained, or the architecture of random weights "
        "('tiny': a small test model) (default: openai/clip-vit-large-patch14, VALOR's)",
    )
    parser.add_argument(
        "--clap-model",
        default=None,
        help="CLAP hub model[@revision] for pretrained weights, or the architecture of random ones ('tiny') "
        "(default: laion/clap-htsat-fused, the HF conversion of LAION's fused HTS-AT CLAP VALOR used)",
    )
    parser.add_argument(
        "--workers",
        type=_non_negative,
        default=None,
        help="decoding worker processes (0: decode in this process; default: from the cores available and "
        "the device, see docs/extraction.md)",
    )
    parser.add_argument(
        "--cores",
        type=_positive,
        default=None,
        help="cores this run may use: decoding workers, and torch threads for the rest (default: the cores "
        "this process may run on)",
    )
    parser.add_argument(
        "--batch-clips", type=_positive, default=4, help="clips per batch (default: %(default)s)"
    )
    parser.add_argument(
        "--forward",
        action="append",
        metavar="KIND=BATCH[/LAYOUT[/PRECISION]]",
        help="forward plan of a network: items per forward call (ResNet152 frames, R(2+1)D snippets, VGGish "
        "examples), memory layout (contiguous, channels_last, channels_last_3d) and autocast precision "
        "(float32, float16, bfloat16; a reduced one is checked against float32 on the first batch), e.g. "
        "'resnet152=8/channels_last'; repeatable (default: the device's plan, see docs/extraction.md)",
    )
    parser.add_argument(
        "--calibrate",
        action="store_true",
        help="first time every candidate plan of each network on the first clip (float32), print the timings "
        "and the fastest plans as --forward options, and extract with them",
    )
    parser.add_argument(
        "--dtype", choices=STORAGE_DTYPES, default="float32", help="storage dtype of the features"
    )
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    return parser


def run(args: argparse.Namespace) -> int:
    """Extract the shard; exit 0 even when some clips failed (they are in the manifest)."""
    import torch

    from extractors import clap, clip
    from extractors.forward_plan import parse_forward_option
    from extractors.networks import NetworkOptions, build_networks
    from extractors.pipeline import decoding_plan, extract_shard, list_videos, manifest_path
    from extractors.vggish_tf import DEFAULT_HANDLE
    from extractors.weights import parse_weights_option

    videos = list_videos(args.videos)
    options = NetworkOptions(
        weights=parse_weights_option(args.weights, args.kinds),
        seed=args.seed,
        image_size=args.image_size,
        clip_size=args.clip_size,
        vggish_backend=args.vggish_backend,
        vggish_handle=args.vggish_handle or DEFAULT_HANDLE,
        clip_model=args.clip_model or clip.DEFAULT_MODEL,
        clap_model=args.clap_model or clap.DEFAULT_MODEL,
        forward=parse_forward_option(args.forward, args.kinds),
    )
    device = resolve_device(args.device)
    plan = decoding_plan(device, args.cores, args.workers)
    torch.set_num_threads(plan.threads)
    log.info("%d decoding worker(s), %d torch thread(s)", plan.workers, plan.threads)
    networks = build_networks(args.kinds, options, device)
    if args.calibrate:
        networks = calibrated(networks, videos[0])
    for network in networks:
        log.info("%s: forwards of %s %s", network.kind, network.plan, network.spec.unit)
    result = extract_shard(
        videos,
        args.output,
        networks,
        workers=plan.workers,
        batch_clips=args.batch_clips,
        dtype=args.dtype,
        progress=not args.no_progress,
    )
    written = ", ".join(f"{kind} {count}/{len(videos)}" for kind, count in result.written.items())
    log.info(
        "%s: wrote %s; %d manifest row(s) in %s",
        args.output,
        written,
        len(result.failures),
        manifest_path(args.output),
    )
    return 0


def calibrated(networks: list[FeatureNetwork], clip: Path) -> list[FeatureNetwork]:
    """``networks`` each with its fastest float32 plan on ``clip`` (timed here, printed with the timings and
    as --forward options); a network keeps its plan when the clip cannot feed it. Precision is kept from
    each network's plan (checked against float32 on the first batch)."""
    from dataclasses import replace

    from extractors.calibration import time_plans
    from extractors.pipeline import ClipDataset

    inputs = ClipDataset([clip], networks)[0]["inputs"]
    chosen, options = [], []
    for network in networks:
        if network.kind not in inputs:
            log.warning("--calibrate: %s cannot feed %s; keeping %s", clip, network.kind, network.plan)
            chosen.append(network)
            continue
        timings = time_plans(network, inputs[network.kind])
        for timing in timings:
            print(f"{network.kind}\t{timing.plan}\t{timing.seconds_per_clip:.3f} s per clip")
        best = replace(timings[0].plan, precision=network.plan.precision)
        chosen.append(network.with_plan(best))
        options.append(f"--forward {network.kind}={best}")
    print("fastest here: " + " ".join(options))
    return chosen
