"""Clip features from feature stores plus weak labels of one split, served as :class:`Batch` objects.

Every clip of the split must have every feature kind the model reads; a missing clip or a non-finite
value is an :class:`~avvp.errors.InputError` naming the store and the clips. ResNet152 frames are
averaged per second on loading (the model's frame projection is linear, so this equals the published
project-then-average and keeps a whole LLP split at about 1 GB of float32).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import BatchSampler, DataLoader, Dataset, RandomSampler, SequentialSampler
from tqdm import tqdm

from avvp.data.features import FeatureStore, FeatureStoreError, MissingFeaturesError
from avvp.data.labels import NUM_SEGMENTS
from avvp.errors import InputError, first_items

log = logging.getLogger(__name__)
MAX_FEATURE_MAGNITUDE = 1e12
"""Feature values beyond this are refused as corrupt (random-init networks reach about 1e5)."""
LOAD_CHUNK = 256
"""Clips read from a store per HDF5 request when loading a split into memory."""


@dataclass
class Batch:
    """A batch of ``B`` clips: ``index`` (B,) rows in the split, ``features`` by kind, weak ``labels`` (B, 25).

    ``dropped`` maps a modality (``audio``, ``visual``) to a bool (B, 25) mask of weak labels a label
    denoising procedure removed from that modality's targets for this step (empty: none removed).
    ``pseudo_labels`` maps a modality to its segment-level pseudo-labels (B, 10, 25) in [0, 1] (empty: the
    split has none).
    """

    index: torch.Tensor
    video_ids: list[str]
    features: dict[str, torch.Tensor]
    labels: torch.Tensor
    dropped: dict[str, torch.Tensor] = field(default_factory=dict)
    pseudo_labels: dict[str, torch.Tensor] = field(default_factory=dict)

    def to(self, device: torch.device) -> Batch:
        """The batch on ``device`` (non-blocking copies, useful with pinned memory)."""
        return Batch(
            index=self.index.to(device, non_blocking=True),
            video_ids=self.video_ids,
            features={k: v.to(device, non_blocking=True) for k, v in self.features.items()},
            labels=self.labels.to(device, non_blocking=True),
            dropped={k: v.to(device, non_blocking=True) for k, v in self.dropped.items()},
            pseudo_labels={k: v.to(device, non_blocking=True) for k, v in self.pseudo_labels.items()},
        )

    def without(self, removed: Mapping[str, torch.Tensor]) -> Batch:
        """A copy whose ``dropped`` masks also hold the ``removed`` ones (modality -> bool (B, 25))."""
        dropped = dict(self.dropped)
        for modality, mask in removed.items():
            dropped[modality] = dropped[modality] | mask if modality in dropped else mask
        return replace(self, dropped=dropped)

    def pin_memory(self) -> Batch:
        """The batch in pinned host memory (called by the DataLoader when ``pin_memory=True``)."""
        return Batch(
            index=self.index.pin_memory(),
            video_ids=self.video_ids,
            features={k: v.pin_memory() for k, v in self.features.items()},
            labels=self.labels.pin_memory(),
            pseudo_labels={k: v.pin_memory() for k, v in self.pseudo_labels.items()},
        )


def resolve_feature_sources(
    features: Path | str | Mapping[str, Path | str] | Sequence[Path | str], kinds: Sequence[str]
) -> dict[str, Path]:
    """Map each of ``kinds`` to the store holding it.

    ``features`` is one store, a ``{kind: store}`` mapping, or a list of stores (each kind is taken from
    the first store that has it). Raises :class:`InputError` when a kind is in none of them.
    """
    if isinstance(features, Mapping):
        sources = {kind: Path(path) for kind, path in features.items()}
    else:
        paths = [Path(features)] if isinstance(features, str | Path) else [Path(p) for p in features]
        sources = {}
        for path in paths:
            with FeatureStore(path) as store:
                for kind in store.kinds:
                    sources.setdefault(kind, path)
    absent = [kind for kind in kinds if kind not in sources]
    if absent:
        given = ", ".join(str(p) for p in sorted(set(sources.values()))) or str(features)
        raise InputError(f"{given}: no store holds the feature kind(s) {absent} the model needs")
    return {kind: sources[kind] for kind in kinds}


def _prepare(kind: str, array: np.ndarray) -> np.ndarray:
    """Average ResNet152 frames per second ``(n, 10*k, 2048) -> (n, 10, 2048)``; other kinds unchanged."""
    if kind == "resnet152" and array.shape[1] != NUM_SEGMENTS:
        n, frames, dim = array.shape
        return array.reshape(n, NUM_SEGMENTS, frames // NUM_SEGMENTS, dim).mean(axis=2)
    return array


def _check_finite(path: Path, kind: str, video_ids: Sequence[str], array: np.ndarray) -> None:
    flat = array.reshape(len(array), -1)
    bad = ~(np.isfinite(flat) & (np.abs(flat) <= MAX_FEATURE_MAGNITUDE)).all(axis=1)
    if bad.any():
        names = [video_ids[i] for i in np.flatnonzero(bad)]
        shown = first_items(names)
        raise FeatureStoreError(
            f"{path}: '{kind}' features of {len(names)} clip(s) hold NaN, inf or values beyond "
            f"+-{MAX_FEATURE_MAGNITUDE:g}: {shown}"
        )


class SplitDataset(Dataset):
    """Features and weak labels of one split; ``dataset[list_of_rows]`` returns a :class:`Batch`.

    With ``in_memory=True`` the split is read once (in chunks, with a progress bar) into float32 tensors;
    otherwise each batch is read from the stores (each worker process opens its own handles).
    ``pseudo_labels`` (modality -> (N, 10, 25), rows in the split's order), when given, are held in memory
    and served with each batch.
    """

    def __init__(
        self,
        sources: Mapping[str, Path],
        video_ids: Sequence[str],
        labels: np.ndarray,
        in_memory: bool = True,
        name: str = "split",
        pseudo_labels: Mapping[str, np.ndarray] | None = None,
    ) -> None:
        self.sources = dict(sources)
        self.video_ids = list(video_ids)
        self.labels = torch.as_tensor(labels, dtype=torch.float32)
        self.pseudo_labels = {
            m: torch.as_tensor(values, dtype=torch.float32) for m, values in (pseudo_labels or {}).items()
        }
        self.in_memory = in_memory
        self._handles: dict[Path, FeatureStore] = {}
        self._pid = os.getpid()
        for kind, path in self.sources.items():
            missing = self._store(kind).missing(kind, self.video_ids)
            if missing:
                raise MissingFeaturesError(path, kind, missing)
        self._tensors = self._load_all(name) if in_memory else {}
        self.close()  # reopened on demand: DataLoader workers must not inherit open HDF5 handles

    def __len__(self) -> int:
        return len(self.video_ids)

    def _store(self, kind: str) -> FeatureStore:
        if self._pid != os.getpid():  # in a DataLoader worker: reopen instead of sharing HDF5 handles
            self._handles, self._pid = {}, os.getpid()
        path = self.sources[kind]
        if path not in self._handles:
            self._handles[path] = FeatureStore(path)
        return self._handles[path]

    def _read(self, kind: str, video_ids: Sequence[str]) -> np.ndarray:
        array = self._store(kind).read(kind, video_ids)
        _check_finite(self.sources[kind], kind, video_ids, array)
        return _prepare(kind, array)

    def _load_all(self, name: str) -> dict[str, torch.Tensor]:
        tensors = {}
        for kind in self.sources:
            chunks = []
            starts = range(0, len(self.video_ids), LOAD_CHUNK)
            for start in tqdm(starts, desc=f"loading {name} {kind}", unit="chunk", disable=None, leave=False):
                chunks.append(self._read(kind, self.video_ids[start : start + LOAD_CHUNK]))
            tensors[kind] = torch.from_numpy(np.concatenate(chunks)) if chunks else torch.zeros(0)
        return tensors

    def __getitem__(self, rows: Sequence[int]) -> Batch:
        """The clips at ``rows`` as one :class:`Batch`."""
        index = torch.as_tensor(rows, dtype=torch.long)
        ids = [self.video_ids[i] for i in rows]
        if self.in_memory:
            features = {kind: tensor[index] for kind, tensor in self._tensors.items()}
        else:
            features = {kind: torch.from_numpy(self._read(kind, ids)) for kind in self.sources}
        pseudo = {m: values[index] for m, values in self.pseudo_labels.items()}
        return Batch(index, ids, features, self.labels[index], pseudo_labels=pseudo)

    def loader(
        self,
        batch_size: int,
        shuffle_seed: int | None = None,
        num_workers: int = 0,
        pin_memory: bool = False,
    ) -> DataLoader:
        """Batches of the split, shuffled by a generator seeded with ``shuffle_seed`` (None keeps order)."""
        if shuffle_seed is None:
            sampler = SequentialSampler(self)
        else:
            sampler = RandomSampler(self, generator=torch.Generator().manual_seed(shuffle_seed))
        return DataLoader(
            self,
            sampler=BatchSampler(sampler, batch_size, drop_last=False),
            batch_size=None,
            num_workers=0 if self.in_memory else num_workers,
            pin_memory=pin_memory,
        )

    def close(self) -> None:
        """Close the open feature stores."""
        for handle in self._handles.values():
            handle.close()
        self._handles = {}
