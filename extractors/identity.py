"""What decides a feature kind's values, as the feature store records it: the network's weights and the
preprocessing those weights expect.

As a torchvision weights enum carries its transforms and metadata, each network's builder
(:func:`extractors.visual.build_resnet152`, :func:`extractors.visual.build_r2plus1d`,
:func:`extractors.vggish.build_vggish`, :func:`extractors.vggish_tf.hub_record`) returns one
:class:`ExtractorRecord` with its model: the store's attributes (:meth:`ExtractorRecord.attrs`) and the
feature identity that checkpoints record and ``avvp parse`` checks (:meth:`ExtractorRecord.identity`) are
both read from it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from avvp.data.features import package_versions

TORCHVISION, TFHUB, HF, SHA256, RANDOM_INIT = "torchvision", "tfhub", "hf", "sha256", "random-init"
_RANDOM_INIT = re.compile(r"random-init\(seed=(-?\d+)\)")
VERSIONS = "versions"
"""The attribute holding package versions: recorded, but not part of the identity."""


@dataclass(frozen=True)
class WeightsIdentity:
    """Where a network's weights come from: ``source`` is ``torchvision`` (``name`` the weights enum, e.g.
    ``ResNet152_Weights.IMAGENET1K_V1``), ``tfhub`` (the handle), ``hf`` (a Hugging Face hub model and its
    commit, ``openai/clip-vit-large-patch14@<sha>``), ``sha256`` (the hex digest of a local checkpoint) or
    ``random-init`` (the seed). Written as ``torchvision:<enum>``, ``tfhub:<handle>``, ``hf:<repo>@<rev>``,
    ``sha256:<hex>`` or ``random-init(seed=N)``."""

    source: str
    name: str

    @classmethod
    def random_init(cls, seed: int) -> WeightsIdentity:
        """Seeded random initialisation."""
        return cls(RANDOM_INIT, str(seed))

    @classmethod
    def parse(cls, text: str) -> WeightsIdentity:
        """The identity written as ``text``; ``ValueError`` when it has none of the four forms."""
        match = _RANDOM_INIT.fullmatch(text)
        if match:
            return cls.random_init(int(match[1]))
        source, sep, name = text.partition(":")
        if not sep or not name or source not in (TORCHVISION, TFHUB, HF, SHA256):
            raise ValueError(
                f"weights {text!r} are none of torchvision:<enum>, tfhub:<handle>, hf:<repo>@<revision>, "
                "sha256:<hex>, random-init(seed=N)"
            )
        return cls(source, name)

    @property
    def seed(self) -> int | None:
        """The seed of random initialisation (None for trained weights)."""
        return int(self.name) if self.source == RANDOM_INIT else None

    @property
    def published(self) -> bool:
        """Whether the weights are published ones that can be fetched by name (torchvision, TF-Hub, HF hub)."""
        return self.source in (TORCHVISION, TFHUB, HF)

    def __str__(self) -> str:
        return (
            f"random-init(seed={self.name})" if self.source == RANDOM_INIT else f"{self.source}:{self.name}"
        )


@dataclass(frozen=True)
class ExtractorRecord:
    """One feature kind's network: ``kind``, its ``weights``, the ``preprocessing`` they expect (frame
    rate, sizes, normalisation, audio settings, layer; JSON values) and the ``packages`` whose installed
    versions are recorded beside them."""

    kind: str
    weights: WeightsIdentity
    preprocessing: Mapping[str, Any]
    packages: tuple[str, ...] = field(default=("torch", "torchvision", "av", "decord"))

    def identity(self) -> dict[str, Any]:
        """What decides the feature values: ``extractor``, ``weights`` (as text) and the preprocessing."""
        return {"extractor": self.kind, "weights": str(self.weights), **self.preprocessing}

    def attrs(self) -> dict[str, Any]:
        """The store attributes of the kind: :meth:`identity` and the package ``versions``."""
        return {**self.identity(), VERSIONS: package_versions(*self.packages)}
