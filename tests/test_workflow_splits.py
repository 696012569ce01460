"""Later stages run on the clips that have features; the coverage summary says how many are missing."""

from __future__ import annotations

import json

from workflow_helpers import write_store

from avvp.cli import main
from avvp.data.labels import read_weak_labels


def test_filter_splits_keeps_clips_with_features_and_counts_the_rest(tmp_path):
    ann = tmp_path / "ann"
    ann.mkdir()
    rows = {
        "AVVP_train.csv": [("aaaaaaaaaaa_0_10", "Dog,Speech"), ("bbbbbbbbbbb_0_10", "Cat")],
        "AVVP_val_pd.csv": [("ccccccccccc_0_10", "Car")],
        "AVVP_test_pd.csv": [("ddddddddddd_0_10", "Dog"), ("eeeeeeeeeee_0_10", "Cat")],
    }
    for name, content in rows.items():
        (ann / name).write_text(
            "filename\tevent_labels\n" + "".join(f"{v}\t{labels}\n" for v, labels in content)
        )
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
