"""``convis run`` (its own parser, :func:`convis_tasks.harness.run.build_run_parser`, reads the arguments, so
lmms-eval's options pass through unchanged) and ``convis complete`` (:mod:`convis_tasks.harness.predict_only`)."""

from __future__ import annotations

import argparse

from convis_tasks.cli.common import lazy


def add_parsers(subparsers) -> None:
    """Register ``convis run``; its own parser reads the arguments, so lmms-eval's options pass through."""
    p = subparsers.add_parser("run", add_help=False, prefix_chars="\x00",
                              help="check inputs, run lmms-eval on ConViS tasks, print the tables "
                                   "(`convis run --help`)")
    p.add_argument("run_args", nargs=argparse.REMAINDER)
    p.set_defaults(func=lazy("convis_tasks.harness.run:run_command_line"))

    p = subparsers.add_parser("complete", help="add the ConViS records to the samples of an `lmms-eval "
                                               "--predict_only` run, so that it can be scored")
    p.add_argument("folder", help="the run's --output_path folder (or the folder of its samples files)")
    p.add_argument("--include_path", "--include-path", dest="include_path", default=None,
                   help="the task folder the run used, when not the ConViS one")
    p.set_defaults(func=lazy("convis_tasks.harness.predict_only:complete_command"))
