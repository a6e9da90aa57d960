"""``convis correlate``, ``convis retrieval``, ``convis agreement`` and ``convis path``: their arguments; the
handlers are in :mod:`convis_tasks.cli.score_cmds`."""

from __future__ import annotations

import argparse

from convis_tasks import task_path
from convis_tasks.cli.common import concept_spec, lazy

ALLOW_UNPARSED_HELP = ("exit 0 even when every answer of a concept is unparsed (by default that is exit status 1, "
                       "after the results are printed)")


def _cmd_path(args: argparse.Namespace) -> int:
    print(task_path())
    return 0


def add_parsers(sub) -> None:
    """Register the scoring commands."""
    p = sub.add_parser("correlate", help="Spearman/Kendall of predictions against the human mean ratings")
    p.add_argument("predictions", help="release-format JSON, a submission, or lmms-eval --log_samples output (a "
                                       "folder, *_results.json or samples file; several runs of one model: each "
                                       "task from the newest run)")
    p.add_argument("--ground-truth", required=True,
                   help="ConVIS.jsonl, gt_conditioned_similarities.json or vicos.user_inputs.json")
    p.add_argument("--concept", default="all", type=concept_spec(),
                   help="a concept name (any spelling), a comma list, or 'all'")
    p.add_argument("--unparsed", choices=("neutral", "drop"), default="neutral",
                   help="score unparsed answers as 3.0 (the benchmark protocol) or leave them out")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--allow-unparsed", dest="allow_unparsed", action="store_true", help=ALLOW_UNPARSED_HELP)
    p.set_defaults(func=lazy("convis_tasks.cli.score_cmds:_cmd_correlate"))

    p = sub.add_parser("retrieval", help="R@1 / P@1 / F1@1 (top and bottom), Kendall tau and NDCG of retrieval")
    p.add_argument("predictions", help="release per-anchor score JSON, a submission, or lmms-eval --log_samples "
                                       "output (as for correlate)")
    p.add_argument("--ground-truth", required=True, help="human rankings: a JSON list of {anchor, <Concept>: {...}}")
    p.add_argument("--concept", default="all", type=concept_spec(),
                   help="a concept name (any spelling), a comma list, or 'all'")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--allow-unparsed", dest="allow_unparsed", action="store_true", help=ALLOW_UNPARSED_HELP)
    p.set_defaults(func=lazy("convis_tasks.cli.score_cmds:_cmd_retrieval"))

    p = sub.add_parser("agreement", help="Krippendorff's alpha (ordinal) of the raw ratings")
    p.add_argument("annotations", help="the raw ratings, vicos.user_inputs.json")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=lazy("convis_tasks.cli.score_cmds:_cmd_agreement"))

    p = sub.add_parser("path", help="print the task folder to pass to lmms-eval --include_path")
    p.set_defaults(func=_cmd_path)
