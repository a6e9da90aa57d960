"""The `convis` scoring CLI: formats, options, errors, and that it never imports torch or lmms-eval."""

import csv
import json
import subprocess
import sys

import pytest

from cli_helpers import convis_in_process
from convis_tasks.cli import main

GT_KEYS = ["MainAction", "MainSubjects", "Location", "OrderOfActions", "MainObjects"]


@pytest.fixture()
def truth(tmp_path):
    """Five pairs; Location means 1..5 in order, the other concepts the reverse."""
    path = tmp_path / "ConVIS.jsonl"
    rows = []
    for i in range(5):
        scores = {k: float(5 - i) for k in GT_KEYS}
        scores["Location"] = float(i + 1)
        rows.append(json.dumps({"video1": f"videos/p{i}a.mp4", "video2": f"videos/p{i}b.mp4", **scores}))
    path.write_text("\n".join(rows) + "\n")
    return path


@pytest.fixture(autouse=True)
def minimum_of_ten_pairs(monkeypatch):
    """These tests use five-pair truths: fix the small-sample minimum at 10 whatever utils.metrics sets."""
    from convis_tasks.scoring import samplesize as console

    monkeypatch.setattr(console, "min_pairs", lambda: 10)


def _release(tmp_path, name, scores):
    path = tmp_path / name
    path.write_text(json.dumps([{"video1": f"videos_trimmed/p{i}a.mp4", "video2": f"videos_trimmed/p{i}b.mp4",
                                 "similarity": s} for i, s in enumerate(scores)]))
    return path


def _run(capsys, *argv):
    code = main(list(map(str, argv)))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_global_predictions_are_correlated_with_every_concept(tmp_path, truth, capsys):
    preds = _release(tmp_path, "model_similarities.json", [1, 2, 3, 4, 5])
    code, out, _ = _run(capsys, "correlate", preds, "--ground-truth", truth, "--json")
    data = json.loads(out)
    assert code == 0
    assert list(data) == ["main_action", "main_subjects", "main_objects", "location", "order_of_actions"]
    small = data["location"].pop("warning")
    assert data["location"] == {"spearman": pytest.approx(100.0), "kendall": pytest.approx(100.0), "n": 5,
                                "unparsed": 0, "answers": "concept-free"}
    assert "only 5 pairs" in small
    assert data["main_action"]["spearman"] == pytest.approx(-100.0)
    assert all(r["answers"] == "concept-free" for r in data.values())


def test_concept_selection_unparsed_policy_and_missing_pairs(tmp_path, truth, capsys):
    # 0.0 marks an unparsed answer in the release format; one pair has no prediction at all
    preds = _release(tmp_path, "model_similarities.json", [1, 0.0, 3, 5])
    _, out, err = _run(capsys, "correlate", preds, "--ground-truth", truth, "--concept", "Location", "--json")
    neutral = json.loads(out)["location"]
    assert (neutral["n"], neutral["unparsed"], neutral["answers"]) == (4, 1, "concept-free")  # x = [1, 3, 3, 5] vs y = [1, 2, 3, 4]
    assert neutral["spearman"] == pytest.approx(100 * 4.5 / 22.5 ** 0.5)
    assert "1 pair(s) present on one side only" in err
    _, out, _ = _run(capsys, "correlate", preds, "--ground-truth", truth, "--concept", "location",
                     "--unparsed", "drop", "--json")
    dropped = json.loads(out)["location"]
    assert "only 3 pairs" in dropped.pop("warning")
    assert dropped == {"spearman": pytest.approx(100.0), "kendall": pytest.approx(100.0), "n": 3, "unparsed": 1,
                       "answers": "concept-free"}


def test_constant_predictions_print_null_and_a_warning(tmp_path, truth, capsys):
    preds = _release(tmp_path, "model_similarities.json", [3, 3, 3, 3, 3])
    code, out, err = _run(capsys, "correlate", preds, "--ground-truth", truth, "--concept", "main_action", "--json")
    assert code == 0
    assert json.loads(out)["main_action"]["spearman"] is None
    assert "constant" in err
    _, table, _ = _run(capsys, "correlate", preds, "--ground-truth", truth, "--concept", "main_action")
    assert "| Main Action (concept-free answers) | - | - | 5* | 0 |" in table  # * : a small sample (footnote)
    assert "\n* fewer than 10 pairs: not a reliable estimate" in table and "only 5 pairs" not in table


def test_concept_specific_file_and_log_samples(tmp_path, truth, capsys):
    folder = tmp_path / "Location" / "M"
    folder.mkdir(parents=True)
    preds = _release(folder, "M_Location_similarities.json", [5, 4, 3, 2, 1])
    _, out, _ = _run(capsys, "correlate", preds, "--ground-truth", truth, "--json")
    assert list(json.loads(out)) == ["location"]
    code, _, err = _run(capsys, "correlate", preds, "--ground-truth", truth, "--concept", "main_action")
    assert code == 2 and "no predictions for concept main_action" in err

    run_dir = tmp_path / "run"
    run_dir.mkdir()
    record = lambda i, s, a: {"kind": "pair", "video1": f"videos/p{i}a.mp4", "video2": f"videos/p{i}b.mp4",
                              "concept": "location", "answer": a, "score": s, "gt": {"location": i + 1.0}}
    lines = [{"doc_id": i, "spearman": record(i, s, a), "kendall": record(i, s, a)}
             for i, (s, a) in enumerate([(1.0, "1"), (None, "no idea"), (3.0, "3"), (4.0, "4"), (5.0, "5")])]
    (run_dir / "20260101_samples_convis_location.jsonl").write_text("\n".join(map(json.dumps, lines)))
    _, out, _ = _run(capsys, "correlate", run_dir, "--ground-truth", truth, "--json")
    # the unparsed answer counts as 3.0: x ranks [1, 2.5, 2.5, 4, 5] vs [1..5]: rho = 9.5 / sqrt(9.5 * 10),
    # tau-b = 9 concordant / sqrt(9 * 10)
    result = json.loads(out)
    assert "only 5 pairs" in result["location"].pop("warning")
    assert result == {"location": {"spearman": pytest.approx(100 * 9.5 / 95 ** 0.5),
                                   "kendall": pytest.approx(100 * 9 / 90 ** 0.5), "n": 5, "unparsed": 1}}


def test_errors_name_the_file_and_exit_non_zero(tmp_path, truth, capsys):
    broken = tmp_path / "broken.json"
    broken.write_text('[{"video1": "a.mp4", "video2": "b.mp4"}]')
    code, _, err = _run(capsys, "correlate", broken, "--ground-truth", truth)
    assert code == 2 and "broken.json, entry 0" in err and "similarity" in err
    code, _, err = _run(capsys, "correlate", tmp_path / "missing.json", "--ground-truth", truth)
    assert code == 2 and "missing.json" in err


def test_agreement_json_shape(tmp_path, capsys):
    keys = ["MainAction", "MainSubjects", "Location", "OrderofActions", "MainObjects"]
    rows = [{"user_id": u, "video_pair_id": f"v{p}.mp4-w{p}.mp4",
             "user_inputs": {k: str(1 + (p + (u == "b")) % 5) for k in keys}} for u in "ab" for p in range(4)]
    path = tmp_path / "vicos.user_inputs.json"
    path.write_text(json.dumps(rows))
    _, out, _ = _run(capsys, "agreement", path, "--json")
    data = json.loads(out)
    assert set(data) == {"concepts", "annotators", "pairs", "ratings_per_pair"}
    assert (data["annotators"], data["pairs"], data["ratings_per_pair"]) == (2, 4, 2.0)
    assert set(data["concepts"]) == {"main_action", "main_subjects", "main_objects", "location", "order_of_actions"}


def test_scoring_path_imports_neither_torch_nor_lmms_eval(tmp_path, truth):
    preds = _release(tmp_path, "model_similarities.json", [1, 2, 3, 4, 5])
    code = (
        "import sys; from convis_tasks.cli import main;"
        f"main(['correlate', {str(preds)!r}, '--ground-truth', {str(truth)!r}, '--json']);"
        f"main(['path']);"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('torch', 'lmms_eval', 'transformers')];"
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)


def test_python_m_convis_tasks_path_prints_the_task_folder():
    out = subprocess.run([sys.executable, "-m", "convis_tasks", "path"], capture_output=True, text=True,
                         check=True).stdout.strip()
    import convis_tasks

    assert out == convis_tasks.task_path()
    import os

    assert os.path.isfile(os.path.join(out, "convis_location.yaml"))


# --- errors, exit codes and JSON (issues #11 classes 6 and 8, #12 item 5) ---------------------------------------

_convis = convis_in_process  # the ``convis`` entry point in this process: (status, stdout, stderr)


def _convis_process(*argv):
    """The ``convis`` command as a user runs it: a new process."""
    done = subprocess.run([sys.executable, "-m", "convis_tasks", *map(str, argv)], capture_output=True, text=True)
    return done.returncode, done.stdout, done.stderr


def _strict_json(text: str):
    def refuse(name):
        raise AssertionError(f"not JSON: {name}")

    return json.loads(text, parse_constant=refuse)


def test_a_misspelt_concept_is_a_usage_error_with_a_suggestion_not_a_traceback(tmp_path, truth):
    preds = _release(tmp_path, "model_similarities.json", [1, 2, 3, 4, 5])
    for command, extra in (("correlate", []), ("report", []), ("plot", ["-o", tmp_path / "x.png"])):
        argv = [command, preds, "--ground-truth", truth, "--concept", "locaton", *extra]
        if command == "plot":
            argv = ["plot", "bars"] + argv[1:]
        code, out, err = _convis(*argv)
        assert code == 2 and out == "" and "Traceback" not in err, (command, err)
        assert err.strip().splitlines()[-1].endswith(
            "unknown concept 'locaton'; did you mean location? (concepts: main_action, main_subjects, "
            "main_objects, location, order_of_actions, or all)")
    code, _, err = _convis("correlate", preds, "--ground-truth", truth, "--concept", "Main_Action,ordr of actions")
    assert code == 2 and "did you mean order_of_actions?" in err
    code, out, err = _convis_process("correlate", preds, "--ground-truth", truth, "--concept", "locaton")
    assert code == 2 and out == "" and "Traceback" not in err and "did you mean location?" in err.splitlines()[-1]


@pytest.mark.parametrize("case", ["missing predictions", "missing truth", "folder as truth", "binary predictions",
                                  "JSON object predictions", "empty folder", "bad results file"])
def test_user_mistakes_end_with_one_error_line_and_status_2(tmp_path, truth, case):
    preds = _release(tmp_path, "model_similarities.json", [1, 2, 3, 4, 5])
    if case == "missing predictions":
        argv, named = ["correlate", tmp_path / "nope.json", "--ground-truth", truth], "nope.json"
    elif case == "missing truth":
        argv, named = ["correlate", preds, "--ground-truth", tmp_path / "nogt.jsonl"], "nogt.jsonl"
    elif case == "folder as truth":
        (tmp_path / "gtdir").mkdir()
        argv, named = ["correlate", preds, "--ground-truth", tmp_path / "gtdir"], "gtdir"
    elif case == "binary predictions":
        (tmp_path / "bin.json").write_bytes(b"\xff\xfe\x00garbage")
        argv, named = ["correlate", tmp_path / "bin.json", "--ground-truth", truth], "bin.json"
    elif case == "JSON object predictions":
        (tmp_path / "obj.json").write_text('{"a": 1}')
        argv, named = ["correlate", tmp_path / "obj.json", "--ground-truth", truth], "obj.json"
    elif case == "empty folder":
        (tmp_path / "empty").mkdir()
        argv, named = ["report", tmp_path / "empty", "--ground-truth", truth], "empty"
    else:
        (tmp_path / "run").mkdir()
        (tmp_path / "run" / "20260101_000000_results.json").write_text("[1, 2")
        argv, named = ["submit", tmp_path / "run", "-o", tmp_path / "s.json"], "20260101_000000_results.json"
    code, out, err = _convis(*argv)
    assert code == 2 and "Traceback" not in err
    last = err.strip().splitlines()[-1]
    assert last.startswith("convis: error: ") and named in last


def test_nothing_evaluated_is_an_error_and_a_small_sample_warns_in_every_format(tmp_path, truth):
    stranger = tmp_path / "other_similarities.json"
    stranger.write_text(json.dumps([{"video1": f"x{i}.mp4", "video2": f"y{i}.mp4", "similarity": i + 1}
                                    for i in range(5)]))
    code, out, err = _convis("correlate", stranger, "--ground-truth", truth, "--json")
    last = err.strip().splitlines()[-1]
    assert code == 2 and out == "" and "share none with the 5 ground-truth pairs" in last
    empty = tmp_path / "none_similarities.json"
    empty.write_text("[]")
    assert _convis("correlate", empty, "--ground-truth", truth)[0] == 2

    preds = _release(tmp_path, "model_similarities.json", [1, 2, 3, 4, 5])
    code, out, err = _convis("correlate", preds, "--ground-truth", truth, "--concept", "location", "--json")
    assert code == 0 and "only 5 pairs" in _strict_json(out)["location"]["warning"] and "only 5 pairs" in err
    code, out, err = _convis("correlate", preds, "--ground-truth", truth, "--concept", "location")
    assert "| 5* |" in out and "* fewer than 10 pairs: not a reliable estimate" in out  # the table marks the row;
    assert err.count("only 5 pairs") == 1 and "only 5 pairs" not in out  # the warning itself is said once
    code, out, _ = _convis("report", preds, "--ground-truth", truth, "--concept", "location",
                           "--latex", tmp_path / "t.tex", "--csv", tmp_path / "t.csv", "--json", tmp_path / "t.json")
    assert code == 0 and "only 5 pairs" in out  # Markdown note
    assert "only 5 pairs" in (tmp_path / "t.tex").read_text()
    assert any(r["column"] == "note" and "only 5 pairs" in r["value"]
               for r in csv.DictReader(open(tmp_path / "t.csv")))
    data = _strict_json((tmp_path / "t.json").read_text())
    assert any("only 5 pairs" in w for w in data["warnings"])


def test_json_output_is_strict_json_even_when_values_are_undefined(tmp_path, truth):
    preds = _release(tmp_path, "model_similarities.json", [3, 3, 3, 3, 3])
    code, out, _ = _convis("correlate", preds, "--ground-truth", truth, "--json")
    assert code == 0 and _strict_json(out)["location"]["spearman"] is None
    # agreement where alpha is undefined (every rating equal): null, never NaN
    keys = ["MainAction", "MainSubjects", "Location", "OrderofActions", "MainObjects"]
    rows = [{"user_id": u, "video_pair_id": f"v{p}.mp4-w{p}.mp4", "user_inputs": {k: "3" for k in keys}}
            for u in "ab" for p in range(3)]
    (tmp_path / "raw.json").write_text(json.dumps(rows))
    code, out, err = _convis("agreement", tmp_path / "raw.json", "--json")
    assert code == 0 and "NaN" not in out and "RuntimeWarning" not in err
    assert _strict_json(out)["concepts"]["location"]["alpha"] is None
    code, out, _ = _convis("agreement", tmp_path / "raw.json")
    assert "| Location | - |" in out


def test_agreement_without_a_doubly_rated_pair_is_a_clear_error(tmp_path):
    keys = ["MainAction", "MainSubjects", "Location", "OrderofActions", "MainObjects"]
    rows = [{"user_id": "a", "video_pair_id": f"v{p}.mp4-w{p}.mp4", "user_inputs": {k: str(p + 1) for k in keys}}
            for p in range(3)]
    (tmp_path / "raw.json").write_text(json.dumps(rows))
    code, _, err = _convis("agreement", tmp_path / "raw.json")
    assert code == 2 and "Traceback" not in err
    assert "raw.json: Krippendorff's alpha cannot be computed" in err.strip().splitlines()[-1]


def test_output_files_need_an_existing_folder_and_nothing_is_created(tmp_path, truth):
    preds = _release(tmp_path, "model_similarities.json", [1, 2, 3, 4, 5])
    missing = tmp_path / "no" / "such"
    for argv in (["plot", "bars", preds, "--ground-truth", truth, "-o", missing / "f.png"],
                 ["report", preds, "--ground-truth", truth, "--latex", missing / "t.tex"],
                 ["report", preds, "--ground-truth", truth, "--csv", missing / "t.csv"],
                 ["submit", "--from-release", tmp_path, "--model", "M", "-o", missing / "s.json"]):
        code, out, err = _convis(*argv)
        assert code == 2 and out == "", argv
        assert f"the folder {missing} does not exist; create it first" in err.strip().splitlines()[-1]
    assert not (tmp_path / "no").exists()


def test_an_internal_error_shows_the_traceback_then_the_line_to_act_on_last(capsys):
    import argparse

    from convis_tasks.cli.common import EXIT_INTERNAL, run_command

    def broken(args):
        raise KeyError("boom")

    assert run_command(broken, argparse.Namespace()) == EXIT_INTERNAL
    err = capsys.readouterr().err
    assert "Traceback" in err
    assert err.strip().splitlines()[-1].startswith("convis: internal error: KeyError: 'boom' (this is a bug")


def test_untrusted_names_reach_the_terminal_escaped(tmp_path, truth):
    hostile = "\x1b]0;pwn\x07M\x1b[2J"
    folder = tmp_path / "Location" / hostile
    folder.mkdir(parents=True)
    preds = _release(folder, f"{hostile}_Location_similarities.json", [1, 2, 3, 4, 5])
    code, out, err = _convis("report", preds, "--ground-truth", truth)
    assert code == 0
    assert "\x1b" not in out + err and "\x07" not in out + err
    assert r"| \\x1b\]0;pwn\\x07M\\x1b\[2J |" in out  # visible (then Markdown-escaped) in the row label
    assert r"convis: warning: \x1b]0;pwn\x07M\x1b[2J: location: only 5 pairs" in err


@pytest.mark.parametrize("extra, message", [
    (["--bootstrap", "-5"], "argument --bootstrap: -5 is below 0"),
    (["--min-pairs", "0"], "argument --min-pairs: 0 is below 1"),
    (["--bootstrap", "many"], "argument --bootstrap: 'many' is not a whole number"),
    (["--compare", "a:b"], "--compare is a paired bootstrap test: give --bootstrap B too"),
])
def test_bad_numbers_and_options_are_usage_errors_not_silent_defaults(tmp_path, truth, extra, message):
    preds = _release(tmp_path, "model_similarities.json", [1, 2, 3, 4, 5])
    code, out, err = _convis("report", preds, "--ground-truth", truth, *extra)
    assert code == 2 and out == "" and message in err.strip().splitlines()[-1]
