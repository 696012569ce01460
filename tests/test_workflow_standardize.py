"""Standardising random-init features with statistics of the training clips only."""

from __future__ import annotations

import numpy as np
import pytest

from avvp.cli import main
from avvp.data.features import FeatureStore, FeatureStoreError, FeatureStoreWriter


def test_standardize_uses_training_statistics_and_keeps_identity(tmp_path):
    rng = np.random.default_rng(0)
    train = [f"trainclip{i:02d}_0_10" for i in range(6)]
    test = ["testclip000_0_10"]
    raw = {vid: 1e4 + 5e3 * rng.standard_normal((10, 128)) for vid in [*train, *test]}
    with FeatureStoreWriter(tmp_path / "raw.h5") as store:
        store.set_attrs("vggish", {"extractor": "vggish", "weights": "random-init(seed=0)"})
        for vid, features in raw.items():
            store.add("vggish", vid, features.astype(np.float32))
    split = tmp_path / "train.csv"
    split.write_text("filename\tevent_labels\n" + "".join(f"{v}\tDog\n" for v in train))
    argv = [
        "standardize-features",
        "--input",
        str(tmp_path / "raw.h5"),
        "--split-csv",
        str(split),
        "--output",
        str(tmp_path / "z.h5"),
    ]
    assert main(argv) == 0
    with FeatureStore(tmp_path / "z.h5") as store:
        scaled = store.read("vggish", train)
        assert np.allclose(scaled.reshape(-1, 128).mean(0), 0, atol=1e-3)
        assert np.allclose(scaled.reshape(-1, 128).std(0), 1, atol=1e-3)
        stacked = np.concatenate([raw[v] for v in train])
        expected = (raw[test[0]] - stacked.mean(0)) / stacked.std(0)
        assert np.allclose(store.read("vggish", test)[0], expected, atol=1e-3)
        attrs = store.attrs("vggish")
        assert attrs["weights"] == "random-init(seed=0)" and attrs["standardized"]["reference_clips"] == 6
        # the statistics are kept, and applying them to raw rows gives the stored rows exactly
        standardization = store.standardization("vggish")
        with FeatureStore(tmp_path / "raw.h5") as source:
            assert source.standardization("vggish") is None
            rows = source.read("vggish", [*test, *train])
        stored = rows[1:].astype(np.float64).reshape(-1, 128)
        np.testing.assert_allclose(standardization.mean, stored.mean(0), rtol=1e-12)
        np.testing.assert_allclose(standardization.std, stored.std(0), rtol=1e-9)
        assert standardization.mean.dtype == np.float64 and standardization.epsilon == 1e-6
        np.testing.assert_array_equal(standardization.apply(rows), store.read("vggish", [*test, *train]))


def test_standardised_store_without_statistics_is_refused(tmp_path):
    with FeatureStoreWriter(tmp_path / "old.h5") as store:
        store.set_attrs("vggish", {"weights": "x", "standardized": {"reference_clips": 1, "epsilon": 1e-6}})
        store.add("vggish", "aaaaaaaaaaa_0_10", np.zeros((10, 128), dtype=np.float32))
    with (
        FeatureStore(tmp_path / "old.h5") as store,
        pytest.raises(FeatureStoreError, match="statistics are not stored"),
    ):
        store.standardization("vggish")
