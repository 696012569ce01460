"""Reading PyTorch files safely: ``torch.load(..., weights_only=True)`` with one-line errors.

Nothing in a file can run code: besides tensors and plain Python values, a file may only hold the types a
caller allows explicitly (:data:`NUMPY_RNG_TYPES` for the NumPy RNG state the original JoMoLD code saves).
"""

from __future__ import annotations

import re
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from avvp.errors import InputError

_RECONSTRUCT = np.empty(0).__reduce__()[0]
"""The function a pickled ``ndarray`` is rebuilt with (``numpy._core.multiarray._reconstruct``)."""
NUMPY_RNG_TYPES: tuple[Any, ...] = (
    (_RECONSTRUCT, "numpy.core.multiarray._reconstruct"),  # its name in files written with NumPy 1
    (_RECONSTRUCT, "numpy._core.multiarray._reconstruct"),  # ... and with NumPy 2
    np.ndarray,
    np.dtype,
    type(np.dtype(np.uint32)),
)
"""What ``np.random.get_state()`` needs when unpickled: a uint32 ``ndarray`` (nothing else NumPy can build)."""
_REFUSED_NAME = (re.compile(r"GLOBAL ([\w.]*\w)"), re.compile(r"but got <class '([^']+)'>"))
"""Where torch's refusal messages name the global or the type they refused."""
_TORCH_ADVICE = ("Weights only load failed", "Please file an issue", "Check the documentation", "(1)", "(2)")
"""Lines of torch's load errors that advise rather than say what failed."""


class RefusedContentError(InputError):
    """The file refers to code or a type a weights-only load may not use (``name``: the global or type)."""

    def __init__(self, message: str, name: str) -> None:
        super().__init__(message)
        self.name = name


def _detail(err: Exception) -> str:
    """The line of ``err``'s message that says what went wrong (torch wraps it in advice about trust)."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    told = [line for line in lines if not line.startswith(_TORCH_ADVICE)]
    return (told or lines or [""])[0]


def _refusal(path: Path, err: Exception, allowed: Sequence[Any]) -> RefusedContentError | None:
    """The one-line error when ``err`` refuses a global or type the file refers to, else None."""
    text = str(err)
    found = next((match for match in (pattern.search(text) for pattern in _REFUSED_NAME) if match), None)
    if "Weights only load failed" not in text or found is None:
        return None
    allowed_text = "tensors and plain Python values" + (" and a NumPy RNG state" if allowed else "")
    message = (
        f"{path}: refused: it refers to '{found.group(1)}', and a checkpoint may only hold {allowed_text} "
        "(nothing in it was run)"
    )
    return RefusedContentError(message, found.group(1))


def verify_container(path: Path) -> None:
    """Check the CRC of every member of ``path``'s zip container (the format ``torch.save`` writes), so a
    damaged file is refused before its bytes become weights; :class:`InputError` naming the file and the
    damaged member. Files in torch's legacy (non-zip) format have no checksums and pass unchecked."""
    if not zipfile.is_zipfile(path):
        return
    try:
        with zipfile.ZipFile(path) as container:
            damaged = container.testzip()
    except (zipfile.BadZipFile, OSError, EOFError) as err:
        raise InputError(f"{path}: corrupt checkpoint: its zip container is unreadable ({err})") from None
    if damaged is not None:
        raise InputError(
            f"{path}: corrupt checkpoint: the checksum of its member '{damaged}' does not match "
            "(the file was damaged after it was written; use another copy or retrain)"
        )


def load_dict(path: str | Path, allowed: Sequence[Any] = ()) -> dict[str, Any]:
    """The dict saved in ``path``: tensors, numbers, strings, lists, dicts and the ``allowed`` types only
    (entries for ``torch.serialization.safe_globals``); no code from the file runs.

    Raises :class:`InputError` naming the file when it is absent, damaged (:func:`verify_container`),
    unreadable or holds something else
    (:class:`RefusedContentError` when it refers to code or types outside that list).
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: checkpoint not found")
    verify_container(path)
    try:
        with torch.serialization.safe_globals(list(allowed)):
            payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises pickle, zip and runtime errors for corrupt or foreign files
        refusal = _refusal(path, err, allowed)
        if refusal is not None:
            raise refusal from None
        raise InputError(
            f"{path}: not a readable PyTorch checkpoint ({type(err).__name__}: {_detail(err)})"
        ) from None
    if not isinstance(payload, dict):
        raise InputError(f"{path}: expected a dict in the checkpoint, found {type(payload).__name__}")
    return payload
