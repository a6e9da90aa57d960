"""Bootstrap intervals, the paired test, and the fast rho / tau they rest on (checked against scipy)."""

from __future__ import annotations

import time

import numpy as np
import pytest
from scipy.stats import kendalltau, rankdata, spearmanr

from convis_tasks.scoring.bootstrap import bootstrap_ci, paired_bootstrap, resample_indices
from convis_tasks.scoring.fastcorr import (kendall_weighted, masked_rows, resampled_correlations, spearman_kendall,
                                           spearman_weighted)


def synthetic(n: int, seed: int = 0, noise: float = 1.0):
    """Integer 1-5 'model' scores and human-like means (multiples of 1/8) with many ties on both sides."""
    rng = np.random.default_rng(seed)
    truth = np.round((rng.uniform(1, 5, n)) * 8) / 8
    model = np.clip(np.round(truth + rng.normal(0, noise, n)), 1, 5)
    keys = [(f"v{i}a.mp4", f"v{i}b.mp4") for i in range(n)]
    return dict(zip(keys, model.tolist())), dict(zip(keys, truth.tolist())), model, truth


def test_resampled_rho_and_tau_equal_scipy_on_the_resampled_rows():
    _, _, x, y = synthetic(120, seed=1)
    idx = np.random.default_rng(5).integers(0, x.size, size=(40, x.size))
    rho, tau = resampled_correlations(x, y, idx)
    for b in range(40):
        assert rho[b] == pytest.approx(spearmanr(x[idx[b]], y[idx[b]]).statistic, abs=1e-12)
        assert tau[b] == pytest.approx(kendalltau(x[idx[b]], y[idx[b]]).statistic, abs=1e-12)


def test_weighted_forms_equal_the_expanded_sample():
    x = np.array([1.0, 3.0, 3.0, 5.0, 2.0])
    y = np.array([1.5, 2.0, 4.0, 4.0, 1.0])
    w = np.array([[2, 0, 1, 1, 1], [0, 3, 1, 0, 1]], dtype=float)
    for row in w:
        ex, ey = np.repeat(x, row.astype(int)), np.repeat(y, row.astype(int))
        assert spearman_weighted(x, y, row[None])[0] == pytest.approx(spearmanr(ex, ey).statistic, abs=1e-12)
        assert kendall_weighted(x, y, row[None])[0] == pytest.approx(kendalltau(ex, ey).statistic, abs=1e-12)
    assert np.isnan(spearman_kendall([3, 3, 3], [1, 2, 3])[0])  # constant side: undefined


def test_masked_rows_equal_scipy_per_row():
    rng = np.random.default_rng(3)
    x = rng.integers(1, 6, size=(30, 25)).astype(float)
    y = np.round(rng.uniform(1, 5, size=(30, 25)) * 4) / 4
    mask = rng.random((30, 25)) < 0.4
    mask[0] = False
    mask[0, :2] = True
    rho, tau = masked_rows(x, y, mask)
    for r in range(30):
        xs, ys = x[r, mask[r]], y[r, mask[r]]
        if xs.size < 2 or np.all(xs == xs[0]) or np.all(ys == ys[0]):
            assert np.isnan(rho[r]) and np.isnan(tau[r])
            continue
        assert rho[r] == pytest.approx(spearmanr(xs, ys).statistic, abs=1e-12)
        assert tau[r] == pytest.approx(kendalltau(xs, ys).statistic, abs=1e-12)


def test_ci_contains_the_estimate_is_deterministic_and_narrows_with_more_pairs():
    preds, truth, x, y = synthetic(100, seed=2)
    ci = bootstrap_ci(preds, truth, b=500, seed=0)
    assert ci["spearman"].estimate == pytest.approx(100 * spearmanr(x, y).statistic, abs=1e-9)
    assert ci["kendall"].estimate == pytest.approx(100 * kendalltau(x, y).statistic, abs=1e-9)
    for interval in ci.values():
        assert interval.lo < interval.estimate < interval.hi
    again = bootstrap_ci(preds, truth, b=500, seed=0)
    assert again == ci
    other = bootstrap_ci(preds, truth, b=500, seed=1)
    assert other["spearman"].lo != ci["spearman"].lo
    big_preds, big_truth, _, _ = synthetic(1000, seed=2)
    big = bootstrap_ci(big_preds, big_truth, b=500, seed=0)
    for m in ("spearman", "kendall"):
        assert big[m].hi - big[m].lo < 0.6 * (ci[m].hi - ci[m].lo)  # width ~ 1/sqrt(n): about 0.32x


def test_percentile_interval_is_the_percentile_of_the_resampled_statistics():
    preds, truth, x, y = synthetic(60, seed=4)
    keys = sorted(truth)
    xv = np.array([preds[k] for k in keys])
    yv = np.array([truth[k] for k in keys])
    idx = resample_indices(60, 200, 7)
    direct = [100 * spearmanr(xv[i], yv[i]).statistic for i in idx]
    ci = bootstrap_ci(preds, truth, b=200, seed=7)["spearman"]
    lo, hi = np.percentile(direct, [2.5, 97.5])
    assert (ci.lo, ci.hi) == (pytest.approx(lo, abs=1e-9), pytest.approx(hi, abs=1e-9))


def test_paired_test_truth_beats_noise_and_a_model_never_beats_itself():
    _, truth, _, y = synthetic(200, seed=6)
    rng = np.random.default_rng(0)
    noise = dict(zip(sorted(truth), rng.integers(1, 6, 200).astype(float).tolist()))
    result = paired_bootstrap(truth, noise, truth, b=500, seed=0)
    for m in ("spearman", "kendall"):
        assert result[m].p == 0.0
        assert result[m].lo > 0 and result[m].diff > result[m].lo
    assert result["spearman"].diff == pytest.approx(100 - 100 * spearmanr(
        [noise[k] for k in sorted(truth)], [truth[k] for k in sorted(truth)]).statistic, abs=1e-9)
    same = paired_bootstrap(noise, noise, truth, b=200, seed=0)
    assert same["spearman"].p == 1.0 and same["spearman"].diff == 0.0  # diff <= 0 in every resample
    reverse = paired_bootstrap(noise, truth, truth, b=200, seed=0)
    assert reverse["kendall"].p == 1.0


def test_bootstrap_of_the_release_size_is_fast():
    preds, truth, _, _ = synthetic(610, seed=8)
    bootstrap_ci(preds, truth, b=50, seed=0)  # warm up
    start = time.perf_counter()
    bootstrap_ci(preds, truth, b=1000, seed=0)
    assert time.perf_counter() - start < 3.0  # about 0.1 s here; scipy per resample takes about 1 s


def test_rank_helper_matches_rankdata_average():
    from convis_tasks.scoring.fastcorr import _weighted_ranks

    values = np.array([2.0, 1.0, 2.0, 3.0])
    w = np.array([[1.0, 2.0, 0.0, 1.0]])
    expanded = np.array([2.0, 1.0, 1.0, 3.0])
    assert _weighted_ranks(values, w)[0, [0, 1, 3]].tolist() == rankdata(expanded)[[0, 1, 3]].tolist()
