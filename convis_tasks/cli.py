"""The ``convis`` command: score predictions, measure annotator agreement, run the demo.

The scoring path imports neither torch nor lmms-eval.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import warnings

from . import task_path
from .utils.concepts import CONCEPTS, get_concept, parse_concepts


def _json_number(value: float):
    return None if isinstance(value, float) and math.isnan(value) else value


def _fmt(value: float, digits: int) -> str:
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"


def correlation_table(results: dict[str, dict]) -> str:
    """A Markdown table of rho/tau per concept (rho 1 decimal, tau 2, as in the paper)."""
    lines = ["| concept | rho | tau | n | unparsed |", "|---|---:|---:|---:|---:|"]
    for key, r in results.items():
        lines.append(f"| {get_concept(key).title} | {_fmt(r['spearman'], 1)} | {_fmt(r['kendall'], 2)} "
                     f"| {r['n']} | {r['unparsed']} |")
    return "\n".join(lines)


def run_correlate(predictions_path: str, ground_truth: str, concepts: str | None = "all",
                  unparsed: str = "neutral") -> dict[str, dict]:
    """Correlate a predictions file/folder with ground truth; returns ``{concept: {spearman, kendall, n, unparsed}}``."""
    from .utils.annotations import load_ground_truth
    from .utils.metrics import ConstantInputWarning, score_pairs
    from .utils.predictions import PredictionError, load_predictions

    truth = load_ground_truth(ground_truth)
    predictions = load_predictions(predictions_path)
    requested = parse_concepts(concepts)
    explicit = concepts is not None and concepts.strip().lower() != "all"
    results: dict[str, dict] = {}
    for concept in requested:
        scores = predictions.for_concept(concept)
        if scores is None:
            if explicit:
                raise PredictionError(f"{predictions_path} holds no predictions for concept {concept} "
                                      f"(it has: {', '.join(str(k) for k in predictions.scores)})")
            continue
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ConstantInputWarning)
            result = score_pairs(scores, truth.by_concept(concept), unparsed=unparsed)
        for w in caught:
            print(f"convis: warning: {concept}: {w.message}", file=sys.stderr)
        left_out = len(set(scores) ^ set(truth.by_concept(concept)))
        if left_out:
            print(f"convis: note: {concept}: {left_out} pair(s) present on one side only were left out",
                  file=sys.stderr)
        results[concept] = result.to_dict()
    if not results:
        raise PredictionError(f"{predictions_path} holds predictions for none of the requested concepts")
    return results


def _cmd_correlate(args: argparse.Namespace) -> int:
    results = run_correlate(args.predictions, args.ground_truth, args.concept, args.unparsed)
    if args.json:
        print(json.dumps(_json_clean(results)))
    else:
        print(correlation_table(results))
    return 0


RETRIEVAL_COLUMNS = ("r@1", "p@1", "f1@1", "r@1_bottom", "p@1_bottom", "f1@1_bottom", "kendall", "ndcg")


def run_retrieval(predictions_path: str, rankings: str, concepts: str | None = "all") -> dict[str, dict]:
    """Retrieval metrics (x100) per concept of a predictions file/folder against human rankings."""
    from .utils.concepts import RETRIEVAL_CONCEPT_KEYS
    from .utils.predictions import PredictionError
    from .utils.rankings import load_rankings, load_retrieval_predictions
    from .utils.retrieval import evaluate_retrieval

    truth = load_rankings(rankings)
    predictions = load_retrieval_predictions(predictions_path)
    requested = [c for c in parse_concepts(concepts) if c in RETRIEVAL_CONCEPT_KEYS]
    explicit = concepts is not None and concepts.strip().lower() != "all"
    results: dict[str, dict] = {}
    for concept in requested:
        scores = predictions.get(concept, predictions.get(None))
        if scores is None:
            if explicit:
                raise PredictionError(f"{predictions_path} holds no retrieval scores for concept {concept}")
            continue
        if not truth[concept]:
            continue
        result = evaluate_retrieval(truth[concept], scores)
        if result.excluded:
            print(f"convis: warning: {concept}: {len(result.excluded)} anchor(s) without complete predictions "
                  f"were left out: {', '.join(result.excluded[:5])}{' ...' if len(result.excluded) > 5 else ''}",
                  file=sys.stderr)
        results[concept] = result.to_dict()
    if not results:
        raise PredictionError(f"{predictions_path} holds retrieval scores for none of the requested concepts")
    return results


def retrieval_table(results: dict[str, dict]) -> str:
    """Markdown table: the model's row and the random-choice row per concept."""
    head = "| concept | " + " | ".join(RETRIEVAL_COLUMNS) + " | anchors |"
    lines = [head, "|---|" + "---:|" * (len(RETRIEVAL_COLUMNS) + 1)]
    for key, r in results.items():
        lines.append(f"| {get_concept(key).title} | " + " | ".join(_fmt(r[c], 1) for c in RETRIEVAL_COLUMNS)
                     + f" | {r['anchors']} |")
        rnd = r["random"]
        lines.append(f"| {get_concept(key).title} (random choice) | {_fmt(rnd['r@1'], 1)} | {_fmt(rnd['p@1'], 1)} "
                     f"| {_fmt(rnd['f1@1'], 1)} |" + " |" * (len(RETRIEVAL_COLUMNS) - 3) + f" {r['anchors']} |")
    return "\n".join(lines)


def _json_clean(value):
    if isinstance(value, dict):
        return {k: _json_clean(v) for k, v in value.items()}
    return _json_number(value)


def _cmd_retrieval(args: argparse.Namespace) -> int:
    results = run_retrieval(args.predictions, args.ground_truth, args.concept)
    print(json.dumps(_json_clean(results)) if args.json else retrieval_table(results))
    return 0


def _cmd_agreement(args: argparse.Namespace) -> int:
    from .utils.agreement import agreement
    from .utils.annotations import load_ratings

    report = agreement(load_ratings(args.annotations))
    if args.json:
        print(json.dumps(report.to_dict()))
        return 0
    print("| concept | Krippendorff's alpha (ordinal) |\n|---|---:|")
    for concept in CONCEPTS:
        print(f"| {concept.title} | {report.alpha[concept.key]:.3f} |")
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
    p.add_argument("predictions", help="release-format JSON, or an lmms-eval --log_samples file or output folder")
    p.add_argument("--ground-truth", required=True,
                   help="ConVIS.jsonl, gt_conditioned_similarities.json or vicos.user_inputs.json")
    p.add_argument("--concept", default="all", help="a concept name (any spelling), a comma list, or 'all'")
    p.add_argument("--unparsed", choices=("neutral", "drop"), default="neutral",
                   help="score unparsed answers as 3.0 (the benchmark protocol) or leave them out")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=_cmd_correlate)

    p = sub.add_parser("retrieval", help="R@1 / P@1 / F1@1 (top and bottom), Kendall tau and NDCG of retrieval")
    p.add_argument("predictions", help="release per-anchor score JSON, or lmms-eval --log_samples file or folder")
    p.add_argument("--ground-truth", required=True, help="human rankings: a JSON list of {anchor, <Concept>: {...}}")
    p.add_argument("--concept", default="all", help="a concept name (any spelling), a comma list, or 'all'")
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
    args = build_parser().parse_args(argv)
    from .utils.annotations import AnnotationError
    from .utils.predictions import PredictionError

    try:
        return args.func(args)
    except (AnnotationError, PredictionError, FileNotFoundError) as exc:
        print(f"convis: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
