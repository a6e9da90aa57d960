"""``convis doctor``: its arguments; the checks are :mod:`convis_tasks.harness.doctor`'s."""

from __future__ import annotations

from convis_tasks.cli.common import lazy


def add_parsers(subparsers) -> None:
    p = subparsers.add_parser("doctor", help="what determines ConViS numbers on this machine, and what is wrong")
    p.add_argument("--model", default=None, help="also check that this lmms-eval model can be loaded here")
    p.add_argument("--model_args", "--model-args", dest="model_args", default=None,
                   help="its --model_args (for convis_resumable: inner=...)")
    p.set_defaults(func=lazy("convis_tasks.harness.doctor:doctor_command"))
