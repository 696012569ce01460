"""Ctrl-C that always stops a run, even where CPython would drop its ``KeyboardInterrupt``.

CPython raises a SIGINT's ``KeyboardInterrupt`` wherever the main thread happens to be, and in a few places it
only prints "Exception ignored" and goes on: inside ``os.fork()``'s after-fork handlers (a ``DataLoader``
starting its worker processes), in ``__del__`` methods and in weakref callbacks. The run then goes on as if
Ctrl-C had never been pressed. Two guards make it stop:

- :func:`sigint_held_back` notes a SIGINT while workers are forked and delivers it once they are up;
- :func:`stop_on_ctrl_c` (installed by the ``avvp`` command) remembers every Ctrl-C, and :func:`batches_of`
  raises ``KeyboardInterrupt`` at the next batch when one was pressed but dropped.

``avvp`` then says "interrupted" and exits 130.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import TypeVar

Item = TypeVar("Item")

_pressed = threading.Event()


def _remember_and_stop(_signum: int, _frame: FrameType | None) -> None:
    _pressed.set()
    raise KeyboardInterrupt


def stop_on_ctrl_c() -> None:
    """Make SIGINT raise ``KeyboardInterrupt`` as Python's default does, and also remember it for
    :func:`batches_of`. A SIGINT the process was started to ignore (``nohup``) stays ignored."""
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        signal.signal(signal.SIGINT, _remember_and_stop)


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
    """Iterate ``loader`` (e.g. a ``DataLoader``), starting its worker processes with SIGINT held back, and
    raise ``KeyboardInterrupt`` before the next item once a Ctrl-C remembered by :func:`stop_on_ctrl_c` was
    pressed during the loop (one CPython dropped)."""
    _pressed.clear()
    with sigint_held_back():
        iterator = iter(loader)
    for item in iterator:
        if _pressed.is_set():
            raise KeyboardInterrupt
        yield item
