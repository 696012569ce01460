"""MA's label refinement: exchange partners, the removal rule on a hand-computed case, the refined-label file,
training on refined labels, and 'avvp refine-labels' end to end."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from train_helpers import make_splits, one_torch_thread, train_overrides  # noqa: F401

from avvp.cli import main
from avvp.data.dataset import Batch
from avvp.data.labels import CLASSES, WeakLabels, read_weak_labels
from avvp.errors import InputError
from avvp.training.config import load_config
from avvp.training.label_refinement import (
    RefinedLabelsProcedure,
    error_scales,
    exchange_partners,
    refine_labels,
)
from avvp.training.refined_labels import RefinedLabels, read_refined_labels, write_refined_labels
from avvp.training.trainer import train

CONFIGS = Path(__file__).resolve().parents[1] / "resources" / "configs"
C = len(CLASSES)


def test_exchange_partners_never_share_a_label() -> None:
    rng = np.random.default_rng(0)
    labels = np.zeros((300, C), dtype=bool)
    for row in labels:
        row[rng.choice(6, size=rng.integers(1, 4), replace=False)] = True  # 1-3 of 6 classes: many overlaps
    labels[7, :6] = True  # every class in use: no clip is disjoint from it
    partners = exchange_partners(labels, seed=3)
    assert partners[7] == -1
    paired = np.flatnonzero(partners >= 0)
    assert len(paired) == len(labels) - 1
    assert not (labels[paired] & labels[partners[paired]]).any()  # never a common class
    assert (partners[paired] != paired).all()
    assert np.array_equal(partners, exchange_partners(labels, seed=3))  # seeded
    assert not np.array_equal(partners, exchange_partners(labels, seed=4))
    # uniform among the candidates: clip 0 ({a}) draws among every clip without a
    candidates = np.flatnonzero(~labels[:, labels[0]].any(axis=1))
    draws = {int(exchange_partners(labels, seed=s)[0]) for s in range(200)}
    assert draws <= set(candidates.tolist()) and len(draws) > len(candidates) // 2


def test_error_scales_are_error_rates_over_the_largest() -> None:
    labels = np.zeros((4, C), dtype=bool)
    labels[:2, 0] = labels[0, 1] = True
    prob = np.zeros((4, C))
    prob[:, 0] = [0.9, 0.4, 0.6, 0.1]  # wrong on clips 1 (missed) and 2 (false positive): 2/4
    prob[:, 1] = [0.5, 0.0, 0.0, 0.0]  # 0.5 is not above 0.5: clip 0 missed, 1/4
    errors, scales = error_scales(prob, labels)
    assert errors[0] == 0.5 and errors[1] == 0.25 and errors[2:].sum() == 0
    assert scales[0] == 1.0 and scales[1] == 0.5
    assert not error_scales(np.zeros((2, C)), np.zeros((2, C), dtype=bool))[1].any()  # no error: 0, not NaN


def test_removal_rule_on_a_hand_computed_case() -> None:
    # three clips labelled with classes 0 and 1; class 0's audio error rate is twice class 1's
    labels = np.zeros((3, C), dtype=bool)
    labels[:, :2] = True
    original = {"audio": np.zeros((3, C)), "visual": np.zeros((3, C))}
    original["audio"][:, 0] = [0.9, 0.1, 0.1]  # audio errors: class 0 on 2 clips, class 1 on 1
    original["audio"][:, 1] = [0.9, 0.9, 0.1]  # -> s_a = (1, 0.5)
    original["visual"][:, :2] = 0.1  # visual errors: both classes on all 3 clips -> s_v = (1, 1)
    audio_exchanged = {"audio": np.full((3, C), 0.9), "visual": np.full((3, C), 0.9)}
    visual_exchanged = {"audio": np.full((3, C), 0.9), "visual": np.full((3, C), 0.9)}
    # audio labels (partner's visual track): clip 0's class 0 scores audio 0.4 and visual 0.3, both below
    # 0.5 x s_a = 0.5 -> removed; its class 1 scores 0.3 and 0.2, below 0.5 but not both below
    # 0.5 x 0.5 = 0.25 -> kept; clip 1's class 1 scores 0.2 and 0.1 -> removed
    visual_exchanged["audio"][0, :2] = [0.4, 0.3]
    visual_exchanged["visual"][0, :2] = [0.3, 0.2]
    visual_exchanged["audio"][1, 1], visual_exchanged["visual"][1, 1] = 0.2, 0.1
    # visual labels (partner's audio track, s_v = 1): clip 1 scores 0 everywhere -> both go; clip 2's class 0
    # has a low visual (0.3) but not a low audio score (0.6) -> kept, its class 1 (0.2, 0.4) would go, but
    # clip 2 has no partner, so it keeps every label
    audio_exchanged["visual"][1, :2] = audio_exchanged["audio"][1, :2] = 0.0
    audio_exchanged["visual"][2, :2] = [0.3, 0.2]
    audio_exchanged["audio"][2, :2] = [0.6, 0.4]
    refinement = refine_labels(
        labels, original, audio_exchanged, visual_exchanged, 0.5, has_partner=np.array([True, True, False])
    )
    expected = {m: np.zeros((3, C), dtype=bool) for m in ("audio", "visual")}
    expected["audio"][0, 0] = expected["audio"][1, 1] = True
    expected["visual"][1, :2] = True
    for modality in ("audio", "visual"):
        assert np.array_equal(refinement.removed[modality], expected[modality]), modality
    np.testing.assert_allclose(refinement.scales["audio"][:2], [1.0, 0.5])
    np.testing.assert_allclose(refinement.scales["visual"][:2], [1.0, 1.0])
    every_clip_paired = refine_labels(labels, original, audio_exchanged, visual_exchanged, 0.5)
    expected["visual"][2, 1] = True
    assert np.array_equal(every_clip_paired.removed["visual"], expected["visual"])


def _refined(ids: list[str], labels: np.ndarray) -> RefinedLabels:
    audio = np.zeros_like(labels)
    visual = np.zeros_like(labels)
    audio[0] = labels[0]
    visual[1] = labels[1]
    return RefinedLabels(
        ids, labels, {"audio": audio, "visual": visual}, [ids[-1], ids[0]] + [""] * (len(ids) - 2)
    )


def test_refined_label_file_round_trip_and_bad_files(tmp_path: Path) -> None:
    labels = np.zeros((3, C), dtype=bool)
    labels[:, 2] = True
    refined = _refined(["a", "b", "c"], labels)
    write_refined_labels(tmp_path / "r.npz", refined)
    read = read_refined_labels(tmp_path / "r.npz")
    assert read.video_ids == ["a", "b", "c"] and read.partners == ["c", "a", ""]
    assert np.array_equal(read.removed["audio"], refined.removed["audio"])
    (tmp_path / "text.npz").write_text("not numpy")
    with pytest.raises(InputError, match=r"not a readable \.npz refined-label file"):
        read_refined_labels(tmp_path / "text.npz")
    np.savez(tmp_path / "partial.npz", video_id=np.array(["a"]))
    with pytest.raises(InputError, match="no labels, audio_removed, visual_removed, partner array"):
        read_refined_labels(tmp_path / "partial.npz")
    foreign = _refined(["a", "b", "c"], labels)
    foreign.removed["visual"][2, 5] = True  # a label clip c does not have
    write_refined_labels(tmp_path / "foreign.npz", foreign)
    with pytest.raises(InputError, match="removes labels the clips do not have"):
        read_refined_labels(tmp_path / "foreign.npz")


def test_the_procedure_removes_each_clips_refined_labels(tmp_path: Path) -> None:
    labels = np.zeros((3, C), dtype=bool)
    labels[:, 2] = labels[1, 4] = True
    write_refined_labels(tmp_path / "r.npz", _refined(["a", "b", "c"], labels))
    split = WeakLabels(["c", "b", "a"], labels[[2, 1, 0]].astype(float))  # another order than the file
    procedure = RefinedLabelsProcedure(tmp_path / "r.npz", split, torch.device("cpu"))
    batch = Batch(torch.tensor([2, 0]), ["a", "c"], {}, torch.as_tensor(split.labels[[2, 0]]).float())
    refined, monitors = procedure(None, batch, 0, 1, False)
    assert monitors == {} and not batch.dropped  # the batch given is not changed
    assert refined.dropped["audio"].tolist() == [labels[0].tolist(), [False] * C]  # a's audio labels
    assert not refined.dropped["visual"].any()
    with pytest.raises(InputError, match=r"1 clip\(s\) of the training split have no refined labels: d"):
        RefinedLabelsProcedure(tmp_path / "r.npz", WeakLabels(["a", "d"], labels[:2]), torch.device("cpu"))
    other = labels[:1].copy()
    other[0, 7] = True
    with pytest.raises(
        InputError, match=r"the weak labels of 1 clip\(s\) differ from the training split's: a"
    ):
        RefinedLabelsProcedure(tmp_path / "r.npz", WeakLabels(["a"], other), torch.device("cpu"))


@pytest.fixture(scope="module")
def splits(tmp_path_factory):
    return make_splits(tmp_path_factory.mktemp("data"), num_train=32, num_val=12)


def test_refine_labels_command_and_retraining(splits, tmp_path: Path) -> None:
    base = load_config(CONFIGS / "ma.yaml", train_overrides(splits, tmp_path / "base", epochs=3))
    assert base.loss.contrastive.form == "cross_entropy" and base.loss.contrastive.visual == "projected"
    train(base)
    output = tmp_path / "refined.npz"
    args = ["refine-labels", "--checkpoint", str(tmp_path / "base" / "best.pt"), "--features", str(splits.features),
            "--split-csv", str(splits.annotations_dir / "AVVP_train.csv"), "--output", str(output)]  # fmt: skip
    assert main([*args, "--seed", "1"]) == 0
    refined = read_refined_labels(output)
    weak = read_weak_labels(splits.annotations_dir / "AVVP_train.csv")
    assert refined.video_ids == weak.video_ids and np.array_equal(refined.labels, weak.labels > 0)
    rows = {v: i for i, v in enumerate(refined.video_ids)}
    for i, partner in enumerate(refined.partners):  # partners share no label
        assert not (refined.labels[i] & refined.labels[rows[partner]]).any()
    summary = json.loads(output.with_suffix(".json").read_text())
    assert summary["removed"] == {m: int(refined.removed[m].sum()) for m in ("audio", "visual")}
    assert sum(row["removed_audio"] for row in summary["classes"]) == summary["removed"]["audio"]
    assert summary["seed"] == 1 and summary["threshold"] == 0.5
    assert main([*args[:-1], str(tmp_path / "refined.txt")]) == 2  # not .npz
    retrain = load_config(
        CONFIGS / "ma.yaml", train_overrides(splits, tmp_path / "ma", epochs=1, refined_labels=str(output))
    )
    assert train(retrain)["epoch"] == 1
