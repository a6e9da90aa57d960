"""Correlation metrics between model scores and human mean ratings (scipy-style functions)."""

from __future__ import annotations

import math
import warnings
from dataclasses import asdict, dataclass
from typing import Iterable, Mapping, Sequence

import numpy as np
from scipy import stats

from .parsing import NEUTRAL_SCORE

UNPARSED_POLICIES = ("neutral", "drop")


class ConstantInputWarning(UserWarning):
    """A correlation was asked of a constant vector; the result is NaN (the paper prints '-')."""


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
        raise ValueError(f"predicted and reference differ in length: {x.shape[0]} vs {y.shape[0]}")
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
    """
    if unparsed not in UNPARSED_POLICIES:
        raise ValueError(f"unparsed must be one of {UNPARSED_POLICIES}, got {unparsed!r}")
    xs: list[float] = []
    ys: list[float] = []
    n_unparsed = 0
    for key in sorted(set(predictions) & set(reference)):
        score = predictions[key]
        if score is None or (isinstance(score, float) and math.isnan(score)):
            n_unparsed += 1
            if unparsed == "drop":
                continue
            score = NEUTRAL_SCORE
        xs.append(float(score))
        ys.append(float(reference[key]))
    rho, tau = correlate(xs, ys)
    return CorrelationResult(spearman=rho, kendall=tau, n=len(xs), unparsed=n_unparsed)


def mean_ignoring_nan(values: Iterable[float]) -> float:
    """Mean of the finite values (NaN when there are none)."""
    finite = [v for v in values if not math.isnan(v)]
    return float(np.mean(finite)) if finite else math.nan
