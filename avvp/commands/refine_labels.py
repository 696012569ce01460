"""``avvp refine-labels``: MA's modality-aware label refinement of a training split, from a base model."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

from avvp.commands import COMMANDS
from avvp.commands.predict import add_model_arguments, load_model_inputs, positive_number
from avvp.errors import InputError
from avvp.io import write_json
from avvp.training.label_refinement import (
    THRESHOLD,
    exchange_partners,
    exchanged_probabilities,
    refine_labels,
    refinement_table,
)
from avvp.training.refined_labels import RefinedLabels, write_refined_labels

log = logging.getLogger(__name__)


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``avvp refine-labels``."""
    parser = subparsers.add_parser(
        "refine-labels",
        help=COMMANDS["refine-labels"],
        description=(
            "Run a base model (trained on the weak labels, e.g. with MA's contrastive term) in eval mode over "
            "every clip of the training split, as it is and with its audio or its visual track exchanged for "
            "that of a random clip whose labels share no class with its own, and remove each label the "
            "exchanged inputs do not support (MA, Wu and Yang, CVPR 2021): a visual label where, with the "
            "other clip's audio, both the visual and the audio probability of the class are below the "
            "threshold times the class's scale (its visual error rate over the largest one); audio labels "
            "likewise. Writes the removed labels as .npz (for 'avvp train --set refined_labels=FILE') and "
            "<output>.json beside it (settings and per-class counts), and prints the table."
        ),
    )
    add_model_arguments(parser, "the training split (a weak-label file, e.g. AVVP_train.csv)")
    parser.add_argument("--output", required=True, type=Path, help="refined-label file to write (.npz)")
    parser.add_argument(
        "--threshold",
        type=positive_number,
        default=THRESHOLD,
        help=f"a label goes where both scaled probabilities are below this (default {THRESHOLD}, as MA's code)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the exchange partners (default 0)")
    return parser


def print_table(rows: list[dict[str, Any]]) -> None:
    """Print the per-class counts of removed labels."""
    print(
        f"{'class':<24} {'labels':>7} {'audio removed':>14} {'scale':>6} {'visual removed':>15} {'scale':>6}"
    )
    for row in rows:
        print(
            f"{row['class']:<24} {row['labels']:>7} {row['removed_audio']:>14} {row['audio_scale']:>6.3f} "
            f"{row['removed_visual']:>15} {row['visual_scale']:>6.3f}"
        )


def run(args: argparse.Namespace) -> int:
    """Check the options, load checkpoint and split, exchange tracks, refine, write the files, print the table."""
    if args.output.suffix != ".npz":
        raise InputError(f"--output {args.output}: give a file name ending in .npz")
    inputs = load_model_inputs(args)
    labels = inputs.labels.labels > 0
    partners = exchange_partners(labels, args.seed)
    unpaired = int((partners < 0).sum())
    if unpaired:
        log.warning("%d clip(s) have no clip without a common label: their labels are kept", unpaired)
    original, audio_exchanged, visual_exchanged = exchanged_probabilities(
        inputs.model.to(inputs.device), inputs.dataset, partners, inputs.device, args.batch_size
    )
    inputs.dataset.close()
    refinement = refine_labels(
        labels, original, audio_exchanged, visual_exchanged, args.threshold, has_partner=partners >= 0
    )
    video_ids = inputs.labels.video_ids
    write_refined_labels(
        args.output,
        RefinedLabels(
            video_ids, labels, refinement.removed, [video_ids[p] if p >= 0 else "" for p in partners]
        ),
    )
    rows = refinement_table(labels, refinement)
    summary = {
        "checkpoint": str(args.checkpoint),
        "checkpoint_format": args.checkpoint_format,
        "split_csv": str(args.split_csv),
        "clips": len(video_ids),
        "clips_without_partner": unpaired,
        "threshold": args.threshold,
        "seed": args.seed,
        "cross_modal": True,
        "labels": int(labels.sum()),
        "removed": {m: int(mask.sum()) for m, mask in refinement.removed.items()},
        "removed_from_both": int((refinement.removed["audio"] & refinement.removed["visual"]).sum()),
        "classes": rows,
    }
    write_json(args.output.with_suffix(".json"), summary)
    print_table(rows)
    log.info(
        "removed %d audio and %d visual of %d labels; wrote %s and %s",
        summary["removed"]["audio"],
        summary["removed"]["visual"],
        summary["labels"],
        args.output,
        args.output.with_suffix(".json"),
    )
    return 0
