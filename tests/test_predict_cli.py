"""``avvp predict``: output files and shapes, acceptance by ``avvp evaluate``, bad input."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from train_helpers import SyntheticSplits, make_splits, one_torch_thread, train_overrides  # noqa: F401

from avvp.cli import main
from avvp.data.features import FeatureStore
from avvp.data.labels import read_dense_labels
from avvp.feature_identity import record_standardization
from avvp.inference import Probabilities, decide
from avvp.preparation.feature_scaling import standardize_store
from avvp.training.checkpoints import checkpoint_decision, checkpoint_features
from avvp.training.config import load_config
from avvp.training.trainer import train


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[SyntheticSplits, Path]:
    root = tmp_path_factory.mktemp("predict")
    splits = make_splits(root, num_train=16, num_val=10, seed=3)
    train(load_config(None, train_overrides(splits, root / "run", epochs=3)))
    return splits, root / "run"


@pytest.fixture(scope="module")
def standardized(
    trained: tuple[SyntheticSplits, Path], tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, Path]:
    """A store standardised with the training clips' statistics and a run trained on it (other thresholds)."""
    splits, _ = trained
    root = tmp_path_factory.mktemp("standardized")
    standardize_store(splits.features, splits.train_ids, root / "z.h5")
    overrides = {"features": str(root / "z.h5"), "thresholds.segment": 0.3, "thresholds.video": 0.2}
    train(load_config(None, train_overrides(splits, root / "run", epochs=1, **overrides)))
    return root / "z.h5", root / "run"


def predict_args(splits: SyntheticSplits, checkpoint: Path, output: Path, *extra: str) -> list[str]:
    return [
        "predict", "--checkpoint", str(checkpoint), "--features", str(splits.features),
        "--split-csv", str(splits.annotations_dir / "AVVP_val_pd.csv"), "--output-dir", str(output),
        "--device", "cpu", *extra,
    ]  # fmt: skip


def test_predict_writes_files_that_evaluate_accepts(trained, tmp_path: Path) -> None:
    splits, run = trained
    out = tmp_path / "pred"
    assert main(predict_args(splits, run / "best.pt", out)) == 0
    with h5py.File(out / "probabilities.h5") as handle:
        assert [v.decode() for v in handle["video_id"][:]] == splits.val_ids
        n = len(splits.val_ids)
        assert (
            handle["global_prob"].shape
            == handle["audio_prob"].shape
            == handle["visual_prob"].shape
            == (n, 25)
        )
        assert handle["frame_prob"].shape == (n, 10, 2, 25)
        frame_prob = handle["frame_prob"][:]
        global_prob = handle["global_prob"][:]
    assert ((frame_prob >= 0) & (frame_prob <= 1)).all()
    metrics_path = tmp_path / "metrics.json"
    ann = splits.annotations_dir
    code = main(
        ["evaluate", "--split-csv", str(ann / "AVVP_val_pd.csv"), "--gt-audio", str(ann / "AVVP_eval_audio.csv"),
         "--gt-visual", str(ann / "AVVP_eval_visual.csv"), "--pred-audio", str(out / "pred_audio.csv"),
         "--pred-visual", str(out / "pred_visual.csv"), "--output", str(metrics_path)]
    )  # fmt: skip
    assert code == 0
    # the event files say exactly what the decision rule says about the saved probabilities
    probabilities = Probabilities(splits.val_ids, global_prob, None, None, frame_prob, None)
    audio, visual = decide(probabilities)
    np.testing.assert_array_equal(read_dense_labels(out / "pred_audio.csv", splits.val_ids), audio)
    np.testing.assert_array_equal(read_dense_labels(out / "pred_visual.csv", splits.val_ids), visual)
    # and the best checkpoint scores on val what training recorded for it
    scored = json.loads(metrics_path.read_text())
    recorded = json.loads((run / "val_metrics.json").read_text())
    assert scored["segment"]["type"] == pytest.approx(recorded["segment"]["type"])
    assert json.loads((out / "attention.json").read_text())["split"] == "AVVP_val_pd"


def test_lazy_loading_predicts_the_same(trained, tmp_path: Path) -> None:
    splits, run = trained
    assert main(predict_args(splits, run / "best.pt", tmp_path / "memory")) == 0
    assert main(predict_args(splits, run / "best.pt", tmp_path / "lazy", "--lazy", "--batch-size", "3")) == 0
    with (
        h5py.File(tmp_path / "memory" / "probabilities.h5") as a,
        h5py.File(tmp_path / "lazy" / "probabilities.h5") as b,
    ):
        np.testing.assert_allclose(a["frame_prob"][:], b["frame_prob"][:], atol=1e-6)


def test_thresholds_change_the_decisions(trained, tmp_path: Path) -> None:
    splits, run = trained
    assert (
        main(
            predict_args(
                splits,
                run / "best.pt",
                tmp_path / "all",
                "--segment-threshold",
                "0.01",
                "--video-threshold",
                "0",
            )
        )
        == 0
    )
    rows = (tmp_path / "all" / "pred_audio.csv").read_text().splitlines()[1:]
    # every class of every clip is one 0-10 event when nothing is filtered
    assert len(rows) == 25 * len(splits.val_ids) and all("\t0\t10\t" in row for row in rows)


def test_checkpoints_record_the_features_and_the_decision_rule(trained) -> None:
    _, run = trained
    for name in ("best.pt", "last.pt"):
        features = checkpoint_features(run / name)
        assert sorted(features) == ["r2plus1d", "resnet152", "vggish"]
        assert features["vggish"] == {
            "extractor": "synthetic",
            "weights": "random-init(seed=3)",
            "standardization": None,
        }
        assert checkpoint_decision(run / name) == {"rule": "fused", "segment": 0.5, "video": 0.5}
    older = {k: v for k, v in torch.load(run / "best.pt", weights_only=True).items() if k != "features"}
    assert checkpoint_features(older) is None


def test_standardised_run_records_its_statistics(trained, standardized, tmp_path: Path) -> None:
    splits, _ = trained
    store, run = standardized
    checkpoint = torch.load(run / "best.pt", weights_only=True)
    assert checkpoint_decision(checkpoint) == {"rule": "fused", "segment": 0.3, "video": 0.2}
    record = checkpoint_features(checkpoint)["resnet152"]["standardization"]
    assert isinstance(record["mean"], torch.Tensor) and record["mean"].shape == (2048,)
    # the recorded statistics scale raw clips exactly as the store the model was trained on
    with FeatureStore(splits.features) as raw, FeatureStore(store) as scaled:
        rows = raw.read("resnet152", splits.val_ids)
        expected = scaled.read("resnet152", splits.val_ids)
    np.testing.assert_array_equal(record_standardization(record).apply(rows), expected)

    args = predict_args(splits, run / "best.pt", tmp_path / "pred")
    args[args.index("--features") + 1] = str(store)
    assert main(args) == 0


def test_other_weights_are_used_with_a_warning_when_allowed(trained, tmp_path: Path, caplog) -> None:
    splits, run = trained
    other = tmp_path / "other.h5"
    shutil.copy(splits.features, other)
    with h5py.File(other, "a") as handle:
        handle["resnet152"].attrs["weights"] = json.dumps("torchvision:ResNet152_Weights.IMAGENET1K_V1")
        handle["vggish"].attrs["versions"] = json.dumps({"numpy": "0.0"})  # volatile: not a difference
    args = predict_args(splits, run / "best.pt", tmp_path / "pred")
    args[args.index("--features") + 1] = str(other)
    with caplog.at_level(logging.WARNING):
        assert main([*args, "--allow-feature-mismatch"]) == 0
    assert (
        "'torchvision:ResNet152_Weights.IMAGENET1K_V1' in" in caplog.text
        and "using them anyway" in caplog.text
    )
    assert (tmp_path / "pred" / "pred_audio.csv").is_file()
