"""The ``convis report``, ``plot``, ``submit``, ``validate`` and ``score`` subcommands.

``add_commands(subparsers)`` registers them on the ``convis`` parser's subparsers. Each handler returns an exit
status: 0 on success, 1 when a submission fails validation, 2 on a usage or input error (printed as
``convis: error: ...``). Nothing here imports torch or lmms-eval; matplotlib only for ``convis plot``.
"""

from __future__ import annotations

import argparse

from convis_tasks.cli.common import concept_spec, counting_number, int_list, lazy

DEFAULT_SEED = 0  # = bootstrap.DEFAULT_SEED, repeated so that registering the commands imports no scipy
GT_HELP = "ConVIS.jsonl, gt_conditioned_similarities.json or the raw vicos.user_inputs.json (enables the human ceiling)"
INPUT_HELP = ("[LABEL=]PATH: an lmms-eval output folder (one run) or *_results.json, a samples .jsonl, a release "
              "answer file or a submission; inputs sharing a label are merged into one model")


def _add_input_arguments(p: argparse.ArgumentParser, inputs_required: bool = True) -> None:
    p.add_argument("inputs", nargs="+" if inputs_required else "*", metavar="INPUT", help=INPUT_HELP)
    p.add_argument("--label", action="append", help="a label per input, in order (instead of LABEL=PATH)")
    p.add_argument("--ground-truth", required=True, help=GT_HELP)
    p.add_argument("--concept", default="all", type=concept_spec(),
                   help="a concept name (any spelling), a comma list, or 'all'")


def add_parsers(subparsers) -> None:
    """Register ``report``, ``plot``, ``inspect``, ``submit``, ``validate`` and ``score`` on the ``convis`` subparsers.

    Imports nothing heavy: the handlers' module is imported when a command runs.
    """
    p = subparsers.add_parser("report", help="benchmark tables for several models side by side (Markdown, "
                                             "LaTeX, CSV), human ceiling, bootstrap intervals, composite")
    _add_input_arguments(p, inputs_required=False)
    p.add_argument("--rankings", help="human retrieval rankings (ranked.json) for the retrieval table")
    p.add_argument("--weights", help="composite similarity weights, e.g. main_action=0.4,location=0.6 "
                                     "(non-negative, summing to 1; concepts not named weigh 0)")
    p.add_argument("--unparsed", choices=("neutral", "drop"), default="neutral",
                   help="score unparsed answers as 3.0 (the benchmark protocol) or leave them out")
    p.add_argument("--no-ceiling", action="store_true", help="leave out the human-ceiling row and table")
    p.add_argument("--min-pairs", type=counting_number(1), default=3,
                   help="human ceiling: annotators need this many pairs also rated by others (default 3)")
    p.add_argument("--bootstrap", type=counting_number(0), default=0, metavar="B",
                   help="add 95%% bootstrap intervals and paired tests with B resamples (e.g. 1000; off by default)")
    p.add_argument("--seed", type=int, default=DEFAULT_SEED, help="bootstrap seed (default %(default)s)")
    p.add_argument("--compare", action="append", metavar="A:B",
                   help="paired bootstrap test of model A against model B (repeatable; default: the best model by "
                        "mean rho against each other)")
    p.add_argument("--latex", metavar="FILE", help="also write the tables as LaTeX (booktabs; best bold, second "
                                                    "underlined)")
    p.add_argument("--csv", metavar="FILE", help="also write every number, unrounded, as a tidy CSV")
    p.add_argument("--json", metavar="FILE", help="also write every number, unrounded, as JSON")
    p.add_argument("--release", metavar="DIR", help="the authors' release folder, for --release-model")
    p.add_argument("--release-model", action="append", metavar="NAME",
                   help="add a model of the authors' release (its five per-concept answer files); repeatable")
    p.set_defaults(func=lazy("convis_tasks.cli.report_cmds:_cmd_report"))

    plot = subparsers.add_parser("plot", help="PNG figures: bars, frames, concepts, scores")
    kinds = plot.add_subparsers(dest="kind", required=True, metavar="KIND")
    for kind, text in (("bars", "rho per concept per model (grouped bars), with the human LOAO level"),
                       ("frames", "rho vs frames per video, one line per model label"),
                       ("concepts", "inter-concept Spearman correlation of the human mean ratings"),
                       ("scores", "parsed model score vs human mean, one panel per concept")):
        p = kinds.add_parser(kind, help=text, description=text)
        if kind != "concepts":
            p.add_argument("inputs", nargs="*", metavar="INPUT", help=INPUT_HELP)
            p.add_argument("--label", action="append", help="a label per input, in order (instead of LABEL=PATH)")
            p.add_argument("--release", metavar="DIR", help="the authors' release folder, for --release-model")
            p.add_argument("--release-model", action="append", metavar="NAME", help="add a released model; repeatable")
        p.add_argument("--ground-truth", required=True, help=GT_HELP)
        p.add_argument("--concept", default="all", type=concept_spec(("mean",) if kind == "frames" else ()),
                       help="a concept name, a comma list, or 'all'" + (" (frames: 'all' plots the mean over the five)"
                                                                          if kind == "frames" else ""))
        p.add_argument("-o", "--output", required=True, metavar="FILE.png")
        p.add_argument("--title")
        if kind == "frames":
            p.add_argument("--frames", type=int_list, help="frames per video of each input, comma-separated, e.g. 4,8,16 "
                                            "(default: each run's frames_per_video)")
        if kind == "bars":
            p.add_argument("--bootstrap", type=counting_number(0), default=0, metavar="B",
                           help="95%% bootstrap error bars")
            p.add_argument("--seed", type=int, default=DEFAULT_SEED)
            p.add_argument("--no-ceiling", action="store_true", help="no human leave-one-annotator-out level")
        p.set_defaults(func=lazy("convis_tasks.cli.report_cmds:_cmd_plot"))

    p = subparsers.add_parser("inspect", help="one self-contained HTML page to look at a run pair by pair: frames, "
                                              "answers, human scores, residuals")
    p.add_argument("inputs", nargs="+", metavar="RUN", help="[LABEL=]RUN: an lmms-eval output folder, *_results.json "
                                                            "or samples .jsonl; one model per input")
    p.add_argument("--label", action="append", help="a label per input, in order (instead of LABEL=RUN)")
    p.add_argument("-o", "--output", required=True, metavar="PAGE.html")
    p.add_argument("--ground-truth", help="ConVIS.jsonl, gt_conditioned_similarities.json or the raw "
                                          "vicos.user_inputs.json (adds each pair's ratings and their spread); "
                                          "default: the human means the run logged with its answers")
    p.add_argument("--rankings", help="ranked.json: the human retrieval order (default: the ranks the run logged)")
    p.add_argument("--thumb-size", type=counting_number(8), default=96, metavar="PX",
                   help="longest side of a frame thumbnail in pixels (default %(default)s)")
    p.add_argument("--data-dir", help="the data folder holding the videos (default: $CONVIS_DATA_DIR, else the "
                                      "Hugging Face cache)")
    p.add_argument("--cache-dir", help="the pair-clip cache the run used (default: $CONVIS_CACHE_DIR, a clip_cache "
                                       "folder beside the run, ~/.cache/convis/clips)")
    p.add_argument("--bootstrap", type=counting_number(0), default=1000, metavar="B",
                   help="resamples of the 95%% intervals of rho and tau (default %(default)s; 0: none)")
    p.add_argument("--seed", type=int, default=DEFAULT_SEED, help="bootstrap seed (default %(default)s)")
    p.set_defaults(func=lazy("convis_tasks.cli.report_cmds:_cmd_inspect"))

    p = subparsers.add_parser("submit", help="build a leaderboard submission from an lmms-eval run (or the "
                                             "authors' release)")
    p.add_argument("run", nargs="*", metavar="OUTPUT_DIR",
                   help="lmms-eval output folders and/or *_results.json files of ONE model; several runs are "
                        "combined, each task from the newest run holding it (e.g. pair scoring and retrieval run "
                        "separately)")
    p.add_argument("-o", "--output", required=True, metavar="FILE", help="the submission JSON to write")
    p.add_argument("--from-release", metavar="DIR", help="convert the authors' released answers instead (the "
                                                         "release folder or its computed_conditioned_similarities)")
    p.add_argument("--model", help="with --from-release: the model folder name, e.g. LLaVA-OneVision-Qwen2-7B")
    p.add_argument("--name", help="model name (default: the run's pretrained= / model)")
    p.add_argument("--size", help="parameter count, e.g. 7B (default: read off the model name when it says)")
    p.add_argument("--frames", type=counting_number(1), help="frames per video (default: the run's frames_per_video)")
    p.add_argument("--prompt", help="prompt variant (default: the run's prompt)")
    p.add_argument("--harness", help="harness name (default: lmms-eval)")
    p.add_argument("--harness-version", help="harness version (default: the run's lmms_eval_version)")
    p.add_argument("--date", help="ISO date of the run (default: the run's date)")
    p.add_argument("--notes", help="free text kept in the metadata")
    p.set_defaults(func=lazy("convis_tasks.cli.report_cmds:_cmd_submit"))

    p = subparsers.add_parser("validate", help="check a leaderboard submission: schema, metadata, made on the "
                                               "published ConViS-Bench, every pair once per task")
    p.add_argument("submission")
    p.add_argument("--ground-truth", required=True, help=GT_HELP)
    p.add_argument("--rankings", help="ranked.json: also check the retrieval entries against the ranked sets")
    p.add_argument("--candidates", help="to_be_ranked.json: check the retrieval entries against the candidate sets")
    p.add_argument("--max-errors", type=counting_number(0), default=20, help="errors printed (default 20)")
    p.add_argument("--any-data", dest="leaderboard", action="store_false",
                   help="not a leaderboard submission: answers made on other data than the published ConViS-Bench "
                        "(the demo set, a subset, an edited pair file) and another --ground-truth are warnings, "
                        "not errors")
    p.add_argument("--json", action="store_true", help="print {ok, errors, warnings, summary, provenance, data}")
    p.set_defaults(func=lazy("convis_tasks.cli.report_cmds:_cmd_validate"))

    p = subparsers.add_parser("score", help="the leaderboard numbers of a submission")
    p.add_argument("submission")
    p.add_argument("--ground-truth", required=True, help=GT_HELP)
    p.add_argument("--rankings", help="ranked.json, to score the retrieval entries")
    p.add_argument("--no-validate", action="store_true", help="score even if validation fails")
    p.add_argument("--json", action="store_true", help="print lmms-eval-shaped results: {task: {metric: value}}")
    p.set_defaults(func=lazy("convis_tasks.cli.report_cmds:_cmd_score"))
