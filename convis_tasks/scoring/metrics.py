"""Correlation metrics between model scores and human mean ratings (scipy-style functions)."""

from __future__ import annotations

import math
import warnings
from dataclasses import asdict, dataclass
from typing import Iterable, Mapping, Sequence

import numpy as np
from scipy import stats

from convis_tasks.errors import EmptyEvaluationError, InputError
from convis_tasks.scoring.unparsed import check_policy, counted, is_unparsed


# Fewer pairs than this and a correlation is reported with a SmallSampleWarning. Why 20: with n pairs the 95%
# interval of Spearman's rho around 0 is tanh(1.96 * 1.03 / sqrt(n - 3)) wide on each side (Fisher z with the
# Fieller-Hartley-Pearson standard error); at n = 20 that is +-0.45, i.e. +-45 points x100, already wider than
# the spread of every model in the paper's tables (rho x100 from -5 to 59 over 610 pairs, where it is +-0.08).
# Below 20 a reported rho says nothing about a model; it is still printed, never hidden, but marked.
MIN_PAIRS = 20
# Fewer evaluated anchors than this and a retrieval result carries a SmallSampleWarning: R@1 of one anchor is
# mostly 0 or 1, so the 95% interval of their mean is up to 1.96 * 0.5 / sqrt(n) wide each side, +-22 points at 20.
MIN_ANCHORS = 20


class ConstantInputWarning(UserWarning):
    """A correlation was asked of a constant vector; the result is NaN (the paper prints '-')."""


class SmallSampleWarning(UserWarning):
    """A correlation (or retrieval mean) was computed over fewer than :data:`MIN_PAIRS` pairs (anchors);
    the number is reported but is too noisy to compare models. The message names ``n`` and the minimum."""


@dataclass(frozen=True)
class CorrelationResult:
    """Spearman rho and Kendall tau-b, both x100 and unrounded, over ``n`` pairs."""

    spearman: float
    kendall: float
    n: int
    unparsed: int = 0

    def to_dict(self) -> dict:
        return asdict(self)


def correlate(predicted: Sequence[float], reference: Sequence[float]) -> tuple[float, float]:
    """Return (Spearman rho, Kendall tau-b) x100 of two equally long vectors.

    A constant vector (or fewer than two values) yields ``(nan, nan)`` with a
    :class:`ConstantInputWarning` instead of an exception.
    """
    x = np.asarray(predicted, dtype=float)
    y = np.asarray(reference, dtype=float)
    if x.shape != y.shape:
        raise InputError(f"predicted and reference differ in length: {x.shape[0]} vs {y.shape[0]}")
    if x.size < 2 or np.all(x == x[0]) or np.all(y == y[0]):
        which = "fewer than two pairs" if x.size < 2 else (
            "the predictions are constant" if x.size and np.all(x == x[0]) else "the reference is constant")
        warnings.warn(f"correlation undefined: {which}; reporting NaN", ConstantInputWarning, stacklevel=2)
        return math.nan, math.nan
    rho = stats.spearmanr(x, y).statistic
    tau = stats.kendalltau(x, y).statistic
    return float(rho) * 100.0, float(tau) * 100.0


def score_pairs(
    predictions: Mapping[tuple[str, str], float | None],
    reference: Mapping[tuple[str, str], float],
    unparsed: str = "neutral",
) -> CorrelationResult:
    """Correlate per-pair predictions with per-pair human means.

    ``predictions`` maps a pair key to a parsed score, or ``None`` for an unparsed answer.
    ``unparsed='neutral'`` scores those as 3.0 (the benchmark protocol); ``'drop'`` leaves them out.
    Pairs present on one side only are left out (``n`` counts the pairs used).
    Pairs are taken in sorted key order so the result never depends on input order.

    Raises :class:`EmptyEvaluationError` when no pair is left to correlate (either side empty, no shared pair, or
    every shared pair unparsed under ``'drop'``); warns :class:`SmallSampleWarning` when ``n < MIN_PAIRS``.
    """
    check_policy(unparsed)
    xs: list[float] = []
    ys: list[float] = []
    n_unparsed = 0
    for key in sorted(set(predictions) & set(reference)):
        score = predictions[key]
        if is_unparsed(score):
            n_unparsed += 1
            if unparsed == "drop":
                continue
            score = counted(score)
        truth = reference[key]
        for name, value in (("prediction", score), ("reference", truth)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise InputError(f"pair {key[0]} / {key[1]}: {name} {value!r} is not a finite number")
        xs.append(float(score))
        ys.append(float(truth))
    if not xs:
        if not predictions or not reference:
            why = "no predictions" if not predictions else "no ground truth"
        elif n_unparsed:
            why = f"all {n_unparsed} shared pairs are unparsed answers, dropped by unparsed='drop'"
        else:
            why = (f"the {len(predictions)} predicted pairs share none with the {len(reference)} ground-truth pairs "
                   "(are the video names and their order the same?)")
        raise EmptyEvaluationError(f"nothing to correlate: {why}")
    if len(xs) < MIN_PAIRS:
        warnings.warn(f"only {len(xs)} pairs (fewer than {MIN_PAIRS}): the correlation is too noisy to compare "
                      "models", SmallSampleWarning, stacklevel=2)
    rho, tau = correlate(xs, ys)
    return CorrelationResult(spearman=rho, kendall=tau, n=len(xs), unparsed=n_unparsed)


def mean_ignoring_nan(values: Iterable[float]) -> float:
    """Mean of the finite values (NaN when there are none)."""
    finite = [v for v in values if not math.isnan(v)]
    return float(np.mean(finite)) if finite else math.nan
