"""Errors caused by the user's input. The CLI prints them as one line, without a traceback."""

from __future__ import annotations

from collections.abc import Sequence


class InputError(ValueError):
    """Bad input (file, option, config): the message names the file and the problem."""


def first_items(items: Sequence[str], limit: int = 5, separator: str = ", ") -> str:
    """The first ``limit`` of ``items`` joined for a message, and how many more there are: ``"a, b, ... (3 more)"``."""
    more = len(items) - limit
    return separator.join(items[:limit]) + (f"{separator}... ({more} more)" if more > 0 else "")
