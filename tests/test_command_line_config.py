"""Typed --config values: the strings of Snakemake's base YAML loader read as the schema's types."""

from __future__ import annotations

import yaml
from workflow_helpers import REPO

from avvp.command_line_config import type_strings

SCHEMA = yaml.safe_load((REPO / "workflow" / "schemas" / "config.schema.yaml").read_text())


def test_strings_become_the_types_the_schema_asks_for():
    # what snakemake --config 'cluster={gpus: 0, stages: {train: {threads: 2, gpu: false}}}' shards=3 gives
    given = {"cluster": {"gpus": "0", "stages": {"train": {"threads": "2", "gpu": "false"}}}, "shards": 3}
    typed = type_strings(given, SCHEMA)
    assert typed == {"cluster": {"gpus": 0, "stages": {"train": {"threads": 2, "gpu": False}}}, "shards": 3}
    assert type_strings({"cluster": "{gpus: 0}"}, SCHEMA) == {"cluster": {"gpus": 0}}
    assert type_strings({"cluster": {"gpu_model": "null"}}, SCHEMA) == {"cluster": {"gpu_model": None}}


def test_strings_the_schema_allows_or_that_do_not_parse_are_kept():
    given = {
        "run": "123",
        "cluster": {"gres": "gpu:a100:1", "gpus": "two"},
        "experiments": {"x": {"config": "1"}},
    }
    assert type_strings(given, SCHEMA) == given
