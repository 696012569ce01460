"""``avvp pretrain``: pretrain the audio-visual grounding (AVG) encoder (see docs/pretraining.md)."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from avvp.commands import COMMANDS
from avvp.pretraining.config import PretrainConfig
from avvp.training.config import load_validated
from avvp.training.run_options import OVERRIDDEN_KEYS, add_run_options, run_overrides

log = logging.getLogger(__name__)


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``avvp pretrain``."""
    parser = subparsers.add_parser(
        "pretrain",
        help=COMMANDS["pretrain"],
        description=(
            "Pretrain the AVG encoder (FC embeddings of VGGish and per-second ResNet152 features, modality and "
            "position embeddings, a Transformer over the 20 snippets of a clip) so that the cosine similarity "
            "of two snippets' embeddings says whether the grounding graph of 'avvp build-graphs' links them "
            "(loss.variant uni: audio-audio and visual-visual pairs; cross: audio-visual pairs; multi: both). "
            "Labels are not used. The output directory receives config.yaml, encoder.pt (the weights a "
            "parser's pretrained_encoder names), last.pt and history.jsonl. resources/configs/pretraining/avg.yaml "
            "holds the defaults."
        ),
    )
    add_run_options(parser, "--set loss.variant=cross --set encoder.layers=4")
    parser.add_argument(
        "--graphs", type=Path, help="grounding graphs of 'avvp build-graphs' (overrides the config)"
    )
    return parser


def run(args: argparse.Namespace) -> int:
    """Validate the config with the overrides applied, then pretrain."""
    from avvp.pretraining.trainer import pretrain

    config = load_validated(PretrainConfig, args.config, run_overrides(args, ("graphs", *OVERRIDDEN_KEYS)))
    config.require_paths(str(args.config))
    last = pretrain(config, resume=args.resume, overwrite=args.overwrite)
    log.info(
        "epoch %d: L_avg %.4f; encoder in %s",
        last["epoch"],
        last["loss"],
        Path(config.output_dir) / "encoder.pt",
    )
    return 0
