"""Reading PyTorch files safely: ``torch.load(..., weights_only=True)`` with one-line errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from avvp.errors import InputError


def load_dict(path: str | Path) -> dict[str, Any]:
    """The dict saved in ``path`` (tensors, numbers, strings, lists, dicts only: no arbitrary code runs).

    Raises :class:`InputError` naming the file when it is absent, unreadable or holds something else.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: checkpoint not found")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises pickle, zip and runtime errors for corrupt or foreign files
        raise InputError(f"{path}: not a readable PyTorch checkpoint ({type(err).__name__}: {err})") from None
    if not isinstance(payload, dict):
        raise InputError(f"{path}: expected a dict in the checkpoint, found {type(payload).__name__}")
    return payload
