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
# float32 holds every integer below 2**24 exactly; with n pairs a row of (counts @ signs) is at most n in size
EXACT_FLOAT32 = 4000


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


def _centred_ranks(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    centre = (weights.sum(axis=1, keepdims=True) + 1.0) / 2.0  # the mean of ranks 1..N
    return _weighted_ranks(values, weights) - centre


def _pearson_weighted(rx: np.ndarray, ry: np.ndarray, weights: np.ndarray) -> np.ndarray:
    wx = weights * rx
    num = np.einsum("ij,ij->i", wx, ry)
    den = np.sqrt(np.einsum("ij,ij->i", wx, rx) * np.einsum("ij,ij->i", weights * ry, ry))
    with np.errstate(invalid="ignore", divide="ignore"):
        out = num / den
    out[~(den > 0)] = np.nan
    return np.clip(out, -1.0, 1.0)


def spearman_weighted(x: np.ndarray, y: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Spearman rho of (x, y) with each pair i repeated ``weights[b, i]`` times, for every row b of ``weights``:
    the multiplicity-weighted Pearson correlation of the average ranks of the expanded sample."""
    weights = np.atleast_2d(np.asarray(weights, dtype=float))
    return _pearson_weighted(_centred_ranks(np.asarray(x, dtype=float), weights),
                             _centred_ranks(np.asarray(y, dtype=float), weights), weights)


def _signs(values: np.ndarray) -> np.ndarray:
    return np.sign(values[:, None] - values[None, :])


def _kendall_from_parts(x: np.ndarray, sign_y: np.ndarray, tied_y: np.ndarray, weights: np.ndarray) -> np.ndarray:
    product = _signs(x) * sign_y
    if x.size <= EXACT_FLOAT32:
        # counts and signs are small integers and every partial sum stays below 2**24: float32 is exact and
        # halves the cost of the (B x n) @ (n x n) product
        half = weights.astype(np.float32) @ product.astype(np.float32)
        s = np.einsum("bi,bi->b", half.astype(np.float64), weights) / 2.0
    else:
        s = np.einsum("bi,bi->b", weights @ product, weights) / 2.0
    total = weights.sum(axis=1)
    n0 = total * (total - 1.0) / 2.0
    den = np.sqrt((n0 - _tied_pairs(x, weights)) * (n0 - tied_y))
    with np.errstate(invalid="ignore", divide="ignore"):
        out = s / den
    out[~(den > 0)] = np.nan
    return np.clip(out, -1.0, 1.0)


def kendall_weighted(x: np.ndarray, y: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Kendall tau-b of (x, y) with each pair i repeated ``weights[b, i]`` times, for every row b of ``weights``."""
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    weights = np.atleast_2d(np.asarray(weights, dtype=float))
    return _kendall_from_parts(x, _signs(y), _tied_pairs(y, weights), weights)


def counts_of(indices: np.ndarray, n: int) -> np.ndarray:
    """(B x n) multiplicities of the (B x n) resampled indices."""
    b = indices.shape[0]
    flat = (np.arange(b)[:, None] * n + indices).ravel()
    return np.bincount(flat, minlength=b * n).reshape(b, n).astype(float)


_REFERENCE_CACHE: dict[tuple, tuple] = {}


def _reference_parts(y: np.ndarray, indices: np.ndarray, start: int, stop: int):
    """Counts, centred ranks, sign matrix and tied pairs of the reference side of one chunk of resamples.

    They depend only on (y, indices), so models scored against the same human means share them.
    """
    key = (y.tobytes(), id(indices), indices.shape, start, stop)
    if key not in _REFERENCE_CACHE:
        if len(_REFERENCE_CACHE) > 16:
            _REFERENCE_CACHE.clear()
        counts = counts_of(indices[start:stop], y.size)
        sign_y = _signs(y) if y.size <= MAX_SIGN_MATRIX else None
        _REFERENCE_CACHE[key] = (indices, counts, _centred_ranks(y, counts), sign_y, _tied_pairs(y, counts))
    return _REFERENCE_CACHE[key][1:]


def resampled_correlations(x: np.ndarray, y: np.ndarray, indices: np.ndarray,
                           chunk: int = 2000) -> tuple[np.ndarray, np.ndarray]:
    """(rho, tau) of (x[idx], y[idx]) for every row idx of ``indices``; fractions, NaN where undefined."""
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    rho = np.empty(indices.shape[0])
    tau = np.empty(indices.shape[0])
    for start in range(0, indices.shape[0], chunk):
        stop = min(start + chunk, indices.shape[0])
        counts, ry, sign_y, tied_y = _reference_parts(y, indices, start, stop)
        rho[start:stop] = _pearson_weighted(_centred_ranks(x, counts), ry, counts)
        if sign_y is not None:
            tau[start:stop] = _kendall_from_parts(x, sign_y, tied_y, counts)
        else:  # pragma: no cover - far beyond the benchmark's 610 pairs
            from scipy.stats import kendalltau

            tau[start:stop] = [kendalltau(x[i], y[i]).statistic for i in indices[start:stop]]
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


def masked_rows(x: np.ndarray, y: np.ndarray, mask: np.ndarray, chunk_cells: int = 200_000
                ) -> tuple[np.ndarray, np.ndarray]:
    """Row-wise (rho, tau-b) of ``x[r, mask[r]]`` against ``y[r, mask[r]]`` for every row r of (R x P) arrays.

    Used for the human ceiling, where each annotator rated a different subset of the pairs. The valid entries of
    each row are packed to the left (R x K, K = the longest row), ranks skip the padding
    (``rankdata(nan_policy="omit")``), and tau-b counts concordant and untied pairs over the valid entries of
    a sign matrix per row (rows sorted by length, each chunk cut to its longest row). NaN for rows with fewer than 2 entries or a constant side.
    """
    mask = np.asarray(mask, dtype=bool)
    order = np.argsort(~mask, axis=1, kind="stable")
    k = mask.sum(axis=1)
    width = max(int(k.max()) if k.size else 0, 2)
    order = order[:, :width]
    valid = np.take_along_axis(mask, order, axis=1)
    px = np.where(valid, np.take_along_axis(np.asarray(x, dtype=float), order, axis=1), np.nan)
    py = np.where(valid, np.take_along_axis(np.asarray(y, dtype=float), order, axis=1), np.nan)

    rx = rankdata(px, axis=1, nan_policy="omit")
    ry = rankdata(py, axis=1, nan_policy="omit")
    with np.errstate(invalid="ignore", divide="ignore"):
        cx = np.where(valid, rx - np.nanmean(rx, axis=1, keepdims=True), 0.0)
        cy = np.where(valid, ry - np.nanmean(ry, axis=1, keepdims=True), 0.0)
        den = np.sqrt((cx * cx).sum(axis=1) * (cy * cy).sum(axis=1))
        rho = (cx * cy).sum(axis=1) / den
    rho[~(den > 0)] = np.nan

    tau = np.full(px.shape[0], np.nan)
    zx, zy = np.where(valid, px, 0.0), np.where(valid, py, 0.0)
    by_length = np.argsort(-k, kind="stable")  # longest rows first; each chunk is cut to its longest row
    start = 0
    while start < by_length.size:
        w = max(int(k[by_length[start]]), 1)
        rows = by_length[start:start + max(1, chunk_cells // (w * w))]
        start += rows.size
        both = (valid[rows, :w, None] & valid[rows, None, :w]).astype(float)
        sx = np.sign(zx[rows, :w, None] - zx[rows, None, :w]) * both
        sy = np.sign(zy[rows, :w, None] - zy[rows, None, :w]) * both
        n = k[rows].astype(float)
        n0 = n * (n - 1.0) / 2.0
        s = np.einsum("rij,rij->r", sx, sy) / 2.0
        tied_x = n0 - np.einsum("rij,rij->r", sx, sx) / 2.0  # pairs (i < j) with sign 0 among the valid ones
        tied_y = n0 - np.einsum("rij,rij->r", sy, sy) / 2.0
        with np.errstate(invalid="ignore", divide="ignore"):
            den = np.sqrt((n0 - tied_x) * (n0 - tied_y))
            t = s / den
        t[~(den > 0)] = np.nan
        tau[rows] = t
    return np.clip(rho, -1.0, 1.0), np.clip(tau, -1.0, 1.0)
