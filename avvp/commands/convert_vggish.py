"""``avvp convert-vggish``: Google's TF-Hub VGGish weights -> a PyTorch state dict for ``avvp extract``."""

from __future__ import annotations

import argparse
import logging

from avvp.commands import COMMANDS

log = logging.getLogger(__name__)


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``avvp convert-vggish``."""
    parser = subparsers.add_parser(
        "convert-vggish",
        help=COMMANDS["convert-vggish"],
        description=(
            "Load the VGGish SavedModel with tensorflow_hub (needs the tfhub extra) and save its weights as a "
            "PyTorch state dict. Use it once on a machine with internet (or on a downloaded SavedModel "
            "directory), then run 'avvp extract --weights vggish=FILE' anywhere without TensorFlow."
        ),
    )
    parser.add_argument(
        "--handle",
        default=None,
        help="TF-Hub URL or local SavedModel directory (default: https://tfhub.dev/google/vggish/1)",
    )
    parser.add_argument("--output", required=True, help="PyTorch checkpoint to write, e.g. vggish.pt")
    return parser


def run(args: argparse.Namespace) -> int:
    """Convert and save; print the layer widths found."""
    from extractors.vggish_tf import DEFAULT_HANDLE, convert_hub_to_torch

    handle = args.handle or DEFAULT_HANDLE
    config = convert_hub_to_torch(handle, args.output)
    log.info(
        "%s: VGGish weights from %s (channels %s, hidden %d, embedding %d)",
        args.output,
        handle,
        config.channels,
        config.hidden,
        config.embedding,
    )
    return 0
