"""``convis run`` checks the options it passes to lmms-eval before any model loads (#21).

lmms-eval 0.7.3 reads some of them only after the model has loaded, reports others as a traceback and exits 0, and
silently misreads a fraction ``--limit`` over tasks of different sizes (it uses the first task's count for all).
"""

from __future__ import annotations

import importlib.util

import pytest

from convis_tasks.errors import RunError
from convis_tasks.harness.options import gen_kwargs_problems, limit_problems, option_problems
from convis_tasks.harness.tasks import TaskInfo
from convis_tasks.reading.datafolder import DATA_ENV, DEMO_DIR

pytestmark = pytest.mark.skipif(importlib.util.find_spec("lmms_eval") is None, reason="lmms-eval is not installed")

LOCATION = TaskInfo("convis_location", "pair", "location")
MAIN_ACTION = TaskInfo("convis_main_action", "pair", "main_action")
RETRIEVAL = TaskInfo("convis_retrieval_location", "retrieval", "location")


@pytest.fixture(autouse=True)
def _demo_data(monkeypatch):
    monkeypatch.setenv(DATA_ENV, str(DEMO_DIR))


def _whats(problems) -> list[str]:
    return [p.what for p in problems]


def test_a_fraction_limit_over_tasks_of_different_sizes_is_refused_naming_them():
    (problem,) = limit_problems(0.5, 0, [LOCATION, RETRIEVAL])
    assert problem.what.startswith("--limit 0.5 is a fraction, which lmms-eval 0.7.3 turns into a count for the "
                                   "first task it builds and then uses as the count of every other task")
    assert "(convis_location: 11 documents, convis_retrieval_location: 16 documents)" in problem.what
    assert "--limit 5" in problem.fix
    assert limit_problems(0.5, 0, [LOCATION, MAIN_ACTION]) == []  # equal sizes: the one count is right for both
    assert limit_problems(0.5, 0, [RETRIEVAL]) == [] and limit_problems(6, 0, [LOCATION, RETRIEVAL]) == []
    other = TaskInfo("mme", "other")
    assert "their sizes are unknown" in limit_problems(0.5, 0, [LOCATION, other])[0].what


@pytest.mark.parametrize("limit, offset, message", [
    (-2, 0, "--limit -2 is negative"),
    (0, 0, "--limit 0 would run every document (lmms-eval 0.7.3 reads 0 as no limit)"),
    (2.5, 0, "--limit 2.5 is neither a whole number of documents nor a fraction below 1 (lmms-eval would run 2)"),
    (None, -1, "--offset -1 is negative"),
])
def test_limits_lmms_eval_would_misread_are_refused(limit, offset, message):
    assert _whats(limit_problems(limit, offset, [LOCATION])) == [message]
    assert limit_problems(-1, 0, [LOCATION]) == [] and limit_problems(None, 0, [LOCATION]) == []


def test_gen_kwargs_are_read_as_lmms_eval_reads_them():
    assert gen_kwargs_problems("max_new_tokens=8,temperature=0,until=[\"\\n\"]") == []
    assert "is not a list of key=value pairs" in gen_kwargs_problems("max_new_tokens")[0].what
    assert _whats(gen_kwargs_problems("max_new_tokens=abc")) == [
        "--gen_kwargs max_new_tokens=abc is not a whole number of at least 1"]
    assert _whats(gen_kwargs_problems("temperature=-1")) == ["--gen_kwargs temperature=-1 is not a number of at least 0"]
    assert "has a value without a key" in gen_kwargs_problems("=3")[0].what


@pytest.mark.parametrize("extra, message", [
    (["--limit", "abc"], "lmms-eval refuses the options: argument --limit: invalid float value: 'abc'"),
    (["--limt", "5"], "lmms-eval refuses the options: unrecognized arguments: --limt 5"),
    (["--batch_size", "x"], "--batch_size 'x' is not auto, auto:N or a whole number N >= 1"),
    (["--batch_size", "0"], "--batch_size '0' is not auto, auto:N or a whole number N >= 1"),
    (["--reasoning_tags", "[[<think>"], "--reasoning_tags '[[<think>' is not JSON"),
    (["--gen_kwargs", "max_new_tokens"], "--gen_kwargs 'max_new_tokens' is not a list of key=value pairs"),
    (["--fewshot_as_multiturn"], "--fewshot_as_multiturn needs --apply_chat_template"),
])
def test_every_option_is_read_before_the_run(extra, message):
    problems = option_problems("convis_colour_histogram", None, ["convis_location"], "tasks", extra, [LOCATION])
    assert any(p.what.startswith(message) for p in problems), _whats(problems)
    assert option_problems("convis_colour_histogram", "bins=4", ["convis_location"], "tasks",
                           ["--batch_size", "auto:4", "--limit", "3", "--predict_only"], [LOCATION]) == []
    assert "is not a list of key=value pairs" in _whats(option_problems(
        "convis_colour_histogram", "bins", ["convis_location"], "tasks", [], [LOCATION]))[0]


def test_convis_run_refuses_them_before_any_run_folder_is_made(tmp_path, capsys):
    from convis_tasks.harness.run import execute

    out = tmp_path / "out"
    with pytest.raises(RunError, match="--gen_kwargs max_new_tokens=x is not a whole number"):  # the last problem
        execute(["--model", "convis_colour_histogram", "--tasks", "convis_location,convis_retrieval_location",
                 "--output_path", str(out), "--limit", "0.5", "--gen_kwargs", "max_new_tokens=x",
                 "--skip-model-check"])
    err = capsys.readouterr().err  # every other problem on a line of its own before it
    assert "convis: error: --limit 0.5 is a fraction" in err
    assert "(convis_location: 11 documents, convis_retrieval_location: 16 documents)" in err
    assert not out.exists() or not any(out.iterdir())


@pytest.mark.parametrize("extra, message", [
    (["--num_processes", "-2"], "--num_processes must be at least 1"),
    (["--launcher_args", "--main_process_port '1"], "is not a valid option string"),
    (["--limit", "abc"], "lmms-eval refuses the options: argument --limit: invalid float value: 'abc'"),
])
def test_convis_runs_own_options_and_lmms_evals_are_refused_alike(tmp_path, extra, message):
    from convis_tasks.harness.run import execute

    with pytest.raises(RunError, match=message):
        execute(["--model", "convis_colour_histogram", "--tasks", "convis_location", "--output_path",
                 str(tmp_path / "out"), "--skip-model-check", *extra])
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())  # no run folder
