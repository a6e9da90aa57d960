"""The ``convis`` command: a thin layer over the library. One table of commands, one error -> exit-code map.

Each entry of :data:`COMMANDS` names the module that registers a group of subcommands (``add_parsers``); each
handler parses, calls the library and prints. Failures end with one actionable line last and the exit status the
error carries (:mod:`convis_tasks.errors`). Importing this package imports no command module, torch or lmms-eval:
a command's module is imported when the parser is built.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from convis_tasks.cli.common import run_command

#: module (under convis_tasks.cli) -> the commands it registers, in the order ``convis --help`` lists them
COMMANDS: dict[str, tuple[str, ...]] = {
    "score": ("correlate", "retrieval", "agreement", "path"),
    "run": ("run", "complete"),
    "doctor": ("doctor",),
    "demo": ("demo",),
    "data": ("data",),
    "report": ("report", "plot", "inspect", "submit", "validate", "score"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="convis", description="ConViS-Bench evaluation tools.")
    sub = parser.add_subparsers(dest="command", required=True)
    for module in COMMANDS:
        importlib.import_module(f"{__name__}.{module}").add_parsers(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one ``convis`` command; the exit codes are those of :mod:`convis_tasks.errors`."""
    args = build_parser().parse_args(argv)
    return run_command(args.func, args)


if __name__ == "__main__":
    sys.exit(main())
