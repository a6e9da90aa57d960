"""The handlers of ``convis correlate``, ``retrieval``, ``agreement`` and ``path`` (registered, without importing
this module, by :mod:`convis_tasks.cli.score`)."""

from __future__ import annotations

import argparse
import math
import warnings

from convis_tasks.cli.common import say
from convis_tasks.concepts import CONCEPTS
from convis_tasks.reading.annotations import AnnotationError, load_ratings
from convis_tasks.reading.jsonio import dumps
from convis_tasks.report.text import ambiguous_note, correlation_table, retrieval_table
from convis_tasks.scoring.agreement import agreement
from convis_tasks.scoring.evaluate import check_parsed, correlate, retrieve


def _fmt(value: float, digits: int) -> str:
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"


def _cmd_correlate(args: argparse.Namespace) -> int:
    scored = correlate(args.predictions, args.ground_truth, args.concept, args.unparsed)
    if args.json:
        print(dumps(scored.results))
    else:
        note = ambiguous_note(args.predictions)
        print(correlation_table(scored.results, data=scored.data) + (f"\n\n{note}" if note else ""))
    check_parsed(scored.results, args.predictions, args.allow_unparsed)  # after the results: nothing is lost
    return 0


def _cmd_retrieval(args: argparse.Namespace) -> int:
    scored = retrieve(args.predictions, args.ground_truth, args.concept)
    print(dumps(scored.results) if args.json else retrieval_table(scored.results, scored.data))
    check_parsed(scored.results, args.predictions, args.allow_unparsed)
    return 0


def _cmd_agreement(args: argparse.Namespace) -> int:
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
