"""Errors caused by the user's input. The CLI prints them as one line, without a traceback."""

from __future__ import annotations

from collections.abc import Sequence


class InputError(ValueError):
    """Bad input (file, option, config): the message names the file and the problem."""


INTERRUPTED_EXIT_CODE = 130
"""Exit code of a command stopped by Ctrl-C (SIGINT), as shells report it (128 + 2)."""


def os_error_line(err: OSError) -> str:
    """A system error (full disk, read-only file system, permission) as one line naming the file:
    ``"PATH: No space left on device"``; errors naming no file keep their own first line."""
    if err.filename is not None and err.strerror:
        return f"{err.filename}: {err.strerror}"
    text = str(err).strip().splitlines()
    return text[0] if text else type(err).__name__


def first_items(items: Sequence[str], limit: int = 5, separator: str = ", ") -> str:
    """The first ``limit`` of ``items`` joined for a message, and how many more there are: ``"a, b, ... (3 more)"``."""
    more = len(items) - limit
    return separator.join(items[:limit]) + (f"{separator}... ({more} more)" if more > 0 else "")
