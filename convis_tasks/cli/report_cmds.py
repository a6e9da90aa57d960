"""The handlers of ``convis report``, ``plot``, ``submit``, ``validate`` and ``score`` (registered, without importing
this module, by :mod:`convis_tasks.cli.report`)."""

from __future__ import annotations

import argparse
import functools
import os
import time

from convis_tasks.cli.common import run_command, say
from convis_tasks.report.inspect_data import gather
from convis_tasks.report.inspect_frames import FrameFinder, cache_folders, collect_strips
from convis_tasks.report.inspect_page import frame_counts, render_page
from convis_tasks.errors import InputError
from convis_tasks.reading.jsonio import dumps
from convis_tasks.safetext import terminal
from convis_tasks.scoring.samplesize import caught_messages
from convis_tasks.concepts import CONCEPT_KEYS, canonical_concept, parse_concepts
from convis_tasks.reading.annotations import load_ground_truth
from convis_tasks.reading.inputs import ReportInput, load_inputs, load_release_model
from convis_tasks.reading.rankings import load_candidate_sets, load_rankings
from convis_tasks.report import plots
from convis_tasks.report.build import ReportOptions, build_report
from convis_tasks.report.plots import sample_sizes
from convis_tasks.report.submission import (build_from_release, build_from_run, load_submission, score_submission,
                                            submission_predictions, validate, write_submission)
from convis_tasks.report.tables import to_csv, to_latex, to_markdown
from convis_tasks.scoring.ceiling import human_ceiling
from convis_tasks.scoring.composite import parse_weights
from convis_tasks.scoring.samplesize import sample_size_warning


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

    return load_ground_truth(path)


def _load_rankings(path: str | None):
    if not path:
        return None

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
                raise InputError(f"--compare {value!r}: expected A:B (two model labels)")
            match = splits[0]
        out.append(match)
    return out


def _inputs(args: argparse.Namespace, merge: bool = True):

    items = load_inputs(list(args.inputs or []), args.label, merge=merge) if args.inputs else []
    for model in getattr(args, "release_model", None) or []:
        if not args.release:
            raise InputError("--release-model needs --release DIR (the authors' release folder)")
        items.append(load_release_model(args.release, model))
    if not items:
        raise InputError("no inputs: give at least one [LABEL=]PATH (or --release DIR --release-model NAME)")
    for item in items:
        for note in item.notes:
            _say(note)
    return items


# --- report ------------------------------------------------------------------------------------------------------

@_guard
def _cmd_report(args: argparse.Namespace) -> int:

    start = time.perf_counter()
    for path in (args.latex, args.csv, args.json):
        if path:
            check_output_path(path)  # before any work: a wrong folder must not cost the computation
    weights = parse_weights(args.weights)
    truth = _load_truth(args.ground_truth)
    rankings = _load_rankings(args.rankings)
    if args.compare and not args.bootstrap:
        raise InputError("--compare is a paired bootstrap test: give --bootstrap B too (e.g. --bootstrap 1000)")
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


@_guard
def _cmd_plot(args: argparse.Namespace) -> int:

    truth = _load_truth(args.ground_truth)
    concepts = parse_concepts(args.concept)
    if not args.output.lower().endswith(".png"):
        raise InputError(f"-o {args.output}: plots are written as PNG; give a FILE.png")
    check_output_path(args.output)
    if args.kind == "concepts":
        plots.plot_concept_matrix(truth, args.output, concepts, title=args.title)
    elif args.kind == "bars":
        items = _inputs(args)
        _check_plot_samples(items, truth, concepts)
        ceiling = None
        if truth.ratings and not args.no_ceiling:

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

    for label, concept, n in sample_sizes(items, truth, list(concepts)):
        small = sample_size_warning(n, f"{label}: {concept}")
        if small:
            _say(f"warning: {small}")


# --- submissions -------------------------------------------------------------------------------------------------

@_guard
def _cmd_submit(args: argparse.Namespace) -> int:

    overrides = {"name": args.name, "size": args.size, "frames_per_video": args.frames, "prompt": args.prompt,
                 "harness": args.harness, "harness_version": args.harness_version, "date": args.date,
                 "notes": args.notes}
    messages: list[str] = []
    check_output_path(args.output)
    if args.from_release:
        if args.run:
            raise InputError("give either an lmms-eval OUTPUT_DIR or --from-release DIR, not both")
        if not args.model:
            raise InputError("--from-release needs --model NAME (a model folder of the release)")
        doc = build_from_release(args.from_release, args.model, overrides, messages)
    else:
        if not args.run:
            raise InputError("give the lmms-eval OUTPUT_DIR (or *_results.json) to submit, or --from-release DIR")
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

    doc = load_submission(args.submission)
    candidates = None
    if args.candidates:

        candidates = load_candidate_sets(args.candidates)
    result = validate(doc, _load_truth(args.ground_truth), _load_rankings(args.rankings), candidates,
                      leaderboard=args.leaderboard)
    meta = doc.get("metadata") if isinstance(doc.get("metadata"), dict) else {}
    if args.json:
        print(dumps({"ok": result.ok, "errors": result.errors, "warnings": result.warnings,
                     "summary": result.summary, "provenance": meta.get("provenance") if meta else None,
                     "data": meta.get("data_identity")}))
    else:
        _print_validation(result, args.max_errors)
        if result.ok:
            print(terminal(f"data: {result.data}"))
            print(terminal(f"provenance: {result.provenance}"))
            print(terminal(result.summary))
        else:
            print(f"INVALID: {len(result.errors)} error(s) in {args.submission}")
    return 0 if result.ok else 1


@_guard
def _cmd_score(args: argparse.Namespace) -> int:
    import warnings


    doc = load_submission(args.submission)
    truth = _load_truth(args.ground_truth)
    rankings = _load_rankings(args.rankings)
    if not args.no_validate:
        result = validate(doc, truth, rankings, leaderboard=False)  # the tables say which data (report notes)
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


# --- registration ------------------------------------------------------------------------------------------------


@_guard
def _cmd_inspect(args: argparse.Namespace) -> int:
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
