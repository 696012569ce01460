"""Where a network's weights come from (``pretrained``, ``random`` or a local file): the ``--weights``
option, seeded initialisation, local checkpoints and published downloads. Each returns or goes with the
weights' :class:`extractors.identity.WeightsIdentity`, recorded in the feature store so that features made
with different weights are never merged.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import torch
from torch import nn

from avvp.errors import InputError
from avvp.torch_files import load_dict
from extractors.identity import SHA256, WeightsIdentity

PRETRAINED = "pretrained"
RANDOM = "random"


FOLDER_KINDS = frozenset({"clip", "clap", "clap_segments"})
"""Kinds whose local weights are a model folder (Hugging Face ``save_pretrained``), not one file."""


def parse_weights_option(value: str, kinds: Sequence[str]) -> dict[str, str]:
    """Per-kind weights choice from ``--weights``: one of pretrained|random|PATH for every kind, or
    comma-separated ``kind=choice`` items (kinds not named get ``pretrained``). PATH is a checkpoint file,
    or a model folder for the kinds in :data:`FOLDER_KINDS`.

    Raises :class:`InputError` on an unknown kind or a missing file.
    """
    if "=" not in value:
        choices = dict.fromkeys(kinds, value)
    else:
        choices = dict.fromkeys(kinds, PRETRAINED)
        for item in filter(None, (part.strip() for part in value.split(","))):
            kind, sep, choice = item.partition("=")
            if not sep or kind not in kinds:
                raise InputError(
                    f"--weights {value!r}: item {item!r} is not KIND=CHOICE with KIND in {list(kinds)}"
                )
            choices[kind] = choice
    for kind, choice in choices.items():
        folder = kind in FOLDER_KINDS and Path(choice).is_dir()
        if choice not in (PRETRAINED, RANDOM) and not Path(choice).is_file() and not folder:
            what = "folder" if kind in FOLDER_KINDS else "file"
            raise InputError(
                f"{choice}: weights {what} for '{kind}' not found (expected pretrained, random or a {what})"
            )
    return choices


@contextlib.contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Run the block with torch's global RNG seeded to ``seed``, restoring the caller's RNG state after."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


def file_identity(path: str | Path) -> WeightsIdentity:
    """The identity of a local checkpoint: the SHA-256 of its bytes (``sha256:<hex>``)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return WeightsIdentity(SHA256, digest.hexdigest())


def read_checkpoint(path: str | Path) -> dict[str, torch.Tensor]:
    """The state dict in a local file (``torch.load(weights_only=True)``; a ``{"state_dict": ...}``
    wrapper is accepted). Raises :class:`InputError` naming the file when it is unreadable."""
    state = load_dict(path)
    nested = state.get("state_dict")
    return nested if isinstance(nested, dict) else state


def fit_state_dict(model: nn.Module, state: dict[str, torch.Tensor], path: str | Path) -> None:
    """Load ``state`` into ``model`` strictly; :class:`InputError` naming ``path`` when it does not fit."""
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as err:
        first_line = str(err).splitlines()[0]
        raise InputError(f"{path}: does not fit {type(model).__name__}: {first_line} ...") from None


def load_checkpoint(model: nn.Module, path: str | Path) -> WeightsIdentity:
    """Load the state dict in ``path`` into ``model`` strictly; return its ``sha256:`` identity."""
    fit_state_dict(model, read_checkpoint(path), path)
    return file_identity(path)


def build_pretrained(builder: Callable[[], nn.Module], name: str, url: str, cache: Path) -> nn.Module:
    """Call ``builder`` (a torchvision constructor with published weights, downloaded once to ``cache``).

    When the download fails (offline), raise :class:`InputError` saying how to provide the file by hand.
    """
    try:
        return builder()
    except Exception as err:  # urllib, ssl and socket errors all mean the same thing to the user
        raise InputError(
            f"{name}: cannot load the pretrained weights ({type(err).__name__}: {err}). Offline, download "
            f"{url} on a machine with internet and copy it to {cache}/ (torch's cache, set by TORCH_HOME), "
            f"or pass the file with --weights KIND=PATH"
        ) from None
