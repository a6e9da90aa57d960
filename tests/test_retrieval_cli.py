"""`convis retrieval`: file formats, the release's per-anchor score files, errors."""

import json

import pytest

from convis_tasks.cli import main
from convis_tasks.scoring.evaluate import run_retrieval
from convis_tasks.reading.annotations import AnnotationError
from convis_tasks.reading.rankings import load_candidate_sets, load_rankings


def _ranks_from_scores(scores: dict) -> dict:
    """Competition ranks by descending score (1 = most similar), 0.0 (unparsed) counted as 3.0."""
    values = {c: 3.0 if s == 0.0 else s for c, s in scores.items()}
    return {c: 1 + sum(v > values[c] for v in values.values()) for c in values}


def test_release_score_files_load_and_agree_with_rankings_built_from_them(reference, tmp_path):
    path = reference / "computed_retrieval_scores" / "Location" / "InternVL2_5-4B" / "InternVL2_5-4B_Location_ranking.json"
    scores = json.loads(path.read_text())
    candidates = load_candidate_sets(reference / "to_be_ranked.json")
    assert len(candidates) == 133
    assert {a: sorted(c) for a, c in candidates.items()} == {a: sorted(s) for a, s in scores.items()}
    rankings = tmp_path / "ranked.json"
    rankings.write_text(json.dumps([{"anchor": a, "Location": _ranks_from_scores(s)} for a, s in scores.items()]))
    result = run_retrieval(str(path), str(rankings))
    assert list(result) == ["location"]  # read off the release path; other concepts have no rankings
    r = result["location"]
    assert r["anchors"] == 133
    # a ranking equal to the model's own order: every top and bottom set matches exactly
    for key in ("r@1", "p@1", "f1@1", "r@1_bottom", "p@1_bottom", "f1@1_bottom", "ndcg"):
        assert r[key] == pytest.approx(100.0), key
    assert r["kendall"] == pytest.approx(100.0)
    # random choice among m = 4 with k tied at the top: R = 1/m, P = k/m, F1 = (k/m) * 2/(k+1)
    ks = [sum(v == 1 for v in _ranks_from_scores(s).values()) for s in scores.values()]
    assert r["random"]["r@1"] == pytest.approx(25.0)
    assert r["random"]["p@1"] == pytest.approx(100 * sum(k / 4 for k in ks) / len(ks))
    assert r["random"]["f1@1"] == pytest.approx(100 * sum(k / 4 * 2 / (k + 1) for k in ks) / len(ks))


def test_unconditioned_release_file_is_scored_against_every_ranked_concept(reference, tmp_path):
    path = reference / "computed_retrieval_scores_unconditioned" / "dinov2-large" / "dinov2-large_unconditioned_ranking.json"
    scores = json.loads(path.read_text())
    rankings = tmp_path / "ranked.json"
    rankings.write_text(json.dumps([{"anchor": a, "MainAction": {c: i + 1 for i, c in enumerate(s)},
                                     "Location": {c: 1 for c in s} | {list(s)[0]: 2}} for a, s in scores.items()]))
    result = run_retrieval(str(path), str(rankings))
    assert list(result) == ["main_action", "location"]
    assert all(r["anchors"] == 133 for r in result.values())
    assert all(r["answers"] == "concept-free" for r in result.values())  # marked: not a concept's own scores


def _write(tmp_path, name, payload):
    path = tmp_path / name
    path.write_text(json.dumps(payload))
    return path


def test_incomplete_anchor_is_left_out_counted_and_named(tmp_path, capsys):
    rankings = _write(tmp_path, "ranked.json", [
        {"anchor": "a.mp4", "Location": {"b.mp4": 1, "c.mp4": 2}},
        {"anchor": "x.mp4", "Location": {"y.mp4": 1, "z.mp4": 1}},  # no predictions at all
        {"anchor": "d.mp4", "Location": {"e.mp4": 1, "f.mp4": 2}},  # one candidate missing
    ])
    preds = _write(tmp_path, "m_Location_ranking.json", {"a.mp4": {"b.mp4": 5, "c.mp4": 1}, "d.mp4": {"e.mp4": 4}})
    assert main(["retrieval", str(preds), "--ground-truth", str(rankings), "--json"]) == 0
    out = capsys.readouterr()
    data = json.loads(out.out)["location"]
    assert data["anchors"] == 1 and data["excluded"] == 2
    assert data["r@1"] == pytest.approx(100.0)
    assert "x.mp4" in out.err and "d.mp4" in out.err


@pytest.mark.parametrize("payload, message", [
    ([{"Location": {"b.mp4": 1, "c.mp4": 2}}], "entry 0: missing field 'anchor'"),
    ([{"anchor": "a.mp4", "Location": {"b.mp4": 0, "c.mp4": 2}}], "Location.b.mp4 has rank 0"),
    ([{"anchor": "a.mp4", "Location": {"b.mp4": 1}}], "must map >= 2 candidates"),
    ({"a.mp4": []}, "expected a JSON list"),
])
def test_malformed_rankings_name_the_entry(tmp_path, payload, message):
    with pytest.raises(AnnotationError, match=message):
        load_rankings(_write(tmp_path, "ranked.json", payload))


def test_missing_concept_key_means_that_concept_was_not_ranked(tmp_path):
    rankings = load_rankings(_write(tmp_path, "ranked.json", [
        {"anchor": "a.mp4", "MainAction": {"b.mp4": 1, "c.mp4": 2}},
        {"anchor": "d.mp4", "MainAction": {"e.mp4": 2, "f.mp4": 1}, "Location": {"e.mp4": 1, "f.mp4": 1}}]))
    assert sorted(rankings["main_action"]) == ["a.mp4", "d.mp4"]
    assert sorted(rankings["location"]) == ["d.mp4"]
    assert rankings["main_objects"] == {}


def test_no_complete_anchor_is_an_error_not_a_null_table(tmp_path, capsys):
    rankings = _write(tmp_path, "ranked.json", [{"anchor": "a.mp4", "Location": {"b.mp4": 1, "c.mp4": 2}}])
    preds = _write(tmp_path, "m_Location_ranking.json", {"other.mp4": {"b.mp4": 5, "c.mp4": 1}})
    assert main(["retrieval", str(preds), "--ground-truth", str(rankings), "--json"]) == 2
    out = capsys.readouterr()
    assert out.out == "" and "no anchor has scores for all its candidates" in out.err.strip().splitlines()[-1]


def test_concept_free_scores_are_marked_and_concept_scores_are_not(tmp_path):
    from convis_tasks.report.text import retrieval_table

    rankings = _write(tmp_path, "ranked.json", [{"anchor": "a.mp4", "Location": {"b.mp4": 1, "c.mp4": 2},
                                                 "MainAction": {"b.mp4": 2, "c.mp4": 1}}])
    own = _write(tmp_path, "m_Location_ranking.json", {"a.mp4": {"b.mp4": 5, "c.mp4": 1}})
    free = _write(tmp_path, "m_unconditioned_ranking.json", {"a.mp4": {"b.mp4": 1, "c.mp4": 5}})
    result = run_retrieval(str(own), str(rankings))
    assert list(result) == ["location"] and "answers" not in result["location"]
    result = run_retrieval(str(free), str(rankings))
    assert set(result) == {"main_action", "location"} and result["location"]["r@1"] == 0.0
    assert "| Location (concept-free answers) |" in retrieval_table(result)
