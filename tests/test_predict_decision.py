"""``avvp predict`` decides with the checkpoint's rule and thresholds unless options say otherwise, and
records what it used in ``decision.json``."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from train_helpers import TINY_MODEL, SyntheticSplits, make_splits, one_torch_thread  # noqa: F401

from avvp.cli import main
from avvp.evaluation.files import read_predictions
from avvp.inference import ARRAYS, Probabilities, decide
from avvp.models import ModelConfig, build_model
from avvp.training.checkpoints import native_payload, save_checkpoint


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory: pytest.TempPathFactory) -> tuple[SyntheticSplits, Path, Path]:
    """A tiny random parser saved twice: recording the modality rule at 0.45 / 0.55, and recording no rule."""
    root = tmp_path_factory.mktemp("decision")
    splits = make_splits(root / "data", num_train=2, num_val=12, seed=11)
    torch.manual_seed(3)
    model = build_model(ModelConfig(**TINY_MODEL))
    payload = native_payload(model, 1, {}, None, {"rule": "modality", "segment": 0.45, "video": 0.55})
    save_checkpoint(root / "modality.pt", payload)
    save_checkpoint(root / "unrecorded.pt", {k: v for k, v in payload.items() if k != "decision"})
    return splits, root / "modality.pt", root / "unrecorded.pt"


def _predict(splits: SyntheticSplits, checkpoint: Path, output: Path, *extra: str) -> dict[str, object]:
    code = main(
        ["predict", "--checkpoint", str(checkpoint), "--features", str(splits.features), "--split-csv",
         str(splits.annotations_dir / "AVVP_val_pd.csv"), "--output-dir", str(output), "--device", "cpu", *extra]
    )  # fmt: skip
    assert code == 0
    return json.loads((output / "decision.json").read_text())


def _decided_as(splits: SyntheticSplits, output: Path, segment: float, video: float, rule: str) -> bool:
    """Whether the event files of ``output`` are its probabilities decided under ``rule`` and thresholds."""
    with h5py.File(output / "probabilities.h5") as handle:
        probabilities = Probabilities(splits.val_ids, **{name: handle[name][:] for name in ARRAYS})
    expected = decide(probabilities, segment, video, rule)
    written = [read_predictions(output / f"pred_{m}.csv", splits.val_ids) for m in ("audio", "visual")]
    return all(np.array_equal(w, e) for w, e in zip(written, expected, strict=True))


def test_the_recorded_rule_and_thresholds_are_the_default(checkpoints, tmp_path: Path) -> None:
    splits, recorded, _ = checkpoints
    decision = _predict(splits, recorded, tmp_path)
    assert {k: decision[k] for k in ("rule", "segment", "video", "cross_modal")} == {
        "rule": "modality", "segment": 0.45, "video": 0.55, "cross_modal": True,
    }  # fmt: skip
    assert decision["source"] == {"rule": "checkpoint", "segment": "checkpoint", "video": "checkpoint"}
    assert _decided_as(splits, tmp_path, 0.45, 0.55, "modality")
    assert not _decided_as(splits, tmp_path, 0.45, 0.55, "fused")  # the two rules differ on these clips


def test_options_override_the_record(checkpoints, tmp_path: Path) -> None:
    splits, recorded, _ = checkpoints
    decision = _predict(splits, recorded, tmp_path, "--decision-rule", "fused", "--video-threshold", "0.5")
    assert (decision["rule"], decision["segment"], decision["video"]) == ("fused", 0.45, 0.5)
    assert decision["source"] == {"rule": "option", "segment": "checkpoint", "video": "option"}
    assert _decided_as(splits, tmp_path, 0.45, 0.5, "fused")
    assert not _decided_as(splits, tmp_path, 0.45, 0.5, "modality")


def test_a_native_file_without_a_record_decides_fused(checkpoints, tmp_path: Path) -> None:
    splits, _, unrecorded = checkpoints
    decision = _predict(splits, unrecorded, tmp_path, "--without-cross-modal")
    assert (decision["rule"], decision["segment"], decision["video"]) == ("fused", 0.5, 0.5)
    assert decision["source"]["rule"] == "native default" and decision["cross_modal"] is False
    assert _decided_as(splits, tmp_path, 0.5, 0.5, "fused")
