"""Import the features LLP's authors released (one ``<11-char YouTube id>.npy`` per clip and kind), and
VALOR's CLIP (10 x 768) and CLAP (64 x 768) features, released in the same layout.

The released folders are keyed by YouTube id; the store is keyed by LLP filename (``<id>_<start>_<end>``),
so ids are mapped through ``AVVP_dataset_full.csv``. Every file is checked (readable, shape, finite);
missing, extra and invalid files are reported in a manifest and never stop the import.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from avvp.data.features import FeatureStoreWriter, check_features, package_versions
from avvp.io import write_tsv

RELEASED_SOURCE = "released LLP features (AVVP-ECCV20)"
VALOR_SOURCE = "released VALOR features (Franklin905/VALOR: NTUBarista/valor_features CLIP.zip, CLAP.zip)"


@dataclass
class ImportReport:
    """What an import found, per kind: clips written, and (clip, reason) for missing/extra/invalid files."""

    written: dict[str, int] = field(default_factory=dict)
    problems: list[tuple[str, str, str, str]] = field(default_factory=list)
    """Rows ``(kind, clip or file, problem, detail)`` with problem one of missing, extra, invalid."""

    def count(self, kind: str, problem: str) -> int:
        """Number of problems of one kind and type."""
        return sum(1 for k, _, p, _ in self.problems if k == kind and p == problem)


RELEASED_SOURCES = {"clip": VALOR_SOURCE, "clap": VALOR_SOURCE}
"""The release each kind's folders come from, when not LLP's (:data:`RELEASED_SOURCE`)."""


def released_arrays(
    kind: str,
    folder: Path,
    clips: Sequence[str],
    check: Callable[[np.ndarray], str | None],
    report: ImportReport,
    progress: bool = True,
) -> Iterator[tuple[str, np.ndarray]]:
    """``(clip, array)`` of each of ``clips`` (LLP filenames) whose ``<YouTube id>.npy`` in ``folder`` is
    readable and passes ``check`` (which returns why an array is unfit, or None); missing, extra and
    invalid files are added to ``report`` under ``kind``."""
    by_youtube_id = {clip[:11]: clip for clip in clips}
    files = {path.stem: path for path in folder.glob("*.npy")}
    report.problems += [
        (kind, path.name, "extra", "no LLP clip with this YouTube id")
        for stem, path in sorted(files.items())
        if stem not in by_youtube_id
    ]
    for youtube_id, clip in tqdm(by_youtube_id.items(), desc=f"import {kind}", disable=not progress):
        path = files.get(youtube_id)
        if path is None:
            report.problems.append((kind, clip, "missing", f"{folder / (youtube_id + '.npy')} not found"))
            continue
        try:
            array = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as err:
            report.problems.append((kind, clip, "invalid", f"{path}: unreadable ({err})"))
            continue
        problem = check(array)
        if problem:
            report.problems.append((kind, clip, "invalid", f"{path}: {problem}"))
            continue
        yield clip, array


def import_released(
    folders: Mapping[str, str | Path],
    clips: list[str],
    output: str | Path,
    dtype: str = "float32",
    progress: bool = True,
) -> ImportReport:
    """Write the released ``.npy`` features of ``clips`` (LLP filenames) from ``folders[kind]`` into a store.

    Returns an :class:`ImportReport`; the store is written atomically at ``output``.
    """
    report = ImportReport()
    with FeatureStoreWriter(output, dtype=dtype) as writer:
        for kind, folder in folders.items():
            folder = Path(folder)
            writer.set_attrs(
                kind,
                {
                    "extractor": kind,
                    "weights": RELEASED_SOURCES.get(kind, RELEASED_SOURCE),
                    "source": str(folder),
                    "versions": package_versions(),
                },
            )
            check = functools.partial(check_features, kind)
            written = 0
            for clip, array in released_arrays(kind, folder, clips, check, report, progress):
                writer.add(kind, clip, array)
                written += 1
            report.written[kind] = written
    return report


def write_manifest(path: str | Path, report: ImportReport) -> None:
    """Write the report's problems as a TSV ``kind, clip, problem, detail``, atomically."""
    write_tsv(path, ("kind", "clip", "problem", "detail"), report.problems)
