"""Later stages run on the clips that have features; the coverage summary says how many are missing."""

from __future__ import annotations

import json

import numpy as np
from workflow_helpers import write_store

from avvp.cli import main
from avvp.data.labels import CLASSES, read_weak_labels
from avvp.data.pseudo_labels import write_pseudo_labels

ROWS = {
    "AVVP_train.csv": [("aaaaaaaaaaa_0_10", "Dog,Speech"), ("bbbbbbbbbbb_0_10", "Cat")],
    "AVVP_val_pd.csv": [("ccccccccccc_0_10", "Car")],
    "AVVP_test_pd.csv": [("ddddddddddd_0_10", "Dog"), ("eeeeeeeeeee_0_10", "Cat")],
}


def _annotations(tmp_path):
    ann = tmp_path / "ann"
    ann.mkdir()
    for name, content in ROWS.items():
        (ann / name).write_text(
            "filename\tevent_labels\n" + "".join(f"{v}\t{labels}\n" for v, labels in content)
        )
    return ann


def test_filter_splits_keeps_clips_with_features_and_counts_the_rest(tmp_path):
    ann = _annotations(tmp_path)
    write_store(tmp_path / "f.h5", ["aaaaaaaaaaa_0_10", "ccccccccccc_0_10", "eeeeeeeeeee_0_10"])
    argv = [
        "filter-splits",
        "--features",
        str(tmp_path / "f.h5"),
        "--annotations-dir",
        str(ann),
        "--output-dir",
        str(tmp_path / "out"),
    ]
    assert main(argv) == 0
    train = read_weak_labels(tmp_path / "out" / "AVVP_train.csv")
    assert train.video_ids == ["aaaaaaaaaaa_0_10"]
    assert (train.labels == read_weak_labels(ann / "AVVP_train.csv").labels[:1]).all()
    assert read_weak_labels(tmp_path / "out" / "AVVP_test_pd.csv").video_ids == ["eeeeeeeeeee_0_10"]
    coverage = json.loads((tmp_path / "out" / "coverage.json").read_text())["splits"]
    assert coverage["train"] == {
        "total": 2,
        "available": 1,
        "missing": 1,
        "missing_clips": ["bbbbbbbbbbb_0_10"],
    }
    assert coverage["val"]["missing"] == 0 and coverage["test"]["missing_clips"] == ["ddddddddddd_0_10"]


def test_filter_splits_keeps_only_clips_the_teacher_has_too(tmp_path):
    """A clip the teacher's store or its pseudo-labels lack would stop the experiments that read them: every
    experiment trains and is scored on the clips all of them have."""
    ann = _annotations(tmp_path)
    everything = [vid for rows in ROWS.values() for vid, _ in rows]
    write_store(tmp_path / "model.h5", everything)
    write_store(tmp_path / "teacher.h5", [vid for vid in everything if vid != "bbbbbbbbbbb_0_10"])
    kept = [vid for vid in everything if vid != "eeeeeeeeeee_0_10"]
    labels = np.zeros((len(kept), 10, len(CLASSES)), dtype=np.float32)
    write_pseudo_labels(tmp_path / "pseudo.h5", kept, labels, labels, CLASSES, {"teacher": "test"})
    argv = ["filter-splits", "--features", str(tmp_path / "model.h5"), str(tmp_path / "teacher.h5")]
    argv += ["--pseudo-labels", str(tmp_path / "pseudo.h5"), "--annotations-dir", str(ann)]
    assert main([*argv, "--output-dir", str(tmp_path / "out")]) == 0
    assert read_weak_labels(tmp_path / "out" / "AVVP_train.csv").video_ids == ["aaaaaaaaaaa_0_10"]
    assert read_weak_labels(tmp_path / "out" / "AVVP_test_pd.csv").video_ids == ["ddddddddddd_0_10"]
    coverage = json.loads((tmp_path / "out" / "coverage.json").read_text())
    assert coverage["pseudo_labels"] == [str(tmp_path / "pseudo.h5")] and len(coverage["kinds"]) == 2
    assert coverage["splits"]["train"]["missing_clips"] == ["bbbbbbbbbbb_0_10"]
