"""Atomic outputs with two writers of one file: the second is refused and the first one's temporary file
survives; a killed writer's lock and temporary file do not stop a rerun."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from extract_helpers import make_clip

from avvp.cli import main
from avvp.io import BusyTargetError, atomic_path

REPO = Path(__file__).resolve().parents[1]
WRITER = """
import os, signal, sys
from avvp.io import atomic_path
with atomic_path(sys.argv[1]) as tmp:
    tmp.write_text("first writer")
    print(tmp, flush=True)
    if sys.argv[2] == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    sys.stdin.readline()
"""


def _writer(target: Path, mode: str) -> subprocess.Popen:
    """A process inside ``atomic_path(target)`` (its temporary file written), waiting for a line on stdin
    (``mode`` "wait") or killed by SIGKILL there (``mode`` "kill")."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
    }
    command = [sys.executable, "-c", WRITER, str(target), mode]
    return subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)


@pytest.fixture
def first_writer(tmp_path: Path) -> Iterator[tuple[subprocess.Popen, Path, Path]]:
    """A process writing ``tmp_path/out.txt`` now: the process, the target and its temporary file."""
    target = tmp_path / "out.txt"
    process = _writer(target, "wait")
    tmp = Path(process.stdout.readline().strip())
    yield process, target, tmp
    process.kill()
    process.wait()


def test_a_second_writer_is_refused_and_leaves_the_first_ones_file(first_writer) -> None:
    process, target, tmp = first_writer
    busy = rf"{target}: another writer is writing this file now"
    with pytest.raises(BusyTargetError, match=busy), atomic_path(target) as mine:
        mine.write_text("second writer")
    assert tmp.read_text() == "first writer"
    process.communicate("done\n", timeout=30)
    assert process.returncode == 0 and target.read_text() == "first writer"
    assert sorted(p.name for p in target.parent.iterdir()) == ["out.txt"], "no lock or temporary file left"


def test_a_second_extraction_of_the_same_shard_is_refused(first_writer, tmp_path: Path, capsys) -> None:
    _, target, tmp = first_writer
    (tmp_path / "clips").mkdir()
    make_clip(tmp_path / "clips" / "clip.mp4")
    argv = ["extract", "--videos", str(tmp_path / "clips"), "--output", str(target), "--kinds", "r2plus1d"]
    argv += ["--weights", "random", "--clip-size", "16", "--workers", "0", "--device", "cpu"]
    assert main(argv) == 2
    assert f"{target}: another writer is writing this file now" in capsys.readouterr().err
    assert tmp.read_text() == "first writer" and not target.exists()


def test_a_killed_writers_lock_and_temporary_file_do_not_stop_a_rerun(tmp_path: Path) -> None:
    target = tmp_path / "out.txt"
    killed = _writer(target, "kill")
    leftover = Path(killed.stdout.readline().strip())
    killed.wait()
    other = tmp_path / ".other.txt.abc123.tmp"
    other.write_text("another target's")
    assert leftover.is_file() and (tmp_path / ".out.txt.lock").is_file()
    with atomic_path(target) as tmp:
        tmp.write_text("rerun")
    assert target.read_text() == "rerun"
    assert sorted(p.name for p in tmp_path.iterdir()) == [".other.txt.abc123.tmp", "out.txt"]


def test_one_process_writing_a_file_twice_at_once_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "out.txt"
    with atomic_path(target) as outer:
        with pytest.raises(BusyTargetError, match=r"out\.txt: another writer"), atomic_path(target):
            pass
        outer.write_text("outer")
    assert target.read_text() == "outer"


def test_without_file_locks_writes_go_on_and_leave_other_temporary_files(tmp_path, monkeypatch, caplog):
    def no_locks(fd: int, operation: int) -> None:
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr("avvp.io.fcntl.lockf", no_locks)
    leftover = tmp_path / ".out.txt.abc123.tmp"
    leftover.write_text("maybe a live writer's")
    with atomic_path(tmp_path / "out.txt") as tmp:
        tmp.write_text("written")
    assert (tmp_path / "out.txt").read_text() == "written" and leftover.is_file()
    assert "cannot lock" in caplog.text
