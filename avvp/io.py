"""File helpers: atomic output (write to a temporary sibling, rename over the target only on success) and
reading users' text files as UTF-8 with a one-line error when they are not."""

from __future__ import annotations

import contextlib
import csv
import errno
import fcntl
import glob
import io
import json
import logging
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from avvp.errors import InputError

log = logging.getLogger(__name__)
FIELD_BREAKS = re.compile(r"[\t\r\n]+")
"""Characters that would break a field of a TSV or CSV row (:func:`write_tsv` turns them into spaces)."""
VIDEO_SUFFIXES = (".mp4", ".mkv", ".webm", ".avi", ".mov", ".m4v", ".flv")
"""File suffixes taken for videos (downloads, local copies, extraction and parsing inputs)."""
AUDIO_SUFFIXES = (".wav", ".mp3", ".flac", ".m4a", ".aac", ".ogg", ".opus", ".wma")
"""File suffixes of audio files: media given to 'avvp extract' (its audio features), never list files."""
_MEDIA_SIGNATURES = (b"RIFF", b"ID3", b"fLaC", b"OggS", b"\x1a\x45\xdf\xa3", b"FLV", b"\x30\x26\xb2\x75")
"""First bytes of media containers: WAV/AVI, MP3 with tags, FLAC, Ogg, Matroska/WebM, FLV, ASF (WMA/WMV)."""
_UMASK = os.umask(0)
os.umask(_UMASK)


_HELD_LOCKS: set[Path] = set()
"""Lock files this process holds."""


class BusyTargetError(InputError):
    """Another writer is writing the same output file right now."""


def _lock_file(target: Path) -> Path:
    """The lock file of a target: ``.NAME.lock`` beside it."""
    return target.with_name(f".{target.name}.lock")


def _busy(target: Path, lock: Path) -> BusyTargetError:
    return BusyTargetError(
        f"{target}: another writer is writing this file now (it holds the lock {lock}); let it finish or stop "
        "it, then run again (a lock file left by a killed run is no obstacle: only a running writer holds it)"
    )


def _take_lock(lock: Path, busy: Callable[[], BusyTargetError]) -> int | None:
    """An open descriptor of ``lock`` holding its exclusive POSIX lock, or None when the file system cannot
    lock files. Raises ``busy()`` when another process (or this one) holds it.

    POSIX locks (``lockf``) end with their process, however it ends, and are not inherited by forked
    children (decoding workers): a lock file left by a killed run is taken over, never in the way.
    """
    if lock.resolve() in _HELD_LOCKS:
        raise busy()  # POSIX locks do not exclude their own process: refuse here
    while True:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as err:
            os.close(fd)
            if err.errno in (errno.EACCES, errno.EAGAIN):
                raise busy() from None
            log.warning("cannot lock %s (%s); writing without a lock", lock, err.strerror or err)
            return None
        try:
            current = os.stat(lock)
        except FileNotFoundError:
            current = None
        held = os.fstat(fd)
        if current is not None and (current.st_dev, current.st_ino) == (held.st_dev, held.st_ino):
            return fd
        os.close(fd)  # the holder before us removed this lock file as we opened it: take the new one


@contextlib.contextmanager
def _writing(target: Path) -> Iterator[bool]:
    """Hold ``target``'s lock file while the block writes it; yields whether the lock is held (False on a
    file system without locks). The lock file is removed before the lock is released."""
    lock = _lock_file(target)
    with _holding(lock, lambda: _busy(target, lock)) as fd:
        yield fd is not None


@contextlib.contextmanager
def _holding(lock: Path, busy: Callable[[], BusyTargetError]) -> Iterator[int | None]:
    """Hold ``lock`` (:func:`_take_lock`) while the block runs; yields its descriptor (None on a file system
    without locks). The lock file is removed before the lock is released."""
    fd = _take_lock(lock, busy)
    if fd is None:
        yield None
        return
    held = lock.resolve()
    _HELD_LOCKS.add(held)
    try:
        yield fd
    finally:
        _HELD_LOCKS.discard(held)
        lock.unlink(missing_ok=True)
        os.close(fd)


RUN_LOCK = ".avvp-run.lock"
"""The lock file a run holds in the output folder it owns (it holds the run's process id)."""


def _folder_busy(folder: Path, command: str) -> BusyTargetError:
    try:
        holder = (folder / RUN_LOCK).read_text(encoding="utf-8").strip() or "unknown"
    except OSError:
        holder = "unknown"
    return BusyTargetError(
        f"{folder}: another run is writing into this folder now (pid {holder}); let it finish or stop it, "
        f"or give {command} another --output-dir"
    )


@contextlib.contextmanager
def own_folder(folder: str | Path, command: str) -> Iterator[Path]:
    """Own output ``folder`` (created if absent) while the block runs: a second run into it at the same
    time gets :class:`BusyTargetError` at once, naming the folder and the owner's process id.

    The lock (:data:`RUN_LOCK`, a POSIX lock: it ends with its process, however it ends) is taken before
    anything is read, so a run never does its work only to find the folder taken; a lock file left by a
    killed run is taken over. ``command`` (e.g. ``avvp train``) names the writer in the message. A folder
    this call created is removed again when the block leaves it empty.
    """
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise InputError(f"{folder}: is a file; give a folder as --output-dir")
    created = not folder.exists()
    folder.mkdir(parents=True, exist_ok=True)
    try:
        with _holding(folder / RUN_LOCK, lambda: _folder_busy(folder, command)) as fd:
            if fd is not None:
                os.ftruncate(fd, 0)
                os.write(fd, f"{os.getpid()}\n".encode())
            yield folder
    finally:
        if created and not any(folder.iterdir()):
            folder.rmdir()  # a run refused before writing anything leaves no empty folder behind


@contextlib.contextmanager
def atomic_path(target: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; on normal exit rename it to ``target``, else delete it.

    A reader never sees a half-written ``target``: it is either absent, the old file, or the new one.
    While the block runs, the writer holds the lock file ``.NAME.lock`` beside ``target``: a second writer
    of the same target at the same time gets :class:`BusyTargetError` and leaves the first one's temporary
    file alone. Holding the lock, the writer deletes temporary files that an earlier, killed writer of the
    same target left behind (a process killed with SIGKILL cannot clean up), so a rerun starts clean. A
    system error writing the temporary file (full disk) is raised as an ``OSError`` naming ``target``.
    """
    target = Path(target)
    if target.is_dir():
        raise InputError(f"{target}: is a folder; give the path of a file to write")
    with contextlib.ExitStack() as stack:
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            if stack.enter_context(_writing(target)):
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
        except OSError as err:
            if err.filename not in (None, str(tmp)) or err.errno is None:
                raise
            raise OSError(err.errno, err.strerror, str(target)) from None  # name the output, not its temp
        finally:
            tmp.unlink(missing_ok=True)


STAGING = ".staging.*.tmp"
"""Pattern of the staging folders :func:`staged_outputs` makes inside an output folder."""


@contextlib.contextmanager
def staged_outputs(folder: str | Path, command: str) -> Iterator[Path]:
    """Yield an empty staging folder inside output ``folder``; on normal exit every file written there is
    renamed into ``folder`` (after all of them were written), else the staging folder is deleted: the
    outputs appear together or not at all (a full disk leaves ``folder`` as it was).

    The block runs owning ``folder`` (:func:`own_folder`; ``command`` names the writer), which lets it
    delete staging folders a killed run left behind.
    """
    folder = Path(folder)
    with own_folder(folder, command):
        for leftover in folder.glob(STAGING):
            log.info("removing %s, left by an interrupted run", leftover)
            shutil.rmtree(leftover, ignore_errors=True)
        stage = Path(tempfile.mkdtemp(prefix=".staging.", suffix=".tmp", dir=folder))
        try:
            yield stage
            for item in sorted(stage.iterdir()):
                if not item.name.startswith("."):
                    os.replace(item, folder / item.name)
        except OSError as err:
            staged = Path(err.filename) if isinstance(err.filename, str) else None
            if staged is None or not staged.is_relative_to(stage) or err.errno is None:
                raise
            raise OSError(err.errno, err.strerror, str(folder / staged.relative_to(stage))) from None
        finally:
            shutil.rmtree(stage, ignore_errors=True)


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
        writer.writerows([FIELD_BREAKS.sub(" ", str(field)) for field in row] for row in rows)


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


def is_media_file(path: str | Path) -> bool:
    """Whether ``path`` is a video or audio file rather than a text file: by its suffix, else by its first
    bytes (a container's signature, an MPEG-4 ``ftyp`` box, or an MPEG audio frame header)."""
    path = Path(path)
    if path.suffix.lower() in VIDEO_SUFFIXES + AUDIO_SUFFIXES:
        return True
    with path.open("rb") as handle:
        head = handle.read(12)
    mpeg_audio = len(head) > 1 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0  # never the start of UTF-8 text
    return head.startswith(_MEDIA_SIGNATURES) or head[4:8] == b"ftyp" or mpeg_audio


def read_text(path: str | Path) -> str:
    """The UTF-8 text of ``path`` without a leading byte-order mark (as Excel's "CSV UTF-8" writes);
    :class:`InputError` naming the file and the first line that is not UTF-8."""
    path = Path(path)
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = data[: err.start].count(b"\n") + 1
        raise InputError(f"{path}: line {line} is not UTF-8 text (save the file as UTF-8)") from None
