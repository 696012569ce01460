"""What a training config trains, and how: the networks and the training step (:class:`Procedure`).

One network (a :class:`~avvp.models.Parser`) with the label procedures its config names, MA's refined labels
(``refined_labels``) and then JoMoLD's denoising (``denoising``); or two networks trained together by
Co-teaching or JoCoR (``co_training``). The trainer optimises :attr:`Procedure.module`, validates every
network of :attr:`Procedure.networks` each epoch and keeps the best one as ``best.pt``; dynamic gradient
modulation works on each network the step trained.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from avvp.data.labels import read_weak_labels
from avvp.models import Parser, build_model
from avvp.training.co_training import CoTrainingStep, NetworkPair
from avvp.training.config import TrainConfig
from avvp.training.denoising import LabelDenoising
from avvp.training.label_refinement import RefinedLabelsProcedure
from avvp.training.losses import Objective
from avvp.training.steps import LabelProcedure, OneNetworkStep, TrainingStep

SINGLE_NETWORK = "parser"
"""The name of the one network of a run without co-training."""


@dataclass
class Procedure:
    """The ``module`` a run optimises (a parser, or a :class:`NetworkPair`), its ``networks`` by name (each
    validated every epoch; the best becomes ``best.pt``) and the ``step`` that computes its loss."""

    module: nn.Module
    networks: dict[str, Parser]
    step: TrainingStep

    @property
    def feature_kinds(self) -> tuple[str, ...]:
        """The feature kinds the networks read."""
        return tuple(dict.fromkeys(kind for n in self.networks.values() for kind in n.feature_kinds))


def build_procedure(config: TrainConfig, device: torch.device) -> Procedure:
    """The networks (random weights, CPU) and the training step of ``config``.

    The files the procedures read (refined labels, noise ratios) are read and checked here, before any
    feature is loaded.
    """
    if config.co_training is not None:
        pair = NetworkPair(config.model, config.peer_model)
        return Procedure(pair, pair.networks(), CoTrainingStep(config.co_training, config.loss, device))
    label_procedures: list[LabelProcedure] = []
    if config.refined_labels is not None:
        split = read_weak_labels(config.split_file("train"))
        label_procedures.append(RefinedLabelsProcedure(config.refined_labels, split, device))
    if config.denoising is not None:
        label_procedures.append(LabelDenoising(config.denoising, config.loss, device))
    model = build_model(config.model)
    return Procedure(model, {SINGLE_NETWORK: model}, OneNetworkStep(Objective(config.loss), label_procedures))
