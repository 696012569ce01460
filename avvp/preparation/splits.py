"""Restricting the splits to the clips that have features, and saying how many are missing.

Some LLP videos can no longer be downloaded, and some clips fail to decode. Training and prediction need
every clip of their split in the feature store, so the workflow runs them on the available clips and the
report states, per split, how many clips are missing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from avvp.data.annotations import SPLIT_FILES
from avvp.data.features import FeatureStore
from avvp.data.labels import read_weak_labels, write_weak_labels
from avvp.errors import InputError
from avvp.io import write_json

MISSING_LISTED = 50


def write_weak_subset(source: str | Path, keep: set[str], output: str | Path) -> None:
    """Copy the rows of weak-label file ``source`` whose clip is in ``keep`` to ``output``, atomically."""
    labels = read_weak_labels(source)
    rows = [i for i, vid in enumerate(labels.video_ids) if vid in keep]
    write_weak_labels(output, [labels.video_ids[i] for i in rows], labels.labels[rows])


def filter_splits(
    features: str | Path, annotations_dir: str | Path, output_dir: str | Path
) -> dict[str, Any]:
    """Write ``output_dir/AVVP_{train,val_pd,test_pd}.csv`` with only the clips that have every feature
    kind of the store, and ``output_dir/coverage.json``; return the coverage summary.

    Summary per split: ``total``, ``available``, ``missing`` (count) and ``missing_clips`` (the first 50).
    A split left without any clip is an :class:`InputError` and nothing is written.
    """
    with FeatureStore(features) as store:
        kinds = store.kinds
        have = set.intersection(*(set(store.video_ids(kind)) for kind in kinds)) if kinds else set()
    summary: dict[str, Any] = {"features": str(features), "kinds": kinds, "splits": {}}
    splits = {
        split: read_weak_labels(Path(annotations_dir) / name).video_ids for split, name in SPLIT_FILES.items()
    }
    empty = [split for split, video_ids in splits.items() if not any(vid in have for vid in video_ids)]
    if empty:
        raise InputError(
            f"{features}: no clip of the {', '.join(empty)} split(s) has every feature kind {kinds}; "
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
