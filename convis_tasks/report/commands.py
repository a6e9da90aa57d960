"""The ``convis report``, ``plot``, ``inspect``, ``submit``, ``validate`` and ``score`` subcommands.

``add_commands(subparsers)`` registers them on the ``convis`` parser's subparsers. Each handler returns an exit
status: 0 on success, 1 when a submission fails validation, 2 on a usage or input error (printed as
``convis: error: ...``). Nothing here imports torch or lmms-eval; matplotlib only for ``convis plot``.
"""

from __future__ import annotations

import argparse
import functools
import os
import time

from ..utils.safetext import terminal
from .console import caught_messages, concept_spec, counting_number, dumps, int_list, run_command, say

DEFAULT_SEED = 0  # = bootstrap.DEFAULT_SEED, repeated so that registering the commands imports no scipy
GT_HELP = "ConVIS.jsonl, gt_conditioned_similarities.json or the raw vicos.user_inputs.json (enables the human ceiling)"
INPUT_HELP = ("[LABEL=]PATH: an lmms-eval output folder (one run) or *_results.json, a samples .jsonl, a release "
              "answer file or a submission; inputs sharing a label are merged into one model")


def _say(message: str) -> None:
    say(message)


def _guard(func):
    """Run a handler under :func:`.console.run_command`: input errors become ``convis: error: ...`` (status 2)."""

    @functools.wraps(func)
    def run(args: argparse.Namespace) -> int:
        return run_command(func, args)

    return run


def check_output_path(path: str) -> str:
    """An output file's folder must exist: nothing is created silently (a typo in -o would scatter folders)."""
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"{path}: the folder {folder} does not exist; create it first (mkdir -p {folder})")
    if os.path.isdir(path):
        raise IsADirectoryError(f"{path}: is a folder; give a file name")
    return path


def _write(path: str, text: str) -> None:
    check_output_path(path)
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(text)


def _load_truth(path: str):
    from ..utils.annotations import load_ground_truth

    return load_ground_truth(path)


def _load_rankings(path: str | None):
    if not path:
        return None
    from ..utils.rankings import load_rankings

    return load_rankings(path)


def _parse_compare(values: list[str] | None, labels: list[str]) -> list[tuple[str, str]] | None:
    if not values:
        return None
    out = []
    for value in values:
        splits = [(value[:i], value[i + 1:]) for i, ch in enumerate(value) if ch == ":"]
        match = next(((a, b) for a, b in splits if a in labels and b in labels), None)
        if match is None:
            if not splits:
                raise ValueError(f"--compare {value!r}: expected A:B (two model labels)")
            match = splits[0]
        out.append(match)
    return out


def _inputs(args: argparse.Namespace, merge: bool = True):
    from .inputs import load_inputs, load_release_model

    items = load_inputs(list(args.inputs or []), args.label, merge=merge) if args.inputs else []
    for model in getattr(args, "release_model", None) or []:
        if not args.release:
            raise ValueError("--release-model needs --release DIR (the authors' release folder)")
        items.append(load_release_model(args.release, model))
    if not items:
        raise ValueError("no inputs: give at least one [LABEL=]PATH (or --release DIR --release-model NAME)")
    for item in items:
        for note in item.notes:
            _say(note)
    return items


# --- report ------------------------------------------------------------------------------------------------------

@_guard
def _cmd_report(args: argparse.Namespace) -> int:
    from ..utils.concepts import parse_concepts
    from .build import ReportOptions, build_report
    from .composite import parse_weights
    from .tables import to_csv, to_latex, to_markdown

    start = time.perf_counter()
    for path in (args.latex, args.csv, args.json):
        if path:
            check_output_path(path)  # before any work: a wrong folder must not cost the computation
    weights = parse_weights(args.weights)
    truth = _load_truth(args.ground_truth)
    rankings = _load_rankings(args.rankings)
    if args.compare and not args.bootstrap:
        raise ValueError("--compare is a paired bootstrap test: give --bootstrap B too (e.g. --bootstrap 1000)")
    items = _inputs(args)
    options = ReportOptions(concepts=parse_concepts(args.concept), weights=weights, unparsed=args.unparsed,
                            ceiling=not args.no_ceiling, min_pairs=args.min_pairs, bootstrap=args.bootstrap,
                            seed=args.seed, compare=_parse_compare(args.compare, [i.label for i in items]))
    report = build_report(items, truth, rankings, options)
    for message in report.messages:
        _say(message)
    print(to_markdown(report.tables), end="")
    if args.latex:
        _write(args.latex, to_latex(report.tables))
    if args.csv:
        _write(args.csv, to_csv(report.tables))
    if args.json:
        _write(args.json, dumps(report.data, indent=1) + "\n")
    if args.bootstrap:
        _say(f"report with bootstrap B={args.bootstrap} took {time.perf_counter() - start:.2f} s")
    return 0


def _add_input_arguments(p: argparse.ArgumentParser, inputs_required: bool = True) -> None:
    p.add_argument("inputs", nargs="+" if inputs_required else "*", metavar="INPUT", help=INPUT_HELP)
    p.add_argument("--label", action="append", help="a label per input, in order (instead of LABEL=PATH)")
    p.add_argument("--ground-truth", required=True, help=GT_HELP)
    p.add_argument("--concept", default="all", type=concept_spec(),
                   help="a concept name (any spelling), a comma list, or 'all'")


# --- plot ----------------------------------------------------------------------------------------------------------

@_guard
def _cmd_plot(args: argparse.Namespace) -> int:
    from ..utils.concepts import CONCEPT_KEYS, canonical_concept, parse_concepts
    from . import plots

    truth = _load_truth(args.ground_truth)
    concepts = parse_concepts(args.concept)
    if not args.output.lower().endswith(".png"):
        raise ValueError(f"-o {args.output}: plots are written as PNG; give a FILE.png")
    check_output_path(args.output)
    if args.kind == "concepts":
        plots.plot_concept_matrix(truth, args.output, concepts, title=args.title)
    elif args.kind == "bars":
        items = _inputs(args)
        _check_plot_samples(items, truth, concepts)
        ceiling = None
        if truth.ratings and not args.no_ceiling:
            from .ceiling import human_ceiling

            result = human_ceiling(truth.ratings, concepts, with_alpha=False)
            ceiling = {c: e.spearman for c, e in result.entries.items()}
            if len(concepts) > 1:
                ceiling["mean"] = sum(ceiling[c] for c in concepts) / len(concepts)
        plots.plot_bars(items, truth, args.output, concepts, bootstrap=args.bootstrap, seed=args.seed,
                        ceiling=ceiling, title=args.title)
    elif args.kind == "frames":
        items = _inputs(args, merge=False)
        _check_plot_samples(items, truth, list(CONCEPT_KEYS) if args.concept.strip().lower() in ("all", "mean")
                            else [canonical_concept(args.concept)])
        frames = args.frames
        concept = "mean" if args.concept.strip().lower() in ("all", "mean") else canonical_concept(args.concept)
        plots.plot_frames(items, truth, args.output, frames, concept, title=args.title)
    elif args.kind == "scores":
        items = _inputs(args)
        _check_plot_samples(items, truth, concepts)
        plots.plot_score_distribution(items, truth, args.output, concepts, title=args.title)
    print(terminal(args.output))
    return 0


def _check_plot_samples(items, truth, concepts) -> None:
    """n = 0 stops the plot (an empty bar is not a result); a small n is a warning on stderr."""
    from .console import sample_size_warning
    from .plots import sample_sizes

    for label, concept, n in sample_sizes(items, truth, list(concepts)):
        small = sample_size_warning(n, f"{label}: {concept}")
        if small:
            _say(f"warning: {small}")


# --- submissions -------------------------------------------------------------------------------------------------

@_guard
def _cmd_submit(args: argparse.Namespace) -> int:
    from .submission import build_from_release, build_from_run, write_submission

    overrides = {"name": args.name, "size": args.size, "frames_per_video": args.frames, "prompt": args.prompt,
                 "harness": args.harness, "harness_version": args.harness_version, "date": args.date,
                 "notes": args.notes}
    messages: list[str] = []
    check_output_path(args.output)
    if args.from_release:
        if args.run:
            raise ValueError("give either an lmms-eval OUTPUT_DIR or --from-release DIR, not both")
        if not args.model:
            raise ValueError("--from-release needs --model NAME (a model folder of the release)")
        doc = build_from_release(args.from_release, args.model, overrides, messages)
    else:
        if not args.run:
            raise ValueError("give the lmms-eval OUTPUT_DIR (or *_results.json) to submit, or --from-release DIR")
        doc = build_from_run(args.run, overrides, messages)  # the run-folder rule: one model, newest run per task
    for message in messages:
        _say(message)
    write_submission(doc, args.output)
    tasks = sorted({e["task"] for e in doc["pairs"]} | {e["task"] for e in doc.get("retrieval", [])})
    print(terminal(f"wrote {args.output}: {doc['metadata']['name']}, {len(doc['pairs'])} pair answers"
                   + (f", {len(doc['retrieval'])} retrieval answers" if doc.get("retrieval") else "")
                   + f" ({', '.join(tasks)})"))
    return 0


def _print_validation(result, max_errors: int) -> None:
    for message in result.errors[:max_errors]:
        print(terminal(f"ERROR {message}"))
    if len(result.errors) > max_errors:
        print(f"... and {len(result.errors) - max_errors} more error(s)")
    for message in result.warnings:
        print(terminal(f"warning: {message}"))


@_guard
def _cmd_validate(args: argparse.Namespace) -> int:
    from .submission import load_submission, validate

    doc = load_submission(args.submission)
    candidates = None
    if args.candidates:
        from ..utils.rankings import load_candidate_sets

        candidates = load_candidate_sets(args.candidates)
    result = validate(doc, _load_truth(args.ground_truth), _load_rankings(args.rankings), candidates)
    if args.json:
        print(dumps({"ok": result.ok, "errors": result.errors, "warnings": result.warnings,
                     "summary": result.summary, "provenance": (doc.get("metadata") or {}).get("provenance")
                     if isinstance(doc.get("metadata"), dict) else None}))
    else:
        _print_validation(result, args.max_errors)
        if result.ok:
            print(terminal(f"provenance: {result.provenance}"))
            print(terminal(result.summary))
        else:
            print(f"INVALID: {len(result.errors)} error(s) in {args.submission}")
    return 0 if result.ok else 1


@_guard
def _cmd_score(args: argparse.Namespace) -> int:
    import warnings

    from .build import ReportOptions, build_report
    from .inputs import ReportInput
    from .submission import load_submission, score_submission, submission_predictions, validate
    from .tables import to_markdown

    doc = load_submission(args.submission)
    truth = _load_truth(args.ground_truth)
    rankings = _load_rankings(args.rankings)
    if not args.no_validate:
        result = validate(doc, truth, rankings)
        if not result.ok:
            _print_validation(result, 20)
            print(f"INVALID: {len(result.errors)} error(s); not scored (--no-validate scores it anyway)")
            return 1
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        scores = score_submission(doc, truth, rankings)
    for message in caught_messages(caught, args.submission):
        _say(message)
    for entry in scores.values():
        if entry.get("warning"):
            _say(f"warning: {entry['warning']}")
    if args.json:
        print(dumps(scores))
        return 0
    pairs, retrieval = submission_predictions(doc, args.submission)
    meta = doc.get("metadata") or {}
    item = ReportInput(str(meta.get("name") or "submission"), [args.submission], pairs, retrieval, meta)
    report = build_report([item], truth, rankings, ReportOptions(ceiling=False))
    print(to_markdown(report.tables), end="")
    return 0


# --- inspect -------------------------------------------------------------------------------------------------------

@_guard
def _cmd_inspect(args: argparse.Namespace) -> int:
    from .inspect_data import gather
    from .inspect_frames import FrameFinder, cache_folders, collect_strips
    from .inspect_page import frame_counts, render_page

    start = time.perf_counter()
    check_output_path(args.output)
    data = gather(list(args.inputs), args.label, args.ground_truth, args.rankings, args.bootstrap, args.seed)
    for model in data.models:
        for note in model.notes:
            _say(note)
    for message in data.messages:
        _say(f"warning: {message}")
    gathered = time.perf_counter()
    paths = [p.split("=", 1)[1] if not os.path.exists(p) and "=" in p else p for p in args.inputs]
    finder = FrameFinder(args.data_dir, cache_folders(args.cache_dir, paths), args.thumb_size)
    strips = collect_strips(data, finder)
    framed = time.perf_counter()
    page = render_page(data, strips, args.thumb_size, list(args.inputs))
    _write(args.output, page)
    counts = frame_counts({id(s): s for s in strips.values()})
    size = os.path.getsize(args.output)
    thumbs = sum(s.bytes for s in {id(s): s for s in strips.values()}.values())
    done = time.perf_counter()
    print(terminal(f"wrote {args.output}: {size / 1e6:.2f} MB ({thumbs / 1e6:.2f} MB of thumbnails), "
                   f"{len(data.pairs)} pairs, {len(data.anchors)} retrieval anchors; frames: "
                   f"{counts['clip cache']} from the clip cache, {counts['source videos']} from the source videos, "
                   f"{counts['unavailable']} unavailable; {done - start:.2f} s (answers {gathered - start:.2f} s, "
                   f"frames {framed - gathered:.2f} s, page {done - framed:.2f} s)"))
    if counts["unavailable"]:
        reason = next(s.detail for s in strips.values() if s.source == "unavailable")
        _say(f"warning: {counts['unavailable']} frame strip(s) unavailable, e.g.: {reason}")
    return 0


# --- registration ------------------------------------------------------------------------------------------------

def add_commands(subparsers) -> None:
    """Register ``report``, ``plot``, ``inspect``, ``submit``, ``validate`` and ``score`` on the ``convis``
    subparsers.

    Imports nothing heavy: every handler imports what it needs when it runs.
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
    p.set_defaults(func=_cmd_report)

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
        p.set_defaults(func=_cmd_plot)

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
    p.set_defaults(func=_cmd_inspect)

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
    p.set_defaults(func=_cmd_submit)

    p = subparsers.add_parser("validate", help="check a submission: schema, metadata, every pair once per task")
    p.add_argument("submission")
    p.add_argument("--ground-truth", required=True, help=GT_HELP)
    p.add_argument("--rankings", help="ranked.json: also check the retrieval entries against the ranked sets")
    p.add_argument("--candidates", help="to_be_ranked.json: check the retrieval entries against the candidate sets")
    p.add_argument("--max-errors", type=counting_number(0), default=20, help="errors printed (default 20)")
    p.add_argument("--json", action="store_true", help="print {ok, errors, warnings, summary}")
    p.set_defaults(func=_cmd_validate)

    p = subparsers.add_parser("score", help="the leaderboard numbers of a submission")
    p.add_argument("submission")
    p.add_argument("--ground-truth", required=True, help=GT_HELP)
    p.add_argument("--rankings", help="ranked.json, to score the retrieval entries")
    p.add_argument("--no-validate", action="store_true", help="score even if validation fails")
    p.add_argument("--json", action="store_true", help="print lmms-eval-shaped results: {task: {metric: value}}")
    p.set_defaults(func=_cmd_score)
