"""The numbers the papers report (``resources/paper_results.csv``): reading them, checking the method and
paper names a run refers to, and picking the rows an experiment is shown beside.

Standard library only: the workflow imports this module when it parses its config, and every cluster job
parses it again.
"""

from __future__ import annotations

import csv
import difflib
import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from avvp.errors import InputError
from avvp.evaluation import METRIC_NAMES
from avvp.io import read_text

CLOSE_NAMES = 3


@dataclass(frozen=True)
class ReferenceRow:
    """One row of the reference CSV: the five F1 scores (%) one paper reports for a method at one level
    (None for a score the paper's text does not give: an empty cell)."""

    paper: str
    table: str
    method: str
    level: str
    scores: dict[str, float | None]

    @property
    def label(self) -> str:
        """Where the numbers come from, e.g. ``paper 002 table 1-2: HAN``."""
        return f"paper {self.paper} table {self.table}: {self.method}"


@dataclass(frozen=True)
class Reference:
    """All rows of a reference CSV, in file order."""

    path: Path
    rows: tuple[ReferenceRow, ...]

    def check_papers(self, papers: Sequence[str]) -> None:
        """Raise :class:`InputError` when one of ``papers`` has no row."""
        known = sorted({row.paper for row in self.rows})
        for paper in papers:
            if paper not in known:
                raise InputError(f"paper {paper!r} has no row in {self.path} (papers: {', '.join(known)})")

    def check_methods(self, experiment: str, methods: Sequence[str]) -> None:
        """Raise :class:`InputError`, naming ``experiment`` and close names, when one of ``methods`` is the
        ``method`` of no row."""
        known = list(dict.fromkeys(row.method for row in self.rows))
        for method in methods:
            if method not in known:
                raise InputError(
                    f"experiment {experiment!r}: paper method {method!r} is not a method of {self.path}"
                    + _close_names(method, known)
                )

    def rows_of(self, methods: Sequence[str], papers: Sequence[str] = ()) -> list[ReferenceRow]:
        """Rows of ``methods``, in that order and then in file order; only rows of ``papers`` unless empty."""
        return [
            row
            for method in methods
            for row in self.rows
            if row.method == method and (not papers or row.paper in papers)
        ]


def _close_names(name: str, known: Sequence[str]) -> str:
    """``; close names: 'A', 'B'`` for the names of ``known`` that resemble ``name`` (ignoring case), or ''."""
    by_folded = {k.casefold(): k for k in known}
    close = difflib.get_close_matches(name.casefold(), list(by_folded), n=CLOSE_NAMES, cutoff=0.6)
    return "; close names: " + ", ".join(repr(by_folded[c]) for c in close) if close else ""


def read_reference(path: str | Path) -> Reference:
    """Read a reference CSV (paper, table, method, level and the five metrics); :class:`InputError` naming
    the file when it is absent, lacks a column or holds a score that is not a number (an empty cell is a
    score the paper does not give)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: reference results not found")
    with io.StringIO(read_text(path), newline="") as handle:
        reader = csv.DictReader(handle)
        missing = {"paper", "table", "method", "level", *METRIC_NAMES} - set(reader.fieldnames or ())
        if missing:
            raise InputError(f"{path}: missing column(s) {', '.join(sorted(missing))}")
        try:
            rows = tuple(
                ReferenceRow(
                    row["paper"],
                    row["table"],
                    row["method"],
                    row["level"],
                    {m: float(row[m]) if row[m].strip() else None for m in METRIC_NAMES},
                )
                for row in reader
            )
        except ValueError as err:
            raise InputError(f"{path}, line {reader.line_num}: {err}") from None
    return Reference(path, rows)
