"""``avvp predict``: segment-level audio and visual events of a split from a trained checkpoint.

Also the checkpoint, feature and split options and their loading, shared with ``avvp estimate-noise``.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from avvp.commands import COMMANDS
from avvp.data.dataset import SplitDataset, resolve_feature_sources
from avvp.data.features import FeatureStore
from avvp.data.labels import WeakLabels, read_weak_labels
from avvp.decision_rules import DECISION_FILE, DECISION_RULES
from avvp.device import DEVICE_CHOICES, resolve_device
from avvp.errors import InputError
from avvp.feature_identity import MISMATCH_FLAG, check_feature_identity, store_identity
from avvp.inference import predict_probabilities, write_predictions
from avvp.io import staged_outputs, write_json
from avvp.training.checkpoints import (
    CHECKPOINT_FORMATS,
    checkpoint_decision,
    checkpoint_features,
    default_decision,
    load_checkpoint,
    model_from_payload,
)
from avvp.training.diagnostics import attention_distribution, write_attention

log = logging.getLogger(__name__)


def _probability(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"{text} is not a probability in [0, 1]")
    return value


def positive_number(text: str) -> float:
    """An argparse type: a number above 0."""
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text} is not a positive number")
    return value


def add_checkpoint_arguments(parser: argparse.ArgumentParser) -> None:
    """Register ``--checkpoint`` and ``--checkpoint-format`` (the formats of :data:`CHECKPOINT_FORMATS`)."""
    parser.add_argument("--checkpoint", required=True, type=Path, help="model checkpoint (e.g. RUN/best.pt)")
    parser.add_argument(
        "--checkpoint-format",
        choices=CHECKPOINT_FORMATS,
        default="native",
        help="'native' (written by avvp train), 'official-han' (a state dict saved by the original HAN code, "
        "YapengTian/AVVP-ECCV20; its unused encoder weights are ignored and listed; decision rule fused), "
        "'official-jomold' (a checkpoint saved by the original JoMoLD code, MCG-NJU/JoMoLD; only its model "
        "weights are used; decision rule modality) or 'official-valor' (a state dict saved by the original "
        "VALOR code, Franklin905/VALOR: VALOR, VALOR+ or VALOR++, sizes and input kinds read from its "
        "tensors; decision rule fused)",
    )


def add_model_arguments(parser: argparse.ArgumentParser, split_help: str) -> None:
    """Register the checkpoint, feature and split options of a command that runs a model over a split."""
    add_checkpoint_arguments(parser)
    parser.add_argument(
        "--features", required=True, nargs="+", type=Path, help="feature store(s) holding the split's clips"
    )
    parser.add_argument("--split-csv", required=True, type=Path, help=split_help)
    parser.add_argument("--batch-size", type=int, default=256, help="clips per forward pass (default 256)")
    parser.add_argument(
        "--device", choices=DEVICE_CHOICES, default="auto", help="compute device (default auto)"
    )
    parser.add_argument("--threads", type=int, help="CPU threads for torch (default: torch's own choice)")
    parser.add_argument(
        "--lazy", action="store_true", help="read features batch by batch instead of all at once"
    )
    parser.add_argument(
        MISMATCH_FLAG,
        action="store_true",
        help="run even when the features differ from those the checkpoint records (extractor, weights, "
        "sampling, standardisation); the difference is logged as a warning",
    )


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``avvp predict``."""
    parser = subparsers.add_parser(
        "predict",
        help=COMMANDS["predict"],
        description=(
            "Run a trained parsing model over the clips of a split and write pred_audio.csv and "
            "pred_visual.csv (the AVVP_eval_*.csv format, ready for 'avvp evaluate'), probabilities.h5 "
            "(video_id, global_prob, audio_prob, visual_prob, frame_prob [N,10,2,25], modality_attention), "
            f"attention.json/.npz (per-class audio-visual attention distribution) and {DECISION_FILE} (the "
            "decision rule, thresholds and attention mode used)."
        ),
    )
    add_model_arguments(parser, "clips to parse (a weak-label file, e.g. AVVP_test_pd.csv)")
    parser.add_argument("--output-dir", required=True, type=Path, help="directory for the prediction files")
    parser.add_argument(
        "--decision-rule",
        choices=DECISION_RULES,
        help="which video-level probability gates a class's segments: 'fused' (HAN: the fused one for both "
        "modalities) or 'modality' (JoMoLD: each modality's own). Default: the rule a native checkpoint "
        "records; fused for official-han, official-valor and native files without a record, modality for "
        "official-jomold",
    )
    parser.add_argument(
        "--segment-threshold",
        type=_probability,
        help="a segment is positive where its probability is >= this (default: the checkpoint's, else 0.5)",
    )
    parser.add_argument(
        "--video-threshold",
        type=_probability,
        help="... and the rule's video-level probability of the class is >= this (default: the "
        "checkpoint's, else 0.5)",
    )
    parser.add_argument(
        "--without-cross-modal",
        action="store_true",
        help="run the model without its cross-modal attention (self-attention only), as the original JoMoLD "
        "code tests its noise estimator (test_noise_estimator)",
    )
    return parser


def check_sources(
    checkpoint: Path,
    recorded: Mapping[str, Mapping[str, Any]] | None,
    sources: Mapping[str, Path],
    allow: bool,
) -> None:
    """Check each kind's store against the identity the checkpoint recorded (if it recorded one)."""
    if recorded is None:
        log.info("%s records no feature identity (official or older checkpoint): not checked", checkpoint)
        return
    for kind, path in sources.items():
        with FeatureStore(path) as store:
            actual = store_identity(store, kind)
        check_feature_identity(checkpoint, kind, recorded.get(kind, {}), actual, str(path), allow)


@dataclass
class ModelInputs:
    """A checkpoint's model and the split to run it on, loaded and checked."""

    payload: dict[str, Any]
    model: nn.Module
    labels: WeakLabels
    dataset: SplitDataset
    device: torch.device


def load_model_inputs(args: argparse.Namespace) -> ModelInputs:
    """Check the options of :func:`add_model_arguments`, load the checkpoint (CPU, eval mode) and the split's
    labels and features (checked against the checkpoint's record), and choose the device."""
    if args.batch_size <= 0:
        raise InputError(f"--batch-size {args.batch_size}: must be positive")
    if args.threads is not None:
        if args.threads <= 0:
            raise InputError(f"--threads {args.threads}: must be positive")
        torch.set_num_threads(args.threads)
    payload = load_checkpoint(args.checkpoint, args.checkpoint_format)
    model = model_from_payload(args.checkpoint, payload, args.checkpoint_format)
    labels = read_weak_labels(args.split_csv)
    if len(labels) == 0:
        raise InputError(f"{args.split_csv}: the split holds no clips")
    sources = resolve_feature_sources(args.features, model.feature_kinds)
    check_sources(args.checkpoint, checkpoint_features(payload), sources, args.allow_feature_mismatch)
    dataset = SplitDataset(sources, labels.video_ids, labels.labels, in_memory=not args.lazy, name="split")
    return ModelInputs(payload, model, labels, dataset, resolve_device(args.device))


def chosen_decision(args: argparse.Namespace, payload: dict[str, Any]) -> dict[str, Any]:
    """The rule and thresholds to decide with: each option given, else the checkpoint's default
    (:func:`~avvp.training.checkpoints.default_decision`); ``source`` says where each came from."""
    default = default_decision(args.checkpoint, payload, args.checkpoint_format)
    options = {"rule": args.decision_rule, "segment": args.segment_threshold, "video": args.video_threshold}
    recorded = args.checkpoint_format == "native" and checkpoint_decision(payload) is not None
    fallback = "checkpoint" if recorded else f"{args.checkpoint_format} default"
    return {
        **{key: default[key] if value is None else value for key, value in options.items()},
        "source": {key: fallback if value is None else "option" for key, value in options.items()},
    }


def run(args: argparse.Namespace) -> int:
    """Load the checkpoint and the split's features (all checks first), predict, write the files."""
    inputs = load_model_inputs(args)
    decision = chosen_decision(args, inputs.payload)
    cross_modal = not args.without_cross_modal
    probabilities = predict_probabilities(
        inputs.model.to(inputs.device),
        inputs.dataset,
        inputs.device,
        args.batch_size,
        cross_modal=cross_modal,
    )
    inputs.dataset.close()
    record = {
        **decision,
        "cross_modal": cross_modal,
        "checkpoint": str(args.checkpoint),
        "checkpoint_format": args.checkpoint_format,
    }
    with staged_outputs(args.output_dir, "avvp predict") as stage:  # all files or none
        written = write_predictions(
            stage, probabilities, decision["segment"], decision["video"], decision["rule"]
        )
        write_attention(stage, attention_distribution(probabilities.modality_attention), args.split_csv.stem)
        write_json(stage / DECISION_FILE, record)
    paths = {name: args.output_dir / path.name for name, path in written.items()}
    log.info(
        "decision rule %s (segment >= %g, video >= %g), %s cross-modal attention",
        decision["rule"],
        decision["segment"],
        decision["video"],
        "with" if cross_modal else "without",
    )
    log.info("wrote %s for %d clips", ", ".join(str(p) for p in paths.values()), len(inputs.labels))
    return 0
