"""Hugging Face image-text and audio-text models (CLIP, CLAP) for the teacher kinds: loading and identity.

A model is named by ``--clip-model`` / ``--clap-model``: a hub repository with an optional revision
(``openai/clip-vit-large-patch14@<commit>``), a local folder written by ``save_pretrained``, or ``tiny``
(a small architecture of the same classes, only with random weights: tests and the demo). The weights
choice (``--weights``) says what fills it:

- ``pretrained``: the hub model (``from_pretrained``, cached in ``HF_HOME``), identity ``hf:<repo>@<commit>``;
- ``random``: seeded initialisation of the named architecture (the published one's configuration is built
  in, so no download is needed), identity ``random-init(seed=N)``; text is then tokenised bytewise
  (:class:`transformers.ByT5Tokenizer`, which needs no vocabulary files), as recorded;
- a local folder: its weights, identity ``sha256:`` of its weight files, its own tokenizer.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from avvp.data.features import TextEmbeddings
from avvp.errors import InputError
from extractors.identity import HF, SHA256, WeightsIdentity
from extractors.weights import PRETRAINED, RANDOM, seeded

TINY = "tiny"
BYTE_TOKENIZER = "ByT5Tokenizer (bytes; random-init stand-in for the model's own tokenizer)"
BYTE_EOS, BYTE_PAD = 1, 0
"""ByT5's end-of-sequence and padding ids, set in the random architectures' text configs."""
WEIGHT_SUFFIXES = (".safetensors", ".bin")
LOCAL_FOLDER = "local folder (weights by sha256)"


@dataclass
class LoadedModel:
    """A model in eval mode, the identity of its weights, its tokenizer and a summary of its
    architecture (recorded with the features: it tells a random ViT-L/14 from a tiny one)."""

    model: Any
    weights: WeightsIdentity
    tokenizer: Any
    tokenizer_name: str
    architecture: dict[str, Any]
    name: str
    """The model as recorded: the hub repository or architecture name, or :data:`LOCAL_FOLDER`."""


def split_revision(name: str) -> tuple[str, str | None]:
    """``repo@revision`` -> ``(repo, revision)``; no ``@``: ``(name, None)``."""
    repo, sep, revision = name.partition("@")
    return repo, (revision if sep else None)


def folder_identity(folder: Path) -> WeightsIdentity:
    """``sha256:`` over the bytes of a model folder's weight files (sorted by name)."""
    files = sorted(p for p in folder.iterdir() if p.suffix in WEIGHT_SUFFIXES and p.is_file())
    if not files:
        raise InputError(f"{folder}: no weight file ({', '.join(WEIGHT_SUFFIXES)}) in this model folder")
    digest = hashlib.sha256()
    for path in files:
        digest.update(path.name.encode())
        with open(path, "rb") as handle:
            for block in iter(lambda h=handle: h.read(1 << 20), b""):
                digest.update(block)
    return WeightsIdentity(SHA256, digest.hexdigest())


def _cannot_load(what: str, name: str, err: Exception) -> InputError:
    """One line: ``what`` (e.g. "CLIP weights") of ``name`` could not be loaded, why, and how to provide it."""
    first = " ".join(str(err).split())[:300]
    return InputError(
        f"{name}: cannot load the {what} ({type(err).__name__}: {first}). Offline: on a machine with "
        f"internet run 'huggingface-cli download {split_revision(name)[0]}' (or save_pretrained) and pass the "
        f"folder with --weights KIND=DIR, or copy the hub cache to $HF_HOME"
    )


def load_model(
    what: str,
    model_class: type,
    name: str,
    choice: str,
    seed: int,
    architectures: dict[str, Callable[[], Any]],
    summary: Callable[[Any], dict[str, Any]],
) -> LoadedModel:
    """Build ``model_class`` (e.g. ``CLIPModel``) as ``choice`` says (see the module docstring).

    ``name``: hub repository (``@revision`` allowed), local folder or ``tiny``; ``architectures`` maps the
    names whose configuration is built in (the published repository, ``tiny``) to a config factory;
    ``summary`` reads the recorded architecture summary from a config. Raises :class:`InputError` with
    one line saying how to provide the weights when they cannot be loaded.
    """
    from transformers import AutoConfig, AutoTokenizer, ByT5Tokenizer

    repo, revision = split_revision(name)
    if choice == RANDOM:
        if repo in architectures:
            config = architectures[repo]()
        else:
            try:
                config = AutoConfig.from_pretrained(repo, revision=revision)
            except Exception as err:  # hub and file errors alike: the configuration cannot be had
                raise _cannot_load(f"{what} configuration", name, err) from None
        with seeded(seed):
            model = model_class(config)
        return LoadedModel(
            model.eval(),
            WeightsIdentity.random_init(seed),
            ByT5Tokenizer(),
            BYTE_TOKENIZER,
            summary(config),
            repo,
        )
    if choice == PRETRAINED and repo == TINY:
        raise InputError(f"{what} model 'tiny' exists only with random weights (--weights KIND=random)")
    source = Path(choice) if choice != PRETRAINED else None
    target = str(source) if source is not None else repo
    try:
        model = model_class.from_pretrained(target, revision=None if source else revision)
        tokenizer = AutoTokenizer.from_pretrained(target, revision=None if source else revision)
    except Exception as err:  # offline, missing files, wrong class: one line naming the model
        raise _cannot_load(f"{what} weights", target, err) from None
    if source is not None:
        weights, recorded = folder_identity(source), LOCAL_FOLDER
    else:
        commit = getattr(model.config, "_commit_hash", None) or revision or "unknown-revision"
        weights, recorded = WeightsIdentity(HF, f"{repo}@{commit}"), repo
    return LoadedModel(
        model.eval(), weights, tokenizer, type(tokenizer).__name__, summary(model.config), recorded
    )


def text_embeddings(
    loaded: LoadedModel,
    texts: Sequence[str],
    features: Callable[..., Any],
    logit_scale: torch.Tensor,
    max_length: int,
) -> TextEmbeddings:
    """The L2-normalised embeddings of ``texts`` (``features(**tokens)`` gives [C, D'] or an output with
    ``pooler_output``) and ``exp(logit_scale)``, on the CPU."""
    tokens = loaded.tokenizer(
        list(texts), padding=True, truncation=True, max_length=max_length, return_tensors="pt"
    )
    device = next(loaded.model.parameters()).device
    with torch.inference_mode():
        output = features(**{key: value.to(device) for key, value in tokens.items()})
        embeds = getattr(output, "pooler_output", output)
        embeds = torch.nn.functional.normalize(embeds.float(), dim=-1)
    return TextEmbeddings(
        tuple(texts), embeds.cpu().numpy().astype(np.float32), float(logit_scale.detach().exp().cpu())
    )
