"""Restricting the splits to the clips that have features, and saying how many are missing.

Some LLP videos can no longer be downloaded, and some clips fail to decode. Training and prediction need
every clip of their split in the feature store (and, where a teacher's features or pseudo-labels are read, in
those too), so the workflow runs them on the available clips and the report states, per split, how many clips
are missing.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from avvp.data.annotations import SPLIT_FILES
from avvp.data.features import FeatureStore
from avvp.data.labels import read_weak_labels, write_weak_labels
from avvp.data.pseudo_labels import PseudoLabels
from avvp.errors import InputError
from avvp.io import write_json

MISSING_LISTED = 50


def write_weak_subset(source: str | Path, keep: set[str], output: str | Path) -> None:
    """Copy the rows of weak-label file ``source`` whose clip is in ``keep`` to ``output``, atomically."""
    labels = read_weak_labels(source)
    rows = [i for i, vid in enumerate(labels.video_ids) if vid in keep]
    write_weak_labels(output, [labels.video_ids[i] for i in rows], labels.labels[rows])


def available_clips(
    stores: Sequence[str | Path], pseudo_labels: Sequence[str | Path] = ()
) -> tuple[set[str], dict[str, list[str]]]:
    """The clips that have every feature kind of every store in ``stores`` and pseudo-labels in every file
    of ``pseudo_labels``; and the kinds of each store (by path)."""
    kinds: dict[str, list[str]] = {}
    sets: list[set[str]] = []
    for path in stores:
        with FeatureStore(path) as store:
            kinds[str(path)] = store.kinds
            sets += [set(store.video_ids(kind)) for kind in store.kinds]
    for path in pseudo_labels:
        with PseudoLabels(path) as labels:
            sets.append(set(labels.video_ids))
    return (set.intersection(*sets) if sets and all(kinds.values()) else set()), kinds


def filter_splits(
    stores: Sequence[str | Path],
    annotations_dir: str | Path,
    output_dir: str | Path,
    pseudo_labels: Sequence[str | Path] = (),
) -> dict[str, Any]:
    """Write ``output_dir/AVVP_{train,val_pd,test_pd}.csv`` with only the clips of :func:`available_clips`
    (every feature kind of every store; pseudo-labels in every file), and ``output_dir/coverage.json``;
    return the coverage summary.

    Summary: ``features`` (the stores), ``kinds`` (per store), ``pseudo_labels`` (the files), and per split
    ``total``, ``available``, ``missing`` (count) and ``missing_clips`` (the first 50). A split left without
    any clip is an :class:`InputError` and nothing is written.
    """
    have, kinds = available_clips(stores, pseudo_labels)
    summary: dict[str, Any] = {
        "features": [str(path) for path in stores],
        "kinds": kinds,
        "pseudo_labels": [str(path) for path in pseudo_labels],
        "splits": {},
    }
    splits = {
        split: read_weak_labels(Path(annotations_dir) / name).video_ids for split, name in SPLIT_FILES.items()
    }
    empty = [split for split, video_ids in splits.items() if not any(vid in have for vid in video_ids)]
    if empty:
        wanted = (
            str(next(iter(kinds.values())))
            if len(kinds) == 1
            else "; ".join(f"{p} {k}" for p, k in kinds.items())
        )
        wanted += "".join(f" and pseudo-labels in {path}" for path in pseudo_labels)
        raise InputError(
            f"{', '.join(kinds)}: no clip of the {', '.join(empty)} split(s) has every feature kind {wanted}; "
            "nothing written (are the features of this dataset, and are the downloads done?)"
        )
    for split, name in SPLIT_FILES.items():
        video_ids = splits[split]
        missing = [vid for vid in video_ids if vid not in have]
        write_weak_subset(Path(annotations_dir) / name, have, Path(output_dir) / name)
        summary["splits"][split] = {
            "total": len(video_ids),
            "available": len(video_ids) - len(missing),
            "missing": len(missing),
            "missing_clips": missing[:MISSING_LISTED],
        }
    write_json(Path(output_dir) / "coverage.json", summary)
    return summary
