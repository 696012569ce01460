"""Ctrl-C that always stops a run: SIGINT held back while data-loading workers are forked.

A SIGINT that arrives while the main process is inside ``os.fork()`` (a ``DataLoader`` starting its worker
processes) is raised in one of CPython's after-fork handlers, which prints "Exception ignored" and drops it:
the run goes on as if Ctrl-C had never been pressed. Holding SIGINT back around the fork delivers it once the
workers are up, where it ends the run as usual (``avvp`` then says "interrupted" and exits 130).
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import TypeVar

Item = TypeVar("Item")


@contextmanager
def sigint_held_back() -> Iterator[None]:
    """Inside the block a SIGINT is only noted; at its end the previous SIGINT handler gets it (Python's
    default raises ``KeyboardInterrupt``). Main thread only (elsewhere the block runs unchanged).

    A handler rather than a signal mask: the kernel may hand a process's SIGINT to any of its threads (torch's
    among them), so blocking it in the main thread alone would not hold it back. Processes forked inside the
    block keep the noting handler: data-loading workers then leave stopping to the main process, which shuts
    them down (PyTorch's workers ignore a KeyboardInterrupt anyway).
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, _frame: received.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if received and callable(previous):
        previous(signal.SIGINT, None)
    elif received and previous == signal.SIG_DFL:
        raise KeyboardInterrupt


def batches_of(loader: Iterable[Item]) -> Iterator[Item]:
    """Iterate ``loader`` (e.g. a ``DataLoader``), starting its worker processes with SIGINT held back."""
    with sigint_held_back():
        iterator = iter(loader)
    yield from iterator
