"""``--predict_only`` runs score as full runs: the ConViS records lmms-eval leaves out are added from the documents.

A full run is hand-built by ``test_report_support.make_run`` (its records come from the hooks, as lmms-eval logs them);
its predict-only twin is the same samples as lmms-eval ``--predict_only`` logs them: no record, the ``bypass`` metric.
The real ``convis run --predict_only`` is tested against a real full run in ``test_run.py``.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from cli_helpers import convis_in_process as cli
from test_report_support import DEMO_DIR, DEMO_GT, DEMO_RANKINGS, make_run

from convis_tasks.harness.predict_only import complete_run, complete_samples
from convis_tasks.harness.tasks import TaskInfo
from convis_tasks.reading.datafolder import DATA_ENV
from convis_tasks.reading.predictions import PredictionError
from convis_tasks.reading.runs import find_runs, task_concept


@pytest.fixture(autouse=True)
def _demo_data(monkeypatch):
    monkeypatch.setenv(DATA_ENV, str(DEMO_DIR))


def _is_record(value) -> bool:
    return isinstance(value, dict) and value.get("kind") in ("pair", "retrieval")


def as_predict_only(full: Path, folder: Path) -> Path:
    """``full`` as ``lmms-eval --predict_only`` would have logged it: each sample without its ConViS records and
    with the ``bypass`` metric ([target], [answer]) that mode adds."""
    shutil.copytree(full, folder)
    for path in folder.glob("*_samples_*.jsonl"):
        lines = []
        for line in path.read_text().splitlines():
            sample = {k: v for k, v in json.loads(line).items() if not _is_record(v)}
            sample["bypass"] = [[sample["target"]], [sample["filtered_resps"]]]
            lines.append(json.dumps(sample) + "\n")
        path.write_text("".join(lines))
    return folder


def _tasks(folder: Path) -> list[TaskInfo]:
    (run,) = find_runs(str(folder))
    return [TaskInfo(name, *task_concept(name)) for name in run.samples]


def _records(folder: Path) -> dict:
    out = {}
    for path in sorted(folder.glob("*_samples_*.jsonl")):
        for line in path.read_text().splitlines():
            sample = json.loads(line)
            for metric, value in sample.items():
                if _is_record(value):
                    out[(path.name, sample["doc_id"], metric)] = value
    return out


@pytest.fixture
def runs(tmp_path):
    """A full run (every fifth answer unparsed) and its --predict_only twin."""
    make_run(tmp_path / "full")
    return tmp_path / "full", as_predict_only(tmp_path / "full", tmp_path / "predict_only")


def test_a_predict_only_folder_is_refused_with_the_command_that_completes_it(runs):
    _, predict_only = runs
    code, out, err = cli("correlate", predict_only, "--ground-truth", DEMO_GT)
    assert code == 2 and out == ""
    assert "lmms-eval --predict_only logged the answers of convis_global, convis_location" in err
    assert f"`convis complete {predict_only}`" in err.strip().splitlines()[-1]
    code, _, err = cli("submit", predict_only, "-o", predict_only / "s.json", "--size", "7B")
    assert code == 2 and "convis complete" in err and not (predict_only / "s.json").exists()


def test_completed_records_are_those_of_the_full_run(runs):
    full, predict_only = runs
    notes = complete_run(predict_only, _tasks(predict_only))
    assert len(notes) == 10 and "convis_location: the ConViS records of 11 --predict_only sample(s)" in " ".join(notes)
    completed, expected = _records(predict_only), _records(full)
    assert len({(f, doc) for f, doc, _ in expected}) == 6 * 11 + 4 * 16  # every sample of the 10 tasks
    assert completed == expected
    assert complete_run(predict_only, _tasks(predict_only)) == []  # complete already: nothing to do, nothing changed
    assert _records(predict_only) == expected


def test_a_completed_run_scores_exactly_as_the_full_run(runs, tmp_path):
    full, predict_only = runs
    code, _, err = cli("complete", predict_only)  # the command: tasks from lmms-eval's TaskManager
    assert code == 0 and err.count("--predict_only sample(s) added") == 10
    scored = {}
    for name, folder in (("full", full), ("predict_only", predict_only)):
        code, out, _ = cli("correlate", folder, "--ground-truth", DEMO_GT, "--json")
        assert code == 0
        correlate = json.loads(out)
        code, out, _ = cli("retrieval", folder, "--ground-truth", DEMO_RANKINGS, "--json")
        assert code == 0
        retrieval = json.loads(out)
        report = tmp_path / f"{name}_report.json"
        assert cli("report", folder, "--ground-truth", DEMO_GT, "--rankings", DEMO_RANKINGS, "--json", report)[0] == 0
        submission = tmp_path / f"{name}_submission.json"
        assert cli("submit", folder, "-o", submission, "--size", "7B")[0] == 0
        doc = json.loads(submission.read_text())
        parts = (correlate, retrieval, json.loads(report.read_text()), doc["pairs"], doc["retrieval"],
                 {k: v for k, v in doc["metadata"].items() if k != "source"})
        scored[name] = json.loads(json.dumps(parts).replace(str(folder), "RUN"))  # warnings name the folder
    correlate = scored["full"][0]
    assert correlate["location"]["unparsed"] > 0 and correlate["location"]["n"] == 11  # the case that matters
    for full_part, completed_part in zip(scored["full"], scored["predict_only"]):
        assert completed_part == full_part


def test_a_document_that_is_not_the_one_answered_is_an_error_and_nothing_changes(runs, tmp_path, monkeypatch):
    _, predict_only = runs
    path = next(predict_only.glob("*_samples_convis_location.jsonl"))
    lines = path.read_text().splitlines()
    sample = json.loads(lines[3])
    sample["doc_id"] = 4  # the answer of document 3, logged under document 4's index
    lines[3] = json.dumps(sample)
    path.write_text("\n".join(lines) + "\n")
    before = path.read_text()
    with pytest.raises(PredictionError, match=r"line 4: the logged target '.*' is not that of document 4 of "
                                              r"convis_location in the data folder"):
        complete_samples(str(path), TaskInfo("convis_location", "pair", "location"))
    assert path.read_text() == before
    other = tmp_path / "other_data"
    shutil.copytree(DEMO_DIR, other)
    rows = (other / "ConVIS.jsonl").read_text().splitlines()
    (other / "ConVIS.jsonl").write_text("\n".join(rows[1:] + rows[:1]) + "\n")  # the same pairs, in another order
    path = next(predict_only.glob("*_samples_convis_main_action.jsonl"))
    before = path.read_text()
    monkeypatch.setenv(DATA_ENV, str(other))
    with pytest.raises(PredictionError, match="the run read another data folder"):
        complete_samples(str(path), TaskInfo("convis_main_action", "pair", "main_action"))
    assert path.read_text() == before


def test_the_hook_gets_what_lmms_eval_would_have_given_it():
    from convis_tasks import hooks
    from convis_tasks.harness.predict_only import logged_results

    task = TaskInfo("convis_location", "pair", "location")
    assert logged_results({"filtered_resps": "  Score: 4\n"}, task, "x") == ["Score: 4"]  # ConfigurableTask strips
    with pytest.raises(PredictionError, match="x: field 'filtered_resps' is not one answer text"):
        logged_results({"filtered_resps": ["a", "b"]}, task, "x")
    expected = TaskInfo("convis_location_expected", "pair", "location", scoring="expected")
    five = [f"({-k - 0.5}, False)" for k in range(5)]  # the five responses as lmms-eval hands and logs them: their str()
    assert logged_results({"filtered_resps": five}, expected, "x") == five
    doc = {"video1": "a.mp4", "video2": "b.mp4", "concept": "location", "gt": {"location": 2.0}}
    from_text = hooks.process_expected_results(doc, five)["spearman"]["score"]
    assert from_text == hooks.process_expected_results(doc, [(-k - 0.5, False) for k in range(5)])["spearman"]["score"]
