"""Leaderboard submissions: `convis submit` / `validate` / `score`, and the authors' release converted."""

from __future__ import annotations

import copy
import importlib.util
import json
import os
import subprocess
from pathlib import Path

import pytest

from convis_tasks.scoring.evaluate import run_correlate, run_retrieval
from convis_tasks.report.submission import (REQUIRED_METADATA, SubmissionError, build_from_run, guess_size,
                                            score_submission, validate)
from convis_tasks.reading.annotations import load_ground_truth
from convis_tasks.concepts import CONCEPT_KEYS, RETRIEVAL_CONCEPT_KEYS
from convis_tasks.reading.rankings import load_rankings
from test_report_support import DEMO_GT, DEMO_RANKINGS, make_run
from test_report_tables import cli


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("run")
    results = make_run(folder, seed=11, frames=4, prompt="cot", model="llava_onevision",
                       model_args="pretrained=lmms-lab/llava-onevision-qwen2-7b-ov,max_frames_num=8")
    return folder, json.loads(results.read_text())


@pytest.fixture()
def doc(run):
    return build_from_run(str(run[0]))


def test_submission_from_a_run_takes_metadata_from_its_results_file(run, doc):
    meta = doc["metadata"]
    assert list(meta)[:len(REQUIRED_METADATA)] == list(REQUIRED_METADATA)
    assert meta["name"] == "lmms-lab/llava-onevision-qwen2-7b-ov" and meta["size"] == "7B"
    assert (meta["frames_per_video"], meta["prompt"], meta["harness"], meta["harness_version"], meta["date"]) == \
        (4, "cot", "lmms-eval", "0.7.3", "2026-01-02")
    assert doc["format"] == "convis-submission" and doc["format_version"] == 1
    assert {e["task"] for e in doc["pairs"]} == {f"convis_{c}" for c in CONCEPT_KEYS} | {"convis_global"}
    assert len(doc["pairs"]) == 6 * 11 and len(doc["retrieval"]) == 4 * 16
    first = doc["pairs"][0]
    assert set(first) == {"task", "video1", "video2", "answer", "score"} and "/" not in first["video1"]
    unparsed = [e for e in doc["pairs"] if e["score"] is None]
    assert unparsed and all(e["answer"] == "I cannot compare these videos." for e in unparsed)


def test_required_metadata_missing_names_the_flag(tmp_path):
    make_run(tmp_path / "r", model_args="", model="convis_colour_histogram")
    with pytest.raises(SubmissionError, match=r"size: pass --size \(e\.g\. --size 7B"):
        build_from_run(str(tmp_path / "r"))
    assert build_from_run(str(tmp_path / "r"), {"size": "0B"})["metadata"]["name"] == "convis_colour_histogram"
    code, _, err = cli("submit", tmp_path / "r", "-o", tmp_path / "s.json")
    assert code == 2 and "--size" in err and not (tmp_path / "s.json").exists()
    results = next((tmp_path / "r").glob("*_results.json"))
    data = json.loads(results.read_text())
    data["configs"]["convis_location"]["lmms_eval_specific_kwargs"]["frames_per_video"] = 16
    results.write_text(json.dumps(data))
    with pytest.raises(SubmissionError, match="frames_per_video: pass --frames .*disagree"):
        build_from_run(str(tmp_path / "r"), {"size": "0B"})


def test_guess_size():
    assert guess_size("lmms-lab/llava-onevision-qwen2-7b-ov") == "7B"
    assert guess_size("LLaVA-OneVision-Qwen2-0.5B") == "0.5B"
    assert guess_size("Qwen2.5-VL-7B-Instruct") == "7B"
    assert guess_size("Gemini-2.0-Flash") is None


DEMO_LABEL = "other data (11 pairs, differs from the published set: 610 missing, 0 changed, 11 extra)"


def test_a_demo_submission_is_refused_as_a_leaderboard_submission_and_valid_with_any_data(run, tmp_path):
    code, out, _ = cli("submit", run[0], "-o", tmp_path / "s.json")
    assert code == 0 and "wrote" in out
    assert json.loads((tmp_path / "s.json").read_text())["metadata"]["data_identity"]["label"] == DEMO_LABEL
    code, out, _ = cli("validate", tmp_path / "s.json", "--ground-truth", DEMO_GT, "--rankings", DEMO_RANKINGS)
    assert code == 1 and out.splitlines()[-1].startswith("INVALID: 2 error(s)")
    assert f"ERROR metadata: data_identity: the answers were made on {DEMO_LABEL}, not the published " \
           "ConViS-Bench" in out
    assert f"ERROR the ground truth {DEMO_GT} is {DEMO_LABEL}, not the published ConViS-Bench" in out
    code, out, _ = cli("validate", tmp_path / "s.json", "--ground-truth", DEMO_GT, "--rankings", DEMO_RANKINGS,
                       "--any-data")
    assert code == 0 and f"warning: metadata: data_identity: the answers were made on {DEMO_LABEL}" in out
    assert f"data: {DEMO_LABEL}" in out
    lines = out.splitlines()
    assert lines[-1].startswith("OK: lmms-lab/llava-onevision-qwen2-7b-ov (7B, 4 frames per video, prompt cot")
    assert "6 pair task(s) x 11 pairs" in lines[-1] and "retrieval: 4 task(s), 64 answers" in lines[-1]


def _errors(doc, **kw):
    return validate(doc, load_ground_truth(DEMO_GT), leaderboard=False, **kw).errors


def test_validate_catches_each_error_kind_naming_the_entry(doc):
    assert _errors(doc) == []
    missing = copy.deepcopy(doc)
    gone = missing["pairs"].pop(20)
    errors = _errors(missing)
    assert errors == [f"task {gone['task']}: 1 benchmark pair(s) missing: {gone['video1']} / {gone['video2']}"]

    duplicate = copy.deepcopy(doc)
    duplicate["pairs"].append(dict(duplicate["pairs"][3]))
    e = duplicate["pairs"][3]
    assert _errors(duplicate) == [f"pairs[{len(doc['pairs'])}] ({e['task']}, {e['video1']} / {e['video2']}): "
                                  "duplicate, pairs[3] has the same task and pair"]

    unknown = copy.deepcopy(doc)
    unknown["pairs"].append({"task": "convis_location", "video1": "zz1.mp4", "video2": "zz2.mp4", "answer": "3",
                             "score": 3.0})
    assert _errors(unknown) == [f"pairs[{len(doc['pairs'])}] (convis_location, zz1.mp4 / zz2.mp4): unknown pair, "
                                f"not in the benchmark ({DEMO_GT})"]

    out_of_range = copy.deepcopy(doc)
    out_of_range["pairs"][7]["score"] = 7
    e = out_of_range["pairs"][7]
    [error] = _errors(out_of_range)
    assert error.startswith(f"pairs[7] ({e['task']}, {e['video1']} / {e['video2']}): score 7 is outside 1-5")
    out_of_range["pairs"][7]["score"] = "4"
    assert "score '4' is not a number or null" in _errors(out_of_range)[0]

    no_meta = copy.deepcopy(doc)
    del no_meta["metadata"]["size"]
    no_meta["metadata"]["frames_per_video"] = 0
    no_meta["metadata"]["date"] = "yesterday"
    assert _errors(no_meta) == ["metadata: size is missing (convis submit sets it with --size)",
                                "metadata: frames_per_video must be a positive integer, got 0",
                                "metadata: date 'yesterday' is not an ISO date (YYYY-MM-DD)"]

    bad_task = copy.deepcopy(doc)
    bad_task["pairs"][0]["task"] = "convis_colour"
    assert _errors(bad_task)[0].startswith("pairs[0] (convis_colour, ")
    no_task = copy.deepcopy(doc)
    no_task["pairs"] = [e for e in no_task["pairs"] if e["task"] != "convis_location"]
    assert _errors(no_task) == ["task convis_location: no entries (the five concept tasks are required)"]


def test_validate_checks_retrieval_against_the_rankings(doc):
    rankings = load_rankings(DEMO_RANKINGS)
    assert _errors(doc, rankings=rankings) == []
    broken = copy.deepcopy(doc)
    gone = broken["retrieval"].pop(0)
    broken["retrieval"].append({"task": "convis_retrieval_location", "anchor": "v01.mp4", "candidate": "v99.mp4",
                                "answer": None, "score": 0.0})
    errors = _errors(broken, rankings=rankings)
    n = len(broken["retrieval"]) - 1
    assert errors[0] == f"retrieval[{n}] (convis_retrieval_location, v01.mp4 -> v99.mp4): score 0.0 is outside 1-5 " \
                        "(use null for an unparsed answer)"
    assert errors[1] == f"retrieval[{n}] (convis_retrieval_location, v01.mp4 -> v99.mp4): unknown (anchor, candidate), " \
                        "not in the retrieval sets"
    assert errors[2] == f"task {gone['task']}: 1 (anchor, candidate) entr(ies) missing: " \
                        f"{gone['anchor']} -> {gone['candidate']}"
    warned = validate(doc, load_ground_truth(DEMO_GT), leaderboard=False).warnings
    assert any("coverage not checked" in w for w in warned)


def test_validate_command_exit_status_and_error_listing(doc, tmp_path):
    broken = copy.deepcopy(doc)
    broken["pairs"][2]["score"] = 9
    del broken["metadata"]["harness_version"]
    (tmp_path / "bad.json").write_text(json.dumps(broken))
    code, out, _ = cli("validate", tmp_path / "bad.json", "--ground-truth", DEMO_GT, "--any-data")
    assert code == 1
    assert "ERROR metadata: harness_version is missing (convis submit sets it with --harness-version)" in out
    assert "ERROR pairs[2] (" in out and "INVALID: 2 error(s)" in out
    code, out, _ = cli("score", tmp_path / "bad.json", "--ground-truth", DEMO_GT)
    assert code == 1 and "not scored" in out
    (tmp_path / "other.json").write_text(json.dumps([1, 2]))
    code, _, err = cli("validate", tmp_path / "other.json", "--ground-truth", DEMO_GT)
    assert code == 2 and "not a ConViS submission" in err


def test_score_equals_the_runs_results_file_and_convis_correlate(run, doc, tmp_path):
    folder, results = run
    scores = score_submission(doc, load_ground_truth(DEMO_GT), load_rankings(DEMO_RANKINGS))
    compared = 0
    for task, metrics in scores.items():
        for metric, value in metrics.items():
            if metric == "warning":  # a small-sample note, not a metric (present when MIN_PAIRS > 11)
                continue
            reported = results["results"][task][f"{metric},none"]
            assert value == pytest.approx(reported, abs=1e-12, rel=0), (task, metric)
            compared += 1
    assert set(scores) == {f"convis_{c}" for c in CONCEPT_KEYS} | {"convis", "convis_global", "convis_retrieval"} | \
        {f"convis_retrieval_{c}" for c in RETRIEVAL_CONCEPT_KEYS}
    assert compared == 5 * 4 + 2 + 12 + 4 * 14 + 1
    correlate = run_correlate(str(folder), str(DEMO_GT))
    retrieval = run_retrieval(str(folder), str(DEMO_RANKINGS))
    for concept in CONCEPT_KEYS:  # (a small-sample warning names its source, so it is left out of the comparison)
        correlate[concept].pop("warning", None)
        scores[f"convis_{concept}"].pop("warning", None)
        assert scores[f"convis_{concept}"] == correlate[concept]
    for concept in RETRIEVAL_CONCEPT_KEYS:
        assert scores[f"convis_retrieval_{concept}"]["f1@1"] == retrieval[concept]["f1@1"]
    (tmp_path / "s.json").write_text(json.dumps(doc))
    code, out, _ = cli("score", tmp_path / "s.json", "--ground-truth", DEMO_GT, "--json")
    assert code == 0 and json.loads(out)["convis"]["spearman"] == pytest.approx(scores["convis"]["spearman"],
                                                                                abs=1e-12)
    code, out, _ = cli("score", tmp_path / "s.json", "--ground-truth", DEMO_GT)
    assert code == 0 and "| lmms-lab/llava-onevision-qwen2-7b-ov |" in out


# --- the authors' release ---------------------------------------------------------------------------------------

FOLDERS = {"main_action": "Main_Action", "main_subjects": "Main_Subjects", "main_objects": "Main_Objects",
           "location": "Location", "order_of_actions": "Order_Of_Actions"}


@pytest.mark.parametrize("model", ["LLaVA-OneVision-Qwen2-7B", "InternVL2_5-8B"])
def test_release_answers_converted_and_scored_equal_convis_correlate(reference, tmp_path, model):
    truth = reference / "gt_conditioned_similarities.json"
    code, out, err = cli("submit", "--from-release", reference, "--model", model, "--frames", "8",
                         "-o", tmp_path / "s.json")
    assert code == 0, err
    code, out, _ = cli("validate", tmp_path / "s.json", "--ground-truth", truth,
                       "--candidates", reference / "to_be_ranked.json")
    assert code == 0 and out.splitlines()[-1].startswith(f"OK: {model} (")
    assert "warning: metadata: no provenance" in out and "provenance: not recorded" in out
    code, out, _ = cli("score", tmp_path / "s.json", "--ground-truth", truth, "--json")
    scores = json.loads(out)
    means = {m: [] for m in ("spearman", "kendall")}
    for concept, folder in FOLDERS.items():
        original = reference / "computed_conditioned_similarities" / folder / model / f"{model}_{folder}_similarities.json"
        expected = run_correlate(str(original), str(truth))[concept]
        expected.pop("warning", None)
        scores[f"convis_{concept}"].pop("warning", None)
        assert scores[f"convis_{concept}"] == pytest.approx(expected, abs=1e-12, rel=0)
        for m in means:
            means[m].append(expected[m])
    assert scores["convis"]["spearman"] == pytest.approx(sum(means["spearman"]) / 5, abs=1e-12)
    doc = json.loads((tmp_path / "s.json").read_text())
    assert doc["metadata"]["size"] in ("7B", "8B") and len(doc["retrieval"]) == 133 * 4 * 4


def test_release_model_without_a_size_in_its_name_needs_the_flag(reference, tmp_path):
    code, _, err = cli("submit", "--from-release", reference, "--model", "Gemini-2.0-Flash", "--frames", "8",
                       "-o", tmp_path / "g.json")
    assert code == 2 and "--size" in err
    code, _, _ = cli("submit", "--from-release", reference, "--model", "Gemini-2.0-Flash", "--frames", "8",
                     "--size", "unknown", "-o", tmp_path / "g.json")
    code, out, _ = cli("validate", tmp_path / "g.json", "--ground-truth", reference / "gt_conditioned_similarities.json")
    assert code == 1 and "task convis_location: 337 benchmark pair(s) missing" in out  # the release has 273 of 610


# --- a real lmms-eval run (slow: `pytest -m slow`) --------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("lmms_eval") is None, reason="lmms-eval is not installed")
def test_score_of_a_real_demo_run_equals_its_results_file(tmp_path):
    from convis_tasks.harness.demo import demo_command
    from convis_tasks.reading.datafolder import DEMO_DIR

    out = tmp_path / "run"
    env = dict(os.environ, CONVIS_DATA_DIR=str(DEMO_DIR), CONVIS_CACHE_DIR=str(tmp_path / "clips"),
               HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", HF_DATASETS_CACHE=str(tmp_path / "hf"))
    proc = subprocess.run(demo_command(str(out)), env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads(next(Path(out).rglob("*_results.json")).read_text())["results"]
    doc = build_from_run(str(out), {"size": "0B"})
    scores = score_submission(doc, load_ground_truth(DEMO_GT), load_rankings(DEMO_RANKINGS))
    for task, metrics in scores.items():
        for metric, value in metrics.items():
            if metric != "warning":
                assert value == pytest.approx(results[task][f"{metric},none"], abs=1e-12, rel=0), (task, metric)


# --- provenance (issue #10 item 7) and safe output -----------------------------------------------------------------

def _rewrite_provenance(folder: Path, change) -> None:
    """Apply ``change(record)`` to every ConViS record logged in ``folder``'s samples files."""
    for file in folder.glob("*_samples_*.jsonl"):
        lines = []
        for line in file.read_text().splitlines():
            sample = json.loads(line)
            for value in sample.values():
                if isinstance(value, dict) and "kind" in value:
                    change(value)
            lines.append(json.dumps(sample))
        file.write_text("\n".join(lines) + "\n")


def test_a_submission_carries_the_package_versions_logged_with_the_run(run, doc, tmp_path):
    from convis_tasks.reading.provenance import describe, provenance

    assert doc["metadata"]["provenance"] == provenance()  # what hooks.process_results logged
    (tmp_path / "s.json").write_text(json.dumps(doc))
    code, out, _ = cli("validate", tmp_path / "s.json", "--ground-truth", DEMO_GT, "--any-data")
    assert code == 0 and f"provenance: {describe(provenance())}" in out
    code, out, _ = cli("validate", tmp_path / "s.json", "--ground-truth", DEMO_GT, "--json", "--any-data")
    assert json.loads(out)["provenance"] == provenance()
    bad = copy.deepcopy(doc)
    bad["metadata"]["provenance"] = {"convis_eval": "0.1.0", "python": "3.11", "torch": 2.1}
    assert "metadata: provenance: torch: version 2.1 is not a string or null" in _errors(bad)


def test_runs_logged_before_provenance_still_submit_and_validate_with_a_note(tmp_path):
    make_run(tmp_path / "old")
    _rewrite_provenance(tmp_path / "old", lambda record: record.pop("provenance"))
    messages: list[str] = []
    doc = build_from_run(str(tmp_path / "old"), {"size": "7B"}, messages)
    assert "provenance" not in doc["metadata"]
    assert any("no package versions (provenance) logged" in m for m in messages)
    result = validate(doc, load_ground_truth(DEMO_GT), leaderboard=False)
    assert result.ok and any("no provenance" in w for w in result.warnings)
    assert result.provenance == "not recorded"


def test_answers_made_under_different_package_versions_are_not_one_submission(tmp_path):
    make_run(tmp_path / "pairs", date="20260101_000000", with_retrieval=False)
    make_run(tmp_path / "retrieval", date="20260102_000000")
    for file in (tmp_path / "retrieval").glob("*_samples_convis_[!r]*.jsonl"):
        file.unlink()  # the second run: retrieval only
    (tmp_path / "retrieval" / "20260102_000000_samples_convis_global.jsonl").unlink(missing_ok=True)
    _rewrite_provenance(tmp_path / "retrieval", lambda record: record["provenance"].update(torch="2.13.0"))
    with pytest.raises(SubmissionError, match=r"different package versions .*torch 2\.13\.0"):
        build_from_run([str(tmp_path / "pairs"), str(tmp_path / "retrieval")], {"size": "7B"})


def test_names_from_a_submission_reach_the_terminal_escaped(doc, tmp_path):
    hostile = copy.deepcopy(doc)
    hostile["metadata"]["name"] = "\x1b[2Jevil\x07"
    hostile["pairs"][0]["score"] = 9
    hostile["pairs"][1]["video1"] = "\x1b]0;x\x07.mp4"
    (tmp_path / "s.json").write_text(json.dumps(hostile))
    code, out, _ = cli("validate", tmp_path / "s.json", "--ground-truth", DEMO_GT, "--any-data")
    assert code == 1 and "\x1b" not in out and "\x07" not in out
    assert "\\x1b]0;x\\x07.mp4" in out
    hostile["pairs"][0]["score"], hostile["pairs"][1]["video1"] = doc["pairs"][0]["score"], doc["pairs"][1]["video1"]
    (tmp_path / "s.json").write_text(json.dumps(hostile))
    code, out, _ = cli("validate", tmp_path / "s.json", "--ground-truth", DEMO_GT, "--any-data")
    assert code == 0 and out.splitlines()[-1].startswith("OK: \\x1b[2Jevil\\x07 (")


def test_score_warns_of_a_small_sample_in_json_and_tables_and_refuses_nothing_scored(doc, tmp_path, monkeypatch):
    from convis_tasks.scoring import samplesize as console

    monkeypatch.setattr(console, "min_pairs", lambda: 20)  # the demo's 11 pairs become a small sample
    (tmp_path / "s.json").write_text(json.dumps(doc))
    code, out, err = cli("score", tmp_path / "s.json", "--ground-truth", DEMO_GT, "--json")
    scores = json.loads(out)
    assert code == 0 and "only 11 pairs (fewer than 20)" in scores["convis_location"]["warning"]
    assert "only 11 pairs" in scores["convis_global"]["warning"] and "only 11 pairs" in err
    code, out, _ = cli("score", tmp_path / "s.json", "--ground-truth", DEMO_GT)
    assert code == 0 and "_Note: warning: " in out and "only 11 pairs" in out
    other = tmp_path / "other.jsonl"
    other.write_text("".join(json.dumps({"video1": f"x{i}.mp4", "video2": f"y{i}.mp4", "MainAction": 2,
                                         "MainSubjects": 2, "MainObjects": 2, "Location": 2, "OrderOfActions": 2})
                             + "\n" for i in range(3)))
    code, out, err = cli("score", tmp_path / "s.json", "--ground-truth", other, "--no-validate", "--json")
    assert code == 2 and out == "" and "share none with the 3 ground-truth pairs" in err.strip().splitlines()[-1]


def test_harness_version_unknown_to_lmms_eval_comes_from_the_logged_provenance(tmp_path):
    from convis_tasks.reading.provenance import provenance

    if provenance()["lmms-eval"] is None:
        pytest.skip("lmms-eval is not installed, so the logged records carry no lmms-eval version")
    make_run(tmp_path / "r", version="unknown@unknown")  # what a PyPI install of lmms-eval 0.7.3 writes
    messages: list[str] = []
    doc = build_from_run(str(tmp_path / "r"), {"size": "7B"}, messages)
    assert doc["metadata"]["harness_version"] == provenance()["lmms-eval"]
    assert any("the results file says unknown@unknown" in m for m in messages)
    assert build_from_run(str(tmp_path / "r"), {"size": "7B", "harness_version": "0.7.3-git"})["metadata"][
        "harness_version"] == "0.7.3-git"
