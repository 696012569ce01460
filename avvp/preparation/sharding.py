"""Splitting the dataset's clips into shards: the unit of download and extraction jobs.

A shard is a text file with one LLP filename per line. Shards keep the workflow's DAG small at LLP scale
(tens of jobs instead of twelve thousand) while letting an interrupted run resume shard by shard.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from avvp.data.labels import parse_clip_name, read_weak_labels
from avvp.errors import InputError
from avvp.io import atomic_path, read_text
from avvp.preparation.shard_names import shard_names


def split_into_shards(video_ids: Sequence[str], num_shards: int) -> list[list[str]]:
    """Split ``video_ids`` into ``num_shards`` contiguous, non-empty lists whose sizes differ by at most one."""
    if num_shards < 1:
        raise InputError(f"number of shards must be at least 1, got {num_shards}")
    if num_shards > len(video_ids):
        raise InputError(f"{num_shards} shards for only {len(video_ids)} clips: use at most {len(video_ids)}")
    return [list(part) for part in np.array_split(np.asarray(video_ids, dtype=object), num_shards)]


def write_clip_list(path: str | Path, video_ids: Sequence[str]) -> None:
    """Write one clip name per line to ``path``, atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text("".join(f"{vid}\n" for vid in video_ids), encoding="utf-8")


def read_clip_list(path: str | Path) -> list[str]:
    """Read a shard or video list: one entry per line; blank lines and ``#`` comments are skipped."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: clip list not found")
    lines = (line.strip() for line in read_text(path).splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def read_extra_clips(path: str | Path) -> list[str]:
    """Clip names of a clip list (``<11-char YouTube id>_<start>_<end>`` per line), each checked."""
    names = read_clip_list(path)
    for line, name in enumerate(names, start=1):
        try:
            parse_clip_name(name)
        except ValueError as err:
            raise InputError(f"{path}: entry {line}: {err}") from None
    return names


def write_shards(
    clips_csv: str | Path, num_shards: int, output_dir: str | Path, extra_clips: str | Path | None = None
) -> list[Path]:
    """Split the clips of a weak-label file (e.g. ``AVVP_dataset_full.csv``) into ``output_dir/NNN.txt``.

    ``extra_clips`` (a clip list, e.g. AudioSet clips for AVG pretraining) adds clips after the labelled
    ones, skipping those already listed. Returns the written paths, in shard order.
    """
    video_ids = read_weak_labels(clips_csv).video_ids
    if extra_clips is not None:
        known = set(video_ids)
        video_ids += [name for name in dict.fromkeys(read_extra_clips(extra_clips)) if name not in known]
    try:
        parts = split_into_shards(video_ids, num_shards)
    except InputError as err:
        raise InputError(f"{clips_csv}: {err}") from None
    paths = [Path(output_dir) / f"{name}.txt" for name in shard_names(num_shards)]
    for path, part in zip(paths, parts, strict=True):
        write_clip_list(path, part)
    return paths
