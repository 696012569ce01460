"""File helpers: atomic output (write to a temporary sibling, rename over the target only on success) and
reading users' text files as UTF-8 with a one-line error when they are not."""

from __future__ import annotations

import contextlib
import csv
import glob
import io
import json
import logging
import os
import re
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from avvp.errors import InputError

log = logging.getLogger(__name__)
_FIELD_BREAKS = re.compile(r"[\t\r\n]+")
VIDEO_SUFFIXES = (".mp4", ".mkv", ".webm", ".avi", ".mov", ".m4v", ".flv")
"""File suffixes taken for videos (downloads, local copies, extraction and parsing inputs)."""
_UMASK = os.umask(0)
os.umask(_UMASK)


@contextlib.contextmanager
def atomic_path(target: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; on normal exit rename it to ``target``, else delete it.

    A reader never sees a half-written ``target``: it is either absent, the old file, or the new one.
    Temporary files that an earlier writer of the same target left behind (a process killed with
    SIGKILL cannot clean up) are deleted first; two writers of one target at once are not supported.
    """
    target = Path(target)
    if target.is_dir():
        raise InputError(f"{target}: is a folder; give the path of a file to write")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        for leftover in target.parent.glob(f".{glob.escape(target.name)}.*.tmp"):
            log.info("removing %s, left by an interrupted write of %s", leftover, target)
            leftover.unlink(missing_ok=True)
        fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    except OSError as err:
        raise InputError(f"{target}: cannot write there ({err.strerror or err})") from None
    os.close(fd)
    tmp = Path(name)
    tmp.chmod(0o666 & ~_UMASK)  # mkstemp makes 0600; give the permissions a plain open() would
    try:
        yield tmp
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def write_json(path: str | Path, data: Any) -> None:
    """Write ``data`` as indented JSON (UTF-8, final newline), atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


def write_tsv(path: str | Path, header: Sequence[str], rows: Iterable[Sequence[object]]) -> None:
    """Write a tab-separated table with ``header``, atomically; tabs and line breaks inside a field become
    spaces, so a field never breaks the table."""
    with atomic_path(path) as tmp, tmp.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, delimiter="\t", lineterminator="\n")
        writer.writerow(header)
        writer.writerows([_FIELD_BREAKS.sub(" ", str(field)) for field in row] for row in rows)


def read_tsv(path: str | Path, header: Sequence[str], what: str) -> list[dict[str, str]]:
    """The rows of a table written by :func:`write_tsv` with ``header``; :class:`InputError` naming the
    file (``what`` it is) when it is absent or has other columns."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: {what} not found")
    reader = csv.DictReader(io.StringIO(read_text(path), newline=""), delimiter="\t")
    if tuple(reader.fieldnames or ()) != tuple(header):
        raise InputError(f"{path}: expected columns {', '.join(header)}, got {reader.fieldnames}")
    return list(reader)


def read_text(path: str | Path) -> str:
    """The UTF-8 text of ``path``; :class:`InputError` naming the file and the first line that is not UTF-8."""
    path = Path(path)
    data = path.read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data[: err.start].count(b"\n") + 1
        raise InputError(f"{path}: line {line} is not UTF-8 text (save the file as UTF-8)") from None
