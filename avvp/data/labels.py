"""The 25 LLP event classes and readers for LLP's tab-separated label files.

Weak labels (``filename``, ``event_labels``) become multi-hot matrices ``(N, 25)``; dense event tables
(``filename``, ``onset``, ``offset``, ``event_labels``, one event per row) become segment matrices
``(N, 10, 25)``. Every problem is reported as an :class:`AnnotationError` naming the file and line.
"""

from __future__ import annotations

import csv
import io
import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from avvp.errors import InputError
from avvp.io import read_text, write_tsv

log = logging.getLogger(__name__)

CLASSES: tuple[str, ...] = (
    "Speech",
    "Car",
    "Cheering",
    "Dog",
    "Cat",
    "Frying_(food)",
    "Basketball_bounce",
    "Fire_alarm",
    "Chainsaw",
    "Cello",
    "Banjo",
    "Singing",
    "Chicken_rooster",
    "Violin_fiddle",
    "Vacuum_cleaner",
    "Baby_laughter",
    "Accordion",
    "Lawn_mower",
    "Motorcycle",
    "Helicopter",
    "Acoustic_guitar",
    "Telephone_bell_ringing",
    "Baby_cry_infant_cry",
    "Blender",
    "Clapping",
)
"""The event classes in the order of the original LLP code (column order of every label matrix)."""

NUM_CLASSES = len(CLASSES)
NUM_SEGMENTS = 10
"""An LLP clip is 10 s, parsed as ten 1-second segments."""

CLASS_INDEX: dict[str, int] = {name: i for i, name in enumerate(CLASSES)}
CLIP_NAME = re.compile(r"^(?P<youtube_id>[A-Za-z0-9_-]{11})_(?P<start>\d+(?:\.\d+)?)_(?P<end>\d+(?:\.\d+)?)$")
WEAK_COLUMNS = ("filename", "event_labels")
DENSE_COLUMNS = ("filename", "onset", "offset", "event_labels")


class AnnotationError(InputError):
    """A label file is malformed; the message names the file and, where known, the line."""

    def __init__(self, path: str | Path, problem: str, line: int | None = None) -> None:
        where = f"{path}:{line}" if line is not None else str(path)
        super().__init__(f"{where}: {problem}")


@dataclass(frozen=True)
class WeakLabels:
    """Video-level labels of one split: ``video_ids[i]`` has the multi-hot row ``labels[i]`` (N, 25)."""

    video_ids: list[str]
    labels: np.ndarray

    def __len__(self) -> int:
        return len(self.video_ids)


@dataclass(frozen=True)
class EventRow:
    """One row of a dense event table: ``label`` is present in segments ``onset <= s < offset``."""

    video_id: str
    onset: int
    offset: int
    label: str


def parse_clip_name(name: str) -> tuple[str, float, float]:
    """Split an LLP filename ``<11-char YouTube id>_<start>_<end>`` into ``(youtube_id, start, end)``.

    Start and end are seconds in the YouTube video (LLP has a few fractional ones, e.g. ``_101.8_111.8``).
    Raises ``ValueError`` when the name does not have that form or ``end <= start``.
    """
    match = CLIP_NAME.match(name)
    if match is None:
        raise ValueError(f"malformed filename {name!r}: expected '<11-character YouTube id>_<start>_<end>'")
    start, end = float(match["start"]), float(match["end"])
    if end <= start:
        raise ValueError(f"malformed filename {name!r}: end {end:g} is not after start {start:g}")
    return match["youtube_id"], start, end


def encode_classes(names: Iterable[str]) -> np.ndarray:
    """Turn class names into a multi-hot vector ``(25,)`` of float32; unknown names raise ``KeyError``."""
    vector = np.zeros(NUM_CLASSES, dtype=np.float32)
    for name in names:
        vector[CLASS_INDEX[name]] = 1.0
    return vector


def _read_rows(path: Path, columns: Sequence[str]) -> Iterable[tuple[int, dict[str, str]]]:
    """Yield ``(line number, row)`` of a tab-separated file after checking its header."""
    if not path.is_file():
        raise AnnotationError(path, "file not found")
    reader = csv.reader(io.StringIO(read_text(path), newline=""), delimiter="\t")
    header = next(reader, None)
    if header is None:
        raise AnnotationError(path, "file is empty; expected a header row", line=1)
    header = [h.strip() for h in header]
    if len(header) == 1 and ("," in header[0] or ";" in header[0]):
        raise AnnotationError(path, f"header {header[0]!r} is not tab-separated (LLP files use tabs)", line=1)
    missing = [c for c in columns if c not in header]
    if missing:
        raise AnnotationError(
            path, f"missing column(s) {', '.join(missing)}; header has {', '.join(header)}", line=1
        )
    position = {c: header.index(c) for c in columns}
    for line, fields in enumerate(reader, start=2):
        if not fields or all(not f.strip() for f in fields):
            continue
        if len(fields) != len(header):
            raise AnnotationError(
                path, f"expected {len(header)} tab-separated fields, found {len(fields)}", line=line
            )
        yield line, {c: fields[i].strip() for c, i in position.items()}


def _check_name(path: Path, line: int, name: str) -> None:
    try:
        parse_clip_name(name)
    except ValueError as err:
        raise AnnotationError(path, str(err), line=line) from None


def _check_class(path: Path, line: int, name: str) -> None:
    if name not in CLASS_INDEX:
        raise AnnotationError(path, f"unknown class {name!r}", line=line)


def read_weak_labels(path: str | Path) -> WeakLabels:
    """Read a weak-label file (``AVVP_train.csv``, ``AVVP_val_pd.csv``, ...) into :class:`WeakLabels`.

    Rejects malformed filenames, unknown classes, duplicate clips and a wrong header or delimiter.
    """
    path = Path(path)
    video_ids: list[str] = []
    rows: list[np.ndarray] = []
    seen: dict[str, int] = {}
    for line, row in _read_rows(path, WEAK_COLUMNS):
        name = row["filename"]
        _check_name(path, line, name)
        if name in seen:
            raise AnnotationError(path, f"duplicate clip {name!r} (first on line {seen[name]})", line=line)
        seen[name] = line
        labels = [label.strip() for label in row["event_labels"].split(",") if label.strip()]
        if not labels:
            raise AnnotationError(path, f"clip {name!r} has no event label", line=line)
        for label in labels:
            _check_class(path, line, label)
        video_ids.append(name)
        rows.append(encode_classes(labels))
    matrix = np.stack(rows) if rows else np.zeros((0, NUM_CLASSES), dtype=np.float32)
    return WeakLabels(video_ids=video_ids, labels=matrix)


def read_event_rows(path: str | Path, lenient: bool = False) -> list[EventRow]:
    """Read a dense event table (``AVVP_eval_audio.csv`` format) into validated :class:`EventRow` items.

    Onsets and offsets must be whole seconds with ``0 <= onset < offset <= 10``. The published LLP
    ground truth holds rows the original evaluation silently ignores: six with ``onset >= offset`` (it
    rasterises them to nothing) and seventeen whose filename lost its first characters (they match no
    clip). ``lenient=True`` (used for ground truth) skips exactly those two kinds of row with one warning
    listing their lines; every other problem is an :class:`AnnotationError` naming the line.
    """
    path = Path(path)
    events: list[EventRow] = []
    skipped: list[str] = []
    for line, row in _read_rows(path, DENSE_COLUMNS):
        name = row["filename"]
        try:
            parse_clip_name(name)
        except ValueError as err:
            if lenient:
                skipped.append(f"{line} (malformed filename {name!r})")
                continue
            raise AnnotationError(path, str(err), line=line) from None
        try:
            onset, offset = float(row["onset"]), float(row["offset"])
        except ValueError:
            raise AnnotationError(
                path, f"onset {row['onset']!r} / offset {row['offset']!r} are not numbers", line=line
            ) from None
        if not (onset.is_integer() and offset.is_integer()):
            raise AnnotationError(path, f"onset {onset} / offset {offset} are not whole seconds", line=line)
        label = row["event_labels"]
        _check_class(path, line, label)
        in_range = 0 <= onset <= NUM_SEGMENTS and 0 <= offset <= NUM_SEGMENTS
        if in_range and onset >= offset and lenient:
            skipped.append(f"{line} (onset {onset:g} >= offset {offset:g})")
            continue
        if not (in_range and onset < offset):
            raise AnnotationError(
                path,
                f"onset {onset:g} / offset {offset:g} outside 0..{NUM_SEGMENTS} or onset >= offset",
                line=line,
            )
        events.append(EventRow(name, int(onset), int(offset), label))
    if skipped:
        log.warning(
            "%s: ignored %d row(s) that the published LLP evaluation also ignores, at line(s) %s",
            path,
            len(skipped),
            "; ".join(skipped),
        )
    return events


def events_to_segments(events: Iterable[EventRow], video_ids: Sequence[str]) -> np.ndarray:
    """Rasterise events into a boolean segment matrix ``(len(video_ids), 10, 25)``.

    Events of clips outside ``video_ids`` are ignored; clips without events stay all-False.
    """
    row_of = {vid: i for i, vid in enumerate(video_ids)}
    matrix = np.zeros((len(video_ids), NUM_SEGMENTS, NUM_CLASSES), dtype=bool)
    for event in events:
        i = row_of.get(event.video_id)
        if i is not None:
            matrix[i, event.onset : event.offset, CLASS_INDEX[event.label]] = True
    return matrix


def read_dense_labels(path: str | Path, video_ids: Sequence[str], lenient: bool = True) -> np.ndarray:
    """Read a dense ground-truth table and rasterise it for ``video_ids``: boolean ``(N, 10, 25)``."""
    return events_to_segments(read_event_rows(path, lenient=lenient), video_ids)


def segments_to_events(video_ids: Sequence[str], segments: np.ndarray) -> list[EventRow]:
    """Turn a boolean segment matrix ``(N, T, 25)`` into events: maximal runs of positive segments.

    ``T`` is 10 for LLP clips; longer timelines (one row per second of a video) work the same way.
    """
    segments = np.asarray(segments, dtype=bool)
    n, t, c = segments.shape
    padded = np.zeros((n, t + 2, c), dtype=np.int8)
    padded[:, 1:-1] = segments
    change = np.diff(padded, axis=1)
    starts = np.argwhere(change == 1)
    ends = np.argwhere(change == -1)
    order_s = np.lexsort((starts[:, 1], starts[:, 2], starts[:, 0]))
    order_e = np.lexsort((ends[:, 1], ends[:, 2], ends[:, 0]))
    return [
        EventRow(video_ids[v], int(onset), int(offset), CLASSES[c])
        for (v, onset, c), (_, offset, _) in zip(starts[order_s], ends[order_e], strict=True)
    ]


def write_weak_labels(path: str | Path, video_ids: Sequence[str], labels: np.ndarray) -> None:
    """Write a weak-label table (``filename``, ``event_labels``) for multi-hot ``labels`` (N, 25), atomically."""
    rows = zip(video_ids, np.asarray(labels), strict=True)
    write_tsv(
        path, WEAK_COLUMNS, ((vid, ",".join(CLASSES[c] for c in np.flatnonzero(row))) for vid, row in rows)
    )


def write_event_rows(path: str | Path, events: Iterable[EventRow]) -> None:
    """Write events as a tab-separated ``filename, onset, offset, event_labels`` table, atomically."""
    write_tsv(path, DENSE_COLUMNS, ((e.video_id, e.onset, e.offset, e.label) for e in events))
