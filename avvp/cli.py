"""The ``avvp`` command: one subcommand per pipeline stage (see ``avvp --help``)."""

from __future__ import annotations

import argparse
import importlib
import logging
import pkgutil
import sys
from collections.abc import Sequence
from types import ModuleType

from avvp import __version__, commands
from avvp.errors import InputError


def command_modules() -> list[ModuleType]:
    """Every module of :mod:`avvp.commands`, sorted by name.

    Each defines ``add_parser(subparsers) -> ArgumentParser`` and ``run(args) -> int``; adding a stage
    means adding a module there, nothing else.
    """
    names = sorted(info.name for info in pkgutil.iter_modules(commands.__path__))
    return [importlib.import_module(f"{commands.__name__}.{name}") for name in names]


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with every subcommand registered."""
    parser = argparse.ArgumentParser(
        prog="avvp",
        description=(
            "Weakly-supervised audio-visual video parsing on LLP: fetch annotations, extract or import "
            "features, train parsing models, predict, and evaluate with the exact LLP protocol. "
            "Run 'avvp <command> --help' for the options of one stage."
        ),
    )
    parser.add_argument("--version", action="version", version=f"avvp {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debugging detail")
    subparsers = parser.add_subparsers(dest="command", metavar="<command>", required=True)
    for module in command_modules():
        module.add_parser(subparsers).set_defaults(run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` and run the chosen subcommand; return the process exit code."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        return args.run(args)
    except InputError as err:
        print(f"avvp {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
