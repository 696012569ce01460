"""The feature networks a checkpoint's features were extracted with, rebuilt from its recorded identity.

A parsing checkpoint records, per feature kind, the attributes the feature store had (``weights``: e.g.
``random-init(seed=0)``, ``torchvision:ResNet152_Weights.IMAGENET1K_V1``, ``tfhub:<handle>`` or
``sha256:<hex>`` of a local file; input sizes ``crop`` and ``frame_size``; the VGGish ``backend``).
:func:`network_options` turns that back into the options of :func:`extractors.networks.build_networks`.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from avvp.errors import InputError
from extractors.hf_models import LOCAL_FOLDER
from extractors.identity import TFHUB, WeightsIdentity
from extractors.weights import FOLDER_KINDS

MODEL_OPTIONS = {"clip": "clip_model", "clap": "clap_model", "clap_segments": "clap_model"}
"""The option naming the model (hub name, folder or architecture) of each teacher kind."""


def _recorded_weights(attrs: Mapping[str, Any]) -> WeightsIdentity | None:
    """The weights identity a kind's recorded attributes name (None when absent or of no known form)."""
    try:
        return WeightsIdentity.parse(str(attrs.get("weights", "")))
    except ValueError:
        return None


def _weights_choice(kind: str, attrs: Mapping[str, Any], given: Mapping[str, str]) -> tuple[str, int | None]:
    """``(choice for build_networks, random seed or None)`` of one kind's recorded attributes."""
    if kind in given:
        return given[kind], None
    identity = _recorded_weights(attrs)
    if identity is not None and identity.seed is not None:
        return "random", identity.seed
    if identity is not None and identity.published:
        return "pretrained", None
    raise InputError(
        f"the checkpoint's {kind} features come from weights '{attrs.get('weights', '')}', which cannot be "
        f"fetched by name: give the file with --weights {kind}=PATH"
    )


def network_options(
    identity: Mapping[str, Mapping[str, Any]] | None, kinds: list[str], given: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """Keyword arguments of :class:`extractors.networks.NetworkOptions` that rebuild the recorded features.

    ``identity`` maps kind -> recorded attributes (None: a checkpoint without a record, e.g. an official
    HAN file: the published networks at the published sizes); ``given`` maps kind -> an explicit weights
    choice (``pretrained``, ``random`` or a file path) that replaces the recorded one.
    """
    given = dict(given or {})
    if identity is None:
        return {"weights": {kind: given.get(kind, "pretrained") for kind in kinds}}
    missing = [kind for kind in kinds if kind not in identity]
    if missing:
        raise InputError(f"the checkpoint records no features of kind(s) {missing}")
    weights, seeds = {}, set()
    for kind in kinds:
        weights[kind], seed = _weights_choice(kind, identity[kind], given)
        if seed is not None:
            seeds.add(seed)
    if len(seeds) > 1:
        raise InputError(f"the checkpoint's features use random weights of several seeds {sorted(seeds)}")
    for kind, choice in weights.items():
        folder = kind in FOLDER_KINDS and Path(choice).is_dir()
        if choice not in ("pretrained", "random") and not Path(choice).is_file() and not folder:
            raise InputError(f"{choice}: weights file for '{kind}' not found")
    options: dict[str, Any] = {"weights": weights, "seed": seeds.pop() if seeds else 0}
    if "resnet152" in identity and "crop" in identity["resnet152"]:
        options["image_size"] = int(identity["resnet152"]["crop"])
    if "r2plus1d" in identity and "frame_size" in identity["r2plus1d"]:
        options["clip_size"] = int(identity["r2plus1d"]["frame_size"])
    for kind, option in MODEL_OPTIONS.items():
        if kind in kinds and identity[kind].get("model") not in (None, LOCAL_FOLDER):
            options[option] = str(identity[kind]["model"])
    vggish = identity.get("vggish", {})
    if vggish.get("backend"):
        options["vggish_backend"] = vggish["backend"]
    vggish_weights = _recorded_weights(vggish)
    if vggish_weights is not None and vggish_weights.source == TFHUB:
        options["vggish_handle"] = vggish_weights.name
    return options
