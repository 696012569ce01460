"""Shard names: a shard (the unit of download and extraction jobs) is named by its index, ``000``, ``001``, ...

Standard library only: the workflow imports this module when it parses (``workflow/rules/common.smk``).
"""

from __future__ import annotations

SHARD_PATTERN = r"\d\d\d+"
"""Regular expression of a shard name (the workflow's ``shard`` wildcard). Written without a ``{3,}``
quantifier: as a wildcard constraint, that one made Snakemake match no shard file."""


def shard_name(index: int) -> str:
    """The name of shard ``index`` as used in file names and workflow wildcards: ``"000"``, ``"001"``, ..."""
    return f"{index:03d}"


def shard_names(count: int) -> list[str]:
    """The names of shards ``0 .. count - 1``, in order."""
    return [shard_name(index) for index in range(count)]
