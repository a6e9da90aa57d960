"""The run-folder rule (report/runs.py), shared by correlate, retrieval, report, plot and submit; concept-free
answers kept apart from concept answers. Expected values come from each hand-built run's results file, whose
metrics the task's own aggregation functions computed (tests/test_report_support.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cli_helpers import convis_in_process
from convis_tasks.reading.inputs import load_inputs
from convis_tasks.report.plots import bars_data
from convis_tasks.reading.runs import RunSelectionError, select_runs
from convis_tasks.report.submission import score_submission
from convis_tasks.reading.annotations import load_ground_truth
from convis_tasks.concepts import CONCEPT_KEYS, RETRIEVAL_CONCEPT_KEYS
from convis_tasks.reading.rankings import load_rankings
from test_report_support import DEMO_GT, DEMO_RANKINGS, make_run


cli = convis_in_process  # the real ``convis`` entry point (every subcommand): status, stdout, stderr

PAIR_TASKS = [f"convis_{c}" for c in CONCEPT_KEYS]
RETRIEVAL_TASKS = [f"convis_retrieval_{c}" for c in RETRIEVAL_CONCEPT_KEYS]


def _keep(results_file: Path, tasks: list[str]) -> dict:
    """Leave only ``tasks``' samples files of this run (as if only those tasks ran); returns its results."""
    prefix = results_file.name[: -len("results.json")]
    for file in results_file.parent.glob(f"{prefix}samples_*.jsonl"):
        if file.name[len(prefix) + len("samples_"):-len(".jsonl")] not in tasks:
            file.unlink()
    return json.loads(results_file.read_text())["results"]


def _metric(results: dict, task: str, metric: str = "spearman") -> float:
    return results[task][f"{metric},none"]


def test_runs_of_two_models_are_refused_by_every_command_naming_each_run(tmp_path):
    out = tmp_path / "out"
    make_run(out / "llava", model_args="pretrained=org/llava-7b")
    make_run(out / "qwen", model_args="pretrained=org/qwen-7b", date="20260103_000000")
    for argv in (["correlate", out, "--ground-truth", DEMO_GT],
                 ["retrieval", out, "--ground-truth", DEMO_RANKINGS],
                 ["report", out, "--ground-truth", DEMO_GT],
                 ["plot", "bars", out, "--ground-truth", DEMO_GT, "-o", tmp_path / "b.png"],
                 ["submit", out, "-o", tmp_path / "s.json"]):
        code, stdout, err = cli(*argv)
        assert code == 2, argv
        last = err.strip().splitlines()[-1]
        assert last.startswith("convis: error:") and "runs of 2 different models" in last, argv
        assert "llava/20260102_030405_results.json" in last and "qwen/20260103_000000_results.json" in last
        assert "pretrained=org/llava-7b" in last and "pretrained=org/qwen-7b" in last
        assert stdout == ""
    assert not (tmp_path / "b.png").exists() and not (tmp_path / "s.json").exists()


def test_one_models_runs_give_each_task_from_the_newest_run_and_say_so(tmp_path):
    out = tmp_path / "out"
    first = json.loads(make_run(out / "m", seed=1, date="20260101_000000").read_text())["results"]
    second = _keep(make_run(out / "m", seed=2, date="20260102_000000"), ["convis_location"])
    assert _metric(first, "convis_location") != _metric(second, "convis_location")
    code, stdout, err = cli("correlate", out, "--ground-truth", DEMO_GT, "--json")
    assert code == 0
    scored = json.loads(stdout)
    assert scored["location"]["spearman"] == pytest.approx(_metric(second, "convis_location"), abs=1e-12)
    for concept in ("main_action", "order_of_actions"):
        assert scored[concept]["spearman"] == pytest.approx(_metric(first, f"convis_{concept}"), abs=1e-12)
    assert "2 runs of one model" in err and "newest run" in err
    assert "replaced by a newer run (not used): convis_location of" in err and "20260101_000000_results.json" in err
    # the same rule in report and submit
    code, _, _ = cli("report", out, "--ground-truth", DEMO_GT, "--json", tmp_path / "r.json")
    data = json.loads((tmp_path / "r.json").read_text())["pairs"]
    (label,) = data
    assert data[label]["location"]["spearman"] == scored["location"]["spearman"]
    assert data[label]["main_action"]["spearman"] == scored["main_action"]["spearman"]
    code, _, err = cli("submit", out, "-o", tmp_path / "s.json")
    assert code == 0 and "newest run" in err
    scores = score_submission(json.loads((tmp_path / "s.json").read_text()), load_ground_truth(DEMO_GT))
    assert scores["convis_location"]["spearman"] == scored["location"]["spearman"]
    assert scores["convis_main_action"]["spearman"] == scored["main_action"]["spearman"]


def test_pair_scoring_and_retrieval_run_separately_make_one_submission(tmp_path):
    pairs = json.loads(make_run(tmp_path / "pairs", seed=4, date="20260101_000000", with_retrieval=False)
                       .read_text())["results"]
    retrieval = _keep(make_run(tmp_path / "retrieval", seed=5, date="20260105_000000"), RETRIEVAL_TASKS)
    code, _, err = cli("submit", tmp_path / "pairs", tmp_path / "retrieval", "-o", tmp_path / "s.json")
    assert code == 0, err
    doc = json.loads((tmp_path / "s.json").read_text())
    assert {e["task"] for e in doc["retrieval"]} == set(RETRIEVAL_TASKS)
    code, out, _ = cli("validate", tmp_path / "s.json", "--ground-truth", DEMO_GT, "--rankings", DEMO_RANKINGS,
                       "--any-data")
    assert code == 0 and out.splitlines()[-1].startswith("OK:")
    scores = score_submission(doc, load_ground_truth(DEMO_GT), load_rankings(DEMO_RANKINGS))
    for task in PAIR_TASKS:
        assert scores[task]["spearman"] == pytest.approx(_metric(pairs, task), abs=1e-12)
    for task in RETRIEVAL_TASKS:
        assert scores[task]["f1@1"] == pytest.approx(_metric(retrieval, task, "f1@1"), abs=1e-12)
    # the same two runs in one folder (one --output_path reused) give the same submission
    make_run(tmp_path / "both", seed=4, date="20260101_000000", with_retrieval=False)
    _keep(make_run(tmp_path / "both", seed=5, date="20260105_000000"), RETRIEVAL_TASKS)
    code, _, _ = cli("submit", tmp_path / "both", "-o", tmp_path / "t.json")
    again = json.loads((tmp_path / "t.json").read_text())
    assert again["pairs"] == doc["pairs"] and again["retrieval"] == doc["retrieval"]


def test_runs_made_with_different_settings_are_not_combined(tmp_path):
    make_run(tmp_path / "out", frames=8, date="20260101_000000")
    _keep(make_run(tmp_path / "out", frames=16, date="20260102_000000"), ["convis_location"])
    with pytest.raises(RunSelectionError, match=r"frames_per_video: 8 in .*convis_main_action.* vs 16 in "
                                                r"convis_location \(20260102_000000_results.json\)"):
        select_runs(str(tmp_path / "out"))
    code, _, err = cli("correlate", tmp_path / "out", "--ground-truth", DEMO_GT)
    assert code == 2 and "different settings" in err.splitlines()[-1]


def test_where_a_model_ran_does_not_make_it_another_model(tmp_path):
    make_run(tmp_path / "out", model_args="pretrained=org/m-7b,device=cuda:0", date="20260101_000000")
    _keep(make_run(tmp_path / "out", model_args="pretrained=org/m-7b,device=cuda:1", date="20260102_000000"),
          ["convis_location"])
    assert len(select_runs(str(tmp_path / "out")).runs) == 2
    make_run(tmp_path / "other", model_args="pretrained=org/m-7b,max_frames_num=8", date="20260101_000000")
    make_run(tmp_path / "other", model_args="pretrained=org/m-7b,max_frames_num=16", date="20260102_000000")
    with pytest.raises(RunSelectionError, match="2 different models"):
        select_runs(str(tmp_path / "other"))


def test_concept_free_answers_are_never_shown_as_a_concepts_answers(tmp_path):
    # a run of convis_location plus convis_global: the four other concepts were never run
    results = _keep(make_run(tmp_path / "run", seed=6), ["convis_location", "convis_global"])
    code, out, _ = cli("correlate", tmp_path / "run", "--ground-truth", DEMO_GT, "--json")
    scored = json.loads(out)
    assert set(scored) == {"location", "global"}
    assert "answers" not in scored["location"]  # the concept's own answers
    assert scored["location"]["spearman"] == pytest.approx(_metric(results, "convis_location"), abs=1e-12)
    assert set(scored["global"]) == set(CONCEPT_KEYS)
    for concept in CONCEPT_KEYS:
        assert scored["global"][concept]["answers"] == "concept-free"
        assert scored["global"][concept]["spearman"] == pytest.approx(
            _metric(results, "convis_global", f"spearman_{concept}"), abs=1e-12)
    code, table, _ = cli("correlate", tmp_path / "run", "--ground-truth", DEMO_GT)
    own, concept_free = table.split("Concept-free answers")
    assert "| Location |" in own and "Main Action" not in own
    assert "| Main Action (concept-free answers) |" in concept_free
    # asking for a concept that was not run is an error, not the concept-free answers in its place
    code, _, err = cli("correlate", tmp_path / "run", "--ground-truth", DEMO_GT, "--concept", "main_action")
    assert code == 2 and "no predictions for concept main_action (it has: location and concept-free answers)" in err
    # report: the pair table holds Location only, the global table the concept-free answers
    code, _, _ = cli("report", tmp_path / "run", "--ground-truth", DEMO_GT, "--json", tmp_path / "r.json")
    data = json.loads((tmp_path / "r.json").read_text())
    (label,) = data["pairs"]
    assert set(data["pairs"][label]) == {"location"}
    assert set(data["global"][label]) >= set(CONCEPT_KEYS)
    # plots: the concept-free answers are their own series
    bars = bars_data(load_inputs([str(tmp_path / "run")]), load_ground_truth(DEMO_GT))
    assert set(bars[label]) == {"location"}
    assert set(bars[f"{label} (concept-free)"]) == set(CONCEPT_KEYS) | {"mean"}


def test_samples_without_a_results_file_follow_the_same_rule(tmp_path):
    make_run(tmp_path / "a", seed=1, date="20260101_000000")
    make_run(tmp_path / "b", seed=2, date="20260102_000000")
    for results in tmp_path.glob("*/*_results.json"):
        results.unlink()  # only the samples files were kept
    with pytest.raises(RunSelectionError, match="2 different models"):
        select_runs(str(tmp_path))  # two folders: nothing says they are one model
    selection = select_runs([str(tmp_path / "a")])
    assert set(selection.files) == set(PAIR_TASKS) | {"convis_global"} | set(RETRIEVAL_TASKS)


def test_run_paths_sharing_a_default_label_follow_the_rule_too(tmp_path):
    first = json.loads(make_run(tmp_path / "a", seed=1, date="20260101_000000").read_text())["results"]
    second = _keep(make_run(tmp_path / "b", seed=2, date="20260102_000000"), ["convis_location"])
    (item,) = load_inputs([str(tmp_path / "a"), str(tmp_path / "b")])  # one model name: one model
    truth = load_ground_truth(DEMO_GT)
    from convis_tasks.scoring.metrics import score_pairs

    rho = {c: score_pairs(item.predictions.scores[c], truth.by_concept(c)).spearman for c in ("location", "main_action")}
    assert rho["location"] == pytest.approx(_metric(second, "convis_location"), abs=1e-12)
    assert rho["main_action"] == pytest.approx(_metric(first, "convis_main_action"), abs=1e-12)
    assert any("newest run" in n for n in item.notes)
    make_run(tmp_path / "c", seed=3, model_args="pretrained=org/fake-7b,max_frames_num=32")  # same name, other model
    with pytest.raises(RunSelectionError, match="2 different models"):
        load_inputs([str(tmp_path / "a"), str(tmp_path / "c")])
    assert len(load_inputs([f"A={tmp_path / 'a'}", f"C={tmp_path / 'c'}"])) == 2  # labels say two models


def test_a_run_without_samples_files_says_to_pass_log_samples(tmp_path):
    results = make_run(tmp_path / "r")
    for file in (tmp_path / "r").glob("*_samples_*.jsonl"):
        file.unlink()
    for argv in (["correlate", tmp_path / "r", "--ground-truth", DEMO_GT],
                 ["report", results, "--ground-truth", DEMO_GT],
                 ["submit", tmp_path / "r", "-o", tmp_path / "s.json"]):
        code, _, err = cli(*argv)
        assert code == 2 and "--log_samples" in err.strip().splitlines()[-1], argv


def test_an_unreadable_samples_file_is_an_error_naming_it(tmp_path):
    results = make_run(tmp_path / "r")
    broken = next((tmp_path / "r").glob("*_samples_convis_location.jsonl"))
    broken.write_bytes(b"\xff\xfe\x00 not text")
    code, _, err = cli("correlate", tmp_path / "r", "--ground-truth", DEMO_GT)
    assert code == 2 and "Traceback" not in err
    assert err.strip().splitlines()[-1].startswith(f"convis: error: {broken}: cannot read")
    assert results.exists()


def test_a_symlink_loop_in_an_output_folder_is_walked_once(tmp_path):
    import os

    make_run(tmp_path / "out" / "m")
    os.symlink("..", tmp_path / "out" / "m" / "back")  # out/m/back -> out: a loop
    selection = select_runs(str(tmp_path / "out"))
    assert len(selection.runs) == 1 and not selection.notes  # one run, not one per trip round the loop
    assert all("back" not in f for f in selection.files.values())


def test_concept_free_retrieval_scores_are_a_row_of_their_own(tmp_path):
    from convis_tasks.report.build import build_report
    from convis_tasks.reading.inputs import ReportInput

    rankings = load_rankings(DEMO_RANKINGS)
    own = {a: {c: float(len(c) % 5 + 1) for c in ranks} for a, ranks in rankings["location"].items()}
    free = {a: {c: 3.0 + (c < a) for c in ranks} for a, ranks in rankings["main_action"].items()}
    item = ReportInput("M", ["x"], None, {"location": own, None: free})
    report = build_report([item], load_ground_truth(DEMO_GT), rankings)
    rows = {label: set(data) for label, data in report.data["retrieval"].items()}
    assert rows == {"M": {"location"}, "M (concept-free)": set(RETRIEVAL_CONCEPT_KEYS)}
