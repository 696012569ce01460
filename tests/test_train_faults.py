"""Training under faults: resuming on other data, two runs into one folder, a killed or interrupted run."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from fault_helpers import avvp_env, interrupt, last_line, run_avvp, start_avvp, wait_for
from train_helpers import (  # noqa: F401
    SyntheticSplits,
    make_splits,
    one_torch_thread,
    restore_determinism,
    train_overrides,
)

from avvp.errors import InputError
from avvp.io import RUN_LOCK, BusyTargetError, own_folder
from avvp.training import trainer
from avvp.training.checkpoints import check_same_inputs
from avvp.training.config import load_config
from avvp.training.trainer import UNFINISHED_BEST, train

HOLDER = """
import sys, time
from avvp.io import own_folder
with own_folder(sys.argv[1], "test"):
    print("held", flush=True)
    time.sleep(600)
"""


@pytest.fixture(scope="module")
def splits(tmp_path_factory: pytest.TempPathFactory) -> SyntheticSplits:
    return make_splits(tmp_path_factory.mktemp("synthetic"), num_train=16, num_val=8)


def _config(splits: SyntheticSplits, run: Path, **extra: object):
    return load_config(None, train_overrides(splits, run, **extra))


def _cli_args(splits: SyntheticSplits, run: Path, epochs: int) -> list[str]:
    config = Path(__file__).resolve().parents[1] / "resources" / "configs" / "demo.yaml"
    sets = [f"{k}={v}" for k, v in train_overrides(splits, run, epochs=epochs).items()]
    return ["train", "--config", str(config), *(arg for s in sets for arg in ("--set", s))]


def test_resume_refuses_other_features_naming_the_key(splits: SyntheticSplits, tmp_path: Path) -> None:
    run = tmp_path / "run"
    train(_config(splits, run, epochs=1))
    before = (run / "last.pt").read_bytes()
    other = make_splits(tmp_path / "other", num_train=16, num_val=8, seed=5)  # other weights, same clips
    with pytest.raises(InputError, match=r"cannot resume on other data.*features\.vggish.*weights"):
        train(_config(splits, run, epochs=2, features=str(other.features)), resume=True)
    assert (run / "last.pt").read_bytes() == before


def test_resume_refuses_a_changed_split_file_but_not_a_moved_one(
    splits: SyntheticSplits, tmp_path: Path
) -> None:
    run = tmp_path / "run"
    train(_config(splits, run, epochs=1))
    moved = tmp_path / "moved"
    shutil.copytree(splits.annotations_dir, moved)
    lines = (moved / "AVVP_train.csv").read_text().splitlines(keepends=True)
    (moved / "AVVP_train.csv").write_text("".join(lines[:-1]))  # one training clip fewer
    with pytest.raises(
        InputError, match=r"splits\.train \(.*moved/AVVP_train\.csv\): the file's content differs"
    ):
        train(_config(splits, run, epochs=2, annotations_dir=str(moved)), resume=True)
    (moved / "AVVP_train.csv").write_text("".join(lines))  # the same content in another folder resumes
    best = train(_config(splits, run, epochs=2, annotations_dir=str(moved)), resume=True)
    assert best["epoch"] in (1, 2) and torch.load(run / "last.pt", weights_only=True)["epoch"] == 2


def test_a_checkpoint_that_recorded_only_its_splits_is_checked_for_those(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Runs saved before every label file's digest was recorded keep resuming (their splits checked)."""
    last = tmp_path / "last.pt"
    state = {"features": {}, "splits": {"train": "sha256:a", "val": "sha256:b"}}
    now = {"splits.train": "sha256:a", "splits.val": "sha256:b", "pseudo_labels": "sha256:c"}
    check_same_inputs(last, state, {}, now, {})
    assert "records no digests of pseudo_labels" in caplog.text
    with pytest.raises(InputError, match=r"splits\.val \(its file\): the file's content differs"):
        check_same_inputs(last, state, {}, {**now, "splits.val": "sha256:x"}, {})


def test_a_second_run_into_a_folder_fails_at_once_naming_it_and_the_owner(
    splits: SyntheticSplits, tmp_path: Path
) -> None:
    run = tmp_path / "run"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(run)], stdout=subprocess.PIPE, text=True, env=avvp_env()
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        done = run_avvp(*_cli_args(splits, run, epochs=1))
        assert done.returncode == 2, done.stderr
        line = last_line(done.stderr)
        assert line == (
            f"avvp train: error: {run}: another run is writing into this folder now (pid {holder.pid}); "
            "let it finish or stop it, or give avvp train another --output-dir"
        )
        assert "Traceback" not in done.stderr and "epoch" not in done.stderr  # refused before any work
        assert sorted(p.name for p in run.iterdir()) == [RUN_LOCK]
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    # the killed owner's lock file stays behind and is no obstacle
    assert (run / RUN_LOCK).is_file()
    train(_config(splits, run, epochs=1))
    assert (run / "best.pt").is_file() and not (run / RUN_LOCK).exists()


def test_the_same_process_cannot_own_a_folder_twice(splits: SyntheticSplits, tmp_path: Path) -> None:
    with (
        own_folder(tmp_path / "run", "avvp train"),
        pytest.raises(BusyTargetError, match=f"pid {os.getpid()}"),
    ):
        train(_config(splits, tmp_path / "run", epochs=1))


def test_a_run_stopped_midway_has_no_finished_looking_best_and_resumes(
    splits: SyntheticSplits, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    straight, stopped = tmp_path / "straight", tmp_path / "stopped"
    train(_config(splits, straight, epochs=2))
    real_epoch = trainer.train_epoch
    calls = []

    def stop_in_epoch_two(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt  # as Ctrl-C or a kill would, after epoch 1 was saved
        return real_epoch(*args, **kwargs)

    monkeypatch.setattr(trainer, "train_epoch", stop_in_epoch_two)
    with pytest.raises(KeyboardInterrupt):
        train(_config(splits, stopped, epochs=2))
    assert not (stopped / "best.pt").exists() and (stopped / UNFINISHED_BEST).is_file()
    monkeypatch.setattr(trainer, "train_epoch", real_epoch)
    train(_config(splits, stopped, epochs=2), resume=True)
    assert (stopped / "best.pt").is_file() and not (stopped / UNFINISHED_BEST).exists()
    resumed, uninterrupted = (torch.load(r / "best.pt", weights_only=True) for r in (stopped, straight))
    assert resumed["epoch"] == uninterrupted["epoch"] and resumed["metrics"] == uninterrupted["metrics"]
    for key, value in uninterrupted["state_dict"].items():
        assert torch.equal(value, resumed["state_dict"][key]), key
    # more epochs for a finished run: best.pt is unfinished again until they are done
    monkeypatch.setattr(trainer, "train_epoch", stop_in_epoch_two)
    calls.clear()
    calls.append(1)
    with pytest.raises(KeyboardInterrupt):
        train(_config(splits, stopped, epochs=3), resume=True)
    assert not (stopped / "best.pt").exists() and (stopped / UNFINISHED_BEST).is_file()


def test_ctrl_c_during_training_is_one_line_and_exit_130(splits: SyntheticSplits, tmp_path: Path) -> None:
    run = tmp_path / "run"
    process = start_avvp(*_cli_args(splits, run, epochs=500))
    wait_for(lambda: (run / "last.pt").is_file(), process=process)
    code, stderr = interrupt(process)
    assert code == 130 and last_line(stderr) == "avvp train: interrupted", stderr
    assert "Traceback" not in stderr and "KeyboardInterrupt" not in stderr
    assert not any(p.name.endswith(".tmp") for p in run.iterdir())
    assert not (run / "best.pt").exists()
