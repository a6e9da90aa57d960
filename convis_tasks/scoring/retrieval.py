"""Concept-conditioned retrieval metrics under ties (scipy-style functions).

Per anchor video, humans rank ``m`` candidates (rank 1 = most similar; tied candidates share
a rank, dense ``1,1,2,3`` or competition-style ``1,1,3,4`` alike, only the order matters) and a
model scores them (higher = more similar; equal scores tie; ``None`` = an unparsed answer,
scored as the neutral 3.0).  Per anchor we report top-1 / bottom-1 recall, precision and F1
with tied sets on both sides, Kendall tau-b and tie-aware NDCG; :func:`evaluate_retrieval`
averages them over anchors (x100).
"""

from __future__ import annotations

import math
import numbers
import warnings
from dataclasses import dataclass, field
from typing import Mapping, Union

import numpy as np
from scipy import stats

from convis_tasks.scoring.metrics import MIN_ANCHORS, EmptyEvaluationError, SmallSampleWarning
from convis_tasks.scoring.unparsed import counted, is_unparsed
from convis_tasks.errors import InputError

Rank = Union[int, float]


class RetrievalInputError(InputError):
    """The human ranks and the model scores of an anchor cannot be compared (mismatched or invalid)."""


@dataclass(frozen=True)
class AnchorMetrics:
    """Metrics of one anchor, as fractions in [0, 1] (``kendall`` in [-1, 1]) or NaN; not x100."""

    r1: float
    p1: float
    f1: float
    r1_bottom: float
    p1_bottom: float
    f1_bottom: float
    kendall: float
    ndcg: float


@dataclass(frozen=True)
class RetrievalResult:
    """Means over the evaluated anchors, x100 and unrounded.

    ``kendall`` is the mean over the anchors where tau-b is defined (NaN if none);
    ``kendall_undefined`` counts the anchors left out of that mean.  ``excluded`` lists (sorted)
    the anchors of the human side that had no scores or a mismatched candidate set; they are
    left out of every mean.  ``unknown_anchors`` counts scored anchors with no human ranks
    (ignored).  ``random`` is the expected ``r@1``/``p@1``/``f1@1`` (x100) of picking one
    candidate uniformly at random, averaged over the evaluated anchors.
    """

    r1: float
    p1: float
    f1: float
    r1_bottom: float
    p1_bottom: float
    f1_bottom: float
    kendall: float
    ndcg: float
    anchors: int
    kendall_undefined: int = 0
    excluded: list[str] = field(default_factory=list)
    unparsed: int = 0
    random: dict[str, float] = field(default_factory=dict)
    unknown_anchors: int = 0

    def to_dict(self) -> dict:
        """Flat summary; NaN floats are kept as NaN (the caller converts them), ``excluded`` is a count."""
        return {
            "r@1": self.r1,
            "p@1": self.p1,
            "f1@1": self.f1,
            "r@1_bottom": self.r1_bottom,
            "p@1_bottom": self.p1_bottom,
            "f1@1_bottom": self.f1_bottom,
            "kendall": self.kendall,
            "ndcg": self.ndcg,
            "anchors": self.anchors,
            "random": dict(self.random),
            "excluded": len(self.excluded),
            "kendall_undefined": self.kendall_undefined,
            "unparsed": self.unparsed,
        }


def _check_ranks(human: Mapping[str, Rank]) -> None:
    for candidate in sorted(human):
        rank = human[candidate]
        if isinstance(rank, bool) or not isinstance(rank, numbers.Real) or not math.isfinite(rank):
            raise RetrievalInputError(f"human rank of candidate {candidate!r} is not a finite number: {rank!r}")


def _resolve_scores(scores: Mapping[str, float | None]) -> tuple[dict[str, float], int]:
    """Replace unparsed scores (``None`` or NaN) by :data:`NEUTRAL_SCORE`; return them and their count."""
    resolved: dict[str, float] = {}
    unparsed = 0
    for candidate in sorted(scores):
        score = scores[candidate]
        if is_unparsed(score):
            unparsed += 1
            resolved[candidate] = counted(score)
        elif isinstance(score, bool) or not isinstance(score, numbers.Real):
            raise RetrievalInputError(f"score of candidate {candidate!r} is not a number: {score!r}")
        else:
            resolved[candidate] = float(score)
    return resolved, unparsed


def _mismatch(human: Mapping[str, Rank], scores: Mapping[str, object]) -> str | None:
    """Describe how the candidate sets differ, or ``None`` when they match."""
    missing = sorted(set(human) - set(scores))
    extra = sorted(set(scores) - set(human))
    parts = []
    if missing:
        parts.append(f"scores lack candidate(s) {missing}")
    if extra:
        parts.append(f"scores have extra candidate(s) {extra}")
    return "; ".join(parts) or None


def dense_levels(human: Mapping[str, Rank]) -> dict[str, int]:
    """Map human ranks to dense levels ``1..L`` (1 = most similar), e.g. ranks 1,1,3,4 -> 1,1,2,3."""
    _check_ranks(human)
    distinct = sorted(set(float(r) for r in human.values()))
    level = {rank: i + 1 for i, rank in enumerate(distinct)}
    return {candidate: level[float(human[candidate])] for candidate in sorted(human)}


def _prf(relevant: set[str], predicted: set[str]) -> tuple[float, float, float]:
    correct = len(relevant & predicted)
    r = correct / len(relevant)
    p = correct / len(predicted)
    f = 2.0 * p * r / (p + r) if p + r > 0 else 0.0
    return r, p, f


def _kendall(human: Mapping[str, Rank], scores: Mapping[str, float], names: list[str]) -> float:
    x = np.array([-float(human[c]) for c in names])  # higher = more similar, like the scores
    y = np.array([scores[c] for c in names])
    if x.size < 2 or np.all(x == x[0]) or np.all(y == y[0]):
        return math.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tau = stats.kendalltau(x, y).statistic
    tau = float(tau)
    return tau if math.isfinite(tau) else math.nan


def _discount(position: int) -> float:
    return 1.0 / math.log2(position + 1)


def _ndcg(levels: Mapping[str, int], scores: Mapping[str, float], names: list[str]) -> float:
    n_levels = max(levels.values())
    if n_levels == 1:
        return 1.0  # all candidates tied for the humans: every order is ideal
    rel = {c: float(n_levels - levels[c] + 1) for c in names}
    ideal = sorted((rel[c] for c in names), reverse=True)
    idcg = sum(gain * _discount(i + 1) for i, gain in enumerate(ideal))
    # Tie-aware expected DCG (McSherry & Najork 2008): a group of equally scored items at
    # positions i..j all get the mean discount of positions i..j.
    ordered = sorted(names, key=lambda c: (-scores[c], c))
    dcg = 0.0
    start = 0
    while start < len(ordered):
        stop = start
        while stop < len(ordered) and scores[ordered[stop]] == scores[ordered[start]]:
            stop += 1
        mean_discount = sum(_discount(p) for p in range(start + 1, stop + 1)) / (stop - start)
        dcg += sum(rel[c] for c in ordered[start:stop]) * mean_discount
        start = stop
    return min(1.0, dcg / idcg)


def anchor_metrics(human: Mapping[str, Rank], scores: Mapping[str, float | None]) -> AnchorMetrics:
    """Top-1/bottom-1 R/P/F1, Kendall tau-b and tie-aware NDCG of one anchor (fractions, not x100).

    Top: relevant = the candidates at the best (lowest) human rank, predicted = those tied at the
    model's highest score; ``r1 = |correct|/|relevant|``, ``p1 = |correct|/|predicted|``, ``f1`` their
    harmonic mean (0 when both are 0).  Bottom: the same with the worst human rank and the lowest score.
    ``kendall`` is tau-b of (-rank, score), NaN when either side is all tied.  ``ndcg`` uses relevance
    ``L - level + 1`` over dense levels, linear gain and 1/log2(pos+1) discount over all ``m`` positions,
    with tied scores sharing the mean discount of their positions; it is 1.0 when all human ranks
    are equal.  ``None``/NaN scores count as :data:`NEUTRAL_SCORE`.

    Raises :class:`RetrievalInputError` when the candidate sets differ (naming the missing/extra
    candidates), when there are no candidates, or when a rank/score is not a number.
    """
    problem = _mismatch(human, scores)
    if problem:
        raise RetrievalInputError(problem)
    if not human:
        raise RetrievalInputError("no candidates")
    levels = dense_levels(human)
    resolved, _ = _resolve_scores(scores)
    names = sorted(human)

    best_level, worst_level = min(levels.values()), max(levels.values())
    high, low = max(resolved.values()), min(resolved.values())
    r1, p1, f1 = _prf({c for c in names if levels[c] == best_level}, {c for c in names if resolved[c] == high})
    rb, pb, fb = _prf({c for c in names if levels[c] == worst_level}, {c for c in names if resolved[c] == low})
    return AnchorMetrics(
        r1=r1, p1=p1, f1=f1, r1_bottom=rb, p1_bottom=pb, f1_bottom=fb,
        kendall=_kendall(human, resolved, names), ndcg=_ndcg(levels, resolved, names),
    )


def random_choice_expectation(human: Mapping[str, Rank]) -> tuple[float, float, float]:
    """Expected (R@1, P@1, F1@1) of picking ONE of the ``m`` candidates uniformly at random.

    With ``k`` candidates tied at the best human rank, the pick is relevant with probability
    ``k/m``.  A relevant pick has P = 1, R = 1/k and F1 = 2(1/k)/(1 + 1/k) = 2/(k+1); an
    irrelevant pick scores 0 on all three.  Hence E[P] = k/m, E[R] = (k/m)(1/k) = 1/m and
    E[F1] = (k/m) * 2/(k+1).  Fractions, not x100.
    """
    if not human:
        raise RetrievalInputError("no candidates")
    levels = dense_levels(human)
    m = len(levels)
    k = sum(1 for level in levels.values() if level == 1)
    return 1.0 / m, k / m, (k / m) * 2.0 / (k + 1)


def _mean(values: list[float]) -> float:
    return float(np.mean(values)) * 100.0 if values else math.nan


def evaluate_retrieval(
    human_by_anchor: Mapping[str, Mapping[str, Rank]],
    scores_by_anchor: Mapping[str, Mapping[str, float | None]],
    strict: bool = False,
) -> RetrievalResult:
    """Average :func:`anchor_metrics` over the anchors of ``human_by_anchor`` (x100).

    Anchors are taken in sorted order so the result never depends on dict order.  An anchor
    with no scores (absent, ``None`` or empty), or whose candidates differ from the human ones,
    is listed in ``excluded`` and left out of every mean; with ``strict=True`` it raises
    :class:`RetrievalInputError` naming the anchor and the candidates instead.  Invalid values
    (non-numeric ranks/scores) always raise.  Scored anchors with no human ranks are ignored and
    counted in ``unknown_anchors``.  With no evaluated anchor (no human rankings, or every anchor excluded) it
    raises :class:`~convis_tasks.scoring.metrics.EmptyEvaluationError` naming the excluded anchors: a result of
    NaNs would look like an evaluation. Fewer than ``MIN_ANCHORS`` evaluated anchors warn
    :class:`~convis_tasks.scoring.metrics.SmallSampleWarning`.
    """
    per_anchor: list[AnchorMetrics] = []
    randoms: list[tuple[float, float, float]] = []
    excluded: list[str] = []
    n_unparsed = 0
    for anchor in sorted(human_by_anchor):
        human = human_by_anchor[anchor]
        scores = scores_by_anchor.get(anchor)
        problem = None
        if not human:
            problem = "no human ranks"
        elif not scores:
            problem = f"no scores for candidates {sorted(human)}"
        else:
            problem = _mismatch(human, scores)
        if problem:
            if strict:
                raise RetrievalInputError(f"anchor {anchor!r}: {problem}")
            excluded.append(anchor)
            continue
        try:
            per_anchor.append(anchor_metrics(human, scores))
            randoms.append(random_choice_expectation(human))
            n_unparsed += _resolve_scores(scores)[1]
        except RetrievalInputError as err:
            raise RetrievalInputError(f"anchor {anchor!r}: {err}") from err

    if not per_anchor:
        if not human_by_anchor:
            raise EmptyEvaluationError("nothing to evaluate: no human rankings")
        shown = ", ".join(repr(a) for a in excluded[:5]) + (", ..." if len(excluded) > 5 else "")
        raise EmptyEvaluationError(f"nothing to evaluate: no anchor has scores for all its candidates "
                                   f"({len(excluded)} excluded: {shown})")
    if len(per_anchor) < MIN_ANCHORS:
        warnings.warn(f"only {len(per_anchor)} anchors (fewer than {MIN_ANCHORS}): the retrieval means are too noisy "
                      "to compare models", SmallSampleWarning, stacklevel=2)
    taus = [m.kendall for m in per_anchor if not math.isnan(m.kendall)]
    return RetrievalResult(
        r1=_mean([m.r1 for m in per_anchor]),
        p1=_mean([m.p1 for m in per_anchor]),
        f1=_mean([m.f1 for m in per_anchor]),
        r1_bottom=_mean([m.r1_bottom for m in per_anchor]),
        p1_bottom=_mean([m.p1_bottom for m in per_anchor]),
        f1_bottom=_mean([m.f1_bottom for m in per_anchor]),
        kendall=_mean(taus),
        ndcg=_mean([m.ndcg for m in per_anchor]),
        anchors=len(per_anchor),
        kendall_undefined=len(per_anchor) - len(taus),
        excluded=excluded,
        unparsed=n_unparsed,
        random={
            "r@1": _mean([r[0] for r in randoms]),
            "p@1": _mean([r[1] for r in randoms]),
            "f1@1": _mean([r[2] for r in randoms]),
        },
        unknown_anchors=len(set(scores_by_anchor) - set(human_by_anchor)),
    )
