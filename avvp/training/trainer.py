"""The training loop: Adam + step schedule, per-epoch validation, model selection, checkpoints, resume.

One run writes into ``output_dir``: ``config.yaml`` (the validated config), ``last.pt`` (full training
state, every epoch), ``best.pt`` (written when the last epoch is done, ``best.unfinished.pt`` until then:
native model checkpoint of the epoch with the best validation score,
``selection`` in the config: segment-level Type@AV by default; both checkpoints record the training config,
the identity of the features and the decision rule), ``val_metrics.json`` (that epoch's metrics), ``history.jsonl`` (one line
per epoch: losses, learning rate, timings, validation metrics), ``loss_gaps.jsonl`` and
``attention.json``/``attention.npz`` (diagnostics of :mod:`avvp.training.diagnostics`, attention on the
validation split under the best model). Every file is replaced atomically.

What is trained and how one step computes its loss come from :func:`avvp.training.procedures.build_procedure`
(one parser with label procedures, or two for Co-teaching and JoCoR); the loop and the epoch logic here are
the same for every procedure. With two networks each is validated every epoch and the better one is kept.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from time import perf_counter
from typing import Any

import numpy as np
import torch
import yaml
from torch import nn
from tqdm import tqdm

from avvp.data.dataset import Batch, SplitDataset, resolve_feature_sources
from avvp.data.labels import read_dense_labels, read_weak_labels
from avvp.data.pseudo_labels import read_split_pseudo_labels
from avvp.device import resolve_device
from avvp.errors import InputError, first_items
from avvp.evaluation.metrics import llp_scores
from avvp.feature_identity import sources_identity
from avvp.inference import decide, predict_probabilities
from avvp.interrupts import batches_of
from avvp.io import atomic_path, own_folder, write_json
from avvp.models import ParserOutput
from avvp.training.checkpoints import (
    check_same_inputs,
    cpu_state_dict,
    file_digest,
    load_pretrained_encoder,
    load_weights,
    native_payload,
    previous_run,
    save_checkpoint,
)
from avvp.training.config import RunSettings, TrainConfig
from avvp.training.diagnostics import (
    LossGapTracker,
    attention_distribution,
    write_attention,
    write_jsonl,
)
from avvp.training.gradient_modulation import GradientModulation
from avvp.training.optimisation import Optimisation, build_optimisation
from avvp.training.procedures import SINGLE_NETWORK, build_procedure
from avvp.training.steps import StepMonitors, TrainingStep, mean_values

log = logging.getLogger(__name__)
PROGRESS_EVERY = 20
"""Training steps between progress-bar loss updates."""

RESUME_FREE_KEYS = (
    "epochs",
    "output_dir",
    "device",
    "num_workers",
    "threads",
    "eval_batch_size",
    "in_memory",
    "features",
    "annotations_dir",
    "splits",
)
"""Settings that may differ between a run and its ``--resume`` (everything else must match). The files
``features`` and ``splits`` name may move, but their content may not change: the identity of the features
and the digest of each label file are checked instead (:func:`check_same_inputs`)."""
UNFINISHED_BEST = "best.unfinished.pt"
"""The best checkpoint so far while a run trains; it becomes ``best.pt`` when the last epoch is done, so a
killed run's folder holds no ``best.pt`` that looks finished (``--resume`` picks it up)."""


@dataclass
class ValidationData:
    """The validation split with its dense ground truth, bool ``(N, 10, 25)`` per modality."""

    dataset: SplitDataset
    gt_audio: np.ndarray
    gt_visual: np.ndarray


def configure_determinism(seed: int, deterministic: bool) -> None:
    """Seed torch's generators; with ``deterministic``, also demand deterministic kernels."""
    torch.manual_seed(seed)
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.backends.cudnn.benchmark = False
        torch.use_deterministic_algorithms(True)


def load_data(config: TrainConfig, kinds: tuple[str, ...]) -> tuple[SplitDataset, ValidationData]:
    """Read labels and features of the train and validation splits (all checks before any output)."""
    sources = resolve_feature_sources(config.features, kinds)
    train_labels = read_weak_labels(config.split_file("train"))
    val_labels = read_weak_labels(config.split_file("val"))
    for path, labels in ((config.split_file("train"), train_labels), (config.split_file("val"), val_labels)):
        if len(labels) == 0:
            raise InputError(f"{path}: the split holds no clips")
    shared = sorted(set(train_labels.video_ids) & set(val_labels.video_ids))
    if shared:
        raise InputError(
            f"{config.split_file('train')}, {config.split_file('val')}: {len(shared)} clip(s) are in both the "
            f"train and the validation split ({first_items(shared)}); validation needs held-out clips"
        )
    gt_audio = read_dense_labels(config.split_file("eval_audio"), val_labels.video_ids)
    gt_visual = read_dense_labels(config.split_file("eval_visual"), val_labels.video_ids)
    if not (gt_audio.any() or gt_visual.any()):
        raise InputError(
            f"{config.split_file('eval_audio')}, {config.split_file('eval_visual')}: no dense labels for any "
            f"clip of {config.split_file('val')}; validation needs segment-level labels"
        )
    pseudo_labels = None
    if config.pseudo_labels is not None:
        pseudo_labels = read_split_pseudo_labels(
            config.pseudo_labels, train_labels.video_ids, train_labels.labels
        )
    train_set = SplitDataset(
        sources, train_labels.video_ids, train_labels.labels, config.in_memory, "train", pseudo_labels
    )
    val_set = SplitDataset(sources, val_labels.video_ids, val_labels.labels, config.in_memory, "val")
    return train_set, ValidationData(val_set, gt_audio, gt_visual)


Modulation = Callable[[nn.Module, ParserOutput, Batch], StepMonitors]
"""A gradient procedure run after the backward pass and before the update, on unscaled gradients: it gets
each network the step trained, with that network's output and batch."""


def train_epoch(
    model: nn.Module,
    loader: torch.utils.data.DataLoader,
    step_loss: TrainingStep,
    optimisation: Optimisation,
    mixed_precision: bool,
    desc: str,
    first_step: int = 0,
    modulation: Modulation | None = None,
) -> tuple[dict[str, float], dict[str, np.ndarray]]:
    """One pass over ``loader``, minimising ``step_loss(model, batch, ...)`` step by step.

    ``first_step`` is the 0-based global index of the epoch's first step (the step sees its global index,
    e.g. for a warm-up); ``modulation`` changes each trained network's gradients before each update (the
    monitors of several networks are averaged); then, with ``optimisation.grad_clip``, each trained
    network's gradients are clipped to that L2 norm (``grad_norm``: the mean norm before clipping). Returns
    the epoch record (mean of each logged term and of the total ``loss``, ``steps``, ``seconds``,
    ``data_seconds`` spent waiting for batches) and each such value per step ``(steps,)``. Values stay on
    the device until the end of the epoch (no per-step synchronisation on CUDA, except for the progress bar
    every :data:`PROGRESS_EVERY` steps).
    """
    model.train()
    per_step: list[torch.Tensor] = []
    names = ["loss"]
    data_seconds = 0.0
    start = tick = perf_counter()
    progress = tqdm(batches_of(loader), total=len(loader), desc=desc, unit="batch", disable=None, leave=False)
    for step, batch in enumerate(progress, start=1):
        data_seconds += perf_counter() - tick
        batch = batch.to(optimisation.device)
        result = step_loss(model, batch, first_step + step - 1, len(loader), mixed_precision)
        optimisation.optimizer.zero_grad(set_to_none=True)
        optimisation.scaler.scale(result.total).backward()
        terms = dict(result.terms)
        if modulation is not None or optimisation.grad_clip is not None:
            optimisation.scaler.unscale_(optimisation.optimizer)
        if modulation is not None:
            terms.update(mean_values([modulation(*trained) for trained in result.trained]))
        if optimisation.grad_clip is not None:
            terms.update(mean_values([optimisation.clip(network) for network, _, _ in result.trained]))
        optimisation.scaler.step(optimisation.optimizer)
        optimisation.scaler.update()
        names = ["loss", *terms]
        total = result.total.detach()
        per_step.append(torch.stack([total, *(value.detach() for value in terms.values())]).float())
        if step % PROGRESS_EVERY == 0:
            progress.set_postfix(loss=f"{float(total):.4f}")
        tick = perf_counter()
    values = torch.stack(per_step).cpu().numpy() if per_step else np.zeros((0, len(names)))
    step_losses = {name: values[:, i] for i, name in enumerate(names)}
    record = {name: float(column.mean()) if len(column) else math.nan for name, column in step_losses.items()}
    record.update(steps=len(values), seconds=perf_counter() - start, data_seconds=data_seconds)
    return record, step_losses


def validate(
    model: nn.Module, data: ValidationData, config: TrainConfig, device: torch.device
) -> tuple[dict[str, Any], np.ndarray]:
    """LLP scores on the validation split and its audio-visual attention ``(N, 10, 2, 25)``."""
    probabilities = predict_probabilities(
        model, data.dataset, device, config.eval_batch_size, config.mixed_precision, "validating"
    )
    thresholds = config.thresholds
    audio, visual = decide(probabilities, thresholds.segment, thresholds.video, thresholds.rule)
    return llp_scores(audio, visual, data.gt_audio, data.gt_visual), probabilities.modality_attention


def start_run(
    config: RunSettings, resume: bool, overwrite: bool, free_keys: tuple[str, ...], command: str
) -> tuple[Path, dict[str, Any] | None, torch.device]:
    """Begin a training run: check its paths and output folder, set threads and seeds.

    Returns the output folder, the saved state to resume from (None: a new run) and the device.
    """
    config.require_paths("config")
    output_dir = Path(config.output_dir)
    config_data = config.model_dump(mode="json")
    state = previous_run(output_dir / "last.pt", config_data, resume, overwrite, free_keys, command)
    device = resolve_device(config.device)
    if config.threads is not None:
        torch.set_num_threads(config.threads)
    configure_determinism(config.seed, config.deterministic)
    return output_dir, state, device


def write_run_config(output_dir: Path, config: RunSettings) -> None:
    """Write the validated ``config`` as ``output_dir/config.yaml``, atomically."""
    with atomic_path(output_dir / "config.yaml") as tmp:
        tmp.write_text(yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False), encoding="utf-8")


def epoch_batches(
    dataset: SplitDataset, config: RunSettings, epoch: int, device: torch.device
) -> torch.utils.data.DataLoader:
    """The shuffled batches of ``epoch`` (seeded by the run's seed and the epoch: a resumed run sees the same)."""
    return dataset.loader(
        config.batch_size, config.seed * 100_003 + epoch, config.num_workers, device.type == "cuda"
    )


def validate_networks(
    networks: dict[str, nn.Module], data: ValidationData, config: TrainConfig, device: torch.device
) -> tuple[str, dict[str, dict[str, Any]], np.ndarray]:
    """Validate every network; returns the name of the one with the best selection score (the first on
    ties), every network's metrics by name, and the best one's audio-visual attention."""
    metrics, attention = {}, {}
    for name, network in networks.items():
        metrics[name], attention[name] = validate(network, data, config, device)
    selection = config.selection
    best = max(
        networks, key=lambda n: (metrics[n][selection.level][selection.metric], -list(networks).index(n))
    )
    return best, metrics, attention[best]


def start_encoders(config: TrainConfig, networks: dict[str, nn.Module]) -> None:
    """Load ``pretrained_encoder`` into each network's input encoder (a warning when there is none to load)."""
    for network in networks.values():
        if config.pretrained_encoder is not None:
            load_pretrained_encoder(config.pretrained_encoder, network.input_encoder)
        elif network.input_encoder is not None:
            log.warning("model.input_encoder has no pretrained_encoder: it starts from random weights")


def train(config: TrainConfig, resume: bool = False, overwrite: bool = False) -> dict[str, Any]:
    """Train as ``config`` says; returns ``{"epoch", "score", "metrics"}`` of the best epoch (and, with two
    networks, the ``network`` kept).

    The run owns ``output_dir`` from its first step (:func:`avvp.io.own_folder`): a second run into it
    fails at once. With ``resume``, continues from ``output_dir/last.pt`` (networks, optimizer, schedule,
    RNG, history) on the same data (:func:`check_same_inputs`), so an interrupted run ends with the same
    weights as an uninterrupted one on CPU. With co-training, every network is validated each epoch and
    ``best.pt`` holds the best network of the best epoch.
    """
    config.require_paths("config")
    with own_folder(config.output_dir, "avvp train"):
        return _train_owned(config, resume, overwrite)


def _train_owned(config: TrainConfig, resume: bool, overwrite: bool) -> dict[str, Any]:
    """:func:`train`, in an output folder this process owns."""
    output_dir, state, device = start_run(config, resume, overwrite, RESUME_FREE_KEYS, "avvp train")
    procedure = build_procedure(config, device)  # the files it reads are checked before the data are loaded
    networks = procedure.networks
    start_encoders(config, networks)
    train_set, val_data = load_data(config, procedure.feature_kinds)
    features = sources_identity(train_set.sources)
    label_files = config.label_files()
    labels = {key: file_digest(path) for key, path in label_files.items()}
    if state is not None:
        where = {key: str(path) for key, path in label_files.items()}
        where.update({f"features.{kind}": str(path) for kind, path in train_set.sources.items()})
        check_same_inputs(output_dir / "last.pt", state, features, labels, where)
    decision = config.thresholds.model_dump(mode="json")
    model = procedure.module.to(device)
    mixed_precision = config.mixed_precision and device.type == "cuda"
    optimisation = build_optimisation(
        model.parameters(), config.optimizer, device, mixed_precision, config.epochs
    )
    modulation = (
        GradientModulation(config.gradient_modulation) if config.gradient_modulation is not None else None
    )
    gaps = LossGapTracker()
    history: list[dict[str, Any]] = []
    gap_records: list[dict[str, Any]] = []
    best: dict[str, Any] = {"epoch": 0, "score": -math.inf, "metrics": {}}
    first_epoch = 1
    if state is not None:
        training = state["training"]
        saved = training.get("networks", {SINGLE_NETWORK: state["state_dict"]})
        for name, network in networks.items():
            load_weights(output_dir / "last.pt", network, saved[name])
        optimisation.load_state_dict(training)
        gaps.load_state_dict(training["loss_gaps"])
        history, gap_records, best = training["history"], training["loss_gap_records"], training["best"]
        first_epoch = state["epoch"] + 1
        log.info("resuming %s after epoch %d", output_dir, state["epoch"])
    best_path, unfinished = output_dir / "best.pt", output_dir / UNFINISHED_BEST
    if state is None:
        best_path.unlink(missing_ok=True)  # an overwritten run's best model is not this run's
        unfinished.unlink(missing_ok=True)
    elif best_path.exists():
        os.replace(best_path, unfinished)  # more epochs for a finished run: unfinished until they are done
    write_run_config(output_dir, config)

    for epoch in range(first_epoch, config.epochs + 1):
        lr = optimisation.lr
        loader = epoch_batches(train_set, config, epoch, device)
        record, step_losses = train_epoch(
            model,
            loader,
            procedure.step,
            optimisation,
            mixed_precision,
            f"epoch {epoch}/{config.epochs}",
            first_step=(epoch - 1) * len(loader),
            modulation=modulation,
        )
        optimisation.scheduler.step()
        start = perf_counter()
        chosen, validated, attention = validate_networks(networks, val_data, config, device)
        metrics = validated[chosen]
        score = metrics[config.selection.level][config.selection.metric]
        record = {"epoch": epoch, "lr": lr, **record, "val_seconds": perf_counter() - start}
        record["val"] = {"segment": metrics["segment"], "event": metrics["event"]}
        kept = {"network": chosen} if len(networks) > 1 else {}
        if kept:
            record["network"] = chosen
            record["val_networks"] = {
                n: {"segment": m["segment"], "event": m["event"]} for n, m in validated.items()
            }
        history.append(record)
        gap_records.append(gaps.add_epoch(epoch, step_losses))
        log.info(
            "epoch %d: loss %.4f (%s), val %s %.2f%s, %.1f s",
            epoch,
            record["loss"],
            ", ".join(f"{n} {record[n]:.4f}" for n in step_losses if n != "loss"),
            config.selection.name,
            score,
            f" ({chosen} network)" if kept else "",
            record["seconds"],
        )
        payload = native_payload(networks[chosen], epoch, metrics, features, decision)
        payload["config"] = config.model_dump(mode="json")
        payload["label_files"] = labels
        if score >= best["score"]:
            best = {"epoch": epoch, "score": score, "metrics": metrics, **kept}
            save_checkpoint(unfinished, payload)
            write_json(
                output_dir / "val_metrics.json",
                {"epoch": epoch, "selection": config.selection.name, **kept, **metrics},
            )
            write_attention(output_dir, attention_distribution(attention, config.attention_bins), "val")
        write_jsonl(output_dir / "history.jsonl", history)
        write_jsonl(output_dir / "loss_gaps.jsonl", gap_records)
        payload["training"] = {
            **optimisation.state_dict(),
            "loss_gaps": gaps.state_dict(),
            "history": history,
            "loss_gap_records": gap_records,
            "best": best,
        }
        if len(networks) > 1:
            payload["training"]["networks"] = {n: cpu_state_dict(network) for n, network in networks.items()}
        save_checkpoint(output_dir / "last.pt", payload)
    if unfinished.exists():
        os.replace(unfinished, best_path)
    train_set.close()
    val_data.dataset.close()
    return best


def train_seeds(config: TrainConfig, seeds: list[int], resume: bool = False, overwrite: bool = False) -> dict:
    """Train once per seed into ``output_dir/seed_<s>`` and write ``seeds_summary.json`` (mean, std).

    The summary holds each seed's best validation metrics and, per level and metric, the mean and the
    sample standard deviation (ddof=1; 0 for a single seed) over seeds.
    """
    config.require_paths("config")
    runs = {}
    for seed in seeds:
        run_config = config.model_copy(
            update={"seed": seed, "output_dir": Path(config.output_dir) / f"seed_{seed}"}
        )
        runs[seed] = train(run_config, resume=resume, overwrite=overwrite)
    summary: dict[str, Any] = {
        "seeds": seeds,
        "selection": config.selection.name,
        "runs": {},
        "mean": {},
        "std": {},
    }
    for seed, best in runs.items():
        summary["runs"][str(seed)] = {
            "epoch": best["epoch"],
            **{k: best["metrics"][k] for k in ("segment", "event")},
        }
    for level in ("segment", "event"):
        names = runs[seeds[0]]["metrics"][level].keys()
        values = {n: np.array([runs[s]["metrics"][level][n] for s in seeds], dtype=float) for n in names}
        summary["mean"][level] = {n: float(v.mean()) for n, v in values.items()}
        summary["std"][level] = {n: float(v.std(ddof=1)) if len(v) > 1 else 0.0 for n, v in values.items()}
    write_json(Path(config.output_dir) / "seeds_summary.json", summary)
    return summary
