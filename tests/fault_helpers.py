"""Faults a test can cause: small or read-only file systems (tmpfs mounts), ``avvp`` commands run as
processes, and signals sent to them while they work."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _mount(folder: Path, options: str) -> None:
    """Mount a tmpfs with ``options`` on ``folder``; skip the test (saying why) where that is not allowed."""
    folder.mkdir(parents=True, exist_ok=True)
    try:
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)], capture_output=True, text=True
        )
    except FileNotFoundError:
        pytest.skip("no 'mount' command here: cannot make a small or read-only file system")
    if done.returncode != 0:
        pytest.skip(f"mounting a tmpfs is not permitted here ({done.stderr.strip() or done.returncode})")


@contextlib.contextmanager
def tmpfs(folder: Path, size: str = "2M", read_only: bool = False) -> Iterator[Path]:
    """``folder`` as a fresh tmpfs of ``size`` (read-only with ``read_only``) while the block runs; skips
    the test where mounting is not permitted (not root, no mount namespace)."""
    _mount(folder, f"size={size}" + (",ro" if read_only else ""))
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def fill(folder: Path, leave: int = 0) -> None:
    """Fill the file system of ``folder`` up to ``leave`` free bytes with a file ``filler`` in it."""
    free = os.statvfs(folder).f_bavail * os.statvfs(folder).f_frsize
    with open(folder / "filler", "wb") as handle:
        handle.write(b"\0" * max(free - leave, 0))


def avvp_env() -> dict[str, str]:
    """The environment for an ``avvp`` process running this checkout's code."""
    path = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    return {**os.environ, "PYTHONPATH": path}


def run_avvp(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run ``python -m avvp.cli ARGS`` to its end; its exit code, stdout and stderr as text."""
    command = [sys.executable, "-m", "avvp.cli", *args]
    return subprocess.run(command, capture_output=True, text=True, env=avvp_env(), timeout=timeout)


def start_avvp(*args: str) -> subprocess.Popen:
    """Start ``python -m avvp.cli ARGS`` in a process group of its own, as a terminal runs a command
    (stdout and stderr as text pipes)."""
    command = [sys.executable, "-m", "avvp.cli", *args]
    return subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=avvp_env(),
        start_new_session=True,
    )


def wait_for(condition, timeout: float = 120.0, process: subprocess.Popen | None = None) -> None:
    """Poll ``condition()`` until it holds; fail after ``timeout`` seconds or when ``process`` ends first."""
    deadline = time.monotonic() + timeout
    while not condition():
        if process is not None and process.poll() is not None:
            raise AssertionError(
                f"the process ended (code {process.returncode}) first: {process.stderr.read()}"
            )
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {condition}")
        time.sleep(0.05)


def interrupt(process: subprocess.Popen, sig: int = signal.SIGINT, timeout: float = 120.0) -> tuple[int, str]:
    """Send ``sig`` (Ctrl-C by default) to the process group of ``process`` (started by :func:`start_avvp`),
    as a terminal sends Ctrl-C to a command and its workers, and wait for it; its exit code and stderr."""
    os.killpg(process.pid, sig)
    _, stderr = process.communicate(timeout=timeout)
    return process.returncode, stderr


def last_line(text: str) -> str:
    """The last non-empty line of ``text`` (a command's one-line error)."""
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else ""
