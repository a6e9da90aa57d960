"""Retrieval metrics under ties; every expected value is derived by hand in the comments."""

from __future__ import annotations

import math
import random

import pytest

from convis_tasks.scoring.retrieval import (AnchorMetrics, RetrievalInputError, anchor_metrics, dense_levels,
                                            evaluate_retrieval, random_choice_expectation)

# Discounts 1/log2(pos + 1) of positions 1..4: 1, 1/log2(3) ~ 0.6309297535714574, 1/2, 1/log2(5) ~ 0.4306765580733931
D1, D2, D3, D4 = 1.0, 1.0 / math.log2(3), 0.5, 1.0 / math.log2(5)
FOUR = {"a": 1, "b": 2, "c": 3, "d": 4}  # no human ties: rel 4, 3, 2, 1
TOP_TIE = {"a": 1, "b": 1, "c": 2, "d": 3}  # a, b tied most similar: rel 3, 3, 2, 1


def test_module_does_not_import_torch_or_lmms_eval():
    import convis_tasks.scoring.retrieval as mod

    source = open(mod.__file__, encoding="utf-8").read()
    assert "import torch" not in source and "lmms_eval" not in source


def test_dense_levels():
    assert dense_levels({"a": 1, "b": 1, "c": 3, "d": 4}) == {"a": 1, "b": 1, "c": 2, "d": 3}
    assert dense_levels({"a": 1, "b": 1, "c": 2, "d": 3}) == {"a": 1, "b": 1, "c": 2, "d": 3}
    assert dense_levels({"x": 2.5, "y": 0.5, "z": 2.5}) == {"x": 2, "y": 1, "z": 2}
    with pytest.raises(RetrievalInputError, match="'b'"):
        dense_levels({"a": 1, "b": float("nan")})


def test_no_ties_perfect_model_is_one_everywhere():
    m = anchor_metrics(FOUR, {"a": 5, "b": 4, "c": 2, "d": 1})
    assert m == AnchorMetrics(r1=1, p1=1, f1=1, r1_bottom=1, p1_bottom=1, f1_bottom=1, kendall=1, ndcg=1)


def test_human_tie_at_top_model_picks_one_of_them():
    # relevant {a, b}, predicted {a}: correct {a}; R = 1/2, P = 1, F1 = 2*1*(1/2)/(3/2) = 2/3
    m = anchor_metrics(TOP_TIE, {"a": 5, "b": 4, "c": 3, "d": 1})
    assert (m.r1, m.p1, m.f1) == pytest.approx((1 / 2, 1, 2 / 3), abs=1e-12)
    # bottom: relevant {d}, predicted {d}
    assert (m.r1_bottom, m.p1_bottom, m.f1_bottom) == (1, 1, 1)


def test_human_tie_at_top_model_ties_a_relevant_and_an_irrelevant():
    # relevant {a, b}, predicted {a, c}: correct {a}; R = 1/2, P = 1/2, F1 = 1/2
    m = anchor_metrics(TOP_TIE, {"a": 5, "b": 2, "c": 5, "d": 1})
    assert (m.r1, m.p1, m.f1) == pytest.approx((1 / 2, 1 / 2, 1 / 2), abs=1e-12)


def test_human_tie_at_top_model_top_is_wrong():
    # predicted {d}, relevant {a, b}: nothing correct; bottom: predicted {a}, relevant {d}: nothing either
    m = anchor_metrics(TOP_TIE, {"a": 1, "b": 2, "c": 3, "d": 5})
    assert (m.r1, m.p1, m.f1) == (0, 0, 0)
    assert (m.r1_bottom, m.p1_bottom, m.f1_bottom) == (0, 0, 0)


def test_competition_ranks_equal_dense_ranks():
    scores = {"a": 5, "b": 2, "c": 5, "d": 1}
    assert anchor_metrics({"a": 1, "b": 1, "c": 3, "d": 4}, scores) == anchor_metrics(TOP_TIE, scores)


def test_all_tied_model_scores():
    # top: predicted = all 4, relevant {a}: R = 1, P = 1/4, F1 = 2*(1/4)/(5/4) = 2/5; bottom likewise with {d}
    m = anchor_metrics(FOUR, {"a": 3, "b": 3, "c": 3, "d": 3})
    assert (m.r1, m.p1, m.f1) == pytest.approx((1, 1 / 4, 2 / 5), abs=1e-12)
    assert (m.r1_bottom, m.p1_bottom, m.f1_bottom) == pytest.approx((1, 1 / 4, 2 / 5), abs=1e-12)
    assert math.isnan(m.kendall)
    # All four share the mean discount (D1+D2+D3+D4)/4 ~ 2.5616063116448506/4 = 0.6404015779112127;
    # DCG = mean_discount * (4+3+2+1) ~ 6.404015779112127.
    # IDCG = 4*D1 + 3*D2 + 2*D3 + 1*D4 ~ 4 + 1.8927892607143722 + 1 + 0.4306765580733931 = 7.323465818787765.
    # NDCG ~ 6.404015779112127 / 7.323465818787765 ~ 0.8744510...
    dcg = (D1 + D2 + D3 + D4) / 4 * 10
    idcg = 4 * D1 + 3 * D2 + 2 * D3 + 1 * D4
    assert m.ndcg == pytest.approx(dcg / idcg, abs=1e-12)
    assert m.ndcg == pytest.approx(0.87445, abs=1e-5)

    result = evaluate_retrieval({"x": FOUR}, {"x": {"a": 3, "b": 3, "c": 3, "d": 3}})
    assert result.kendall_undefined == 1 and math.isnan(result.kendall)
    assert result.to_dict()["kendall_undefined"] == 1


def test_ndcg_with_one_tie_in_the_model_scores():
    # Human a1 b2 c3 d4 (rel 4,3,2,1); model a=5, c=5, b=2, d=1: {a, c} share positions 1-2, b at 3, d at 4.
    # DCG  = (4+2)*(D1+D2)/2 + 3*D3 + 1*D4 = 3 + 3*D2 + 1.5 + D4
    # IDCG = 4*D1 + 3*D2 + 2*D3 + 1*D4     = 4 + 3*D2 + 1   + D4  ->  DCG = IDCG - 1/2 exactly.
    # IDCG ~ 7.323465818787765, NDCG = 1 - 0.5/IDCG ~ 1 - 0.0682737 = 0.9317263...
    idcg = 5 + 3 * D2 + D4
    m = anchor_metrics(FOUR, {"a": 5, "c": 5, "b": 2, "d": 1})
    assert m.ndcg == pytest.approx(1 - 0.5 / idcg, abs=1e-12)
    assert m.ndcg == pytest.approx(0.9317263, abs=1e-7)


def test_ndcg_with_human_ties():
    # Human ranks 1,1,3,4 -> levels 1,1,2,3 -> rel a3 b3 c2 d1.  Model order d > c > b > a (no ties).
    # DCG  = 1*D1 + 2*D2 + 3*D3 + 3*D4;  IDCG = 3*D1 + 3*D2 + 2*D3 + 1*D4.
    m = anchor_metrics({"a": 1, "b": 1, "c": 3, "d": 4}, {"a": 1, "b": 2, "c": 3, "d": 4})
    expected = (D1 + 2 * D2 + 3 * D3 + 3 * D4) / (3 * D1 + 3 * D2 + 2 * D3 + D4)
    assert m.ndcg == pytest.approx(expected, abs=1e-12)


def test_ndcg_is_one_when_all_human_ranks_are_equal():
    m = anchor_metrics({"a": 2, "b": 2, "c": 2}, {"a": 1, "b": 5, "c": 3})
    assert m.ndcg == 1.0
    assert math.isnan(m.kendall)  # the human side is all tied
    # every candidate is both most and least similar: top R = 1/3, P = 1; F1 = 2*(1/3)/(4/3) = 1/2
    assert (m.r1, m.p1, m.f1) == pytest.approx((1 / 3, 1, 1 / 2), abs=1e-12)


def test_kendall_hand_case():
    # Human: a > b > c > d.  Model: a(4) > b(3) > d(2) > c(1).
    # Pairs: ab C, ac C, ad C, bc C, bd C, cd D -> 5 concordant, 1 discordant, no ties: tau = (5-1)/6 = 2/3
    m = anchor_metrics(FOUR, {"a": 4, "b": 3, "c": 1, "d": 2})
    assert m.kendall == pytest.approx(2 / 3, abs=1e-12)
    # reversed model: all 6 pairs discordant -> -1
    assert anchor_metrics(FOUR, {"a": 1, "b": 2, "c": 3, "d": 4}).kendall == pytest.approx(-1, abs=1e-12)


def test_unparsed_is_neutral():
    # a: None -> 3.0, the highest score: top predicted {a} = relevant {a}.
    # bottom: predicted {c, d} (both 1), relevant {d}: R = 1, P = 1/2, F1 = 2*(1/2)/(3/2) = 2/3.
    # Kendall: pairs ab ac ad bc bd concordant, cd tied in the model only:
    # tau-b = 5 / sqrt((6 - 0) * (6 - 1)) = 5 / sqrt(30)
    scores = {"a": None, "b": 2, "c": 1, "d": 1}
    m = anchor_metrics(FOUR, scores)
    assert (m.r1, m.p1, m.f1) == (1, 1, 1)
    assert (m.r1_bottom, m.p1_bottom, m.f1_bottom) == pytest.approx((1, 1 / 2, 2 / 3), abs=1e-12)
    assert m.kendall == pytest.approx(5 / math.sqrt(30), abs=1e-12)
    assert anchor_metrics(FOUR, {**scores, "a": float("nan")}) == m
    result = evaluate_retrieval({"x": FOUR}, {"x": scores})
    assert result.unparsed == 1 and result.to_dict()["unparsed"] == 1


def test_mismatched_candidates_raise_naming_them():
    with pytest.raises(RetrievalInputError, match=r"lack.*'d'") as err:
        anchor_metrics(FOUR, {"a": 1, "b": 2, "c": 3})
    assert isinstance(err.value, ValueError)
    with pytest.raises(RetrievalInputError, match=r"extra.*'e'"):
        anchor_metrics(FOUR, {"a": 1, "b": 2, "c": 3, "d": 4, "e": 5})
    with pytest.raises(RetrievalInputError, match="not a number"):
        anchor_metrics(FOUR, {"a": "4", "b": 2, "c": 3, "d": 4})


GOOD = {"a": 5, "b": 4, "c": 2, "d": 1}  # perfect for FOUR


def test_anchor_absent_from_predictions_is_excluded_not_averaged():
    human = {"v1": FOUR, "v2": FOUR, "v0": FOUR}
    # v1 perfect, v2 all wrong at the top (d on top) -> mean r@1 = 50; v0 has no scores at all
    scores = {"v1": GOOD, "v2": {"a": 1, "b": 2, "c": 3, "d": 5}, "other": GOOD}
    result = evaluate_retrieval(human, scores)
    assert result.excluded == ["v0"] and result.anchors == 2
    assert result.r1 == pytest.approx(50.0, abs=1e-12)
    assert result.unknown_anchors == 1
    assert result.to_dict()["excluded"] == 1
    with pytest.raises(RetrievalInputError, match="'v0'"):
        evaluate_retrieval(human, scores, strict=True)
    # an empty mapping counts as no scores too
    assert evaluate_retrieval(human, {**scores, "v0": {}}).excluded == ["v0"]


def test_anchor_missing_a_candidate_is_excluded_or_strict_raises():
    human = {"v1": FOUR, "v2": FOUR}
    scores = {"v1": GOOD, "v2": {"a": 5, "b": 4, "c": 2}}
    result = evaluate_retrieval(human, scores)
    assert result.excluded == ["v2"] and result.anchors == 1
    assert result.r1 == 100.0 and result.ndcg == pytest.approx(100.0, abs=1e-12)
    with pytest.raises(RetrievalInputError, match=r"'v2'.*'d'"):
        evaluate_retrieval(human, scores, strict=True)


def test_no_evaluated_anchor_is_an_error_naming_the_excluded_ones_never_a_null_result():
    from convis_tasks.scoring.metrics import EmptyEvaluationError

    with pytest.raises(EmptyEvaluationError, match=r"no anchor.*'v'"):
        evaluate_retrieval({"v": FOUR}, {})
    with pytest.raises(EmptyEvaluationError, match="no human rankings"):
        evaluate_retrieval({}, {"v": {"a": 1.0, "b": 2.0}})


def test_random_choice_expectation():
    # k = 1, m = 4: P = 1/4, R = 1/4, F1 = (1/4) * 2/2 = 1/4
    assert random_choice_expectation(FOUR) == pytest.approx((1 / 4, 1 / 4, 1 / 4), abs=1e-12)
    # k = 2, m = 4: R = 1/4, P = 2/4, F1 = (2/4) * 2/3 = 1/3
    assert random_choice_expectation(TOP_TIE) == pytest.approx((1 / 4, 1 / 2, 1 / 3), abs=1e-12)
    # averaged over both anchors, x100: r = 25, p = (25 + 50)/2 = 37.5, f1 = (25 + 33.33...)/2 = 29.1666...
    result = evaluate_retrieval({"x": FOUR, "y": TOP_TIE}, {"x": GOOD, "y": GOOD})
    assert result.random == pytest.approx({"r@1": 25.0, "p@1": 37.5, "f1@1": 175 / 6}, abs=1e-12)


def test_to_dict_keys():
    d = evaluate_retrieval({"x": FOUR}, {"x": GOOD}).to_dict()
    assert set(d) == {"r@1", "p@1", "f1@1", "r@1_bottom", "p@1_bottom", "f1@1_bottom", "kendall", "ndcg",
                      "anchors", "random", "excluded", "kendall_undefined", "unparsed"}
    assert d["anchors"] == 1 and d["kendall"] == pytest.approx(100.0) and set(d["random"]) == {"r@1", "p@1", "f1@1"}


def test_shuffled_dict_orders_give_identical_results():
    rng = random.Random(0)
    human, scores = {}, {}
    for i in range(12):
        ranks = [rng.choice([1, 2, 3]) for _ in range(4)]
        human[f"v{i}"] = {c: r for c, r in zip("abcd", ranks)}
        scores[f"v{i}"] = {c: rng.choice([None, 1.0, 2.5, 3.0, 4.0, 5.0]) for c in "abcd"}
    scores["v3"] = {"a": 1.0}  # mismatched -> excluded
    del scores["v7"]  # absent -> excluded

    def shuffled(mapping):
        items = list(mapping.items())
        rng.shuffle(items)
        return {k: shuffled(v) if isinstance(v, dict) else v for k, v in items}

    reference = repr(evaluate_retrieval(human, scores))
    for _ in range(5):
        assert repr(evaluate_retrieval(shuffled(human), shuffled(scores))) == reference


def test_larger_m_is_supported():
    # m = 6, human ranks 1..6, model perfect except the last two swapped: top and kendall stay sane.
    # Pairs: 15, one discordant (e, f): tau = (14 - 1)/15 = 13/15
    human = {c: i + 1 for i, c in enumerate("abcdef")}
    m = anchor_metrics(human, {"a": 6, "b": 5, "c": 4, "d": 3, "e": 1, "f": 2})
    assert (m.r1, m.p1, m.f1) == (1, 1, 1) and (m.r1_bottom, m.p1_bottom, m.f1_bottom) == (0, 0, 0)
    assert m.kendall == pytest.approx(13 / 15, abs=1e-12)


def test_fewer_than_min_anchors_warn_and_min_anchors_do_not():
    import warnings

    from convis_tasks.scoring.metrics import MIN_ANCHORS, SmallSampleWarning

    human = {f"v{i}": FOUR for i in range(MIN_ANCHORS)}
    scores = {f"v{i}": {c: float(5 - r) for c, r in FOUR.items()} for i in range(MIN_ANCHORS)}
    with pytest.warns(SmallSampleWarning, match=f"only {MIN_ANCHORS - 1} anchors"):
        few = evaluate_retrieval(dict(list(human.items())[1:]), scores)
    assert few.anchors == MIN_ANCHORS - 1 and few.r1 == 100.0  # still reported
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert evaluate_retrieval(human, scores).anchors == MIN_ANCHORS
