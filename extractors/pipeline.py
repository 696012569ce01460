"""Extract a shard: decode clips, run each network on batches of several clips, write the feature store and a
failure manifest.

Decoding and resizing (uint8) run in DataLoader workers beside the networks where the machine has cores to
spare for them (a GPU node), and in this process between batches where the networks need every core (a
small CPU machine): :func:`decoding_plan`.
A clip that cannot be decoded, or lacks a stream, is recorded in the manifest and skipped for the kinds
it cannot feed; it never stops the shard. Both outputs appear atomically when the shard completes, so
rerunning an interrupted shard starts from scratch and produces the same file.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from avvp.data.features import FeatureStoreError, FeatureStoreWriter
from avvp.data.labels import parse_clip_name
from avvp.device import available_cores
from avvp.errors import InputError, first_items
from avvp.interrupts import batches_of
from avvp.io import FIELD_BREAKS, VIDEO_SUFFIXES, is_media_file, read_text, read_tsv, write_tsv
from extractors.decoding import load_audio, load_frames
from extractors.forward_plan import check_precision, precision_context
from extractors.networks import AUDIO_RATES, VIDEO, FeatureNetwork

log = logging.getLogger(__name__)
MANIFEST_HEADER = ("video_id", "stage", "reason")


@dataclass(frozen=True)
class Failure:
    """One manifest row: the clip, the stage that failed (or padded), and why."""

    video_id: str
    stage: str
    reason: str


@dataclass
class ShardResult:
    """What a shard run wrote: rows per kind and the manifest rows."""

    written: dict[str, int] = field(default_factory=dict)
    failures: list[Failure] = field(default_factory=list)


def manifest_path(shard: str | Path) -> Path:
    """The failure manifest beside a shard: ``SHARD.h5`` -> ``SHARD.failures.tsv``."""
    shard = Path(shard)
    return shard.with_name(f"{shard.stem}.failures.tsv")


def list_videos(source: str | Path) -> list[Path]:
    """Clips to extract: the video files of a directory (sorted), one video or audio file (known by its
    suffix or its first bytes), or the paths listed in a text file (one per line; blank lines and ``#``
    comments skipped; relative paths are relative to the current directory). Raises :class:`InputError` when
    ``source`` is missing or empty, or two clips share an id."""
    source = Path(source)
    if source.is_dir():
        videos = sorted(p for p in source.iterdir() if p.suffix.lower() in VIDEO_SUFFIXES and p.is_file())
    elif source.is_file() and is_media_file(source):
        videos = [source]
    elif source.is_file():
        lines = read_text(source).splitlines()
        videos = [Path(s) for s in (line.strip() for line in lines) if s and not s.startswith("#")]
    else:
        raise InputError(f"{source}: no such directory or list file")
    if not videos:
        raise InputError(f"{source}: no video files (looked for {', '.join(VIDEO_SUFFIXES)})")
    check_clip_ids(videos, f"{source}: ")
    return videos


def check_clip_ids(videos: Sequence[Path], where: str = "") -> None:
    """Raise :class:`InputError` (prefixed by ``where``) when a video's file name holds a tab or line break
    (its stem, the clip id, could not be kept alike in the CSV and TSV rows and the HDF5 ids), or two videos
    share a file stem."""
    seen: dict[str, Path] = {}
    for video in videos:
        if FIELD_BREAKS.search(video.name):
            raise InputError(
                f"{where}{str(video)!r}: the file name holds a tab or line break, which the clip id in CSV "
                "files and feature stores cannot keep; rename the file"
            )
        if video.stem in seen:
            raise InputError(
                f"{where}clips {seen[video.stem]} and {video} have the same video id {video.stem}"
            )
        seen[video.stem] = video


def warn_non_llp_ids(videos: Sequence[Path], output: Path) -> None:
    """Log one warning naming the first few clip ids (file stems) that are not LLP filenames
    (``<11-char YouTube id>_<start>_<end>``) and how many there are: their features match no LLP annotation.
    Not an error: users extract their own videos too."""
    unnamed = []
    for video in videos:
        try:
            parse_clip_name(video.stem)
        except ValueError:
            unnamed.append(video.stem)
    if unnamed:
        log.warning(
            "%s: %d of %d clip id(s) are not LLP filenames (<11-char YouTube id>_<start>_<end>), so they match "
            "no LLP annotation (fine for your own videos; rename LLP clips to their LLP names): %s",
            output,
            len(unnamed),
            len(videos),
            first_items(unnamed),
        )


def failure_reason(err: BaseException) -> str:
    """One line saying why a clip failed: the exception's type and its message, white space folded."""
    text = " ".join(str(err).split()) or "no message"
    return f"{type(err).__name__}: {text}"


class ClipDataset(Dataset):
    """Decodes clip ``i`` and prepares each network's input rows; never raises for a bad clip.

    Item: ``{"video_id": str, "inputs": {kind: tensor}, "failures": [Failure]}``.
    """

    def __init__(self, videos: Sequence[Path], networks: Sequence[FeatureNetwork]) -> None:
        self.videos = list(videos)
        self.prepare = {net.kind: (net.source, net.prepare) for net in networks}

    def __len__(self) -> int:
        return len(self.videos)

    def _load(self, source: str, path: Path, video_id: str, failures: list[Failure]) -> np.ndarray | None:
        try:
            if source == VIDEO:
                loaded = load_frames(path)
                data = loaded.frames
            else:
                loaded = load_audio(path, rate=AUDIO_RATES[source])
                data = loaded.waveform
        except Exception as err:  # any decoder error is a property of this clip, recorded and skipped
            failures.append(Failure(video_id, f"decode-{source}", failure_reason(err)))
            return None
        if loaded.padded_seconds:
            filler = "last frame repeated" if source == VIDEO else "silence appended"
            failures.append(
                Failure(
                    video_id,
                    f"pad-{source}",
                    f"{source} shorter than 10 s: {filler} for {loaded.padded_seconds:.2f} s",
                )
            )
        return data

    def __getitem__(self, index: int) -> dict[str, Any]:
        path = self.videos[index]
        video_id = path.stem
        failures: list[Failure] = []
        inputs: dict[str, torch.Tensor] = {}
        for source in (VIDEO, *AUDIO_RATES):
            kinds = [kind for kind, (src, _) in self.prepare.items() if src == source]
            data = self._load(source, path, video_id, failures) if kinds else None
            if data is not None:
                for kind in kinds:
                    inputs[kind] = self.prepare[kind][1](data)
        return {"video_id": video_id, "inputs": inputs, "failures": failures}


def collate_clips(items: list[dict[str, Any]]) -> dict[str, Any]:
    """Concatenate the clips' input rows per kind (in the worker, so the batch is pinned once).

    Returns ``{"count": clips, "failures": [Failure], "inputs": {kind: (video_ids, tensor [rows, ...])}}``.
    """
    kinds = sorted({kind for item in items for kind in item["inputs"]})
    inputs = {}
    for kind in kinds:
        ready = [item for item in items if kind in item["inputs"]]
        inputs[kind] = (
            [item["video_id"] for item in ready],
            torch.cat([item["inputs"][kind] for item in ready]),
        )
    return {
        "count": len(items),
        "failures": [f for item in items for f in item["failures"]],
        "inputs": inputs,
    }


@dataclass(frozen=True)
class DecodingPlan:
    """How extraction spreads over the cores: ``workers`` decoding processes (0: clips are decoded in this
    process, between the networks' batches) and ``threads`` torch threads in this process."""

    workers: int
    threads: int


MAX_CUDA_WORKERS = 16
CPU_CORES_PER_WORKER = 16
"""On CPU, one decoding worker per this many cores (none on fewer). Measured at the published sizes: a clip
decodes and resizes in about 0.2 s on one core, its forward passes take about 30 core-seconds; decoding in
the main process then costs about 0.2 / (30 / N) of the time on N cores, a worker about 1 / (N - 1) of the
networks' speed: the worker pays off from about 13 cores."""


def decoding_plan(device: torch.device, cores: int | None = None, workers: int | None = None) -> DecodingPlan:
    """How extraction with networks on ``device`` uses ``cores`` cores (default: those this process may run
    on, :func:`avvp.device.available_cores`): ``workers`` decoding processes (default: chosen here) and the
    cores left, at least one, as torch threads of this process.

    On CUDA decoding must keep up with the GPU: every core but one decodes (at most
    :data:`MAX_CUDA_WORKERS` workers); this process only feeds the GPU and writes. On CPU the networks use
    every core and decoding is a few per cent of the work; a worker takes a core from every forward pass
    (on 2 cores it competes with both torch threads), so decoding stays in this process, between batches,
    on fewer than :data:`CPU_CORES_PER_WORKER` cores, and one worker per that many cores overlaps it with
    the networks on larger machines.
    """
    cores = cores or available_cores()
    if workers is None and device.type == "cuda":
        workers = min(max(cores - 1, 1), MAX_CUDA_WORKERS)
    elif workers is None:
        workers = cores // CPU_CORES_PER_WORKER
    return DecodingPlan(workers=workers, threads=max(cores - workers, 1))


def _limit_worker_threads(_: int) -> None:
    torch.set_num_threads(1)


def run_network(network: FeatureNetwork, rows: torch.Tensor, num_clips: int) -> np.ndarray:
    """Forward ``rows`` (all clips' input rows) in calls of the network's plan (its batch of items, layout
    and precision: :class:`extractors.forward_plan.ForwardPlan`) -> float32 [clips, T, D]."""
    step = network.rows_per_forward
    outputs = []
    with torch.inference_mode(), precision_context(network.device, network.plan.precision):
        for start in range(0, len(rows), step):
            chunk = rows[start : start + step].to(network.device, non_blocking=True)
            outputs.append(network.forward(chunk).float().cpu())
    return torch.cat(outputs).numpy().reshape(num_clips, *network.shape)


def extract_shard(
    videos: Sequence[Path],
    output: str | Path,
    networks: Sequence[FeatureNetwork],
    workers: int | None = None,
    batch_clips: int = 4,
    dtype: str = "float32",
    progress: bool = True,
) -> ShardResult:
    """Extract every network's features of ``videos`` into the store ``output`` and write the manifest.

    Clip ids (file stems) that are not LLP filenames are named in a warning (:func:`warn_non_llp_ids`).
    When no clip at all could be extracted, :class:`NothingExtractedError` is raised and neither the store
    nor the manifest is written (an earlier good shard is never replaced by an empty one).

    ``workers`` decoding processes (0 decodes in this process; None: :func:`decoding_plan`'s choice for
    the networks' device), ``batch_clips`` clips per batch; each network runs its forward plan (a reduced
    precision is checked on the first batch, :func:`extractors.forward_plan.check_precision`). On CUDA the
    batches come in pinned memory.
    """
    output = Path(output)
    warn_non_llp_ids(videos, output)
    result = ShardResult(written={net.kind: 0 for net in networks})
    pin = any(net.device.type == "cuda" for net in networks)
    if workers is None:
        workers = decoding_plan(torch.device("cuda" if pin else "cpu")).workers
    loader = DataLoader(
        ClipDataset(videos, networks),
        batch_size=batch_clips,
        num_workers=workers,
        collate_fn=collate_clips,
        pin_memory=pin,
        worker_init_fn=_limit_worker_threads if workers else None,
        prefetch_factor=2 if workers else None,
    )
    with (
        FeatureStoreWriter(output, dtype=dtype) as writer,
        tqdm(total=len(videos), desc=output.name, unit="clip", disable=not progress) as bar,
    ):
        for net in networks:
            writer.set_attrs(net.kind, net.attrs)
            if net.text is not None:
                writer.set_text_embeddings(net.kind, net.text)
        checked: dict[str, FeatureNetwork] = {}
        for batch in batches_of(loader):
            result.failures.extend(batch["failures"])
            for net in networks:
                if net.kind not in batch["inputs"]:
                    continue
                video_ids, rows = batch["inputs"][net.kind]
                if net.kind not in checked:
                    checked[net.kind] = check_precision(net, rows)
                features = run_network(checked[net.kind], rows, len(video_ids))
                for video_id, clip_features in zip(video_ids, features, strict=True):
                    try:
                        writer.add(net.kind, video_id, clip_features)
                        result.written[net.kind] += 1
                    except FeatureStoreError as err:
                        result.failures.append(Failure(video_id, f"write-{net.kind}", str(err)))
            bar.update(batch["count"])
        if videos and not any(result.written.values()):
            raise NothingExtractedError(output, len(videos), result.failures)
    write_manifest(manifest_path(output), result.failures)
    return result


class NothingExtractedError(InputError):
    """No clip of a shard could be extracted: the shard (and its manifest) are left as they were."""

    def __init__(self, output: Path, count: int, failures: Sequence[Failure]) -> None:
        shown = first_items([f"{f.video_id}: {f.reason}" for f in failures], 3, "; ")
        super().__init__(
            f"{output}: none of the {count} clip(s) could be extracted, so nothing was written and any "
            f"earlier {output.name} is left as it was: {shown}"
        )


def write_manifest(path: str | Path, failures: Sequence[Failure]) -> None:
    """Write the TSV ``video_id<TAB>stage<TAB>reason`` (with that header) atomically."""
    write_tsv(path, MANIFEST_HEADER, ((f.video_id, f.stage, f.reason) for f in failures))


def read_manifest(path: str | Path) -> list[Failure]:
    """Rows of a failure manifest written by :func:`write_manifest`."""
    return [Failure(**row) for row in read_tsv(path, MANIFEST_HEADER, "failure manifest")]
