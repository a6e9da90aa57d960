"""The report's hand bootstrap (scoring/bootstrap.py over scoring/fastcorr.py) against scipy.stats.bootstrap.

Issue #18 asks for scipy.stats.bootstrap wherever the hand bootstrap is not measured faster. Both compute the
percentile interval of Spearman's rho and Kendall's tau-b (x100) over B resamples of n pairs with ties (1-5 answers
against human means, the benchmark's shape). Prints seconds per call and the largest difference between the two
estimates' resample distributions' percentiles (the resamples differ, so intervals agree to Monte-Carlo error).

    python benchmarks/bootstrap_speed.py [--n 610] [--b 1000]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from scipy import stats

from convis_tasks.scoring.bootstrap import resample


def scipy_interval(x: np.ndarray, y: np.ndarray, b: int, seed: int) -> tuple[tuple[float, float], tuple[float, float]]:
    """95% percentile intervals of rho and tau (x100) with scipy.stats.bootstrap (paired resampling)."""
    rng = np.random.default_rng(seed)

    def rho(a, c):
        return stats.spearmanr(a, c).statistic * 100.0

    def tau(a, c):
        return stats.kendalltau(a, c).statistic * 100.0

    out = []
    for statistic in (rho, tau):
        res = stats.bootstrap((x, y), statistic, paired=True, vectorized=False, n_resamples=b,
                              method="percentile", random_state=rng)
        out.append((float(res.confidence_interval.low), float(res.confidence_interval.high)))
    return out[0], out[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=610)
    parser.add_argument("--b", type=int, default=1000)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    y = np.round(rng.uniform(1, 5, args.n) * 6) / 6  # means of ~6 ratings
    x = np.clip(np.round(y + rng.normal(0, 1.2, args.n)), 1, 5)  # 1-5 answers, many ties
    resample(x, y, args.b, 1)  # warm the index cache's code path (not the same seed)
    t = time.perf_counter()
    hand = resample(x, y, args.b, 0)
    hand_s = time.perf_counter() - t
    t = time.perf_counter()
    rho_ci, tau_ci = scipy_interval(x, y, args.b, 0)
    scipy_s = time.perf_counter() - t
    ci = hand.ci()
    print(f"n={args.n} pairs, B={args.b} resamples, rho and tau together")
    print(f"hand (fastcorr, vectorised): {hand_s:.3f} s   rho {ci['spearman'].lo:.2f}..{ci['spearman'].hi:.2f}  "
          f"tau {ci['kendall'].lo:.2f}..{ci['kendall'].hi:.2f}")
    print(f"scipy.stats.bootstrap:       {scipy_s:.3f} s   rho {rho_ci[0]:.2f}..{rho_ci[1]:.2f}  "
          f"tau {tau_ci[0]:.2f}..{tau_ci[1]:.2f}")
    print(f"scipy / hand: {scipy_s / hand_s:.1f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
