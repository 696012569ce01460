"""The pseudo-label file: round trip, atomic write, and refusals that name the file."""

import h5py
import numpy as np
import pytest

from avvp.data.labels import CLASSES
from avvp.data.pseudo_labels import PseudoLabelError, PseudoLabels, write_pseudo_labels

IDS = ["aaaaaaaaaaa_0_10", "bbbbbbbbbbb_5_15", "ccccccccccc_1_11"]


def _labels(seed: int) -> np.ndarray:
    return (np.random.default_rng(seed).random((len(IDS), 10, len(CLASSES))) > 0.7).astype(np.float32)


def test_round_trip_in_any_order_with_repeats(tmp_path):
    path = tmp_path / "pseudo.h5"
    audio, visual = _labels(0), _labels(1)
    write_pseudo_labels(path, IDS, audio, visual, CLASSES, {"visual": "clip", "threshold": 0.5})
    with PseudoLabels(path) as labels:
        assert labels.classes == list(CLASSES) and labels.teacher["visual"] == "clip"
        got_audio, got_visual = labels.read([IDS[2], IDS[0], IDS[2]])
        np.testing.assert_array_equal(got_audio, audio[[2, 0, 2]])
        np.testing.assert_array_equal(got_visual, visual[[2, 0, 2]])
        assert labels.missing(["ddddddddddd_0_10", IDS[1]]) == ["ddddddddddd_0_10"]
        with pytest.raises(PseudoLabelError, match=r"pseudo\.h5: 1 clip\(s\) have no pseudo-labels"):
            labels.read(["ddddddddddd_0_10"])


def test_refuses_values_outside_unit_interval_and_leaves_no_file(tmp_path):
    path = tmp_path / "pseudo.h5"
    audio = _labels(0)
    audio[1, 3, 4] = np.nan
    with pytest.raises(PseudoLabelError, match=f"{IDS[1]} are not all within"):
        write_pseudo_labels(path, IDS, audio, _labels(1), CLASSES, {})
    assert list(tmp_path.iterdir()) == []


def test_refuses_other_files_and_bad_layout(tmp_path):
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as handle:
        handle["audio"] = np.zeros((1, 10, 25))
    with pytest.raises(PseudoLabelError, match=r"other\.h5: not a pseudo-label file"):
        PseudoLabels(other)
    path = tmp_path / "pseudo.h5"
    write_pseudo_labels(path, IDS, _labels(0), _labels(1), CLASSES, {})
    with h5py.File(path, "a") as handle:
        del handle["visual"]
        handle["visual"] = np.zeros((2, 10, 25), np.float32)
    with pytest.raises(PseudoLabelError, match="do not agree"):
        PseudoLabels(path)
