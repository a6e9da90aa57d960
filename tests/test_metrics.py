import math
import random
import warnings

import pytest

from convis_tasks.scoring.metrics import (MIN_PAIRS, ConstantInputWarning, EmptyEvaluationError, SmallSampleWarning,
                                          correlate, score_pairs)


def test_perfect_and_reversed_agreement():
    assert correlate([1, 2, 3, 4], [1.5, 2.5, 3.5, 4.5]) == (100.0, 100.0)
    assert correlate([4, 3, 2, 1], [1, 2, 3, 4]) == (-100.0, -100.0)


def test_ties_match_the_hand_derivation():
    # x ranks [1, 2.5, 2.5, 4] vs y ranks [1, 2, 3, 4]: rho = 4.5 / sqrt(4.5 * 5);
    # tau-b: 5 concordant, 0 discordant, 1 pair tied in x: 5 / sqrt((6 - 1) * 6)
    rho, tau = correlate([1, 2, 2, 3], [1, 2, 3, 4])
    assert rho == pytest.approx(100 * 4.5 / math.sqrt(22.5), abs=1e-12)
    assert tau == pytest.approx(100 * 5 / math.sqrt(30), abs=1e-12)


def test_constant_predictions_give_nan_with_a_warning_not_a_crash():
    with pytest.warns(ConstantInputWarning, match="constant"):
        rho, tau = correlate([3, 3, 3], [1, 2, 5])
    assert math.isnan(rho) and math.isnan(tau)
    with pytest.warns(ConstantInputWarning, match="fewer than two"):
        assert all(math.isnan(v) for v in correlate([3], [1]))


def test_length_mismatch_is_an_error():
    with pytest.raises(ValueError, match="differ in length"):
        correlate([1, 2], [1, 2, 3])


def _pairs(n):
    return [(f"a{i}.mp4", f"b{i}.mp4") for i in range(n)]


def test_unparsed_neutral_versus_drop():
    keys = _pairs(4)
    truth = dict(zip(keys, [1.0, 2.0, 3.0, 4.0]))
    preds = dict(zip(keys, [1.0, None, 5.0, 4.0]))
    neutral = score_pairs(preds, truth, "neutral")  # None -> 3.0: x = [1, 3, 5, 4]
    assert (neutral.n, neutral.unparsed) == (4, 1)
    assert neutral.spearman == pytest.approx(80.0)  # ranks [1,2,4,3] vs [1,2,3,4]: 1 - 6*2/(4*15)
    dropped = score_pairs(preds, truth, "drop")  # x = [1, 5, 4] vs y = [1, 3, 4]
    assert (dropped.n, dropped.unparsed) == (3, 1)
    assert dropped.spearman == pytest.approx(50.0)  # ranks [1,3,2] vs [1,2,3]: 1 - 6*2/(3*8)
    with pytest.raises(ValueError, match="unparsed"):
        score_pairs(preds, truth, "zero")


def test_pairs_on_one_side_only_are_left_out_and_order_does_not_matter():
    keys = _pairs(6)
    truth = dict(zip(keys, [1.0, 2.0, 2.5, 3.0, 4.0, 5.0]))
    preds = {k: v for k, v in zip(keys, [2.0, 1.0, 3.0, 3.0, 5.0, 4.0])}
    preds[("x.mp4", "y.mp4")] = 1.0  # not in the truth
    del preds[keys[0]]  # not predicted
    base = score_pairs(preds, truth)
    assert base.n == 5
    shuffled = list(preds.items())
    random.Random(0).shuffle(shuffled)
    again = score_pairs(dict(shuffled), dict(reversed(list(truth.items()))))
    assert (again.spearman, again.kendall) == (base.spearman, base.kendall)


def test_nan_in_predictions_counts_as_unparsed():
    keys = _pairs(3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warnings.simplefilter("ignore", SmallSampleWarning)
        r = score_pairs(dict(zip(keys, [1.0, float("nan"), 5.0])), dict(zip(keys, [1.0, 2.0, 4.0])))
    assert r.unparsed == 1 and r.spearman == pytest.approx(100.0)


@pytest.mark.parametrize("preds, truth, why", [
    ({}, {("a.mp4", "b.mp4"): 3.0}, "no predictions"),
    ({("a.mp4", "b.mp4"): 3.0}, {}, "no ground truth"),
    ({("x.mp4", "y.mp4"): 3.0}, {("a.mp4", "b.mp4"): 3.0}, "share none"),
    ({("b.mp4", "a.mp4"): 3.0}, {("a.mp4", "b.mp4"): 3.0}, "share none"),  # order matters: named in the message
])
def test_nothing_to_correlate_is_an_error_not_a_null(preds, truth, why):
    with pytest.raises(EmptyEvaluationError, match=why):
        score_pairs(preds, truth)
    assert issubclass(EmptyEvaluationError, ValueError)


def test_all_unparsed_under_drop_is_an_error():
    keys = _pairs(3)
    with pytest.raises(EmptyEvaluationError, match="unparsed"):
        score_pairs(dict.fromkeys(keys), dict(zip(keys, [1.0, 2.0, 3.0])), "drop")


def test_fewer_than_min_pairs_warns_and_min_pairs_does_not():
    keys = _pairs(MIN_PAIRS)
    truth = {k: float(i % 5 + 1) for i, k in enumerate(keys)}
    preds = {k: float((i * 3) % 5 + 1) for i, k in enumerate(keys)}
    with pytest.warns(SmallSampleWarning, match=f"only {MIN_PAIRS - 1} pairs"):
        small = score_pairs({k: preds[k] for k in keys[1:]}, truth)
    assert small.n == MIN_PAIRS - 1 and math.isfinite(small.spearman)  # still reported, never hidden
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert score_pairs(preds, truth).n == MIN_PAIRS
