"""Warnings: one line each, ``convis: warning: <text>``, each text once, never Python's raw warning output (#21)."""

from __future__ import annotations

import re
import warnings

import pytest

from cli_helpers import convis_in_process as cli
from test_report_support import DEMO_GT, DEMO_RANKINGS, make_run

from convis_tasks import console

RAW_WARNING = re.compile(r"\w+Warning: |^\s*warnings\.warn|\.py:\d+: ", re.MULTILINE)


def _warning_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if "warning" in line.lower()]


def test_a_warning_is_one_line_in_one_form_said_once(capsys):
    assert console.warn("location: only 4 pairs") is True
    assert console.warn("warning: location: only 4 pairs") is False  # the same text, already said
    console.say("warning: location: only 4 pairs")
    console.say("warning: main_action: only 4 pairs")
    console.say("note: not a warning")
    console.say("note: not a warning")  # other messages are not deduplicated
    assert capsys.readouterr().err.splitlines() == [
        "convis: warning: location: only 4 pairs", "convis: warning: main_action: only 4 pairs",
        "convis: note: not a warning", "convis: note: not a warning"]


def test_the_packages_python_warnings_become_such_lines_and_others_are_left_to_python(capsys):
    from convis_tasks.scoring.retrieval import evaluate_retrieval

    human = {"a.mp4": {"b.mp4": 1, "c.mp4": 2}}
    with pytest.warns(UserWarning, match="from another library"):  # what Python (here pytest) shows
        with console.package_warnings():
            warnings.simplefilter("always")  # every warning reaches the display (pytest.ini ignores small samples)
            for _ in range(3):
                evaluate_retrieval(human, {"a.mp4": {"b.mp4": 2.0, "c.mp4": 1.0}})
            warnings.warn_explicit("from another library", UserWarning, "/elsewhere/lib.py", 7, module="lib")
    err = capsys.readouterr().err
    assert err.splitlines() == ["convis: warning: only 1 anchors (fewer than 20): the retrieval means are too noisy "
                                "to compare models"]
    with console.package_warnings():  # one command's scope: a new command says its warnings again
        warnings.simplefilter("always")
        evaluate_retrieval(human, {"a.mp4": {"b.mp4": 2.0, "c.mp4": 1.0}})
    assert capsys.readouterr().err.count("convis: warning: only 1 anchors") == 1


def test_correlate_and_retrieval_say_each_warning_once_and_the_tables_only_mark_it(tmp_path):
    make_run(tmp_path / "run")
    code, out, err = cli("correlate", tmp_path / "run", "--ground-truth", DEMO_GT)
    assert code == 0 and not RAW_WARNING.search(err)
    lines = _warning_lines(err)
    assert lines == [f"convis: warning: {tmp_path / 'run'}: only 11 pairs for main_action, main_subjects, "
                     "main_objects, location, order_of_actions, main_action (concept-free), main_subjects "
                     "(concept-free), main_objects (concept-free), location (concept-free), order_of_actions "
                     "(concept-free) (fewer than 20), too few for a reliable estimate"]
    assert "only 11 pairs" not in out and out.count("| 11* |") == 10
    assert "\n* fewer than 20 pairs: not a reliable estimate" in out
    code, out, err = cli("retrieval", tmp_path / "run", "--ground-truth", DEMO_RANKINGS)
    assert code == 0 and not RAW_WARNING.search(err)  # it was `retrieval.py:285: SmallSampleWarning: ...` x4
    assert _warning_lines(err) == [f"convis: warning: {tmp_path / 'run'}: only 4 complete anchors for main_action, "
                                   "main_subjects, main_objects, location (fewer than 20), too few for a reliable "
                                   "estimate"]
    assert "* fewer than 20 complete anchors: not a reliable estimate" in out


def test_the_demo_says_each_warning_once_in_the_one_form(colour_demo_run):
    err = (colour_demo_run.parent / "demo.stderr").read_text()
    out = (colour_demo_run.parent / "demo.stdout").read_text()
    lines = _warning_lines(err)
    assert lines and all(line.startswith("convis: warning: ") for line in lines), lines
    assert len(lines) == len(set(lines)) == 2  # the correlation tables' small samples, the retrieval table's
    assert not RAW_WARNING.search(err) and "Warning" not in out and "warning" not in out
