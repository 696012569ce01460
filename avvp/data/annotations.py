"""The six LLP annotation files: where they live, how to fetch them, and how to find them on disk.

They are the dataset's files, never the project's: ``avvp fetch-annotations`` downloads them from the
dataset's public repository (or copies a local copy) into a data directory and checks their row counts.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import urllib.error
import urllib.request
from pathlib import Path

from avvp.errors import InputError
from avvp.io import atomic_path, read_text

log = logging.getLogger(__name__)

SOURCE_URL = "https://raw.githubusercontent.com/YapengTian/AVVP-ECCV20/master/data/"
"""The ``data/`` folder of the dataset's public repository."""

ANNOTATION_ROWS: dict[str, int] = {
    "AVVP_dataset_full.csv": 11849,
    "AVVP_train.csv": 10000,
    "AVVP_val_pd.csv": 649,
    "AVVP_test_pd.csv": 1200,
    "AVVP_eval_audio.csv": 4131,
    "AVVP_eval_visual.csv": 2495,
}
"""Each annotation file with its number of data rows (header excluded), as published."""

SPLIT_FILES = {"train": "AVVP_train.csv", "val": "AVVP_val_pd.csv", "test": "AVVP_test_pd.csv"}
FULL_DATASET = "AVVP_dataset_full.csv"
GT_AUDIO = "AVVP_eval_audio.csv"
GT_VISUAL = "AVVP_eval_visual.csv"


def count_rows(path: Path) -> int:
    """Number of non-empty lines after the header of a text file."""
    return sum(1 for line in read_text(path).splitlines() if line.strip()) - 1


def annotation_path(annotations_dir: str | Path, name: str) -> Path:
    """Path of annotation file ``name`` in ``annotations_dir``; an :class:`InputError` saying how to get it
    when it is absent."""
    path = Path(annotations_dir) / name
    if not path.is_file():
        raise InputError(
            f"{path}: LLP annotation file not found. Run 'avvp fetch-annotations --dest {annotations_dir}' "
            f"(downloads from {SOURCE_URL}), or 'avvp fetch-annotations --from-dir <local copy> --dest "
            f"{annotations_dir}', or pass --annotations-dir pointing at a folder with the six AVVP_*.csv files"
        )
    return path


def _complete(path: Path, rows: int) -> bool:
    """Whether ``path`` is present with its published row count (then it is kept)."""
    if path.is_file() and count_rows(path) == rows:
        log.info("%s: present with %d rows, kept", path, rows)
        return True
    return False


def _fetch(name: str, tmp: Path, dest: Path, source: str, from_dir: str | Path | None) -> str:
    """Copy or download annotation file ``name`` into ``tmp``; returns where it came from."""
    if from_dir is not None:
        origin = Path(from_dir) / name
        if not origin.is_file():
            raise InputError(f"{origin}: not found (expected the six LLP annotation files there)")
        shutil.copyfile(origin, tmp)
        return str(origin)
    origin = source.rstrip("/") + "/" + name
    try:
        with urllib.request.urlopen(origin, timeout=60) as response, tmp.open("wb") as out:
            shutil.copyfileobj(response, out)
    except (urllib.error.URLError, OSError) as err:
        raise InputError(
            f"{origin}: download failed ({err}). Without internet, copy the six AVVP_*.csv files "
            f"from a local copy with 'avvp fetch-annotations --from-dir DIR --dest {dest}'"
        ) from None
    return origin


def fetch_annotations(
    dest: str | Path, source: str = SOURCE_URL, from_dir: str | Path | None = None
) -> list[Path]:
    """Download (or copy from ``from_dir``) the six annotation files into ``dest``; return their paths.

    A file already present with its published row count is kept; the others are fetched and written only
    when every one of them arrived with its published row count (all or none). Raises :class:`InputError`
    naming the file on failure.
    """
    dest = Path(dest)
    missing = {name: rows for name, rows in ANNOTATION_ROWS.items() if not _complete(dest / name, rows)}
    with contextlib.ExitStack() as stack:
        staged = {name: stack.enter_context(atomic_path(dest / name)) for name in missing}
        for name, tmp in staged.items():
            origin = _fetch(name, tmp, dest, source, from_dir)
            found = count_rows(tmp)
            if found != missing[name]:
                raise InputError(
                    f"{origin}: {found} data rows, expected {missing[name]}; none of the missing files was written"
                )
            log.info("%s: %d rows, fetched from %s", dest / name, found, origin)
    return [dest / name for name in ANNOTATION_ROWS]
