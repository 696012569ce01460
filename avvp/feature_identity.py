"""The identity of a feature kind: what decides its values, recorded in checkpoints and checked on use.

The identity of one kind is a plain dict: the kind's store attributes (``extractor``, ``weights`` and every
sampling or size attribute, written by ``avvp extract`` from the network's
:class:`extractors.identity.ExtractorRecord`, whose ``identity()`` they hold) without the volatile ones (:data:`VOLATILE_ATTRS`: package versions, source
paths, clip counts, the ``standardized`` bookkeeping), plus ``standardization``: None for raw features, or
``{"mean": tensor (D,), "std": tensor (D,), "epsilon": float}`` (float64 tensors) for a standardised store.
``avvp train`` writes one identity per kind the model reads into its checkpoints; ``avvp predict`` (and
``avvp parse``, for the networks it builds) compare theirs with :func:`check_feature_identity`.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from avvp.data.features import FeatureStore, Standardization
from avvp.errors import InputError
from extractors.identity import VERSIONS

log = logging.getLogger(__name__)
VOLATILE_ATTRS = frozenset({VERSIONS, "source", "clips", "standardized"})
"""Store attributes that do not change the feature values (the ``standardized`` attribute is replaced by
the statistics themselves, under :data:`STANDARDIZATION`)."""
STANDARDIZATION = "standardization"
MISMATCH_FLAG = "--allow-feature-mismatch"


def standardization_record(standardization: Standardization | None) -> dict[str, Any] | None:
    """``standardization`` as checkpoint data (float64 tensors, ``torch.load(weights_only=True)`` safe)."""
    if standardization is None:
        return None
    return {
        "mean": torch.from_numpy(np.asarray(standardization.mean, dtype=np.float64)),
        "std": torch.from_numpy(np.asarray(standardization.std, dtype=np.float64)),
        "epsilon": float(standardization.epsilon),
    }


def record_standardization(record: Mapping[str, Any] | None) -> Standardization | None:
    """The :class:`Standardization` a checkpoint's ``standardization`` record describes (None: raw)."""
    if record is None:
        return None
    return Standardization(
        np.asarray(record["mean"], dtype=np.float64),
        np.asarray(record["std"], dtype=np.float64),
        float(record["epsilon"]),
    )


def store_identity(store: FeatureStore, kind: str) -> dict[str, Any]:
    """The identity of ``kind`` in ``store``: its non-volatile attributes and its standardisation record."""
    attrs = {key: value for key, value in store.attrs(kind).items() if key not in VOLATILE_ATTRS}
    return {**attrs, STANDARDIZATION: standardization_record(store.standardization(kind))}


def sources_identity(sources: Mapping[str, str | Path]) -> dict[str, dict[str, Any]]:
    """The identity of each kind in the store ``sources`` maps it to."""
    identities = {}
    for kind, path in sources.items():
        with FeatureStore(path) as store:
            identities[kind] = store_identity(store, kind)
    return identities


def _comparable(key: str, value: Any) -> Any:
    """``value`` as compared and shown: as the store keeps attributes (JSON: tuples become lists), and a
    standardisation record as a short fingerprint string."""
    if key != STANDARDIZATION:
        return json.loads(json.dumps(value)) if isinstance(value, list | tuple | dict) else value
    if value is None:
        return "none"
    digest = hashlib.sha256()
    for name in ("mean", "std"):
        digest.update(np.asarray(value[name], dtype=np.float64).tobytes())
    return f"z-score(epsilon={float(value['epsilon']):g}, statistics sha256:{digest.hexdigest()[:12]})"


def identity_differences(recorded: Mapping[str, Any], actual: Mapping[str, Any], where: str) -> list[str]:
    """``"key: X in the checkpoint vs Y in <where>"`` for every identity key whose values differ.

    Both sides may be an identity (:func:`store_identity`) or raw attributes (volatile keys are ignored);
    a missing ``standardization`` means raw features.
    """
    absent = object()
    keys = (recorded.keys() | actual.keys() | {STANDARDIZATION}) - VOLATILE_ATTRS
    differences = []
    for key in sorted(keys):
        default = None if key == STANDARDIZATION else absent
        ours = _comparable(key, recorded.get(key, default))
        theirs = _comparable(key, actual.get(key, default))
        if ours != theirs:
            shown = ["absent" if value is absent else repr(value) for value in (ours, theirs)]
            differences.append(f"{key}: {shown[0]} in the checkpoint vs {shown[1]} in {where}")
    return differences


def check_feature_identity(
    checkpoint: str | Path,
    kind: str,
    recorded: Mapping[str, Any],
    actual: Mapping[str, Any],
    where: str,
    allow_mismatch: bool = False,
) -> None:
    """Refuse ``kind`` features from ``where`` whose identity differs from the one ``checkpoint`` recorded.

    ``actual`` is the identity (or raw attributes) of the features about to be fed to the model. A
    difference is an :class:`InputError` naming the checkpoint, the kind and each differing key with both
    values; with ``allow_mismatch`` it is logged as a warning instead.
    """
    differences = identity_differences(recorded, actual, where)
    if not differences:
        return
    message = (
        f"{checkpoint}: the '{kind}' features differ from those the model was trained on: "
        f"{'; '.join(differences)}"
    )
    if not allow_mismatch:
        raise InputError(f"{message} (pass {MISMATCH_FLAG} to use them anyway)")
    log.warning("%s; using them anyway (%s)", message, MISMATCH_FLAG)
