"""The ``avvp`` command: one subcommand per pipeline stage (see ``avvp --help``)."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from avvp import __version__
from avvp.commands import COMMANDS, module_name
from avvp.errors import INTERRUPTED_EXIT_CODE, InputError, os_error_line
from avvp.interrupts import stop_on_ctrl_c


def chosen_command(argv: Sequence[str]) -> str | None:
    """The command named in ``argv`` (its first word that is not an option), if it is a known one."""
    word = next((arg for arg in argv if not arg.startswith("-")), None)
    return word if word in COMMANDS else None


def build_parser(argv: Sequence[str] = ()) -> argparse.ArgumentParser:
    """The top-level parser; only the command named in ``argv`` is imported and gets its full options.

    Every other command is listed with its help (from :data:`avvp.commands.COMMANDS`) without importing its
    module, so ``avvp --help`` and light commands start without loading torch.
    """
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
    chosen = chosen_command(argv)
    for name, help_text in COMMANDS.items():
        if name == chosen:
            module = importlib.import_module(module_name(name))
            module.add_parser(subparsers).set_defaults(run=module.run)
        else:
            subparsers.add_parser(name, help=help_text)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` and run the chosen subcommand; return the process exit code: 0 on success, 2 for
    bad input, 1 when the system refuses (full disk, read-only file system), 130 on Ctrl-C. Each failure
    is one line on stderr, without a traceback (temporary files are removed on the way out)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser(argv).parse_args(argv)
    stop_on_ctrl_c()
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        return args.run(args)
    except InputError as err:
        print(f"avvp {args.command}: error: {err}", file=sys.stderr)
        return 2
    except OSError as err:
        print(f"avvp {args.command}: error: {os_error_line(err)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"avvp {args.command}: interrupted", file=sys.stderr)
        return INTERRUPTED_EXIT_CODE


if __name__ == "__main__":
    sys.exit(main())
