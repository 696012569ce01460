"""Audio-visual grounding ground truth (paper 002, appendix Algorithm 1) and the file that holds it.

Each clip's ten 1-second snippets are the nodes of a graph; snippets ``j != k`` are linked when the cosine
similarity of their ResNet152 embeddings (the mean of the second's 8 frames) is at least the visual
threshold, or that of their VGGish embeddings is at least the audio threshold. Two snippets are a positive
pair, ``GT(u, v) = 1``, exactly when they lie in one connected component of that graph (``GT(u, u) = 1``).

A graph file (HDF5, written atomically) holds::

    /graphs     bool [N, 10, 10]   GT of each clip
    /video_id   utf-8 strings [N]  LLP filename of each row, the row index
    attributes  format (``avvp-grounding-graphs/1``, as the feature store's ``format``), and as JSON values:
                thresholds (and quantiles), source store and its feature identity, summary counts (clips,
                skipped clips, connected components, share of positive pairs)
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np
from tqdm import tqdm

from avvp.data.features import FeatureStore
from avvp.data.labels import NUM_SEGMENTS
from avvp.errors import InputError, first_items
from avvp.hdf5_output import hdf5_output
from avvp.io import atomic_path

log = logging.getLogger(__name__)

FORMAT = "avvp-grounding-graphs/1"
VISUAL_KIND = "resnet152"
AUDIO_KIND = "vggish"
CHUNK_CLIPS = 256
"""Clips read per chunk: ResNet152 features of 256 clips are 168 MB in float32."""
_STRING = h5py.string_dtype("utf-8")


class GraphStoreError(InputError):
    """A graph file is missing or malformed, or lacks requested clips; the message names the file."""


@dataclass(frozen=True)
class ThresholdRule:
    """How one modality's link threshold is set: a fixed cosine ``value``, or a ``quantile`` of its pairs.

    ``modality`` (``"visual"`` or ``"audio"``) only names the rule in messages.
    """

    modality: str
    value: float | None = None
    quantile: float | None = None

    def check(self) -> None:
        """Raise :class:`InputError` unless exactly one of value in [-1, 1] and quantile in (0, 1) is set."""
        if (self.value is None) == (self.quantile is None):
            raise InputError(f"give either a {self.modality} threshold or a {self.modality} quantile")
        if self.value is not None and not -1.0 <= self.value <= 1.0:
            raise InputError(
                f"{self.modality} threshold {self.value} is outside [-1, 1] (a cosine similarity)"
            )
        if self.quantile is not None and not 0.0 < self.quantile < 1.0:
            raise InputError(f"{self.modality} quantile {self.quantile} is outside (0, 1)")

    def resolve(self, similarities: np.ndarray) -> float:
        """The threshold: ``value``, or the ``quantile`` of the j<k pairs of ``similarities`` (N, S, S)."""
        if self.value is not None:
            return float(self.value)
        return float(np.quantile(within_clip_pairs(similarities), self.quantile))


def snippet_embeddings(features: np.ndarray, snippets: int = NUM_SEGMENTS) -> np.ndarray:
    """Mean of each snippet's consecutive time steps: ``(N, T, D)`` -> ``(N, snippets, D)`` float64.

    ResNet152 ``(N, 80, 2048)`` gives the mean of each second's 8 frames; VGGish ``(N, 10, 128)`` is unchanged.
    """
    n, steps, dim = features.shape
    if steps % snippets:
        raise ValueError(f"{steps} time steps do not split into {snippets} snippets")
    return features.reshape(n, snippets, steps // snippets, dim).mean(axis=2, dtype=np.float64)


def cosine_similarities(embeddings: np.ndarray) -> np.ndarray:
    """Cosine similarity of every pair of snippets of each clip: ``(N, S, D)`` -> ``(N, S, S)`` float64.

    The Gram matrix divided by the norms' outer product (cheaper than normalising the ``D``-dim vectors),
    in float64 and clipped to [-1, 1]; a zero vector has similarity 0 with everything (no NaN).
    """
    vectors = np.asarray(embeddings, dtype=np.float64)
    gram = vectors @ vectors.transpose(0, 2, 1)
    norms = np.sqrt(np.diagonal(gram, axis1=1, axis2=2))
    scale = norms[:, :, None] * norms[:, None, :]
    return np.clip(np.divide(gram, scale, out=np.zeros_like(gram), where=scale > 0), -1.0, 1.0)


def within_clip_pairs(similarities: np.ndarray) -> np.ndarray:
    """The values of the pairs ``j < k`` of each clip: ``(N, S, S)`` -> ``(N * S * (S - 1) / 2,)``."""
    rows, cols = np.triu_indices(similarities.shape[-1], k=1)
    return similarities[:, rows, cols].ravel()


def connected_components(adjacency: np.ndarray) -> np.ndarray:
    """Same-component relation of undirected graphs: bool ``(N, S, S)`` -> bool ``(N, S, S)``.

    Only the pairs ``j < k`` of ``adjacency`` are read (mirrored, with self loops added); the result is
    their reflexive transitive closure, by ``ceil(log2(S - 1))`` boolean matrix squarings batched over clips.
    """
    size = adjacency.shape[-1]
    upper = np.triu(adjacency, k=1)
    reach = upper | upper.transpose(0, 2, 1) | np.eye(size, dtype=bool)
    for _ in range(math.ceil(math.log2(max(size - 1, 1)))):
        reach = reach @ reach
    return reach


def graphs_from_similarities(
    visual: np.ndarray, audio: np.ndarray, visual_threshold: float, audio_threshold: float
) -> np.ndarray:
    """Algorithm 1 on precomputed similarities ``(N, S, S)`` of each modality: bool ``(N, S, S)``."""
    return connected_components((visual >= visual_threshold) | (audio >= audio_threshold))


def grounding_graphs(
    visual: np.ndarray, audio: np.ndarray, visual_threshold: float, audio_threshold: float
) -> np.ndarray:
    """Algorithm 1: GT of each clip from snippet embeddings ``(N, S, Dv)`` and ``(N, S, Da)``: bool ``(N, S, S)``.

    Snippets are linked when either cosine similarity is ``>=`` its threshold; ``GT(u, v)`` is True exactly
    when ``u`` and ``v`` are in one connected component.
    """
    if visual.shape[:2] != audio.shape[:2]:
        raise ValueError(f"visual {visual.shape} and audio {audio.shape} differ in clips or snippets")
    return graphs_from_similarities(
        cosine_similarities(visual), cosine_similarities(audio), visual_threshold, audio_threshold
    )


def component_counts(graphs: np.ndarray) -> np.ndarray:
    """Number of connected components of each clip's GT ``(N, S, S)``: int ``(N,)``.

    A node represents its component when no lower-numbered node is in it.
    """
    first_member = graphs.argmax(axis=2)
    return (first_member == np.arange(graphs.shape[-1])).sum(axis=1)


def graph_summary(graphs: np.ndarray) -> dict[str, Any]:
    """Counts over GT ``(N, S, S)``: clips, mean and histogram (1..S) of components, share of positive pairs."""
    n, size, _ = graphs.shape
    counts = component_counts(graphs)
    off_diagonal = int(graphs.sum()) - n * size
    return {
        "clips": n,
        "components_mean": float(counts.mean()) if n else 0.0,
        "components_histogram": np.bincount(counts, minlength=size + 1)[1:].tolist(),
        "positive_pair_share": off_diagonal / (n * size * (size - 1)) if n else 0.0,
    }


def select_clips(store: FeatureStore, requested: Sequence[str] | None = None) -> tuple[list[str], int]:
    """The clips of ``requested`` (default: every clip of the store) having both kinds, and how many lack one.

    The clips are returned in ResNet152 row order (so the large features stream in order); those lacking a
    kind are listed in one warning and left out.
    """
    visual_ids = store.video_ids(VISUAL_KIND)
    audio_ids = set(store.video_ids(AUDIO_KIND))
    candidates = list(dict.fromkeys([*visual_ids, *audio_ids] if requested is None else requested))
    visual_row = {vid: row for row, vid in enumerate(visual_ids)}
    no_visual = [vid for vid in candidates if vid not in visual_row]
    no_audio = [vid for vid in candidates if vid not in audio_ids]
    skipped = set(no_visual) | set(no_audio)
    if skipped:
        log.warning(
            "%s: skipping %d of %d clip(s) lacking a feature kind: %d without %s (%s); %d without %s (%s)",
            store.path,
            len(skipped),
            len(candidates),
            len(no_visual),
            VISUAL_KIND,
            first_items(no_visual),
            len(no_audio),
            AUDIO_KIND,
            first_items(no_audio),
        )
    used = sorted((vid for vid in candidates if vid not in skipped), key=visual_row.__getitem__)
    return used, len(skipped)


def feature_identity(store: FeatureStore) -> dict[str, dict[str, Any]]:
    """``extractor`` and ``weights`` attributes of the store's ResNet152 and VGGish groups (None if absent)."""
    identity = {}
    for kind in (VISUAL_KIND, AUDIO_KIND):
        attrs = store.attrs(kind)
        identity[kind] = {key: attrs.get(key) for key in ("extractor", "weights")}
    return identity


@dataclass
class ClipSimilarities:
    """Snippet similarities of ``video_ids`` per modality, ``(N, 10, 10)`` float64, and the time they took."""

    video_ids: list[str]
    visual: np.ndarray
    audio: np.ndarray
    read_seconds: float
    compute_seconds: float


def clip_similarities(
    store: FeatureStore, video_ids: Sequence[str], chunk_clips: int = CHUNK_CLIPS
) -> ClipSimilarities:
    """Read ``video_ids`` (all present in both kinds) ``chunk_clips`` at a time; return their similarities.

    Features are read in their storage precision and averaged in float64; only the similarities are kept,
    so memory holds one chunk of features at a time.
    """
    visual, audio = [], []
    read_seconds = compute_seconds = 0.0
    dtypes = {kind: store.dataset(kind).dtype for kind in (VISUAL_KIND, AUDIO_KIND)}
    progress = tqdm(total=len(video_ids), desc="grounding graphs", unit="clip", disable=None, leave=False)
    with progress:
        for start in range(0, len(video_ids), chunk_clips):
            chunk = video_ids[start : start + chunk_clips]
            started = time.perf_counter()
            frames = store.read(VISUAL_KIND, chunk, dtype=dtypes[VISUAL_KIND])
            sounds = store.read(AUDIO_KIND, chunk, dtype=dtypes[AUDIO_KIND])
            read_done = time.perf_counter()
            visual.append(cosine_similarities(snippet_embeddings(frames)))
            audio.append(cosine_similarities(snippet_embeddings(sounds)))
            read_seconds += read_done - started
            compute_seconds += time.perf_counter() - read_done
            progress.update(len(chunk))
    return ClipSimilarities(
        list(video_ids), np.concatenate(visual), np.concatenate(audio), read_seconds, compute_seconds
    )


def write_graph_file(
    path: str | Path, video_ids: Sequence[str], graphs: np.ndarray, attrs: dict[str, Any]
) -> None:
    """Write GT ``graphs`` bool ``(N, 10, 10)`` of ``video_ids`` and JSON ``attrs`` to ``path``, atomically."""
    with atomic_path(path) as tmp, hdf5_output(tmp, path) as (handle, _):
        handle.create_dataset("graphs", data=np.asarray(graphs, dtype=bool))
        handle.create_dataset("video_id", data=np.array(list(video_ids), dtype=object), dtype=_STRING)
        handle.attrs["format"] = FORMAT
        for key, value in attrs.items():
            handle.attrs[key] = json.dumps(value)


def build_graph_file(
    features: str | Path,
    output: str | Path,
    visual: ThresholdRule,
    audio: ThresholdRule,
    clips: Sequence[str] | None = None,
    chunk_clips: int = CHUNK_CLIPS,
) -> dict[str, Any]:
    """Compute the GT of ``clips`` (default: every clip) of the store ``features`` and write ``output``.

    Returns the attributes written plus ``seconds`` (read, compute, write). Raises :class:`InputError`
    (nothing written) on a bad rule, a missing or malformed store, or when no clip has both kinds.
    """
    visual.check()
    audio.check()
    with FeatureStore(features) as store:
        identity = feature_identity(store)
        video_ids, skipped = select_clips(store, clips)
        if not video_ids:
            raise InputError(
                f"{features}: none of the {skipped} clip(s) has both {VISUAL_KIND} and {AUDIO_KIND} "
                "features; nothing written"
            )
        similarities = clip_similarities(store, video_ids, chunk_clips)
    started = time.perf_counter()
    visual_threshold = visual.resolve(similarities.visual)
    audio_threshold = audio.resolve(similarities.audio)
    graphs = graphs_from_similarities(
        similarities.visual, similarities.audio, visual_threshold, audio_threshold
    )
    attrs = {
        "visual_threshold": visual_threshold,
        "visual_quantile": visual.quantile,
        "audio_threshold": audio_threshold,
        "audio_quantile": audio.quantile,
        "source": str(features),
        "source_features": identity,
        **graph_summary(graphs),
        "clips_skipped": skipped,
    }
    compute_seconds = similarities.compute_seconds + time.perf_counter() - started
    started = time.perf_counter()
    write_graph_file(output, video_ids, graphs, attrs)
    seconds = {
        "read": similarities.read_seconds,
        "compute": compute_seconds,
        "write": time.perf_counter() - started,
    }
    return {**attrs, "seconds": seconds}


class GraphStore:
    """Read a graph file: the GT ``(10, 10)`` of clips by LLP filename.

    The whole file (100 bytes per clip) is loaded on opening and the HDF5 handle closed, so the store can
    be shared with DataLoader workers.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise GraphStoreError(f"{self.path}: grounding graph file not found")
        try:
            with h5py.File(self.path, "r") as handle:
                if handle.attrs.get("format") != FORMAT:
                    raise GraphStoreError(
                        f"{self.path}: not a grounding graph file (format {FORMAT!r} expected)"
                    )
                self.attrs: dict[str, Any] = {
                    key: json.loads(value) for key, value in handle.attrs.items() if key != "format"
                }
                self._graphs = handle["graphs"][:].astype(bool)
                names = handle["video_id"][:]
        except (OSError, KeyError, TypeError, json.JSONDecodeError) as err:
            raise GraphStoreError(f"{self.path}: not a readable grounding graph file ({err})") from None
        self.video_ids: list[str] = [v.decode() if isinstance(v, bytes) else v for v in names]
        self._row = {vid: row for row, vid in enumerate(self.video_ids)}

    def __len__(self) -> int:
        return len(self.video_ids)

    def read(self, video_ids: Sequence[str]) -> np.ndarray:
        """GT of ``video_ids`` in that order: bool ``(len(video_ids), 10, 10)``; an error names missing ids."""
        missing = [vid for vid in video_ids if vid not in self._row]
        if missing:
            raise GraphStoreError(
                f"{self.path}: {len(missing)} clip(s) have no grounding graph: {first_items(missing)}"
            )
        return self._graphs[np.array([self._row[vid] for vid in video_ids], dtype=np.intp)]
