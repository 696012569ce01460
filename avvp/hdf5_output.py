"""Writing HDF5 files that fail cleanly when the disk is full (or the file system refuses a write).

HDF5 writes much of a file from its caches, when objects are released or the file is closed; a failed write
there (``ENOSPC``) is only printed as an ignored exception, the library carries on with a broken file and
h5py may crash the process (segmentation fault) when it is closed. Here HDF5 writes through a Python file
object (h5py's ``fileobj`` driver) that records the first failed write and from then on keeps what HDF5
writes in memory (only what it flushes until the writer stops: the caches, a few MB at most), so HDF5
always sees a healthy file and closes normally. The recorded error is raised as an :class:`OSError` naming
the file, by :meth:`GuardedFile.check` after each unit of work and at the latest when the file is closed,
before the caller renames a temporary file into place (:func:`avvp.io.atomic_path` then removes it).
"""

from __future__ import annotations

import contextlib
import io
import os
from collections.abc import Iterator
from pathlib import Path

import h5py


class GuardedFile(io.RawIOBase):
    """A read-write binary file whose first failed write is recorded instead of reaching HDF5.

    ``name`` is the file named in the error (the output the user asked for, not its temporary file).
    """

    def __init__(self, path: Path, name: str | Path) -> None:
        super().__init__()
        self._file = open(path, "w+b", buffering=0)  # noqa: SIM115 - closed by close()
        self.name_in_errors = str(name)
        self.failure: OSError | None = None
        self._kept: list[tuple[int, bytes]] = []
        """Writes after the failure: ``(offset, data)``, newest last."""

    def readable(self) -> bool:
        return True

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        return self._file.seek(offset, whence)

    def tell(self) -> int:
        return self._file.tell()

    def readinto(self, buffer) -> int:
        """Read from the file, with what was kept in memory after the failure laid over it."""
        start = self._file.tell()
        count = self._file.readinto(buffer)
        view = memoryview(buffer).cast("B")
        end = start + len(view)
        for offset, data in self._kept:
            lo, hi = max(start, offset), min(end, offset + len(data))
            if lo < hi:
                view[lo - start : hi - start] = data[lo - offset : hi - offset]
                count = max(count or 0, hi - start)
        self._file.seek(start + (count or 0))
        return count or 0

    def write(self, data) -> int:
        """Write ``data`` at the current position; after a failure, keep it in memory instead."""
        view = memoryview(data).cast("B")
        position = self._file.tell()
        if self.failure is None:
            try:
                written = 0
                while written < len(view):
                    written += self._file.write(view[written:])
                return written
            except OSError as err:
                self.failure = OSError(err.errno, err.strerror, self.name_in_errors)
        self._kept.append((position, view.tobytes()))
        self._file.seek(position + len(view))
        return len(view)

    def truncate(self, size: int | None = None) -> int:
        if self.failure is not None:
            return self._file.tell() if size is None else size
        try:
            return self._file.truncate(size)
        except OSError as err:
            self.failure = OSError(err.errno, err.strerror, self.name_in_errors)
            return self._file.tell() if size is None else size

    def flush(self) -> None:
        """Nothing is buffered here (the file is unbuffered)."""

    def check(self) -> None:
        """Raise the recorded write failure, if any (e.g. ``OSError: NAME: No space left on device``)."""
        if self.failure is not None:
            raise self.failure

    def close(self) -> None:
        if not self.closed:
            self._file.close()
        super().close()


@contextlib.contextmanager
def hdf5_output(tmp: Path, name: str | Path) -> Iterator[tuple[h5py.File, GuardedFile]]:
    """A new HDF5 file at ``tmp`` (a temporary file; ``name``: the output it becomes, named in errors) and
    its :class:`GuardedFile`; on leaving the block HDF5 closes the file, and a failed write is raised then
    as an :class:`OSError` naming ``name`` (call ``guard.check()`` to stop sooner)."""
    guard = GuardedFile(tmp, name)
    try:
        with h5py.File(guard, "w") as handle:
            yield handle, guard
    finally:
        guard.close()
    guard.check()
