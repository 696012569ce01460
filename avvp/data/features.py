"""The HDF5 feature store shared by every stage.

Layout of one file (a *store*; shards and merged stores look the same)::

    /<kind>/features   float32 or float16 [N, T, D]   (vggish 10x128, resnet152 80x2048, r2plus1d 10x512,
                                                      clip 10x768, clap 64x768, clap_segments 10x512)
    /<kind>/video_id   utf-8 strings [N]              LLP filename of each row
    /<kind>.attrs      extractor, weights (identity), sampling parameters, package versions (JSON values)
    /<kind>/standardization/mean, /std   float64 [D]   only in a standardised store: the statistics used
    /<kind>/prompts/embeddings   float32 [C, D']      only for the image-text and audio-text kinds (clip,
                                                      clap_segments): the class prompts' text embeddings;
                                                      attrs ``texts`` (JSON list) and ``logit_scale``

Each kind has its own ``video_id`` index, so a clip can have visual features but no audio ones. Writers
build the whole file under a temporary name and rename it into place on success, so an interrupted write
never leaves a file that looks complete.
"""

from __future__ import annotations

import contextlib
import json
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from avvp.errors import InputError, first_items
from avvp.hdf5_output import hdf5_output
from avvp.io import atomic_path

FEATURE_SHAPES: dict[str, tuple[int, int]] = {
    "vggish": (10, 128),
    "resnet152": (80, 2048),
    "r2plus1d": (10, 512),
    "clip": (10, 768),
    "clap": (64, 768),
    "clap_segments": (10, 512),
}
"""Per-clip feature shape ``(T, D)`` of each kind, as in LLP's released features (the first three) and
VALOR's (CLIP ViT-L/14 image embeddings; CLAP HTS-AT feature maps; per-second CLAP audio embeddings)."""
LLP_KINDS = ("vggish", "resnet152", "r2plus1d")
"""The kinds LLP's authors released, extracted by default."""
AUDIO_KINDS = frozenset({"vggish", "clap", "clap_segments"})
"""The kinds computed from a clip's audio track; the others are computed from its picture."""

STORAGE_DTYPES = ("float32", "float16")
_STRING = h5py.string_dtype("utf-8")
FORMAT = "avvp-feature-store/1"


class FeatureStoreError(InputError):
    """A feature store is malformed, or does not hold what was asked of it; the message names the file."""


class MissingFeaturesError(FeatureStoreError):
    """Some requested clips have no features of a kind in a store."""

    def __init__(self, path: str | Path, kind: str, missing: Sequence[str]) -> None:
        shown = first_items(missing)
        super().__init__(f"{path}: {len(missing)} clip(s) have no '{kind}' features: {shown}")
        self.kind = kind
        self.missing = list(missing)


@dataclass(frozen=True)
class Standardization:
    """Per-dimension z-scoring of one kind, ``(x - mean) / max(std, epsilon)``; mean, std float64 (D,)."""

    mean: np.ndarray
    std: np.ndarray
    epsilon: float

    def apply(self, features: np.ndarray) -> np.ndarray:
        """``features`` ``(..., D)`` z-scored exactly as a standardised store's rows are, as float32."""
        scale = 1.0 / np.maximum(self.std, self.epsilon)
        return ((features - self.mean) * scale).astype(np.float32)


@dataclass(frozen=True)
class TextEmbeddings:
    """The text side of an image-text or audio-text kind: ``texts`` (C prompts, in class order), their
    L2-normalised embeddings float32 [C, D'] and the model's ``logit_scale`` (similarity logits are
    ``logit_scale * cos``)."""

    texts: tuple[str, ...]
    embeddings: np.ndarray
    logit_scale: float

    def same_as(self, other: TextEmbeddings) -> bool:
        """Whether both hold the same prompts, embeddings and scale."""
        return (
            self.texts == other.texts
            and self.logit_scale == other.logit_scale
            and np.array_equal(self.embeddings, other.embeddings)
        )


PROMPTS_GROUP = "prompts"


def package_versions(*names: str) -> dict[str, str]:
    """Installed versions of ``names`` (plus numpy and h5py), ``"absent"`` for those not installed."""
    versions = {}
    for name in ("numpy", "h5py", *names):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "absent"
    return versions


def check_features(kind: str, array: np.ndarray) -> str | None:
    """Return why ``array`` is not a valid clip feature of ``kind`` (shape ``(T, D)``, finite), or None."""
    expected = FEATURE_SHAPES[kind]
    if array.shape != expected:
        return f"shape {tuple(array.shape)}, expected {expected}"
    if not np.issubdtype(array.dtype, np.floating):
        return f"dtype {array.dtype}, expected floating point"
    if not np.isfinite(array).all():
        return f"{int((~np.isfinite(array)).sum())} non-finite value(s) (NaN or inf)"
    return None


class FeatureStoreWriter:
    """Stream clip features into one store; the file appears at ``path`` only when :meth:`close` succeeds.

    Usage::

        with FeatureStoreWriter("shard.h5", dtype="float16") as store:
            store.set_attrs("vggish", {"extractor": "vggish", "weights": "random-init(seed=0)"})
            store.add("vggish", "abcdefghijk_0_10", features)   # (10, 128)

    Rows are appended to a temporary file beside ``path`` (so memory stays flat at LLP scale) and renamed
    into place on close; leaving the ``with`` block by an exception deletes the temporary file. A failed
    write (full disk) raises ``OSError`` naming ``path`` at the clip that did not fit
    (:mod:`avvp.hdf5_output`), and the temporary file is removed.
    """

    def __init__(self, path: str | Path, dtype: str = "float32") -> None:
        if dtype not in STORAGE_DTYPES:
            raise FeatureStoreError(f"{path}: storage dtype {dtype!r} is not one of {STORAGE_DTYPES}")
        self.path = Path(path)
        self.dtype = dtype
        self._stack = contextlib.ExitStack()
        self._tmp = self._stack.enter_context(atomic_path(self.path))
        self._handle, self._guard = self._stack.enter_context(hdf5_output(self._tmp, self.path))
        self._handle.attrs["format"] = FORMAT
        self._ids: dict[str, list[str]] = {}
        self._attrs: dict[str, dict[str, Any]] = {}

    def _dataset(self, kind: str) -> h5py.Dataset:
        if kind not in FEATURE_SHAPES:
            raise FeatureStoreError(
                f"{self.path}: unknown feature kind {kind!r}; known: {list(FEATURE_SHAPES)}"
            )
        if kind not in self._handle:
            t, d = FEATURE_SHAPES[kind]
            self._handle.create_group(kind).create_dataset(
                "features", shape=(0, t, d), maxshape=(None, t, d), chunks=(1, t, d), dtype=self.dtype
            )
            self._ids[kind] = []
            self._attrs.setdefault(kind, {})
        return self._handle[kind]["features"]

    def set_attrs(self, kind: str, attrs: Mapping[str, Any]) -> None:
        """Record attributes of ``kind`` (extractor, weights identity, sampling, versions); JSON values."""
        self._dataset(kind)
        self._attrs[kind].update(attrs)

    def set_standardization(self, kind: str, standardization: Standardization, reference_clips: int) -> None:
        """Record that ``kind`` is standardised: statistics as datasets, the ``standardized`` attribute."""
        self._dataset(kind)
        group = self._handle[kind].create_group("standardization")
        for name in ("mean", "std"):
            group.create_dataset(name, data=np.asarray(getattr(standardization, name), dtype=np.float64))
        self._attrs[kind]["standardized"] = {
            "reference_clips": reference_clips,
            "epsilon": standardization.epsilon,
        }

    def set_text_embeddings(self, kind: str, text: TextEmbeddings) -> None:
        """Record the class prompts' embeddings of ``kind`` (group ``/<kind>/prompts``)."""
        self._dataset(kind)
        group = self._handle[kind].require_group(PROMPTS_GROUP)
        if "embeddings" in group:
            del group["embeddings"]
        group.create_dataset("embeddings", data=np.asarray(text.embeddings, dtype=np.float32))
        group.attrs["texts"] = json.dumps(list(text.texts))
        group.attrs["logit_scale"] = float(text.logit_scale)

    def add(self, kind: str, video_id: str, features: np.ndarray) -> None:
        """Append one clip's ``(T, D)`` features; raises :class:`FeatureStoreError` on a bad shape or NaN."""
        dataset = self._dataset(kind)
        problem = check_features(kind, np.asarray(features))
        if problem:
            raise FeatureStoreError(f"{self.path}: features '{kind}' of {video_id}: {problem}")
        if video_id in self._ids[kind]:
            raise FeatureStoreError(f"{self.path}: clip {video_id} added twice for '{kind}'")
        n = dataset.shape[0]
        dataset.resize(n + 1, axis=0)
        dataset[n] = features
        self._ids[kind].append(video_id)
        self._guard.check()  # a full disk stops the writer at the clip that did not fit

    def close(self) -> None:
        """Write the indexes and attributes, close the file and rename it into place."""
        for kind, ids in self._ids.items():
            _write_index(self._handle[kind], ids, self._attrs[kind])
        self._stack.close()

    def abort(self) -> None:
        """Discard everything written so far; ``path`` is left as it was."""
        self._stack.__exit__(RuntimeError, RuntimeError("aborted"), None)

    def __enter__(self) -> FeatureStoreWriter:
        return self

    def __exit__(self, exc_type: object, *_: object) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def _write_index(group: h5py.Group, video_ids: Sequence[str], attrs: Mapping[str, Any]) -> None:
    group.create_dataset("video_id", data=np.array(list(video_ids), dtype=object), dtype=_STRING)
    for key, value in attrs.items():
        group.attrs[key] = json.dumps(value)


def _layout_problem(kind: str, group: h5py.Group) -> str | None:
    """What is wrong with the layout of one kind's group (datasets, shape, dtype, index), or None."""
    if not isinstance(group.get("features"), h5py.Dataset) or not isinstance(
        group.get("video_id"), h5py.Dataset
    ):
        return "group lacks its 'features' or 'video_id' dataset"
    features, video_ids = group["features"], group["video_id"]
    expected = FEATURE_SHAPES[kind]
    if features.ndim != 3 or tuple(features.shape[1:]) != expected:
        return f"features have shape {tuple(features.shape)}, expected (N, {expected[0]}, {expected[1]})"
    if not np.issubdtype(features.dtype, np.floating):
        return f"features are {features.dtype}, expected floating point"
    if video_ids.shape != (features.shape[0],):
        return f"has {video_ids.size} video ids for {features.shape[0]} feature rows"
    repeated = [name for name, count in Counter(video_ids[:]).items() if count > 1]
    if repeated:
        names = [n.decode() if isinstance(n, bytes) else n for n in repeated]
        return f"video ids are not unique: {first_items(names)}"
    return None


class FeatureStore:
    """Read a feature store: look up clips by LLP filename, lazily or all at once.

    ``FeatureStore(path)`` opens the file read-only; use it as a context manager or call :meth:`close`.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise FeatureStoreError(f"{self.path}: feature store not found")
        try:
            self._handle = h5py.File(self.path, "r")
        except OSError as err:
            raise FeatureStoreError(f"{self.path}: not a readable HDF5 feature store ({err})") from None
        self._index: dict[str, dict[str, int]] = {}
        self._checked: set[str] = set()

    @property
    def kinds(self) -> list[str]:
        """Feature kinds present in the store."""
        return [k for k in self._handle if k in FEATURE_SHAPES]

    def _group(self, kind: str) -> h5py.Group:
        if kind not in self._handle:
            raise FeatureStoreError(f"{self.path}: no '{kind}' features (store has {self.kinds})")
        group = self._handle[kind]
        if kind not in self._checked:
            problem = _layout_problem(kind, group)
            if problem:
                raise FeatureStoreError(f"{self.path}: '{kind}' {problem}")
            self._checked.add(kind)
        return group

    def video_ids(self, kind: str) -> list[str]:
        """LLP filenames of the rows of ``kind``, in row order."""
        return [v.decode() if isinstance(v, bytes) else v for v in self._group(kind)["video_id"][:]]

    def _rows(self, kind: str) -> dict[str, int]:
        if kind not in self._index:
            self._index[kind] = {vid: i for i, vid in enumerate(self.video_ids(kind))}
        return self._index[kind]

    def dataset(self, kind: str) -> h5py.Dataset:
        """The ``[N, T, D]`` HDF5 dataset of ``kind``, for streaming reads in row order."""
        return self._group(kind)["features"]

    def attrs(self, kind: str) -> dict[str, Any]:
        """Attributes of ``kind`` (extractor, weights identity, sampling parameters, versions)."""
        return {key: json.loads(value) for key, value in self._group(kind).attrs.items()}

    def standardization(self, kind: str) -> Standardization | None:
        """The statistics ``kind`` was standardised with; None when it was not standardised.

        A store marked ``standardized`` without statistics (written before they were kept) is a
        :class:`FeatureStoreError`: its features cannot be reproduced.
        """
        marked = self.attrs(kind).get("standardized")
        if marked is None:
            return None
        group = self._group(kind).get("standardization")
        if group is None:
            raise FeatureStoreError(
                f"{self.path}: '{kind}' is standardised but its statistics are not stored (written by an "
                "older avvp); run 'avvp standardize-features' again"
            )
        return Standardization(group["mean"][:], group["std"][:], float(marked["epsilon"]))

    def text_embeddings(self, kind: str) -> TextEmbeddings | None:
        """The class prompts' embeddings recorded with ``kind`` (None when the kind has none)."""
        group = self._group(kind).get(PROMPTS_GROUP)
        if group is None:
            return None
        try:
            return TextEmbeddings(
                tuple(json.loads(group.attrs["texts"])),
                group["embeddings"][()].astype(np.float32),
                float(group.attrs["logit_scale"]),
            )
        except (KeyError, json.JSONDecodeError):
            raise FeatureStoreError(
                f"{self.path}: '{kind}/{PROMPTS_GROUP}' lacks its embeddings, texts or logit_scale"
            ) from None

    def missing(self, kind: str, video_ids: Iterable[str]) -> list[str]:
        """The clips among ``video_ids`` that have no ``kind`` features here."""
        rows = self._rows(kind)
        return [vid for vid in video_ids if vid not in rows]

    def read(self, kind: str, video_ids: Sequence[str], dtype: str = "float32") -> np.ndarray:
        """Features of ``video_ids`` as ``[len(video_ids), T, D]``; :class:`MissingFeaturesError` if any lack.

        Reads only the requested rows, so it also serves lazy per-batch loading.
        """
        missing = self.missing(kind, video_ids)
        if missing:
            raise MissingFeaturesError(self.path, kind, missing)
        rows = self._rows(kind)
        index = np.array([rows[vid] for vid in video_ids], dtype=np.int64)
        dataset = self.dataset(kind)
        if len(index) == 0:
            return np.zeros((0, *dataset.shape[1:]), dtype=dtype)
        order = np.argsort(index)
        sorted_rows = index[order]
        unique_rows, inverse = np.unique(sorted_rows, return_inverse=True)
        block = dataset[unique_rows]
        out = np.empty((len(index), *dataset.shape[1:]), dtype=dtype)
        out[order] = block[inverse]
        return out

    def close(self) -> None:
        """Close the underlying HDF5 file."""
        self._handle.close()

    def __enter__(self) -> FeatureStore:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def merge_stores(inputs: Sequence[str | Path], output: str | Path, dtype: str = "float32") -> dict[str, int]:
    """Merge shard stores into one at ``output`` (atomically); return the row count per kind.

    A clip present in two shards for the same kind, or a kind whose attributes differ between shards
    (for example other weights), is an error: merging them would mix incompatible features.
    """
    attrs_of: dict[str, tuple[dict[str, Any], Path]] = {}
    text_of: dict[str, tuple[TextEmbeddings, Path]] = {}
    source_of: dict[tuple[str, str], Path] = {}
    with FeatureStoreWriter(output, dtype=dtype) as writer:
        for path in map(Path, inputs):
            with FeatureStore(path) as store:
                for kind in store.kinds:
                    attrs = store.attrs(kind)
                    if kind in attrs_of and attrs_of[kind][0] != attrs:
                        raise FeatureStoreError(
                            f"{path}: '{kind}' attributes differ from those in {attrs_of[kind][1]} "
                            f"({attrs} vs {attrs_of[kind][0]}); refusing to merge"
                        )
                    attrs_of.setdefault(kind, (attrs, path))
                    writer.set_attrs(kind, attrs)
                    _merge_text(writer, kind, store.text_embeddings(kind), path, text_of)
                    features = store.dataset(kind)
                    for row, vid in enumerate(store.video_ids(kind)):
                        if (kind, vid) in source_of:
                            raise FeatureStoreError(
                                f"{path}: clip {vid} has '{kind}' features in {source_of[kind, vid]} too; "
                                "refusing to merge (is a shard listed twice?)"
                            )
                        source_of[kind, vid] = path
                        writer.add(kind, vid, features[row])
        counts = {kind: len(ids) for kind, ids in writer._ids.items()}
    return counts


def _merge_text(
    writer: FeatureStoreWriter,
    kind: str,
    text: TextEmbeddings | None,
    path: Path,
    seen: dict[str, tuple[TextEmbeddings, Path]],
) -> None:
    """Carry a shard's prompt embeddings into the merged store; refuse shards whose prompts differ."""
    if text is None:
        return
    if kind in seen and not seen[kind][0].same_as(text):
        raise FeatureStoreError(
            f"{path}: '{kind}' prompt embeddings differ from those in {seen[kind][1]}; refusing to merge"
        )
    if kind not in seen:
        seen[kind] = (text, path)
        writer.set_text_embeddings(kind, text)
