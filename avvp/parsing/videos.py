"""Parsing videos with a checkpoint: rebuild its feature path, extract each video's windows, run the model,
apply the checkpoint's decision rule, stitch the timeline (the work behind ``avvp parse``)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from avvp.data.features import FEATURE_SHAPES, Standardization
from avvp.feature_identity import check_feature_identity, record_standardization
from avvp.inference import Probabilities, batch_probabilities
from avvp.parsing.networks import network_options
from avvp.parsing.timeline import Timeline, stitch, timeline_result
from avvp.training.checkpoints import (
    CheckpointFormat,
    checkpoint_features,
    default_decision,
    load_checkpoint,
    model_from_payload,
)
from extractors.forward_plan import parse_forward_option
from extractors.networks import FeatureNetwork, NetworkOptions, build_networks
from extractors.windows import VideoWindows, extract_windows

log = logging.getLogger(__name__)


@dataclass
class Parser:
    """A checkpoint's model with the feature networks and scaling its features were made with."""

    checkpoint: Path
    model: nn.Module
    networks: list[FeatureNetwork]
    scaling: dict[str, Standardization | None]
    decision: dict[str, Any]
    identity: dict[str, dict[str, Any]]
    device: torch.device


def load_parser(
    checkpoint: Path,
    checkpoint_format: CheckpointFormat,
    device: torch.device,
    weights: dict[str, str] | None = None,
    allow_mismatch: bool = False,
    forward: list[str] | None = None,
) -> Parser:
    """Load ``checkpoint`` and build the feature networks its record names (``weights`` replaces the
    recorded weights of some kinds) with the device's forward plans or those of ``forward``
    (``KIND=BATCH[/LAYOUT[/PRECISION]]`` items, :func:`extractors.forward_plan.parse_forward_option`);
    networks whose identity differs from the record are refused unless ``allow_mismatch`` (then a
    warning)."""
    payload = load_checkpoint(checkpoint, checkpoint_format)
    model = model_from_payload(checkpoint, payload, checkpoint_format).to(device)
    recorded = checkpoint_features(payload)
    kinds = list(model.feature_kinds)
    if recorded is None:
        log.info(
            "%s: no record of its features; using the published networks at the published sizes", checkpoint
        )
    plans = parse_forward_option(forward, kinds)
    options = NetworkOptions(**network_options(recorded, kinds, weights), forward=plans)
    networks = build_networks(kinds, options, device)
    scaling = {
        kind: record_standardization((recorded or {}).get(kind, {}).get("standardization")) for kind in kinds
    }
    identity = {network.kind: network.record.identity() for network in networks}
    for network in networks:
        if recorded is not None:
            actual = {
                **identity[network.kind],
                "standardization": recorded[network.kind].get("standardization"),
            }
            check_feature_identity(
                checkpoint, network.kind, recorded[network.kind], actual, "the parse networks", allow_mismatch
            )
    decision = default_decision(checkpoint, payload, checkpoint_format)
    return Parser(checkpoint, model.eval(), networks, scaling, decision, identity, device)


def model_inputs(parser: Parser, windows: VideoWindows) -> dict[str, torch.Tensor]:
    """The model's inputs (W, T, D) per kind: the windows' features scaled as the checkpoint's were.

    A kind the video lacks (VGGish without an audio track) is filled with zeros (the training features'
    mean when they were standardised) so the model can run; its predictions are not used.
    """
    count = len(windows.window_starts)
    inputs = {}
    for kind in parser.model.feature_kinds:
        scaling = parser.scaling[kind]
        if kind in windows.features:
            array = windows.features[kind]
            array = scaling.apply(array) if scaling is not None else array
        else:
            array = np.zeros((count, *FEATURE_SHAPES[kind]), dtype=np.float32)
        inputs[kind] = torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))
    return inputs


def parse_video(parser: Parser, path: Path) -> tuple[dict[str, Any], VideoWindows, Timeline]:
    """Parse one video: its JSON-ready result, its windows (for the page) and its timeline."""
    windows = extract_windows(path, parser.networks)
    arrays = batch_probabilities(parser.model, model_inputs(parser, windows), parser.device)
    names = [f"{path.stem}@{start:g}" for start in windows.window_starts]
    timeline = stitch(
        path.stem, Probabilities(names, **arrays), windows.duration, windows.has_audio, parser.decision
    )
    result = {
        "video": str(path),
        **timeline_result(timeline, windows.window_starts),
        "checkpoint": str(parser.checkpoint),
        "decision_rule": parser.decision,
        "features": parser.identity,
    }
    return result, windows, timeline
