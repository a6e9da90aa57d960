"""The human ceiling (leave-one-annotator-out) on a hand-made raw file, and on the release."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from convis_tasks.report.build import HUMAN_LABEL, ReportOptions, build_report
from convis_tasks.scoring.ceiling import COMPOSITE, human_ceiling, loao
from convis_tasks.scoring.composite import parse_weights
from convis_tasks.reading.inputs import load_release_model
from convis_tasks.scoring.agreement import agreement
from convis_tasks.reading.annotations import load_ground_truth

# Location ratings of annotators A, B, C on pairs p1..p4 (C did not rate p4); every concept gets the same ratings.
RATINGS = {"A": [1, 2, 3, 4], "B": [2, 1, 4, 3], "C": [1, 3, 5, None]}
RAW_KEYS = ("MainAction", "MainSubjects", "Location", "OrderofActions", "MainObjects")

# By hand. Others' means, ranks, then rho = Pearson of ranks, tau-b = (C - D) / sqrt((n0 - ties_x)(n0 - ties_y)):
# A: [1,2,3,4] vs others [1.5, 2, 4.5, 3] -> ranks [1,2,4,3]; sum d^2 = 2: rho = 1 - 6*2/60 = 0.8; C=5, D=1: tau = 4/6
# B: [2,1,4,3] vs others [1, 2.5, 4, 4] -> centred ranks [-.5,-1.5,1.5,.5] and [-1.5,-.5,1,1]: rho = 3.5/sqrt(5*4.5);
#    C=4, D=1, one tie in the others: tau = 3/sqrt(6*5)
# C: [1,3,5] vs others [1.5, 1.5, 3.5] -> centred ranks [-1,0,1] and [-.5,-.5,1]: rho = 1.5/sqrt(2*1.5);
#    C=2, D=0, one tie: tau = 2/sqrt(3*2)
RHO = {"A": 0.8, "B": 3.5 / math.sqrt(22.5), "C": 1.5 / math.sqrt(3.0)}
TAU = {"A": 4 / 6, "B": 3 / math.sqrt(30.0), "C": 2 / math.sqrt(6.0)}


@pytest.fixture()
def raw_file(tmp_path):
    records = []
    for annotator, values in RATINGS.items():
        for p, value in enumerate(values, start=1):
            if value is not None:
                records.append({"user_id": annotator, "video_pair_id": f"a{p}.mp4-b{p}.mp4",
                                "user_inputs": {k: str(value) for k in RAW_KEYS}})
    path = tmp_path / "vicos.user_inputs.json"
    path.write_text(json.dumps(records))
    return path


def test_ceiling_on_a_hand_made_raw_file(raw_file):
    ceiling = human_ceiling(load_ground_truth(raw_file).ratings)
    entry = ceiling.entries["location"]
    assert entry.spearman == pytest.approx(100 * sum(RHO.values()) / 3, abs=1e-9)
    assert entry.kendall == pytest.approx(100 * sum(TAU.values()) / 3, abs=1e-9)
    assert (entry.annotators, entry.too_few, entry.undefined) == (3, 0, 0)
    assert (ceiling.annotators, ceiling.pairs) == (3, 4)
    assert entry.alpha == pytest.approx(agreement(load_ground_truth(raw_file).ratings).alpha["location"])
    strict = human_ceiling(load_ground_truth(raw_file).ratings, min_pairs=4).entries["location"]
    assert strict.spearman == pytest.approx(100 * (RHO["A"] + RHO["B"]) / 2, abs=1e-9)  # C has 3 pairs: out
    assert (strict.annotators, strict.too_few) == (2, 1)


def test_composite_ceiling_weights_each_annotators_own_ratings(raw_file):
    ratings = load_ground_truth(raw_file).ratings
    ceiling = human_ceiling(ratings, weights=parse_weights("location=0.5,main_action=0.5"))
    # every concept carries the same ratings, so the composite equals each concept
    assert ceiling.entries[COMPOSITE].spearman == pytest.approx(ceiling.entries["location"].spearman)
    assert ceiling.entries[COMPOSITE].alpha is None


def test_annotators_with_constant_ratings_or_too_few_pairs_are_counted_not_averaged():
    matrix = np.array([[3, 3, 3, np.nan],  # constant: undefined
                       [1, 2, 3, 4],
                       [2, 1, 4, 5],
                       [np.nan, np.nan, 1, 2]])  # 2 pairs: too few
    entry = loao(matrix)
    assert (entry.annotators, entry.undefined, entry.too_few) == (2, 1, 1)


def test_means_only_ground_truth_skips_the_row_with_a_note(tmp_path):
    from test_report_support import DEMO_GT, make_run
    from convis_tasks.reading.inputs import load_inputs

    make_run(tmp_path / "run")
    report = build_report(load_inputs([str(tmp_path / "run")]), load_ground_truth(DEMO_GT))
    assert all(r.label != HUMAN_LABEL for r in report.tables[0].rows)
    assert any("mean ratings only" in m and "vicos.user_inputs.json" in m for m in report.messages)


def test_release_ceiling(reference):
    truth = load_ground_truth(reference / "vicos.user_inputs.json")
    ceiling = human_ceiling(truth.ratings)
    assert (ceiling.annotators, ceiling.pairs) == (147, 610)
    report = agreement(truth.ratings)
    for concept, entry in ceiling.entries.items():
        assert entry.alpha == pytest.approx(report.alpha[concept], abs=1e-12)
        assert 100 <= entry.annotators + entry.too_few + entry.undefined <= 147
        assert 30 < entry.spearman < 80 and entry.kendall < entry.spearman
    model = load_release_model(str(reference), "LLaVA-OneVision-Qwen2-7B")
    built = build_report([model], truth, None, ReportOptions())
    human = next(r for r in built.tables[0].rows if r.label == HUMAN_LABEL)
    assert human.values["location.spearman"] == ceiling.entries["location"].spearman
    assert [t.key for t in built.tables] == ["pairs", "ceiling"]
