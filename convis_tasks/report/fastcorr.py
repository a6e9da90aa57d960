"""Fast Spearman rho and Kendall tau-b for many resamples at once (bootstrap) and for many small vectors
(the human ceiling).

``scipy.stats.spearmanr`` / ``kendalltau`` cost about half a millisecond per call in argument checking, which is
what a bootstrap of 1000 resamples x 5 concepts x several models cannot afford. The statistics are the same:

* Spearman rho = Pearson correlation of the average ranks (ties averaged). For short vectors we rank with
  ``scipy.stats.rankdata(axis=1)`` row by row. For bootstrap resamples of one vector we never build the resampled
  rows: a resample is the original pairs taken with multiplicities w (one row of counts), the average rank of
  every copy of value v is (copies below v) + (copies of v + 1) / 2, and rho is the w-weighted Pearson
  correlation of those ranks. That equals rankdata + Pearson on the expanded rows and is about 7x faster.
* Kendall tau-b = S / sqrt((n0 - n1) (n0 - n2)) with S = concordant - discordant pairs, n0 = n(n-1)/2 and
  n1, n2 = the tied pairs of x and of y. With multiplicities w, copies of one pair tie on both sides, so with M_ij = sign(x_i - x_j) sign(y_i - y_j)
  S = w M w / 2, and the tied pairs of x are sum_g T_g (T_g - 1) / 2 over the groups g of equal x with total
  multiplicity T_g. That is exact (integer arithmetic in float64) and costs one (B x n) @ (n x n) product.

Results are fractions in [-1, 1] (not x100), NaN where a resample is constant on either side.
``tests/test_report_bootstrap.py`` checks them against scipy.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import rankdata

# Above this many pairs the n x n sign matrix of the exact Kendall bootstrap gets large (n^2 * 8 bytes);
# we then fall back to one scipy call per resample.
MAX_SIGN_MATRIX = 4000


def pearson_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise Pearson correlation of two (B x n) arrays; NaN for a constant row."""
    a = a - a.mean(axis=1, keepdims=True)
    b = b - b.mean(axis=1, keepdims=True)
    num = np.einsum("ij,ij->i", a, b)
    den = np.sqrt(np.einsum("ij,ij->i", a, a) * np.einsum("ij,ij->i", b, b))
    with np.errstate(invalid="ignore", divide="ignore"):
        out = num / den
    out[~(den > 0)] = np.nan
    return np.clip(out, -1.0, 1.0)


def spearman_rows(x_rows: np.ndarray, y_rows: np.ndarray) -> np.ndarray:
    """Row-wise Spearman rho of two (B x n) arrays: Pearson of the average ranks of each row."""
    return pearson_rows(rankdata(x_rows, axis=1), rankdata(y_rows, axis=1))


def _group_totals(values: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(group of each entry, B x k total multiplicity of each group), groups = equal values in ascending order."""
    _, group = np.unique(values, return_inverse=True)
    onehot = np.zeros((values.size, int(group.max()) + 1))
    onehot[np.arange(values.size), group] = 1.0
    return group, weights @ onehot


def _tied_pairs(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """sum_g T_g (T_g - 1) / 2 per row of ``weights`` (B x n), groups g = equal entries of ``values``."""
    totals = _group_totals(values, weights)[1]
    return (totals * (totals - 1.0)).sum(axis=1) / 2.0


def _weighted_ranks(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """(B x n) average rank of entry i in the sample that repeats entry j ``weights[b, j]`` times.

    Copies of a value tie, so the rank of a group is (items below it) + (its multiplicity + 1) / 2, which is
    what ``rankdata`` gives each copy of the expanded sample.
    """
    group, totals = _group_totals(values, weights)
    below = np.cumsum(totals, axis=1) - totals
    return (below + (totals + 1.0) / 2.0)[:, group]


def spearman_weighted(x: np.ndarray, y: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Spearman rho of (x, y) with each pair i repeated ``weights[b, i]`` times, for every row b of ``weights``:
    the multiplicity-weighted Pearson correlation of the average ranks of the expanded sample."""
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    weights = np.atleast_2d(np.asarray(weights, dtype=float))
    centre = (weights.sum(axis=1, keepdims=True) + 1.0) / 2.0  # the mean of ranks 1..N
    rx = _weighted_ranks(x, weights) - centre
    ry = _weighted_ranks(y, weights) - centre
    wx = weights * rx
    num = np.einsum("ij,ij->i", wx, ry)
    den = np.sqrt(np.einsum("ij,ij->i", wx, rx) * np.einsum("ij,ij->i", weights * ry, ry))
    with np.errstate(invalid="ignore", divide="ignore"):
        out = num / den
    out[~(den > 0)] = np.nan
    return np.clip(out, -1.0, 1.0)


def kendall_weighted(x: np.ndarray, y: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Kendall tau-b of (x, y) with each pair i repeated ``weights[b, i]`` times, for every row b of ``weights``."""
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    weights = np.atleast_2d(np.asarray(weights, dtype=float))
    sign = np.sign(x[:, None] - x[None, :]) * np.sign(y[:, None] - y[None, :])
    s = np.einsum("bi,bi->b", weights @ sign, weights) / 2.0
    total = weights.sum(axis=1)
    n0 = total * (total - 1.0) / 2.0
    den = np.sqrt((n0 - _tied_pairs(x, weights)) * (n0 - _tied_pairs(y, weights)))
    with np.errstate(invalid="ignore", divide="ignore"):
        out = s / den
    out[~(den > 0)] = np.nan
    return np.clip(out, -1.0, 1.0)


def counts_of(indices: np.ndarray, n: int) -> np.ndarray:
    """(B x n) multiplicities of the (B x n) resampled indices."""
    b = indices.shape[0]
    flat = (np.arange(b)[:, None] * n + indices).ravel()
    return np.bincount(flat, minlength=b * n).reshape(b, n).astype(float)


def resampled_correlations(x: np.ndarray, y: np.ndarray, indices: np.ndarray,
                           chunk: int = 500) -> tuple[np.ndarray, np.ndarray]:
    """(rho, tau) of (x[idx], y[idx]) for every row idx of ``indices``; fractions, NaN where undefined."""
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    n = x.size
    rho = np.empty(indices.shape[0])
    tau = np.empty(indices.shape[0])
    for start in range(0, indices.shape[0], chunk):
        idx = indices[start:start + chunk]
        counts = counts_of(idx, n)
        rho[start:start + chunk] = spearman_weighted(x, y, counts)
        if n <= MAX_SIGN_MATRIX:
            tau[start:start + chunk] = kendall_weighted(x, y, counts)
        else:  # pragma: no cover - far beyond the benchmark's 610 pairs
            from scipy.stats import kendalltau

            tau[start:start + chunk] = [kendalltau(x[i], y[i]).statistic for i in idx]
    return rho, tau


def spearman_kendall(x, y) -> tuple[float, float]:
    """(rho, tau-b) of two short vectors as fractions, NaN when either is constant or shorter than 2."""
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    if x.size < 2:
        return float("nan"), float("nan")
    rho = spearman_rows(x[None, :], y[None, :])[0]
    tau = kendall_weighted(x, y, np.ones((1, x.size)))[0]
    return float(rho), float(tau)
