"""Command-line options shared by ``avvp train`` and ``avvp pretrain``, and the config overrides they make."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from avvp.device import DEVICE_CHOICES
from avvp.training.config import OVERRIDDEN_KEYS, parse_overrides


def add_run_options(parser: argparse.ArgumentParser, example_set: str) -> None:
    """Register ``--config``, ``--set``, ``--features``, ``--output-dir``, ``--epochs``, ``--device``,
    ``--threads``, ``--deterministic``, ``--resume`` and ``--overwrite``; ``example_set`` ends the --set help."""
    parser.add_argument("--config", required=True, type=Path, help="YAML config")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help=f"override a config setting, dotted keys for nested ones (repeatable), e.g. {example_set}",
    )
    parser.add_argument(
        "--features", nargs="+", type=Path, help="feature store(s) (overrides 'features' in the config)"
    )
    parser.add_argument(
        "--output-dir", type=Path, help="where checkpoints and logs go (overrides the config)"
    )
    parser.add_argument("--epochs", type=int, help="number of epochs (overrides the config)")
    parser.add_argument("--device", choices=DEVICE_CHOICES, help="compute device (overrides the config)")
    parser.add_argument(
        "--threads",
        type=int,
        help="CPU threads for torch (overrides the config); 1 is much faster when other jobs share the cores",
    )
    parser.add_argument(
        "--deterministic", action="store_true", help="use deterministic kernels (same result on every run)"
    )
    parser.add_argument("--resume", action="store_true", help="continue the run saved in OUTPUT_DIR/last.pt")
    parser.add_argument(
        "--overwrite", action="store_true", help="start afresh even if OUTPUT_DIR holds an earlier run"
    )


def run_overrides(args: argparse.Namespace, keys: tuple[str, ...] = OVERRIDDEN_KEYS) -> dict[str, Any]:
    """The ``--set`` overrides plus those of the options in ``keys`` and of --features / --deterministic."""
    overrides = parse_overrides(args.set)
    if args.features:
        overrides["features"] = (
            [str(p) for p in args.features] if len(args.features) > 1 else str(args.features[0])
        )
    for key in keys:
        value = getattr(args, key)
        if value is not None:
            overrides[key] = str(value) if isinstance(value, Path) else value
    if args.deterministic:
        overrides["deterministic"] = True
    return overrides
