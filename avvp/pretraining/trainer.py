"""The AVG pretraining loop (``avvp pretrain``): the encoder learns to ground snippets on their graphs.

One run writes into ``output_dir``: ``config.yaml``, ``encoder.pt`` (the encoder after the last finished
epoch, the file a parser's ``pretrained_encoder`` names), ``last.pt`` (full training state for ``--resume``)
and ``history.jsonl`` (per epoch: ``loss``, ``L_u`` / ``L_x``, learning rate, timings). Every file is
replaced atomically. The loop is the parser trainer's (:func:`avvp.training.trainer.train_epoch`); only
the model (:class:`~avvp.models.avg_encoder.AVGEncoder`) and the objective differ.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import torch

from avvp.data.dataset import Batch, SplitDataset, resolve_feature_sources
from avvp.data.labels import read_weak_labels
from avvp.errors import InputError
from avvp.io import own_folder
from avvp.models.avg_encoder import AVGEncoder
from avvp.pretraining.config import PretrainConfig
from avvp.pretraining.graphs import GraphStore
from avvp.pretraining.losses import grounding_losses
from avvp.training.checkpoints import encoder_payload, load_weights, save_checkpoint
from avvp.training.diagnostics import write_jsonl
from avvp.training.optimisation import build_optimisation
from avvp.training.steps import OneNetworkStep
from avvp.training.trainer import epoch_batches, start_run, train_epoch, write_run_config

log = logging.getLogger(__name__)
RESUME_FREE_KEYS = (
    "epochs",
    "output_dir",
    "device",
    "num_workers",
    "threads",
    "in_memory",
    "features",
    "graphs",
)
"""Settings that may differ between a run and its ``--resume`` (everything else must match)."""


class GroundingObjective:
    """``L_avg`` of a batch from the encoder's ``(a, v)`` and the clips' graphs (looked up by ``batch.index``)."""

    def __init__(self, config: PretrainConfig, graphs: torch.Tensor) -> None:
        self.loss = config.loss
        self.graphs = graphs
        self.names = {"uni": ["L_u"], "cross": ["L_x"], "multi": ["L_u", "L_x"]}[config.loss.variant]

    def __call__(
        self, output: tuple[torch.Tensor, torch.Tensor], batch: Batch
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The total loss and its parts (detached) by name."""
        graphs = self.graphs[batch.index.cpu()].to(output[0].device)
        losses = grounding_losses(
            *output, graphs, self.loss.variant, self.loss.positive_margin, self.loss.negative_margin
        )
        return losses["L_avg"], {name: losses[name].detach() for name in self.names}


def pretraining_clips(config: PretrainConfig, graphs: GraphStore) -> list[str]:
    """The clips to pretrain on: those of ``graphs``, restricted to the clips of ``config.clips`` when given."""
    clips = list(graphs.video_ids)
    if config.clips:
        wanted = {v for path in config.clips for v in read_weak_labels(path).video_ids}
        clips = [v for v in clips if v in wanted]
    if not clips:
        shown = ", ".join(str(p) for p in config.clips)
        raise InputError(f"{config.graphs}: none of its clips is in the pretraining clips ({shown})")
    return clips


def load_pretraining_data(config: PretrainConfig) -> tuple[SplitDataset, torch.Tensor]:
    """The clips' VGGish and ResNet152 features, and their graphs (N, 10, 10) bool in the same order."""
    store = GraphStore(config.graphs)
    clips = pretraining_clips(config, store)
    sources = resolve_feature_sources(config.features, AVGEncoder.feature_kinds)
    dataset = SplitDataset(
        sources, clips, np.zeros((len(clips), 0), np.float32), config.in_memory, "pretrain"
    )
    return dataset, torch.from_numpy(store.read(clips))


def pretrain(config: PretrainConfig, resume: bool = False, overwrite: bool = False) -> dict[str, Any]:
    """Pretrain the AVG encoder as ``config`` says; returns the last epoch's history record.

    With ``resume``, continues from ``output_dir/last.pt`` (encoder, optimizer, schedule, RNG, history). The
    run owns ``output_dir`` from its first step (:func:`avvp.io.own_folder`).
    """
    config.require_paths("config")
    with own_folder(config.output_dir, "avvp pretrain"):
        return _pretrain_owned(config, resume, overwrite)


def _pretrain_owned(config: PretrainConfig, resume: bool, overwrite: bool) -> dict[str, Any]:
    """:func:`pretrain`, in an output folder this process owns."""
    output_dir, state, device = start_run(config, resume, overwrite, RESUME_FREE_KEYS, "avvp pretrain")
    encoder = AVGEncoder(config.encoder)
    dataset, graphs = load_pretraining_data(config)
    n, t, _ = graphs.shape
    positive_share = float((graphs.sum() - n * t) / max(n * t * (t - 1), 1))  # pairs j != k
    log.info(
        "pretraining on %d clips; %.1f%% of snippet pairs are positive", len(dataset), 100 * positive_share
    )
    encoder.to(device)
    mixed_precision = config.mixed_precision and device.type == "cuda"
    optimisation = build_optimisation(
        encoder.parameters(), config.optimizer, device, mixed_precision, config.epochs
    )
    step = OneNetworkStep(GroundingObjective(config, graphs))
    history: list[dict[str, Any]] = []
    first_epoch = 1
    if state is not None:
        load_weights(output_dir / "last.pt", encoder, state["state_dict"])
        optimisation.load_state_dict(state["training"])
        history, first_epoch = state["training"]["history"], state["epoch"] + 1
        log.info("resuming %s after epoch %d", output_dir, state["epoch"])
    write_run_config(output_dir, config)
    for epoch in range(first_epoch, config.epochs + 1):
        lr = optimisation.lr
        loader = epoch_batches(dataset, config, epoch, device)
        record, _ = train_epoch(
            encoder, loader, step, optimisation, mixed_precision, f"pretrain {epoch}/{config.epochs}"
        )
        optimisation.scheduler.step()
        history.append({"epoch": epoch, "lr": lr, **record, "positive_pair_share": positive_share})
        log.info("epoch %d: L_avg %.4f, %.1f s", epoch, record["loss"], record["seconds"])
        save_checkpoint(output_dir / "encoder.pt", encoder_payload(encoder, epoch, config.loss.variant))
        write_jsonl(output_dir / "history.jsonl", history)
        payload = encoder_payload(encoder, epoch, config.loss.variant)
        payload.update(
            config=config.model_dump(mode="json"), training={**optimisation.state_dict(), "history": history}
        )
        save_checkpoint(output_dir / "last.pt", payload)
    dataset.close()
    return history[-1]
