"""The ``convis`` command: score predictions, measure annotator agreement, run the demo.

The scoring path imports neither torch nor lmms-eval.
"""

from __future__ import annotations

import argparse
import math
import sys
import warnings

from . import task_path
from .report.console import caught_messages, concept_spec, dumps, run_command, sample_size_warning, say
from .utils.concepts import CONCEPT_KEYS, CONCEPTS, get_concept, parse_concepts
from .utils.parsing import AMBIGUOUS, parse_answer
from .utils.safetext import terminal


CONCEPT_FREE = "concept-free"  # the "answers" marker of results computed from concept-free answers
GLOBAL_KEY = "global"  # where concept-free results go when the input also holds concept-conditioned answers


def _fmt(value: float, digits: int) -> str:
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"


TABLE_DIGITS = 2  # rho and tau alike


def _correlation_rows(results: dict[str, dict], lines: list[str], notes: list[str], digits: int) -> None:
    for key, r in results.items():
        title = get_concept(key).title + (" (concept-free answers)" if r.get("answers") == CONCEPT_FREE else "")
        lines.append(f"| {title} | {_fmt(r['spearman'], digits)} | {_fmt(r['kendall'], digits)} | {r['n']} "
                     f"| {r['unparsed']} |")
        if r.get("warning"):
            notes.append(r["warning"])


def correlation_table(results: dict[str, dict], digits: int = TABLE_DIGITS) -> str:
    """A Markdown table of rho/tau (x100, both with ``digits`` decimals), n and unparsed per concept.

    Rows of concept-free answers say so; those of an input that also has concept answers form a second table.
    Small-sample warnings follow as notes."""
    head = ["| concept | rho | tau | n | unparsed |", "|---|---:|---:|---:|---:|"]
    lines, notes = list(head), []
    _correlation_rows({k: v for k, v in results.items() if k != GLOBAL_KEY}, lines, notes, digits)
    if results.get(GLOBAL_KEY):
        lines += ["", "Concept-free answers (convis_global), correlated with each concept:", ""] + head
        _correlation_rows(results[GLOBAL_KEY], lines, notes, digits)
    lines += [f"\nWarning: {terminal(n)}" for n in notes]
    return "\n".join(lines)


def _score_concept(scores, reference, concept: str, unparsed: str, where: str) -> dict:
    from .utils.metrics import score_pairs

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = score_pairs(scores, reference, unparsed=unparsed).to_dict()
    for message in caught_messages(caught, concept):
        say(message)
    left_out = len(set(scores) ^ set(reference))
    if left_out:
        say(f"note: {concept}: {left_out} pair(s) present on one side only were left out")
    small = sample_size_warning(result["n"], f"{where}: {concept}")
    if small:
        result["warning"] = small
        say(f"warning: {small}")
    return result


def run_correlate(predictions_path: str, ground_truth: str, concepts: str | None = "all",
                  unparsed: str = "neutral") -> dict[str, dict]:
    """Correlate predictions with ground truth: ``{concept: {spearman, kendall, n, unparsed}}``.

    ``predictions_path``: a release answer file, an lmms-eval output folder / results file / samples file (the
    run-folder rule of :mod:`convis_tasks.report.runs`), or a submission. Concept-free answers are correlated
    with every concept and their entries carry ``"answers": "concept-free"``; when the input also holds concept
    answers they go under ``"global"``, never under a concept key. A row with n below the minimum carries
    ``"warning"``; n = 0 is an error.
    """
    from .report.inputs import load_path
    from .utils.annotations import load_ground_truth
    from .utils.predictions import PredictionError

    truth = load_ground_truth(ground_truth)
    item = load_path(predictions_path)
    for note in item.notes:
        say(note)
    predictions = item.predictions
    if predictions is None:
        raise PredictionError(f"{predictions_path} holds no pair-scoring predictions")
    requested = parse_concepts(concepts)
    explicit = concepts is not None and concepts.strip().lower() != "all"
    own = [c for c in CONCEPT_KEYS if c in predictions.scores]
    concept_free = predictions.scores.get(None)
    results: dict[str, dict] = {}
    for concept in requested:
        scores = predictions.scores.get(concept)
        if scores is None:
            if explicit and (own or concept_free is None):
                has = ", ".join(own) + (" and concept-free answers" if concept_free is not None else "")
                raise PredictionError(f"{predictions_path} holds no predictions for concept {concept} "
                                      f"(it has: {has or 'none'})")
            continue
        results[concept] = _score_concept(scores, truth.by_concept(concept), concept, unparsed, predictions_path)
    if concept_free is not None:
        shared = {}
        for concept in requested:
            shared[concept] = {**_score_concept(concept_free, truth.by_concept(concept), f"{concept} (concept-free)",
                                                unparsed, predictions_path), "answers": CONCEPT_FREE}
        if own:
            if shared:
                results[GLOBAL_KEY] = shared
        else:
            results.update(shared)
    if not results:
        raise PredictionError(f"{predictions_path} holds predictions for none of the requested concepts "
                              f"(it has: {', '.join(own) or 'none'})")
    return results


# --- issue #19 (parser): the ambiguous share of the unparsed answers, as a note under the table -------------
def ambiguous_note(predictions_path: str) -> str:
    """How many unparsed answers the parser calls ambiguous, per concept; '' for inputs without answer texts.

    The reasons are recomputed from the logged answer texts (:func:`convis_tasks.utils.parsing.parse_answer`)."""
    from .report.inputs import load_path

    predictions = load_path(predictions_path).predictions
    if predictions is None or not predictions.answers:
        return ""
    ambiguous, unparsed = {}, 0
    for concept, texts in predictions.answers.items():
        missing = [texts[k] for k, v in predictions.scores[concept].items() if v is None and k in texts]
        unparsed += len(missing)
        ambiguous[concept or CONCEPT_FREE] = sum(parse_answer(t).reason == AMBIGUOUS for t in missing)
    return (f"Note: {sum(ambiguous.values())} of the {unparsed} unparsed answers are ambiguous, with two values "
            f"that could be the answer (docs/parsing.md): {', '.join(f'{c} {n}' for c, n in ambiguous.items())}")
# --- end of issue #19 -----------------------------------------------------------------------------------------


def _cmd_correlate(args: argparse.Namespace) -> int:
    results = run_correlate(args.predictions, args.ground_truth, args.concept, args.unparsed)
    note = "" if args.json else ambiguous_note(args.predictions)
    print(dumps(results) if args.json else correlation_table(results) + (f"\n\n{note}" if note else ""))
    return 0


RETRIEVAL_COLUMNS = ("r@1", "p@1", "f1@1", "r@1_bottom", "p@1_bottom", "f1@1_bottom", "kendall", "ndcg")


def run_retrieval(predictions_path: str, rankings: str, concepts: str | None = "all") -> dict[str, dict]:
    """Retrieval metrics (x100) per concept of predictions against human rankings.

    The same input rules as :func:`run_correlate`: concept-free scores (the release's unconditioned baselines)
    are scored against every ranked concept and marked ``"answers": "concept-free"``; with concept scores
    present they go under ``"global"``. No complete anchor is an error."""
    from .report.inputs import load_path
    from .utils.concepts import RETRIEVAL_CONCEPT_KEYS
    from .utils.predictions import PredictionError
    from .utils.rankings import load_rankings
    from .utils.retrieval import evaluate_retrieval

    truth = load_rankings(rankings)
    item = load_path(predictions_path)
    for note in item.notes:
        say(note)
    predictions = item.retrieval
    if not predictions:
        raise PredictionError(f"{predictions_path} holds no retrieval predictions")
    requested = [c for c in parse_concepts(concepts) if c in RETRIEVAL_CONCEPT_KEYS]
    explicit = concepts is not None and concepts.strip().lower() != "all"
    own = [c for c in RETRIEVAL_CONCEPT_KEYS if c in predictions]

    def score(concept: str, scores: dict, marker: str) -> dict:
        result = evaluate_retrieval(truth[concept], scores)
        if result.excluded:
            say(f"warning: {concept}: {len(result.excluded)} anchor(s) without complete predictions were left out: "
                f"{', '.join(result.excluded[:5])}{' ...' if len(result.excluded) > 5 else ''}")
        out = result.to_dict()
        if marker == CONCEPT_FREE:
            out["answers"] = CONCEPT_FREE
        sample_size_warning(out["anchors"], f"{predictions_path}: {concept}", "complete anchors")  # 0: an error
        return out

    results: dict[str, dict] = {}
    for concept in requested:
        if concept not in predictions:
            if explicit and (own or None not in predictions):
                raise PredictionError(f"{predictions_path} holds no retrieval scores for concept {concept} "
                                      f"(it has: {', '.join(own) or 'none'})")
            continue
        if truth[concept]:
            results[concept] = score(concept, predictions[concept], "own")
    if None in predictions:
        shared = {c: score(c, predictions[None], CONCEPT_FREE) for c in requested if truth[c]}
        if own:
            if shared:
                results[GLOBAL_KEY] = shared
        else:
            results.update(shared)
    if not results:
        raise PredictionError(f"{predictions_path} holds retrieval scores for none of the requested concepts")
    return results


def _retrieval_rows(results: dict[str, dict], lines: list[str], notes: list[str]) -> None:
    for key, r in results.items():
        title = get_concept(key).title + (" (concept-free answers)" if r.get("answers") == CONCEPT_FREE else "")
        lines.append(f"| {title} | " + " | ".join(_fmt(r[c], 1) for c in RETRIEVAL_COLUMNS) + f" | {r['anchors']} |")
        rnd = r["random"]
        lines.append(f"| {get_concept(key).title} (random choice) | {_fmt(rnd['r@1'], 1)} | {_fmt(rnd['p@1'], 1)} "
                     f"| {_fmt(rnd['f1@1'], 1)} |" + " |" * (len(RETRIEVAL_COLUMNS) - 3) + f" {r['anchors']} |")
        if r.get("warning"):
            notes.append(r["warning"])


def retrieval_table(results: dict[str, dict]) -> str:
    """Markdown table: the model's row and the random-choice row per concept."""
    head = ["| concept | " + " | ".join(RETRIEVAL_COLUMNS) + " | anchors |",
            "|---|" + "---:|" * (len(RETRIEVAL_COLUMNS) + 1)]
    lines, notes = list(head), []
    _retrieval_rows({k: v for k, v in results.items() if k != GLOBAL_KEY}, lines, notes)
    if results.get(GLOBAL_KEY):
        lines += ["", "Concept-free scores, against each concept's rankings:", ""] + head
        _retrieval_rows(results[GLOBAL_KEY], lines, notes)
    lines += [f"\nWarning: {terminal(n)}" for n in notes]
    return "\n".join(lines)


def _cmd_retrieval(args: argparse.Namespace) -> int:
    results = run_retrieval(args.predictions, args.ground_truth, args.concept)
    print(dumps(results) if args.json else retrieval_table(results))
    return 0


def _cmd_agreement(args: argparse.Namespace) -> int:
    from .utils.agreement import agreement
    from .utils.annotations import AnnotationError, load_ratings

    ratings = load_ratings(args.annotations)
    try:
        with warnings.catch_warnings():  # krippendorff divides 0 by 0 for constant ratings: said below, once
            warnings.simplefilter("ignore", RuntimeWarning)
            report = agreement(ratings)
    except (ValueError, ZeroDivisionError) as exc:  # krippendorff's own errors, translated
        raise AnnotationError(f"{args.annotations}: Krippendorff's alpha cannot be computed ({exc}); it needs at "
                              "least one pair rated by two annotators, with more than one distinct rating") from None
    undefined = [c for c, a in report.alpha.items() if not math.isfinite(a)]
    for concept in undefined:
        say(f"warning: {concept}: Krippendorff's alpha is undefined for these ratings (null in JSON, '-' in tables)")
    if args.json:
        print(dumps(report.to_dict()))
        return 0
    print("| concept | Krippendorff's alpha (ordinal) |\n|---|---:|")
    for concept in CONCEPTS:
        print(f"| {concept.title} | {_fmt(report.alpha[concept.key], 3)} |")
    print(f"\n{report.annotators} annotators, {report.pairs} pairs, "
          f"{report.ratings_per_pair:.2f} ratings per pair")
    return 0


def _cmd_path(args: argparse.Namespace) -> int:
    print(task_path())
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="convis", description="ConViS-Bench evaluation tools.")
    sub = parser.add_subparsers(dest="command", required=True)

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
    p.set_defaults(func=_cmd_correlate)

    p = sub.add_parser("retrieval", help="R@1 / P@1 / F1@1 (top and bottom), Kendall tau and NDCG of retrieval")
    p.add_argument("predictions", help="release per-anchor score JSON, a submission, or lmms-eval --log_samples "
                                       "output (as for correlate)")
    p.add_argument("--ground-truth", required=True, help="human rankings: a JSON list of {anchor, <Concept>: {...}}")
    p.add_argument("--concept", default="all", type=concept_spec(),
                   help="a concept name (any spelling), a comma list, or 'all'")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=_cmd_retrieval)

    p = sub.add_parser("agreement", help="Krippendorff's alpha (ordinal) of the raw ratings")
    p.add_argument("annotations", help="the raw ratings, vicos.user_inputs.json")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_cmd_agreement)

    p = sub.add_parser("path", help="print the task folder to pass to lmms-eval --include_path")
    p.set_defaults(func=_cmd_path)

    from . import demo, doctor, run

    run.add_parser(sub)  # run, doctor and demo live in their own modules
    doctor.add_parser(sub)
    demo.add_parser(sub)

    from .report.commands import add_commands

    add_commands(sub)  # report, plot, submit, validate, score
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one ``convis`` command; the exit codes are those of :mod:`convis_tasks.report.console`."""
    args = build_parser().parse_args(argv)
    return run_command(args.func, args)


if __name__ == "__main__":
    sys.exit(main())
