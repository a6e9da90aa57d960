"""``convis demo``: its arguments; the demo is :mod:`convis_tasks.harness.demo`."""

from __future__ import annotations

from convis_tasks.cli.common import lazy


def add_parsers(subparsers) -> None:
    p = subparsers.add_parser("demo", help="run the real lmms-eval CLI on the bundled synthetic set and print the "
                                           "tables")
    p.add_argument("--output", help="keep the run in a new sub-folder of this folder (default: a temporary folder, "
                                    "removed after a successful run)")
    p.add_argument("--model", default=None,
                   help="an lmms-eval model name (default: EfficientNet-Lite0 frame-embedding similarity; "
                        "convis_colour_histogram needs no weights at all)")
    p.add_argument("--model-args", "--model_args", dest="model_args", default=None,
                   help="passed to lmms-eval --model_args")
    p.set_defaults(func=lazy("convis_tasks.harness.demo:demo_main"))
