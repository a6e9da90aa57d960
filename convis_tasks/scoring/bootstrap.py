"""Bootstrap confidence intervals for rho / tau and a paired bootstrap test between two models.

* **Resampling**: the n scored pairs are drawn n times with replacement, B times (default 1000), from
  ``numpy.random.default_rng(seed)`` (default seed 0), so a given (n, B, seed) always draws the same indices.
  Every model and concept with the same n is resampled with the same indices; on the benchmark every concept has
  the same 610 pairs, which is what makes the mean over concepts and the paired test well defined.
* **Interval**: the percentile interval, the 2.5th and 97.5th percentiles of the B resampled statistics
  (``numpy.nanpercentile``; resamples where the statistic is undefined, i.e. constant on one side, are left out
  and counted).
* **Paired test** (does A beat B?): both models are scored on the SAME resampled pairs, diff = stat_A - stat_B
  per resample. We report the observed difference, the percentile interval of the resampled differences, and
  the one-sided p-value p = (number of resamples with diff <= 0) / (number of defined resamples), the bootstrap
  estimate of how often A fails to beat B. p = 0 means "below 1/B", not zero.

Statistics are x100 like every other number of the suite.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

from convis_tasks.reading.annotations import PairKey
from convis_tasks.scoring.unparsed import counted, is_unparsed
from convis_tasks.scoring.fastcorr import resampled_correlations, spearman_kendall
from convis_tasks.errors import InputError

DEFAULT_B = 1000
DEFAULT_SEED = 0
LEVEL = 0.95


def aligned(predictions: Sequence[Mapping[PairKey, float | None]], reference: Mapping[PairKey, float],
            unparsed: str = "neutral") -> tuple[list[PairKey], list[np.ndarray], np.ndarray]:
    """The pairs scored by every prediction table and the reference, sorted, as vectors.

    Same selection as :func:`convis_tasks.scoring.metrics.score_pairs`: unparsed answers are 3.0 (``neutral``) or
    the pair is left out (``drop``; for several tables, when any of them is unparsed).
    """
    keys = sorted(set(reference).intersection(*[set(p) for p in predictions]))
    if unparsed == "drop":
        keys = [k for k in keys if not any(is_unparsed(p[k]) for p in predictions)]
    xs = [np.array([counted(p[k]) for k in keys]) for p in predictions]
    return keys, xs, np.array([float(reference[k]) for k in keys])


_INDEX_CACHE: dict[tuple[int, int, int], np.ndarray] = {}


def resample_indices(n: int, b: int = DEFAULT_B, seed: int = DEFAULT_SEED) -> np.ndarray:
    """(b x n) indices of b resamples of n items with replacement; the same for the same (n, b, seed)."""
    key = (n, b, seed)
    if key not in _INDEX_CACHE:
        _INDEX_CACHE[key] = np.random.default_rng(seed).integers(0, n, size=(b, n))
    return _INDEX_CACHE[key]


@dataclass(frozen=True)
class Interval:
    """A point estimate and its percentile interval (x100); ``undefined`` resamples were left out."""

    estimate: float
    lo: float
    hi: float
    undefined: int = 0

    def to_dict(self) -> dict:
        return {"estimate": self.estimate, "lo": self.lo, "hi": self.hi, "undefined": self.undefined}


def interval(estimate: float, samples: np.ndarray, level: float = LEVEL) -> Interval:
    """Percentile interval of the finite ``samples`` around ``estimate``."""
    finite = samples[np.isfinite(samples)]
    if finite.size == 0:
        return Interval(estimate, math.nan, math.nan, int(samples.size))
    tail = (1.0 - level) / 2.0 * 100.0
    lo, hi = np.percentile(finite, [tail, 100.0 - tail])
    return Interval(float(estimate), float(lo), float(hi), int(samples.size - finite.size))


@dataclass(frozen=True)
class Resampled:
    """rho and tau (x100) of the original pairs and of every resample."""

    spearman: float
    kendall: float
    spearman_samples: np.ndarray
    kendall_samples: np.ndarray
    n: int

    def ci(self, level: float = LEVEL) -> dict[str, Interval]:
        return {"spearman": interval(self.spearman, self.spearman_samples, level),
                "kendall": interval(self.kendall, self.kendall_samples, level)}


def resample(x: np.ndarray, y: np.ndarray, b: int = DEFAULT_B, seed: int = DEFAULT_SEED) -> Resampled:
    """rho / tau (x100) of (x, y) and of b bootstrap resamples of the pairs."""
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    rho, tau = spearman_kendall(x, y)
    if x.size < 2:
        nan = np.full(b, np.nan)
        return Resampled(rho * 100.0, tau * 100.0, nan, nan, int(x.size))
    rho_s, tau_s = resampled_correlations(x, y, resample_indices(x.size, b, seed))
    return Resampled(rho * 100.0, tau * 100.0, rho_s * 100.0, tau_s * 100.0, int(x.size))


def mean_resampled(items: list[tuple[list, Resampled]]) -> Resampled | None:
    """The mean over concepts of several :class:`Resampled` (one per concept), resample by resample.

    Only defined when every concept was scored on the same pairs (then the same indices resampled them all);
    None otherwise.
    """
    if not items or any(keys != items[0][0] for keys, _ in items):
        return None
    rs = [r for _, r in items]
    return Resampled(float(np.mean([r.spearman for r in rs])), float(np.mean([r.kendall for r in rs])),
                     np.mean([r.spearman_samples for r in rs], axis=0),
                     np.mean([r.kendall_samples for r in rs], axis=0), rs[0].n)


def resample_table(predictions: Mapping[PairKey, float | None], reference: Mapping[PairKey, float],
                   b: int = DEFAULT_B, seed: int = DEFAULT_SEED, unparsed: str = "neutral"
                   ) -> tuple[list[PairKey], Resampled]:
    """(the pairs used, :class:`Resampled`) of one prediction table against the reference."""
    keys, (x,), y = aligned([predictions], reference, unparsed)
    return keys, resample(x, y, b, seed)


def bootstrap_ci(predictions: Mapping[PairKey, float | None], reference: Mapping[PairKey, float],
                 b: int = DEFAULT_B, seed: int = DEFAULT_SEED, unparsed: str = "neutral",
                 level: float = LEVEL) -> dict[str, Interval]:
    """95% percentile intervals of rho and tau (x100) of one prediction table against the reference."""
    return resample_table(predictions, reference, b, seed, unparsed)[1].ci(level)


@dataclass(frozen=True)
class PairedResult:
    """diff = A - B (x100) of one statistic: observed, percentile interval, one-sided p = P*(diff <= 0)."""

    diff: float
    lo: float
    hi: float
    p: float
    n: int
    b: int
    undefined: int = 0

    def to_dict(self) -> dict:
        return {"diff": self.diff, "lo": self.lo, "hi": self.hi, "p": self.p, "n": self.n, "b": self.b,
                "undefined": self.undefined}


def paired_from_samples(a: Resampled, b_: Resampled, metric: str, level: float = LEVEL) -> PairedResult:
    """The paired comparison of two :class:`Resampled` computed on the same pairs and indices."""
    if a.n != b_.n:
        raise InputError("paired bootstrap needs both models scored on the same pairs")
    diffs = getattr(a, f"{metric}_samples") - getattr(b_, f"{metric}_samples")
    observed = getattr(a, metric) - getattr(b_, metric)
    ci = interval(observed, diffs, level)
    finite = diffs[np.isfinite(diffs)]
    p = float(np.mean(finite <= 0.0)) if finite.size else math.nan
    return PairedResult(observed, ci.lo, ci.hi, p, a.n, int(diffs.size), ci.undefined)


def paired_bootstrap(predictions_a: Mapping[PairKey, float | None], predictions_b: Mapping[PairKey, float | None],
                     reference: Mapping[PairKey, float], b: int = DEFAULT_B, seed: int = DEFAULT_SEED,
                     unparsed: str = "neutral", level: float = LEVEL) -> dict[str, PairedResult]:
    """Does A beat B? Paired bootstrap of rho and tau over the pairs both scored (same resampled indices)."""
    _, (xa, xb), y = aligned([predictions_a, predictions_b], reference, unparsed)
    ra, rb = resample(xa, y, b, seed), resample(xb, y, b, seed)
    return {m: paired_from_samples(ra, rb, m, level) for m in ("spearman", "kendall")}
