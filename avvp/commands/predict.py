"""``avvp predict``: segment-level audio and visual events of a split from a trained checkpoint."""

from __future__ import annotations

import argparse
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from avvp.commands import COMMANDS
from avvp.data.dataset import SplitDataset, resolve_feature_sources
from avvp.data.features import FeatureStore
from avvp.data.labels import read_weak_labels
from avvp.device import DEVICE_CHOICES, resolve_device
from avvp.errors import InputError
from avvp.feature_identity import MISMATCH_FLAG, check_feature_identity, store_identity
from avvp.inference import predict_probabilities, write_predictions
from avvp.torch_files import load_dict
from avvp.training.checkpoints import (
    CHECKPOINT_FORMATS,
    checkpoint_features,
    model_from_payload,
)
from avvp.training.diagnostics import attention_distribution, write_attention

log = logging.getLogger(__name__)


def _probability(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"{text} is not a probability in [0, 1]")
    return value


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``avvp predict``."""
    parser = subparsers.add_parser(
        "predict",
        help=COMMANDS["predict"],
        description=(
            "Run a trained parsing model over the clips of a split and write pred_audio.csv and "
            "pred_visual.csv (the AVVP_eval_*.csv format, ready for 'avvp evaluate'), probabilities.h5 "
            "(video_id, global_prob, audio_prob, visual_prob, frame_prob [N,10,2,25], modality_attention) "
            "and attention.json/.npz (per-class audio-visual attention distribution)."
        ),
    )
    parser.add_argument("--checkpoint", required=True, type=Path, help="model checkpoint (e.g. RUN/best.pt)")
    parser.add_argument(
        "--checkpoint-format",
        choices=CHECKPOINT_FORMATS,
        default="native",
        help="'native' (written by avvp train) or 'official-han' (a state dict saved by the original HAN "
        "code, YapengTian/AVVP-ECCV20; its unused encoder weights are ignored and listed)",
    )
    parser.add_argument(
        "--features", required=True, nargs="+", type=Path, help="feature store(s) holding the split's clips"
    )
    parser.add_argument(
        "--split-csv",
        required=True,
        type=Path,
        help="clips to parse (a weak-label file, e.g. AVVP_test_pd.csv)",
    )
    parser.add_argument("--output-dir", required=True, type=Path, help="directory for the prediction files")
    parser.add_argument(
        "--segment-threshold",
        type=_probability,
        default=0.5,
        help="a segment is positive where its probability is >= this (default 0.5, as published)",
    )
    parser.add_argument(
        "--video-threshold",
        type=_probability,
        default=0.5,
        help="... and the fused video-level probability of the class is >= this (default 0.5, as published)",
    )
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
        help="predict even when the features differ from those the checkpoint records (extractor, weights, "
        "sampling, standardisation); the difference is logged as a warning",
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
        log.info("%s records no feature identity (official HAN or older checkpoint): not checked", checkpoint)
        return
    for kind, path in sources.items():
        with FeatureStore(path) as store:
            actual = store_identity(store, kind)
        check_feature_identity(checkpoint, kind, recorded.get(kind, {}), actual, str(path), allow)


def run(args: argparse.Namespace) -> int:
    """Load the checkpoint and the split's features (all checks first), predict, write the files."""
    if args.batch_size <= 0:
        raise InputError(f"--batch-size {args.batch_size}: must be positive")
    if args.threads is not None:
        if args.threads <= 0:
            raise InputError(f"--threads {args.threads}: must be positive")
        torch.set_num_threads(args.threads)
    payload = load_dict(args.checkpoint)
    model = model_from_payload(args.checkpoint, payload, args.checkpoint_format)
    labels = read_weak_labels(args.split_csv)
    if len(labels) == 0:
        raise InputError(f"{args.split_csv}: the split holds no clips")
    sources = resolve_feature_sources(args.features, model.feature_kinds)
    check_sources(args.checkpoint, checkpoint_features(payload), sources, args.allow_feature_mismatch)
    dataset = SplitDataset(sources, labels.video_ids, labels.labels, in_memory=not args.lazy, name="split")
    device = resolve_device(args.device)
    probabilities = predict_probabilities(model.to(device), dataset, device, args.batch_size)
    dataset.close()
    paths = write_predictions(args.output_dir, probabilities, args.segment_threshold, args.video_threshold)
    write_attention(
        args.output_dir, attention_distribution(probabilities.modality_attention), args.split_csv.stem
    )
    log.info("wrote %s for %d clips", ", ".join(str(p) for p in paths.values()), len(labels))
    return 0
