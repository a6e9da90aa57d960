"""The scoring library behind ``convis correlate`` and ``convis retrieval`` (and the tables of ``convis run``).

:func:`run_correlate` and :func:`run_retrieval` read predictions (any input the run-folder rule accepts) and the
ground truth, and return plain result dicts; notes and warnings go to ``notify`` (default: stderr). No printing of
results, no argument parsing: the command line (:mod:`convis_tasks.cli.score`) does that.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Callable

from convis_tasks.concepts import CONCEPT_KEYS, RETRIEVAL_CONCEPT_KEYS, parse_concepts
from convis_tasks.console import say
from convis_tasks.errors import AllUnparsedError
from convis_tasks.reading.annotations import load_ground_truth
from convis_tasks.reading.inputs import load_path
from convis_tasks.reading.predictions import PredictionError
from convis_tasks.reading.published import (DataIdentity, RetrievalIdentity, compare_candidates, ranked_candidates,
                                            truth_identity)
from convis_tasks.reading.rankings import load_rankings
from convis_tasks.scoring.metrics import score_pairs
from convis_tasks.scoring.retrieval import evaluate_retrieval
from convis_tasks.scoring.samplesize import caught_messages, sample_size_warning, small_sample_summary
from convis_tasks.scoring.unparsed import all_unparsed

CONCEPT_FREE = "concept-free"  # the "answers" marker of results computed from concept-free answers
GLOBAL_KEY = "global"  # where concept-free results go when the input also holds concept-conditioned answers
Notify = Callable[[str], None]


@dataclass
class Evaluation:
    """The results dict of :func:`run_correlate` / :func:`run_retrieval` and the identity of the data scored."""

    results: dict[str, dict]
    data: DataIdentity | RetrievalIdentity


def _place_concept_free(results: dict[str, dict], shared: dict[str, dict], has_own: bool) -> None:
    """Concept-free results sit under ``"global"`` beside concept answers, else at the top level."""
    if not has_own:
        results.update(shared)
    elif shared:
        results[GLOBAL_KEY] = shared


def _score_concept(scores, reference, concept: str, unparsed: str, where: str, notify: Notify = say) -> dict:
    """One row: the correlation, ``"warning"`` for a small n (said once per table by :func:`_say_small`), and
    ``"all_unparsed": True`` when not one shared answer was read as a score."""
    shared = set(scores) & set(reference)
    if all_unparsed(scores[k] for k in shared):
        with warnings.catch_warnings():  # constant 3.0s: the row says why (all answers unparsed), not this
            warnings.simplefilter("ignore")
            result = score_pairs(scores, reference, unparsed=unparsed).to_dict()
        result["all_unparsed"] = True
    else:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            result = score_pairs(scores, reference, unparsed=unparsed).to_dict()
        for message in caught_messages(caught, concept):
            notify(message)
    left_out = len(set(scores) ^ set(reference))
    if left_out:
        notify(f"note: {concept}: {left_out} pair(s) present on one side only were left out")
    small = sample_size_warning(result["n"], f"{where}: {concept}")
    if small:
        result["warning"] = small
    return result


def _rows(results: dict[str, dict]) -> dict[str, dict]:
    """Every row of a results dict, the concept-free ones under ``"global"`` labelled ``<concept> (concept-free)``."""
    rows = {}
    for key, row in results.items():
        if key == GLOBAL_KEY:
            rows.update({f"{c} (concept-free)": r for c, r in row.items()})
        else:
            rows[f"{key} (concept-free)" if row.get("answers") == CONCEPT_FREE else key] = row
    return rows


def _say_small(results: dict[str, dict], where: str, size: str, unit: str, notify: Notify) -> None:
    """One warning line for every small row of a table (each row keeps its own ``"warning"``)."""
    line = small_sample_summary({label: r[size] for label, r in _rows(results).items() if r.get("warning")},
                                where, unit)
    if line:
        notify(f"warning: {line}")


def unparsed_rows(results: dict[str, dict]) -> list[str]:
    """The rows (concept keys; ``<concept> (concept-free)``) in which every answer is unparsed."""
    return [label for label, r in _rows(results).items() if r.get("all_unparsed")]


def check_parsed(results: dict[str, dict], what: str, allow: bool = False) -> None:
    """:class:`AllUnparsedError` naming every row whose answers are all unparsed, unless ``allow``."""
    rows = unparsed_rows(results)
    if rows and not allow:
        raise AllUnparsedError(f"{what}: every answer is unparsed for {', '.join(rows)}: no score could be read "
                               "from the model's answers (see docs/parsing.md; `convis inspect` shows them); "
                               "--allow-unparsed accepts the run as it is")


def run_correlate(predictions_path: str, ground_truth: str, concepts: str | None = "all",
                  unparsed: str = "neutral", notify: Notify = say) -> dict[str, dict]:
    """:func:`correlate`'s results."""
    return correlate(predictions_path, ground_truth, concepts, unparsed, notify).results


def correlate(predictions_path: str, ground_truth: str, concepts: str | None = "all",
              unparsed: str = "neutral", notify: Notify = say) -> Evaluation:
    """Correlate predictions with ground truth: ``{concept: {spearman, kendall, n, unparsed}}``.

    ``predictions_path``: a release answer file, an lmms-eval output folder / results file / samples file (the
    run-folder rule of :mod:`convis_tasks.reading.runs`), or a submission. Concept-free answers are correlated
    with every concept and their entries carry ``"answers": "concept-free"``; when the input also holds concept
    answers they go under ``"global"``, never under a concept key. A row with n below the minimum carries
    ``"warning"``; n = 0 is an error.
    """
    truth = load_ground_truth(ground_truth)
    item = load_path(predictions_path)
    for note in item.notes:
        notify(note)
    predictions = item.predictions
    if predictions is None:
        raise PredictionError(f"{predictions_path} holds no pair-scoring predictions")
    requested = parse_concepts(concepts)
    explicit = concepts is not None and concepts.strip().lower() != "all"
    own = [c for c in CONCEPT_KEYS if c in predictions.scores]
    concept_free = predictions.scores.get(None)
    results: dict[str, dict] = {}
    scored: set = set()
    for concept in requested:
        scores = predictions.scores.get(concept)
        if scores is None:
            if explicit and (own or concept_free is None):
                has = ", ".join(own) + (" and concept-free answers" if concept_free is not None else "")
                raise PredictionError(f"{predictions_path} holds no predictions for concept {concept} "
                                      f"(it has: {has or 'none'})")
            continue
        scored.update(set(scores) & set(truth.by_concept(concept)))
        results[concept] = _score_concept(scores, truth.by_concept(concept), concept, unparsed, predictions_path,
                                           notify)
    if concept_free is not None:
        scored.update(set(concept_free) & {p.key for p in truth.pairs})
        shared = {}
        for concept in requested:
            shared[concept] = {**_score_concept(concept_free, truth.by_concept(concept), f"{concept} (concept-free)",
                                                unparsed, predictions_path, notify), "answers": CONCEPT_FREE}
        _place_concept_free(results, shared, bool(own))
    if not results:
        raise PredictionError(f"{predictions_path} holds predictions for none of the requested concepts "
                              f"(it has: {', '.join(own) or 'none'})")
    _say_small(results, predictions_path, "n", "pairs", notify)
    return Evaluation(results, truth_identity(truth, scored))


def run_retrieval(predictions_path: str, rankings: str, concepts: str | None = "all",
                  notify: Notify = say) -> dict[str, dict]:
    """:func:`retrieve`'s results."""
    return retrieve(predictions_path, rankings, concepts, notify).results


def retrieve(predictions_path: str, rankings: str, concepts: str | None = "all", notify: Notify = say) -> Evaluation:
    """Retrieval metrics (x100) per concept of predictions against human rankings.

    The same input rules as :func:`run_correlate`: concept-free scores (the release's unconditioned baselines)
    are scored against every ranked concept and marked ``"answers": "concept-free"``; with concept scores
    present they go under ``"global"``. No complete anchor is an error."""
    truth = load_rankings(rankings)
    item = load_path(predictions_path)
    for note in item.notes:
        notify(note)
    predictions = item.retrieval
    if not predictions:
        raise PredictionError(f"{predictions_path} holds no retrieval predictions")
    requested = [c for c in parse_concepts(concepts) if c in RETRIEVAL_CONCEPT_KEYS]
    explicit = concepts is not None and concepts.strip().lower() != "all"
    own = [c for c in RETRIEVAL_CONCEPT_KEYS if c in predictions]

    def score(concept: str, scores: dict, marker: str) -> dict:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            result = evaluate_retrieval(truth[concept], scores)
        for message in caught_messages(caught, concept):
            notify(message)
        if result.excluded:
            notify(f"warning: {concept}: {len(result.excluded)} anchor(s) without complete predictions were left out: "
                f"{', '.join(result.excluded[:5])}{' ...' if len(result.excluded) > 5 else ''}")
        out = result.to_dict()
        if marker == CONCEPT_FREE:
            out["answers"] = CONCEPT_FREE
        evaluated = [a for a in truth[concept] if a not in set(result.excluded)]
        if all_unparsed(s for a in evaluated for s in scores.get(a, {}).values()):
            out["all_unparsed"] = True
        small = sample_size_warning(out["anchors"], f"{predictions_path}: {concept}", "complete anchors")
        if small:
            out["warning"] = small
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
        _place_concept_free(results, shared, bool(own))
    if not results:
        raise PredictionError(f"{predictions_path} holds retrieval scores for none of the requested concepts")
    _say_small(results, predictions_path, "anchors", "complete anchors", notify)
    scored = {a for c, by_anchor in predictions.items() for a in by_anchor}
    return Evaluation(results, compare_candidates(ranked_candidates(truth, scored), False))
