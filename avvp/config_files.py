"""Reading YAML config files that may extend others (``extends: other.yaml``), and merging mappings.

Light on purpose (standard library and PyYAML only): the Snakemake workflow imports it when it parses.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from avvp.errors import InputError
from avvp.io import read_text

EXTENDS = "extends"
"""Key naming the file a config builds on, relative to the config's own folder."""


def deep_merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    """A copy of mapping ``base`` with ``update`` merged in, recursively (``update`` wins)."""
    merged = dict(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _yaml_problem(err: yaml.YAMLError) -> str:
    """A YAML error on one line: where (line, column) and what, e.g. a tag no safe loader constructs."""
    mark = getattr(err, "problem_mark", None)
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
    problem = getattr(err, "problem", None) or " ".join(str(err).split())
    if "could not determine a constructor" in problem:
        problem += "; tags that build Python objects are not accepted"
    return where + problem


def _read_mapping(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise InputError(f"{path}: config file not found")
    try:
        loaded = yaml.safe_load(read_text(path))
    except yaml.YAMLError as err:
        raise InputError(f"{path}: not valid YAML ({_yaml_problem(err)})") from None
    if loaded is not None and not isinstance(loaded, dict):
        raise InputError(f"{path}: expected a mapping of settings at the top level")
    return loaded or {}


def config_chain(path: str | Path) -> list[Path]:
    """``path`` and every file it extends, directly or not, the most basic last."""
    chain = [Path(path)]
    while True:
        parent = _read_mapping(chain[-1]).get(EXTENDS)
        if parent is None:
            return chain
        if not isinstance(parent, str):
            raise InputError(f"{chain[-1]}: '{EXTENDS}' must be a file name, not {parent!r}")
        parent_path = chain[-1].parent / parent
        if parent_path.resolve() in {p.resolve() for p in chain}:
            raise InputError(f"{chain[-1]}: '{EXTENDS}: {parent}' makes a cycle")
        chain.append(parent_path)


def read_config_file(path: str | Path) -> dict[str, Any]:
    """The settings of a YAML config file, merged over those of the files it extends (``extends`` removed)."""
    settings: dict[str, Any] = {}
    for file in reversed(config_chain(path)):
        settings = deep_merge(settings, _read_mapping(file))
    settings.pop(EXTENDS, None)
    return settings
