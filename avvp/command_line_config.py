"""Typed values of Snakemake's ``--config``: it reads ``--config 'cluster={gpus: 0}'`` with YAML's base
loader, so every scalar arrives as a string ("0"); this gives them the types the workflow's schema expects.

Standard library and PyYAML only: the workflow imports it when it parses (every cluster job does)."""

from __future__ import annotations

from typing import Any

import yaml

JSON_TYPES = {
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
}


NULLS = ("null", "Null", "NULL", "~")
"""YAML's spellings of null: read as null where the schema allows it, also beside strings."""


def _types(schema: dict) -> list[str]:
    kind = schema.get("type", [])
    return [kind] if isinstance(kind, str) else list(kind)


def _child_schema(schema: dict, key: str) -> dict:
    """The schema of ``key`` of an object: its ``properties`` entry, else ``additionalProperties``."""
    if key in schema.get("properties", {}):
        return schema["properties"][key]
    extra = schema.get("additionalProperties")
    return extra if isinstance(extra, dict) else {}


def type_strings(value: Any, schema: dict) -> Any:
    """``value`` with every string the schema does not allow as a string read as YAML, where that gives a
    type the schema allows (``"0"`` -> 0 for an integer, ``"{gpus: 0}"`` -> a mapping for an object), and
    the same applied inside mappings and lists; YAML's null where the schema allows null; other strings
    the schema allows, or that do not parse to an allowed type, are kept (validation then names them)."""
    types = _types(schema)
    if isinstance(value, str) and "null" in types and value in NULLS:
        return None
    if isinstance(value, str) and types and "string" not in types:
        try:
            parsed = yaml.safe_load(value)
        except yaml.YAMLError:
            parsed = value
        if any(JSON_TYPES[t](parsed) for t in types if t in JSON_TYPES):
            value = parsed
    if isinstance(value, dict):
        return {key: type_strings(item, _child_schema(schema, key)) for key, item in value.items()}
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        return [type_strings(item, schema["items"]) for item in value]
    return value
