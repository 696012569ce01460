"""Synthetic LLP-shaped data for the model, training and prediction tests.

A *learnable* set: each clip has one or two of the first ``num_classes`` classes; a class present in a
segment adds its own random prototype vector to that segment's features (audio to VGGish, visual to
ResNet152 and R(2+1)D), on top of Gaussian noise. So the weak labels are predictable from the features
and the training loss must fall.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch

from avvp.config_files import read_config_file
from avvp.data.features import FEATURE_SHAPES, LLP_KINDS, FeatureStoreWriter
from avvp.data.labels import CLASSES, NUM_SEGMENTS, segments_to_events, write_event_rows
from avvp.training.config import TrainConfig, load_config
from avvp.training.losses import PSEUDO_LABEL_TERMS


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Run a test on one torch thread (far faster on a shared 2-core machine), then restore the count."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def restore_determinism():
    """Switch deterministic algorithms off after a test (``deterministic: true`` is process-wide)."""
    yield
    torch.use_deterministic_algorithms(False)


TINY_MODEL = {"d_model": 32, "feedforward": 32, "dropout": 0.1}


def random_features(batch: int, seed: int = 0) -> dict[str, torch.Tensor]:
    """Gaussian model inputs of ``batch`` clips in LLP's shapes (ResNet152 at 8 frames per second)."""
    generator = torch.Generator().manual_seed(seed)
    return {
        kind: torch.randn(batch, *shape, generator=generator)
        for kind, shape in ((kind, FEATURE_SHAPES[kind]) for kind in LLP_KINDS)
    }


@dataclass
class SyntheticSplits:
    """Paths of a synthetic dataset and the dense truth of its validation clips."""

    features: Path
    annotations_dir: Path
    train_ids: list[str]
    val_ids: list[str]


def clip_name(split: str, i: int) -> str:
    """An LLP-style filename: an 11-character id, then ``_0_10``."""
    return f"{split[:2]}{i:09d}_0_10"


def _write_weak(path: Path, ids: list[str], audio: np.ndarray, visual: np.ndarray) -> None:
    present = (audio | visual).any(axis=1)
    lines = ["filename\tevent_labels"]
    lines += [
        f"{vid}\t{','.join(CLASSES[c] for c in np.flatnonzero(row))}"
        for vid, row in zip(ids, present, strict=True)
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _draw_events(rng: np.random.Generator, n: int, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Dense audio and visual matrices ``(n, 10, 25)``: 1-2 classes per clip, random runs per modality."""
    audio = np.zeros((n, NUM_SEGMENTS, len(CLASSES)), dtype=bool)
    visual = np.zeros_like(audio)
    for i in range(n):
        for c in rng.choice(num_classes, size=rng.integers(1, 3), replace=False):
            for matrix in (audio, visual):
                onset = rng.integers(0, 6)
                matrix[i, onset : onset + rng.integers(3, 11 - onset), c] = True
    return audio, visual


def make_splits(
    root: Path,
    num_train: int = 32,
    num_val: int = 12,
    num_classes: int = 4,
    seed: int = 0,
    signal: float = 3.0,
) -> SyntheticSplits:
    """Write ``features.h5`` and ``annotations/`` (LLP file names) under ``root``; return their paths."""
    rng = np.random.default_rng(seed)
    prototypes = {
        kind: rng.normal(size=(num_classes, dim))
        for kind, (_, dim) in ((kind, FEATURE_SHAPES[kind]) for kind in LLP_KINDS)
    }
    annotations = root / "annotations"
    annotations.mkdir(parents=True, exist_ok=True)
    ids = {
        "train": [clip_name("train", i) for i in range(num_train)],
        "val": [clip_name("val", i) for i in range(num_val)],
    }
    dense = {split: _draw_events(rng, len(split_ids), num_classes) for split, split_ids in ids.items()}
    _write_weak(annotations / "AVVP_train.csv", ids["train"], *dense["train"])
    _write_weak(annotations / "AVVP_val_pd.csv", ids["val"], *dense["val"])
    for name, modality in (("AVVP_eval_audio.csv", 0), ("AVVP_eval_visual.csv", 1)):
        write_event_rows(annotations / name, segments_to_events(ids["val"], dense["val"][modality]))
    features = root / "features.h5"
    with FeatureStoreWriter(features) as store:
        for kind in LLP_KINDS:
            store.set_attrs(kind, {"extractor": "synthetic", "weights": f"random-init(seed={seed})"})
        for split, split_ids in ids.items():
            audio, visual = dense[split]
            for i, vid in enumerate(split_ids):
                for kind, (frames, dim) in ((kind, FEATURE_SHAPES[kind]) for kind in LLP_KINDS):
                    present = audio[i, :, :num_classes] if kind == "vggish" else visual[i, :, :num_classes]
                    per_second = signal * present.astype(float) @ prototypes[kind]  # (10, dim)
                    repeated = np.repeat(per_second, frames // NUM_SEGMENTS, axis=0)
                    store.add(kind, vid, (repeated + rng.normal(size=(frames, dim))).astype(np.float32))
    return SyntheticSplits(features, annotations, ids["train"], ids["val"])


def train_overrides(splits: SyntheticSplits, output_dir: Path, **extra: object) -> dict[str, object]:
    """Config overrides for a fast CPU run on ``splits`` with the tiny model."""
    overrides: dict[str, object] = {
        "features": str(splits.features),
        "annotations_dir": str(splits.annotations_dir),
        "output_dir": str(output_dir),
        "device": "cpu",
        "batch_size": 8,
        "eval_batch_size": 64,
        "optimizer.lr": 1e-3,
        **{f"model.{k}": v for k, v in TINY_MODEL.items()},
    }
    overrides.update(extra)
    return overrides


CONFIGS = Path(__file__).resolve().parents[1] / "resources" / "configs"
SHIPPED_CONFIGS = sorted(p.name for p in CONFIGS.glob("*.yaml"))
"""The file names of the shipped training recipes the tests validate."""


def load_shipped(name: str) -> TrainConfig:
    """A shipped recipe, validated; one that trains on pseudo-labels gets a placeholder ``pseudo_labels`` (set
    by the workflow from its teacher)."""
    terms = read_config_file(CONFIGS / name).get("loss", {}).get("terms", {})
    pseudo = {"pseudo_labels": "pseudo_labels.h5"} if set(terms) & set(PSEUDO_LABEL_TERMS) else {}
    return load_config(CONFIGS / name, pseudo)
