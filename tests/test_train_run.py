"""Training on a small learnable synthetic set: loss falls, outputs, resume, seeds, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from train_helpers import (  # noqa: F401
    SyntheticSplits,
    make_splits,
    one_torch_thread,
    restore_determinism,
    train_overrides,
)

from avvp.cli import main
from avvp.errors import InputError
from avvp.training.config import load_config
from avvp.training.diagnostics import LossGapTracker, attention_distribution
from avvp.training.trainer import train, train_seeds

RUN_FILES = {
    "config.yaml",
    "best.pt",
    "last.pt",
    "val_metrics.json",
    "history.jsonl",
    "loss_gaps.jsonl",
    "attention.json",
    "attention.npz",
}


@pytest.fixture(scope="module")
def splits(tmp_path_factory: pytest.TempPathFactory) -> SyntheticSplits:
    return make_splits(tmp_path_factory.mktemp("synthetic"))


def history(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "history.jsonl").read_text().splitlines()]


def test_loss_falls_and_run_files_are_written(splits: SyntheticSplits, tmp_path: Path) -> None:
    run = tmp_path / "run"
    best = train(load_config(None, train_overrides(splits, run, epochs=6)))
    assert {p.name for p in run.iterdir()} >= RUN_FILES
    records = history(run)
    assert [r["epoch"] for r in records] == list(range(1, 7))
    assert records[-1]["loss"] < 0.7 * records[0]["loss"]
    for name in ("L_wsl", "L_a", "L_v"):
        assert records[-1][name] < records[0][name]
    assert set(records[0]["val"]["segment"]) == {"audio", "visual", "audio_visual", "type", "event"}
    best_epoch = max(records, key=lambda r: (r["val"]["segment"]["type"], r["epoch"]))["epoch"]
    assert best["epoch"] == best_epoch
    saved = json.loads((run / "val_metrics.json").read_text())
    assert saved["epoch"] == best_epoch and saved["segment"]["type"] == pytest.approx(best["score"])
    gaps = [json.loads(line) for line in (run / "loss_gaps.jsonl").read_text().splitlines()]
    assert len(gaps) == 6 and all(g["mse_wsl_a"] >= 0 and g["mse_wsl_v"] >= 0 for g in gaps)
    attention = np.load(run / "attention.npz")
    assert attention["histogram"].shape == (25, 20)
    assert (attention["histogram"].sum(axis=1) == len(splits.val_ids) * 10).all()
    np.testing.assert_allclose(attention["mean_audio"] + attention["mean_visual"], 1.0)
    checkpoint = torch.load(run / "best.pt", weights_only=True)
    assert checkpoint["format"] == "avvp-parser/2" and checkpoint["epoch"] == best_epoch


def test_two_epochs_equal_one_then_resume_one(splits: SyntheticSplits, tmp_path: Path) -> None:
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    train(load_config(None, train_overrides(splits, straight, epochs=2)))
    train(load_config(None, train_overrides(splits, resumed, epochs=1)))
    train(load_config(None, train_overrides(splits, resumed, epochs=2)), resume=True)
    a = torch.load(straight / "last.pt", weights_only=True)
    b = torch.load(resumed / "last.pt", weights_only=True)
    assert a["epoch"] == b["epoch"] == 2
    for key, value in a["state_dict"].items():
        assert torch.equal(value, b["state_dict"][key]), key
    assert [r["L_wsl"] for r in history(straight)] == [r["L_wsl"] for r in history(resumed)]


def test_existing_run_is_not_overwritten_and_resume_checks_the_config(
    splits: SyntheticSplits, tmp_path: Path
) -> None:
    run = tmp_path / "run"
    train(load_config(None, train_overrides(splits, run, epochs=1)))
    before = (run / "last.pt").read_bytes()
    with pytest.raises(InputError, match="--resume"):
        train(load_config(None, train_overrides(splits, run, epochs=1)))
    with pytest.raises(InputError, match=r"cannot resume.*'model'"):
        train(load_config(None, train_overrides(splits, run, epochs=2, **{"model.d_model": 16})), resume=True)
    assert (run / "last.pt").read_bytes() == before


def test_seeds_write_mean_and_std(splits: SyntheticSplits, tmp_path: Path) -> None:
    summary = train_seeds(load_config(None, train_overrides(splits, tmp_path, epochs=1)), [1, 2])
    assert (tmp_path / "seed_1" / "best.pt").is_file() and (tmp_path / "seed_2" / "best.pt").is_file()
    saved = json.loads((tmp_path / "seeds_summary.json").read_text())
    assert saved == summary
    values = [saved["runs"][s]["segment"]["type"] for s in ("1", "2")]
    assert saved["mean"]["segment"]["type"] == pytest.approx(np.mean(values))
    assert saved["std"]["segment"]["type"] == pytest.approx(np.std(values, ddof=1))


@pytest.mark.usefixtures("restore_determinism")
def test_cli_runs_demo_config(splits: SyntheticSplits, tmp_path: Path) -> None:
    config = Path(__file__).resolve().parents[1] / "resources" / "configs" / "demo.yaml"
    code = main(
        ["train", "--config", str(config), "--features", str(splits.features), "--annotations-dir",
         str(splits.annotations_dir), "--output-dir", str(tmp_path / "demo"), "--device", "cpu",
         "--set", "epochs=2", "--deterministic"]
    )  # fmt: skip
    assert code == 0
    assert torch.are_deterministic_algorithms_enabled()
    assert [r["epoch"] for r in history(tmp_path / "demo")] == [1, 2]


def _cli_error(args: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    assert main(args) == 2
    return capsys.readouterr().err


def test_loss_gap_and_attention_statistics() -> None:
    tracker = LossGapTracker()
    first = tracker.add_epoch(
        1, {"L_wsl": np.array([1.0, 2.0]), "L_a": np.array([1.0, 1.0]), "L_v": np.array([0.0, 0.0])}
    )
    assert first == {
        "epoch": 1,
        "steps": 2,
        "mse_wsl_a": 0.5,
        "cumulative_mse_wsl_a": 0.5,
        "mse_wsl_v": 2.5,
        "cumulative_mse_wsl_v": 2.5,
    }
    second = tracker.add_epoch(
        2, {"L_wsl": np.array([1.0, 1.0]), "L_a": np.array([1.0, 1.0]), "L_v": np.array([1.0, 1.0])}
    )
    assert (second["mse_wsl_a"], second["cumulative_mse_wsl_a"], second["cumulative_mse_wsl_v"]) == (
        0.0,
        0.25,
        1.25,
    )
    attention = np.zeros((2, 10, 2, 25))
    attention[:, :, 0, 0] = 1.0  # class 0: all audio
    attention[:, :, 0, 1:] = 0.25  # other classes: a quarter audio
    attention[:, :, 1] = 1.0 - attention[:, :, 0]
    stats = attention_distribution(attention, bins=4)
    assert stats["histogram"][0].tolist() == [0, 0, 0, 20] and stats["histogram"][1].tolist() == [0, 20, 0, 0]
    np.testing.assert_allclose(stats["mean_audio"][:2], [1.0, 0.25])
    np.testing.assert_allclose(stats["mean_visual"][:2], [0.0, 0.75])


def test_lazy_loading_with_a_worker_trains_the_same(splits: SyntheticSplits, tmp_path: Path) -> None:
    train(load_config(None, train_overrides(splits, tmp_path / "memory", epochs=1)))
    train(
        load_config(
            None, train_overrides(splits, tmp_path / "lazy", epochs=1, in_memory=False, num_workers=1)
        )
    )
    a = torch.load(tmp_path / "memory" / "last.pt", weights_only=True)["state_dict"]
    b = torch.load(tmp_path / "lazy" / "last.pt", weights_only=True)["state_dict"]
    for key, value in a.items():
        torch.testing.assert_close(value, b[key], rtol=0, atol=1e-6)
