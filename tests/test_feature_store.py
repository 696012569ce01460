"""The HDF5 feature store: round trip, attributes, missing ids, atomic writes, merging."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from avvp.data.features import (
    FeatureStore,
    FeatureStoreError,
    FeatureStoreWriter,
    MissingFeaturesError,
    merge_stores,
)

IDS = [f"abcdefghij{i}_0_10" for i in range(4)]


def features(kind_shape: tuple[int, int], seed: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(kind_shape).astype(np.float32)


def write_shard(
    path: Path, ids: list[str], weights: str = "random-init(seed=0)", dtype: str = "float32"
) -> None:
    with FeatureStoreWriter(path, dtype=dtype) as store:
        store.set_attrs("vggish", {"extractor": "vggish", "weights": weights, "sample_rate": 16000})
        for i, vid in enumerate(ids):
            store.add("vggish", vid, features((10, 128), i))
            if i % 2 == 0:
                store.add("r2plus1d", vid, features((10, 512), 100 + i))


def test_round_trip_by_id_and_attrs(tmp_path: Path):
    path = tmp_path / "shard.h5"
    write_shard(path, IDS)
    with FeatureStore(path) as store:
        assert sorted(store.kinds) == ["r2plus1d", "vggish"]
        assert store.video_ids("vggish") == IDS
        assert store.attrs("vggish") == {
            "extractor": "vggish",
            "weights": "random-init(seed=0)",
            "sample_rate": 16000,
        }
        got = store.read("vggish", [IDS[2], IDS[0], IDS[2]])
        assert got.shape == (3, 10, 128) and got.dtype == np.float32
        assert np.array_equal(got[0], features((10, 128), 2)) and np.array_equal(
            got[1], features((10, 128), 0)
        )
        assert np.array_equal(got[2], got[0])
        assert store.missing("r2plus1d", IDS) == [IDS[1], IDS[3]]
        with pytest.raises(MissingFeaturesError, match=r"shard.h5: 2 clip\(s\) have no 'r2plus1d' features"):
            store.read("r2plus1d", IDS)
        with pytest.raises(FeatureStoreError, match="no 'resnet152' features"):
            store.read("resnet152", IDS)


def test_float16_storage(tmp_path: Path):
    path = tmp_path / "half.h5"
    write_shard(path, IDS[:1], dtype="float16")
    with FeatureStore(path) as store:
        assert store.dataset("vggish").dtype == np.float16
        np.testing.assert_allclose(
            store.read("vggish", IDS[:1])[0], features((10, 128), 0), rtol=1e-3, atol=1e-3
        )


def test_writer_rejects_bad_features_and_leaves_no_file(tmp_path: Path):
    path = tmp_path / "bad.h5"
    bad = features((10, 128), 0)
    bad[3, 5] = np.nan
    with (
        pytest.raises(FeatureStoreError, match=r"vggish' of x_0_10: 1 non-finite"),
        FeatureStoreWriter(path) as store,
    ):
        store.add("vggish", IDS[0], features((10, 128), 0))
        store.add("vggish", "x_0_10", bad)
    assert not path.exists() and list(tmp_path.iterdir()) == []
    with (
        pytest.raises(FeatureStoreError, match=r"shape \(10, 127\), expected \(10, 128\)"),
        FeatureStoreWriter(path) as store,
    ):
        store.add("vggish", IDS[0], np.zeros((10, 127), np.float32))


def test_interrupted_write_keeps_the_previous_file(tmp_path: Path):
    path = tmp_path / "shard.h5"
    write_shard(path, IDS[:2])
    with pytest.raises(KeyboardInterrupt), FeatureStoreWriter(path) as store:
        store.add("vggish", IDS[3], features((10, 128), 9))
        raise KeyboardInterrupt
    with FeatureStore(path) as store:
        assert store.video_ids("vggish") == IDS[:2]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["shard.h5"]


def test_merge_shards(tmp_path: Path):
    write_shard(tmp_path / "a.h5", IDS[:2])
    write_shard(tmp_path / "b.h5", IDS[2:])
    counts = merge_stores([tmp_path / "a.h5", tmp_path / "b.h5"], tmp_path / "all.h5")
    assert counts == {"vggish": 4, "r2plus1d": 2}
    with FeatureStore(tmp_path / "all.h5") as store:
        assert store.video_ids("vggish") == IDS
        assert np.array_equal(store.read("vggish", [IDS[3]])[0], features((10, 128), 1))  # 2nd row of shard b
