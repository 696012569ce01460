"""``avvp estimate-noise``: JoMoLD's per-class label-noise ratios of the training split, from a noise estimator."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

from avvp.commands import COMMANDS
from avvp.commands.predict import add_model_arguments, load_model_inputs, positive_number
from avvp.errors import InputError
from avvp.inference import predict_probabilities
from avvp.io import write_json
from avvp.training.checkpoints import checkpoint_label_smoothing
from avvp.training.noise_estimation import (
    AUDIO_THRESHOLD,
    DEFAULT_SMOOTHING,
    VISUAL_THRESHOLD,
    estimate_noise,
    noise_table,
)
from avvp.training.noise_ratios import MODALITIES, write_noise_ratios

log = logging.getLogger(__name__)


def _smoothing(text: str) -> float:
    value = float(text)
    if not 0.0 <= value < 1.0:
        raise argparse.ArgumentTypeError(f"{text} is not in [0, 1)")
    return value


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``avvp estimate-noise``."""
    parser = subparsers.add_parser(
        "estimate-noise",
        help=COMMANDS["estimate-noise"],
        description=(
            "Run a noise estimator (a model trained with cross-modal attention off) in eval mode and without "
            "cross-modal attention over the training split, and count, per class, the weak labels whose "
            "modality probability times its target, over the class's mean probability on the split, is "
            "below the modality's threshold (JoMoLD's calculate_noise_ratio). Writes the ratios as .npz "
            "('audio' and 'visual' arrays of 25, the original code's format) and <output>.json beside it "
            "(settings and per-class counts), and prints the table."
        ),
    )
    add_model_arguments(parser, "the training split (a weak-label file, e.g. AVVP_train.csv)")
    parser.add_argument("--output", required=True, type=Path, help="noise-ratio file to write (.npz)")
    for modality, default in (("audio", AUDIO_THRESHOLD), ("visual", VISUAL_THRESHOLD)):
        parser.add_argument(
            f"--{modality}-threshold",
            type=positive_number,
            default=default,
            help=f"{modality} labels are noisy below this relative score (default {default}, as the original)",
        )
        parser.add_argument(
            f"--{modality}-smoothing",
            type=_smoothing,
            help=f"delta of the {modality} target (1 - delta) y + delta / 2 (default: the label smoothing of the "
            "training config a native checkpoint carries, else "
            f"{DEFAULT_SMOOTHING[modality]}, as the original)",
        )
    return parser


def chosen_smoothing(
    args: argparse.Namespace, payload: dict[str, Any]
) -> tuple[dict[str, float], dict[str, str]]:
    """Per modality, the target smoothing ``delta`` and where it came from: the option, the checkpoint's
    training config, or the default (:data:`DEFAULT_SMOOTHING`)."""
    recorded = checkpoint_label_smoothing(payload)
    smoothing, source = {}, {}
    for modality in MODALITIES:
        option = getattr(args, f"{modality}_smoothing")
        if option is not None:
            smoothing[modality], source[modality] = option, "option"
        elif recorded is not None:
            smoothing[modality], source[modality] = recorded[modality], "checkpoint config"
        else:
            smoothing[modality], source[modality] = DEFAULT_SMOOTHING[modality], "default"
    return smoothing, source


def print_table(rows: list[dict[str, Any]]) -> None:
    """Print the per-class counts and ratios."""
    print(f"{'class':<24} {'labels':>7} {'audio noisy':>12} {'ratio':>6} {'visual noisy':>13} {'ratio':>6}")
    for row in rows:
        print(
            f"{row['class']:<24} {row['labels']:>7} {row['noisy_audio']:>12} {row['audio_ratio']:>6.3f} "
            f"{row['noisy_visual']:>13} {row['visual_ratio']:>6.3f}"
        )


def run(args: argparse.Namespace) -> int:
    """Check the options, load checkpoint and split, estimate the ratios, write the files, print the table."""
    if args.output.suffix != ".npz":
        raise InputError(f"--output {args.output}: give a file name ending in .npz")
    inputs = load_model_inputs(args)
    smoothing, source = chosen_smoothing(args, inputs.payload)
    thresholds = {m: getattr(args, f"{m}_threshold") for m in MODALITIES}
    probabilities = predict_probabilities(
        inputs.model.to(inputs.device),
        inputs.dataset,
        inputs.device,
        args.batch_size,
        desc="estimating noise",
        cross_modal=False,
    )
    inputs.dataset.close()
    estimate = estimate_noise(
        probabilities.audio_prob, probabilities.visual_prob, inputs.labels.labels, thresholds, smoothing
    )
    rows = noise_table(estimate)
    write_noise_ratios(args.output, estimate.ratios)
    summary = {
        "checkpoint": str(args.checkpoint),
        "checkpoint_format": args.checkpoint_format,
        "split_csv": str(args.split_csv),
        "clips": len(inputs.labels),
        "cross_modal": False,
        "mean": "exact mean of each class's probability over every clip of the split",
        "thresholds": thresholds,
        "smoothing": smoothing,
        "smoothing_source": source,
        "classes": rows,
    }
    write_json(args.output.with_suffix(".json"), summary)
    print_table(rows)
    log.info(
        "targets: P_a delta %g (%s), P_v delta %g (%s); wrote %s and %s",
        smoothing["audio"],
        source["audio"],
        smoothing["visual"],
        source["visual"],
        args.output,
        args.output.with_suffix(".json"),
    )
    return 0
