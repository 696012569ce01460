"""The identity of a feature kind: which attributes count, how two identities are compared."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch

from avvp.data.features import FeatureStore, FeatureStoreWriter, Standardization
from avvp.errors import InputError
from avvp.feature_identity import (
    check_feature_identity,
    identity_differences,
    record_standardization,
    standardization_record,
    store_identity,
)
from extractors.identity import WeightsIdentity

ATTRS = {
    "extractor": "resnet152",
    "weights": "random-init(seed=0)",
    "fps": 8,
    "crop": 224,
    "mean": [0.485, 0.456, 0.406],
    "versions": {"torch": "2.0"},
    "source": "feats/res152",
}
STATISTICS = Standardization(np.arange(2048, dtype=np.float64), np.full(2048, 2.0), 1e-6)


def write_store(path, standardization: Standardization | None = None) -> None:
    with FeatureStoreWriter(path) as store:
        store.set_attrs("resnet152", ATTRS)
        if standardization is not None:
            store.set_standardization("resnet152", standardization, reference_clips=3)
        store.add("resnet152", "aaaaaaaaaaa_0_10", np.zeros((80, 2048), dtype=np.float32))


def test_store_identity_keeps_what_decides_the_values(tmp_path) -> None:
    write_store(tmp_path / "z.h5", STATISTICS)
    with FeatureStore(tmp_path / "z.h5") as store:
        identity = store_identity(store, "resnet152")
    record = identity.pop("standardization")
    assert identity == {k: v for k, v in ATTRS.items() if k not in ("versions", "source")}
    assert record["mean"].dtype == torch.float64 and record["epsilon"] == 1e-6
    restored = record_standardization(record)
    np.testing.assert_array_equal(restored.mean, STATISTICS.mean)
    np.testing.assert_array_equal(restored.std, STATISTICS.std)


def test_differences_ignore_volatile_attributes_and_name_both_values(tmp_path) -> None:
    write_store(tmp_path / "raw.h5")
    with FeatureStore(tmp_path / "raw.h5") as store:
        raw = store_identity(store, "resnet152")
    # raw store attributes (with versions and another source) are the same identity
    assert identity_differences(raw, {**ATTRS, "versions": {"torch": "9"}, "source": "x"}, "here") == []
    other = {**ATTRS, "fps": 16, "layer": "pool"}
    assert identity_differences(raw, other, "here") == [
        "fps: 8 in the checkpoint vs 16 in here",
        "layer: absent in the checkpoint vs 'pool' in here",
    ]
    standardised = {**raw, "standardization": standardization_record(STATISTICS)}
    (difference,) = identity_differences(standardised, raw, "here")
    assert difference.startswith("standardization: 'z-score(epsilon=1e-06, statistics sha256:")
    assert difference.endswith("in the checkpoint vs 'none' in here")
    shifted = Standardization(STATISTICS.mean + 1e-9, STATISTICS.std, STATISTICS.epsilon)
    assert identity_differences(
        standardised, {**raw, "standardization": standardization_record(shifted)}, "x"
    )
    assert (
        identity_differences(standardised, {**ATTRS, "standardization": standardised["standardization"]}, "x")
        == []
    )


def test_check_raises_or_warns(caplog) -> None:
    other = {**ATTRS, "weights": "sha256:abc"}
    with pytest.raises(InputError) as error:
        check_feature_identity("run/best.pt", "resnet152", ATTRS, other, "new.h5")
    assert str(error.value) == (
        "run/best.pt: the 'resnet152' features differ from those the model was trained on: weights: "
        "'random-init(seed=0)' in the checkpoint vs 'sha256:abc' in new.h5 "
        "(pass --allow-feature-mismatch to use them anyway)"
    )
    with caplog.at_level(logging.WARNING):
        check_feature_identity("run/best.pt", "resnet152", ATTRS, other, "new.h5", allow_mismatch=True)
    assert "'sha256:abc' in new.h5; using them anyway" in caplog.text
    check_feature_identity("run/best.pt", "resnet152", ATTRS, dict(ATTRS), "new.h5")


def test_attributes_compare_as_the_store_keeps_them():
    # a network's attrs hold tuples; the store (and so the checkpoint) holds JSON lists
    assert identity_differences({"mean": [0.5, 0.25]}, {"mean": (0.5, 0.25)}, "the networks") == []
    assert identity_differences({"mean": [0.5, 0.25]}, {"mean": (0.5, 0.3)}, "the networks") != []


@pytest.mark.parametrize(
    ("text", "source", "seed", "published"),
    [
        ("random-init(seed=3)", "random-init", 3, False),
        ("torchvision:ResNet152_Weights.IMAGENET1K_V1", "torchvision", None, True),
        ("tfhub:https://tfhub.dev/google/vggish/1", "tfhub", None, True),
        ("sha256:" + "ab" * 32, "sha256", None, False),
    ],
)
def test_weights_identities_read_back_as_written(text, source, seed, published) -> None:
    identity = WeightsIdentity.parse(text)
    assert (identity.source, identity.seed, identity.published, str(identity)) == (
        source,
        seed,
        published,
        text,
    )


@pytest.mark.parametrize("text", ["IMAGENET1K_V1", "random-init(seed=x)", "md5:abc", "torchvision:"])
def test_other_weights_texts_are_no_identity(text) -> None:
    with pytest.raises(ValueError, match="none of torchvision:<enum>"):
        WeightsIdentity.parse(text)
