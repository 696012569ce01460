"""Stopping a writing command: Ctrl-C ends it with one line and exit code 130, kill -9 leaves nothing that
looks finished, and the rerun writes the same bytes as an uninterrupted run."""

from __future__ import annotations

import os
import shutil
import signal
import time
from pathlib import Path

import pytest
from extract_helpers import make_clip
from fault_helpers import interrupt, last_line, run_avvp, start_avvp, wait_for

from avvp.interrupts import batches_of, sigint_held_back, stop_on_ctrl_c

CLIPS = 16
EXTRACT = ("--kinds", "r2plus1d", "--clip-size", "16", "--weights", "random", "--workers", "1")
EXTRACT += ("--batch-clips", "1", "--device", "cpu", "--no-progress")


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder of :data:`CLIPS` short clips (copies of one), enough to stop an extraction midway."""
    folder = tmp_path_factory.mktemp("clips")
    clip = make_clip(folder / "clip0000000_0_10.mp4", seconds=3.0, fps=8, size=(32, 24))
    for i in range(1, CLIPS):
        shutil.copy(clip, folder / f"clip{i:07d}_0_10.mp4")
    return folder


@pytest.fixture(scope="module")
def straight(clips: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The store an uninterrupted extraction of ``clips`` writes."""
    output = tmp_path_factory.mktemp("straight") / "e.h5"
    done = run_avvp(*_extract(clips, output))
    assert done.returncode == 0, done.stderr[-2000:]
    return output


def _extract(clips: Path, output: Path) -> tuple[str, ...]:
    return ("extract", "--videos", str(clips), "--output", str(output), *EXTRACT)


def _temporary(folder: Path) -> list[Path]:
    return [p for p in folder.iterdir() if p.name.endswith(".tmp")]


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL], ids=["ctrl-c", "kill-9"])
def test_a_stopped_extraction_leaves_nothing_finished_and_the_rerun_is_identical(
    sig: int, clips: Path, straight: Path, tmp_path: Path
) -> None:
    stopped = tmp_path / "stopped" / "e.h5"
    stopped.parent.mkdir()
    process = start_avvp(*_extract(clips, stopped))
    wait_for(lambda: list(stopped.parent.glob(".e.h5.*.tmp")), process=process)  # the store is being written
    code, stderr = interrupt(process, sig)
    assert not stopped.exists(), f"exit code {code}: {stderr[-2000:]}"
    if sig == signal.SIGINT:
        assert code == 130 and last_line(stderr) == "avvp extract: interrupted", stderr[-2000:]
        assert "Traceback" not in stderr and "KeyboardInterrupt" not in stderr
        assert not _temporary(stopped.parent) and list(stopped.parent.iterdir()) == []
    else:
        assert code == -signal.SIGKILL and _temporary(stopped.parent)  # a killed process cannot clean up
    rerun = run_avvp(*_extract(clips, stopped))
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert stopped.read_bytes() == straight.read_bytes()
    assert sorted(p.name for p in stopped.parent.iterdir()) == sorted(
        p.name for p in straight.parent.iterdir()
    )


def test_a_ctrl_c_while_workers_are_forked_is_delivered_once_they_are_up() -> None:
    """SIGINT during a DataLoader's fork was dropped by CPython's after-fork handlers ("Exception
    ignored"), and the extraction ran to its end: it is now held back and raised after the fork."""
    reached_end_of_block = False
    with pytest.raises(KeyboardInterrupt), sigint_held_back():
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.05)  # a signal not held back would interrupt this sleep
        reached_end_of_block = True
    assert reached_end_of_block
    assert list(batches_of(iter([1, 2, 3]))) == [1, 2, 3]


class _RaisesCtrlCOnDeletion:
    """Presses Ctrl-C inside ``__del__``, where CPython prints the KeyboardInterrupt as "Exception ignored"
    and drops it."""

    def __del__(self) -> None:
        signal.raise_signal(signal.SIGINT)


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_a_ctrl_c_that_cpython_drops_still_stops_the_loop_at_the_next_batch() -> None:
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        stop_on_ctrl_c()
        seen = []
        with pytest.raises(KeyboardInterrupt):
            for item in batches_of(iter(range(5))):
                seen.append(item)
                if item == 1:
                    _RaisesCtrlCOnDeletion()  # deleted at once: its KeyboardInterrupt is dropped
        assert seen == [0, 1]
        assert list(batches_of(iter([7, 8]))) == [7, 8]  # a new loop does not inherit an old Ctrl-C
    finally:
        signal.signal(signal.SIGINT, previous)
