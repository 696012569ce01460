"""Standardising a feature store: per kind and dimension, zero mean and unit variance on one split.

Randomly initialised networks (the offline demo) give features on wildly different scales (a random
ResNet152 reaches 10^5, a random VGGish 10^-2), which a parser trained with a normal learning rate cannot
use. Standardising with statistics of the training clips only (so nothing leaks from evaluation clips)
brings every kind to the same footing; the store records that it was done and keeps the statistics
(``/<kind>/standardization/mean`` and ``/std``), so freshly extracted clips can be scaled identically with
:meth:`~avvp.data.features.Standardization.apply`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from tqdm import tqdm

from avvp.data.features import FeatureStore, FeatureStoreWriter, Standardization
from avvp.errors import InputError

CHUNK_CLIPS = 256
EPSILON = 1e-6


def kind_statistics(
    store: FeatureStore, kind: str, video_ids: Sequence[str]
) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation ``(D,)`` of ``kind`` over every time step of ``video_ids`` (float64).

    Reads ``CHUNK_CLIPS`` clips at a time, so memory stays flat at LLP scale.
    """
    total = None
    squares = None
    count = 0
    for start in range(0, len(video_ids), CHUNK_CLIPS):
        block = store.read(kind, video_ids[start : start + CHUNK_CLIPS]).astype(np.float64)
        rows = block.reshape(-1, block.shape[-1])
        total = rows.sum(0) if total is None else total + rows.sum(0)
        squares = (rows**2).sum(0) if squares is None else squares + (rows**2).sum(0)
        count += len(rows)
    mean = total / count
    std = np.sqrt(np.maximum(squares / count - mean**2, 0.0))
    return mean, std


def standardize_store(
    source: str | Path, reference_ids: Sequence[str], output: str | Path, dtype: str = "float32"
) -> dict[str, int]:
    """Write ``output``: every clip of ``source`` standardised with the statistics of ``reference_ids``.

    Clips of ``reference_ids`` that lack a kind are left out of its statistics; a kind with none of them is
    an error, and so is a ``source`` that is standardised already. Returns the number of clips written per kind.
    """
    counts = {}
    with FeatureStore(source) as store:
        already = [kind for kind in store.kinds if "standardized" in store.attrs(kind)]
    if already:
        raise InputError(
            f"{source}: its {', '.join(already)} features are already standardised; standardise the raw store"
        )
    with FeatureStore(source) as store, FeatureStoreWriter(output, dtype=dtype) as writer:
        for kind in store.kinds:
            available = sorted(set(reference_ids) - set(store.missing(kind, reference_ids)))
            if not available:
                raise ValueError(
                    f"{source}: none of the {len(reference_ids)} reference clips has '{kind}' features"
                )
            standardization = Standardization(*kind_statistics(store, kind, available), EPSILON)
            writer.set_attrs(kind, store.attrs(kind))
            writer.set_standardization(kind, standardization, len(available))
            ids = store.video_ids(kind)
            dataset = store.dataset(kind)
            for row, vid in enumerate(tqdm(ids, desc=kind, unit="clip", leave=False)):
                writer.add(kind, vid, standardization.apply(dataset[row]))
            counts[kind] = len(ids)
    return counts
