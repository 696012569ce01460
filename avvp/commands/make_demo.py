"""``avvp make-demo``: write the small synthetic dataset used by the default workflow target."""

from __future__ import annotations

import argparse
import logging
from collections.abc import Callable

from avvp.commands import COMMANDS
from avvp.errors import InputError
from avvp.preparation.demo import MAX_DEMO_CLASSES, DemoOptions, make_demo

log = logging.getLogger(__name__)


def _whole_number(minimum: int, even: bool = False) -> Callable[[str], int]:
    """An argparse type: a whole number of at least ``minimum`` (and even when ``even``)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < minimum or (even and value % 2):
            raise argparse.ArgumentTypeError(
                f"{value}: expected {'an even' if even else 'a'} number >= {minimum}"
            )
        return value

    return parse


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``make-demo`` and its options."""
    defaults = DemoOptions()
    parser = subparsers.add_parser(
        "make-demo",
        help=COMMANDS["make-demo"],
        description=(
            "Write a synthetic LLP-like dataset: OUTPUT/videos/<clip>.mp4 (H.264 + AAC, 10 s) and "
            "OUTPUT/annotations/AVVP_*.csv. Each class has a distinct tone and a distinct coloured, striped "
            "patch; events start and stop on whole seconds and may be audible only or visible only. "
            "Training clips get weak labels, validation/test clips also dense audio and visual events. "
            "The same seed gives the same dataset."
        ),
    )
    parser.add_argument("--output", required=True, help="directory to write videos/ and annotations/ into")
    parser.add_argument("--seed", type=int, default=defaults.seed, help="random seed (default %(default)s)")
    parser.add_argument(
        "--num-train",
        type=_whole_number(0),
        default=defaults.num_train,
        help="training clips (default %(default)s)",
    )
    parser.add_argument(
        "--num-val",
        type=_whole_number(0),
        default=defaults.num_val,
        help="validation clips (default %(default)s)",
    )
    parser.add_argument(
        "--num-test",
        type=_whole_number(0),
        default=defaults.num_test,
        help="test clips (default %(default)s)",
    )
    parser.add_argument(
        "--num-classes",
        type=int,
        default=defaults.num_classes,
        choices=range(1, MAX_DEMO_CLASSES + 1),
        metavar=f"1..{MAX_DEMO_CLASSES}",
        help="how many of the LLP classes (the first ones) appear (default %(default)s)",
    )
    parser.add_argument(
        "--frame-size",
        type=_whole_number(16, even=True),
        default=defaults.frame_size,
        help="frame width and height in pixels, even, at least 16 (default %(default)s)",
    )
    parser.add_argument(
        "--fps", type=_whole_number(1), default=defaults.fps, help="video frame rate (default %(default)s)"
    )
    parser.add_argument(
        "--sample-rate",
        type=_whole_number(8000),
        default=defaults.sample_rate,
        help="audio sample rate in Hz (default %(default)s)",
    )
    return parser


def run(args: argparse.Namespace) -> int:
    """Write the dataset; return 0."""
    if args.num_train + args.num_val + args.num_test == 0:
        raise InputError("--num-train, --num-val and --num-test are all 0: the demo would have no clip")
    options = DemoOptions(
        seed=args.seed,
        num_train=args.num_train,
        num_val=args.num_val,
        num_test=args.num_test,
        num_classes=args.num_classes,
        frame_size=args.frame_size,
        fps=args.fps,
        sample_rate=args.sample_rate,
    )
    clips = make_demo(args.output, options)
    log.info("wrote %d demo clips and their labels under %s", len(clips), args.output)
    return 0
