"""``avvp estimate-noise``: JoMoLD's noise ratios on a hand-made case, end to end on a synthetic store with a
native checkpoint, where the target smoothing comes from, and bad input."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest
import torch
from official_helpers import original_noise_ratios
from train_helpers import TINY_MODEL, SyntheticSplits, make_splits, one_torch_thread  # noqa: F401

from avvp.cli import main
from avvp.data.dataset import SplitDataset
from avvp.data.labels import CLASSES, read_weak_labels
from avvp.models import ModelConfig, build_model
from avvp.training.checkpoints import (
    NATIVE_FORMAT,
    checkpoint_label_smoothing,
    native_payload,
    save_checkpoint,
)
from avvp.training.noise_estimation import estimate_noise, noise_table
from avvp.training.noise_ratios import read_noise_ratios


def _hand_made() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Four clips. Class 0: labelled everywhere, audio (0.1, 0.5, 0.9, 0.9) with mean 0.6, so only clip 0
    scores below 0.6 (1/6); visual (0.2, 0.2, 0.2, 1.0) with mean 0.4, scores 0.475 x3 and 2.375, so clips
    0-2 are below 1.8. Class 1: labelled in clips 0 and 1; audio (0.8, 0.2, 0.2, 0) with mean 0.3 scores
    2.67 and 0.67 (none noisy; clip 3 scores 0 but has no label); visual (0.9, 0.1, 0, 0) with mean 0.25
    scores 3.42 and 0.38 (clip 1 noisy). Class 2 and the rest: no label, all probabilities 0."""
    audio, visual, labels = np.zeros((4, 25)), np.zeros((4, 25)), np.zeros((4, 25))
    audio[:, 0], visual[:, 0], labels[:, 0] = (0.1, 0.5, 0.9, 0.9), (0.2, 0.2, 0.2, 1.0), 1
    audio[:, 1], visual[:, 1], labels[:2, 1] = (0.8, 0.2, 0.2, 0.0), (0.9, 0.1, 0.0, 0.0), 1
    return audio.astype(np.float32), visual.astype(np.float32), labels.astype(np.float32)


def test_hand_made_ratios_match_the_original_loop(caplog) -> None:
    audio, visual, labels = _hand_made()
    with caplog.at_level(logging.WARNING):
        estimate = estimate_noise(audio, visual, labels)
    assert "23 class(es) have no label in the split, ratio 0: Cheering, Dog" in caplog.text
    expected_audio, expected_visual = np.zeros(25), np.zeros(25)
    expected_audio[0], expected_visual[:2] = 0.25, (0.75, 0.5)
    np.testing.assert_allclose(estimate.ratios.audio, expected_audio, atol=1e-12)
    np.testing.assert_allclose(estimate.ratios.visual, expected_visual, atol=1e-12)
    loop_audio, loop_visual = original_noise_ratios(audio, visual, labels)
    np.testing.assert_allclose(estimate.ratios.audio, loop_audio, atol=1e-12)
    np.testing.assert_allclose(estimate.ratios.visual, loop_visual, atol=1e-12)
    rows = noise_table(estimate)
    assert rows[0] == {
        "class": CLASSES[0], "labels": 4, "noisy_audio": 1, "audio_ratio": 0.25, "mean_audio_prob": pytest.approx(0.6),
        "noisy_visual": 3, "visual_ratio": 0.75, "mean_visual_prob": pytest.approx(0.4),
    }  # fmt: skip
    assert rows[1]["noisy_visual"] == 1 and rows[2]["labels"] == 0


def test_thresholds_and_smoothing_change_the_count() -> None:
    audio, visual, labels = _hand_made()
    # class 0 audio scores (1/6, 5/6, 3/2, 3/2): a threshold of 0.9 takes clip 1 too
    loose = estimate_noise(audio, visual, labels, thresholds={"audio": 0.9, "visual": 1.8})
    assert loose.ratios.audio[0] == 0.5
    # delta 0.5: P_a = 0.75 for a label, class 0 clip 1 scores 5/6 x 0.75 = 0.625, still not noisy
    smoothed = estimate_noise(audio, visual, labels, smoothing={"audio": 0.5, "visual": 0.1})
    assert smoothed.ratios.audio[0] == 0.25
    # delta 0.6: P_a = 0.7, clip 1 scores 0.583 < 0.6
    smoothed = estimate_noise(audio, visual, labels, smoothing={"audio": 0.6, "visual": 0.1})
    assert smoothed.ratios.audio[0] == 0.5


@pytest.fixture(scope="module")
def estimator(tmp_path_factory: pytest.TempPathFactory) -> tuple[SyntheticSplits, Path, torch.nn.Module]:
    """A tiny random parser saved as a native training-state file (with its config, as ``last.pt``)."""
    root = tmp_path_factory.mktemp("estimator")
    splits = make_splits(root / "data", num_train=12, num_val=2, seed=7)
    torch.manual_seed(0)
    model = build_model(ModelConfig(**TINY_MODEL, segment_dropout={"visual": 0.5})).eval()
    payload = native_payload(model, 1, {}, None, {"rule": "fused", "segment": 0.5, "video": 0.5})
    payload["config"] = {"loss": {"label_smoothing": {"variant": "LS-AV", "audio": 0.2, "visual": 0.3}}}
    save_checkpoint(root / "last.pt", payload)
    return splits, root / "last.pt", model


def _estimate_args(splits: SyntheticSplits, checkpoint: Path, output: Path, *extra: str) -> list[str]:
    return [
        "estimate-noise", "--checkpoint", str(checkpoint), "--features", str(splits.features),
        "--split-csv", str(splits.annotations_dir / "AVVP_train.csv"), "--output", str(output),
        "--device", "cpu", "--batch-size", "5", *extra,
    ]  # fmt: skip


def test_estimate_noise_end_to_end(estimator, tmp_path: Path, capsys) -> None:
    splits, checkpoint, model = estimator
    output = tmp_path / "out" / "ratios.npz"
    extra = ("--visual-smoothing", "0.1", "--audio-threshold", "0.97", "--visual-threshold", "1.0")
    assert main(_estimate_args(splits, checkpoint, output, *extra)) == 0
    labels = read_weak_labels(splits.annotations_dir / "AVVP_train.csv")
    dataset = SplitDataset({k: splits.features for k in model.feature_kinds}, labels.video_ids, labels.labels)
    with torch.no_grad():  # one batch, eval mode, without cross-modal attention
        output_direct = model(dataset[list(range(len(dataset)))].features, cross_modal=False)
    expected = estimate_noise(
        output_direct.audio_prob.numpy(),
        output_direct.visual_prob.numpy(),
        labels.labels,
        thresholds={"audio": 0.97, "visual": 1.0},
        smoothing={"audio": 0.2, "visual": 0.1},
    )
    ratios = read_noise_ratios(output)
    np.testing.assert_allclose(ratios.audio, expected.ratios.audio, atol=1e-6)
    np.testing.assert_allclose(ratios.visual, expected.ratios.visual, atol=1e-6)
    assert ((ratios.audio > 0) & (ratios.audio < 1)).any() and (
        (ratios.visual > 0) & (ratios.visual < 1)
    ).any()
    summary = json.loads(output.with_suffix(".json").read_text())
    assert summary["smoothing"] == {"audio": 0.2, "visual": 0.1}
    assert summary["smoothing_source"] == {"audio": "checkpoint config", "visual": "option"}
    assert summary["thresholds"] == {"audio": 0.97, "visual": 1.0} and summary["clips"] == 12
    assert [row["class"] for row in summary["classes"]] == list(CLASSES)
    printed = capsys.readouterr().out
    assert printed.splitlines()[0].split() == [
        "class",
        "labels",
        "audio",
        "noisy",
        "ratio",
        "visual",
        "noisy",
        "ratio",
    ]
    assert len(printed.splitlines()) == 26


def test_smoothing_comes_from_the_checkpoint_config_only_when_it_has_one() -> None:
    settings = {"variant": "LS-V", "audio": 0.2, "visual": 0.3}
    payload = {"format": NATIVE_FORMAT, "config": {"loss": {"label_smoothing": settings}}}
    assert checkpoint_label_smoothing(payload) == {"audio": 0.0, "visual": 0.3}
    assert checkpoint_label_smoothing({"format": NATIVE_FORMAT}) is None  # older files: no training config
    assert (
        checkpoint_label_smoothing({"model": {}, "config": {"loss": {"label_smoothing": settings}}}) is None
    )


def test_bad_input_is_a_one_line_error(estimator, tmp_path: Path, capsys) -> None:
    splits, checkpoint, _ = estimator
    cases = {
        "checkpoint not found": _estimate_args(splits, tmp_path / "absent.pt", tmp_path / "r.npz"),
        "give a file name ending in .npz": _estimate_args(splits, checkpoint, tmp_path / "r.json"),
        "this is a native avvp checkpoint; use --checkpoint-format native": _estimate_args(
            splits, checkpoint, tmp_path / "r.npz", "--checkpoint-format", "official-jomold"
        ),
    }
    for message, args in cases.items():
        assert main(args) == 2
        error = capsys.readouterr().err
        assert message in error and error.count("\n") == 1
    (tmp_path / "junk.pt").write_text("not a checkpoint")
    assert main(_estimate_args(splits, tmp_path / "junk.pt", tmp_path / "r.npz")) == 2
    error = capsys.readouterr().err
    assert "junk.pt: not a readable PyTorch checkpoint" in error and error.count("\n") == 1
    with pytest.raises(SystemExit):
        main(_estimate_args(splits, checkpoint, tmp_path / "r.npz", "--visual-threshold", "0"))
    assert not (tmp_path / "r.npz").exists()
