"""``convis run`` journals every answer in the run folder; Ctrl-C keeps them and says how to continue; running the same
command again (or ``--resume RUN``) continues the run and gives the numbers of an uninterrupted one (issue #21)."""

from __future__ import annotations

import glob
import importlib.util
import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from cli_helpers import convis_in_process
from convis_tasks.harness.journal import AnswerJournal, count_answers
from convis_tasks.harness.launch import Progress
from convis_tasks.harness.resume import JOURNAL_NAME, LOCK_NAME, RECORD_NAME, plan_run
from convis_tasks.harness.run import build_run_parser
from convis_tasks.errors import RunError
from convis_tasks.reading.datafolder import DEMO_DIR
from convis_tasks.reading.runs import answering_model, run_metadata, select_runs

REPO = Path(__file__).resolve().parent.parent
PLUGINS = Path(__file__).resolve().parent / "plugins"
DEMO_PAIRS = sum(1 for line in (DEMO_DIR / "ConVIS.jsonl").read_text().splitlines() if line.strip())
needs_lmms_eval = pytest.mark.skipif(importlib.util.find_spec("lmms_eval") is None,
                                     reason="lmms-eval is not installed (pip install -e '.[harness]')")


# --- the rule that names the model of a journaled run ------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _release_run_locks(monkeypatch):
    """Every run-folder lock a test's plans take is released after it, as ``convis run`` releases its own: a lock
    left held in this process would outlive its deleted folder, and a later lock file on the reused inode could be
    taken for it."""
    from convis_tasks.harness import resume

    taken = []
    real = resume._lock

    def lock(folder):
        held = real(folder)
        taken.append(held)
        return held

    monkeypatch.setattr(resume, "_lock", lock)
    yield
    for held in taken:
        if held is not None and held.is_locked:
            held.release(force=True)

def test_a_journaled_run_is_a_run_of_its_inner_model_with_its_own_arguments():
    assert answering_model("convis_resumable", "inner=llava_vid,journal=/r/journal,chunk=2,pretrained=org/m") == (
        "llava_vid", "pretrained=org/m")
    assert answering_model("llava_vid", "pretrained=org/m,inner=x") == ("llava_vid", "pretrained=org/m,inner=x")
    wrapped = {"config": {"model": "convis_resumable", "model_args": "inner=convis_colour_histogram,journal=/r/j,bins=2"}}
    meta = run_metadata(wrapped)
    assert (meta["model"], meta["model_args"], meta["name"]) == ("convis_colour_histogram", "bins=2",
                                                                 "convis_colour_histogram")


def _results(folder: Path, stamp: str, model: str, model_args: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{stamp}_results.json").write_text(json.dumps({"config": {"model": model, "model_args": model_args},
                                                              "results": {"convis_location": {}}}))
    (folder / f"{stamp}_samples_convis_location.jsonl").write_text("")


def test_a_journaled_and_a_plain_run_of_one_model_are_one_model_to_the_readers(tmp_path):
    _results(tmp_path / "a", "20260101_000000", "convis_colour_histogram", "bins=2")
    _results(tmp_path / "b", "20260102_000000", "convis_resumable", "inner=convis_colour_histogram,journal=/x,bins=2")
    assert len(select_runs(str(tmp_path)).runs) == 1  # one model: the newer run's task replaces the older one's
    _results(tmp_path / "c", "20260103_000000", "convis_resumable", "inner=convis_colour_histogram,journal=/x,bins=4")
    with pytest.raises(Exception, match="2 different models"):
        select_runs(str(tmp_path))


# --- --resume refusals (before anything runs) ----------------------------------------------------------------------

def _record(folder: Path, **changes) -> Path:
    folder.mkdir(parents=True)
    record = {"format": 1, "argv": ["--model", "convis_colour_histogram", "--tasks", "convis_location",
                                    "--output_path", str(folder.parent)],
              "signature": {"journal": True}, "finished": None, **changes}
    (folder / RECORD_NAME).write_text(json.dumps(record))
    return folder


@pytest.mark.parametrize("case, message", [
    ("missing", "no such folder"),
    ("foreign", f"not a run folder of convis run (no {RECORD_NAME})"),
    ("finished", "this run finished on 2026-01-02T03:04:05+0000"),
    ("unjournaled", "this run kept no journal"),
])
def test_resume_refuses_a_folder_it_cannot_continue_with_the_reason(tmp_path, case, message):
    folder = tmp_path / "run"
    if case == "foreign":
        folder.mkdir()
    elif case == "finished":
        _record(folder, finished="2026-01-02T03:04:05+0000")
    elif case == "unjournaled":
        _record(folder, signature={"journal": False})
    code, _, err = convis_in_process("run", "--resume", folder)
    assert code == 2
    last = err.strip().splitlines()[-1]
    assert last.startswith(f"convis: error: --resume {folder}: {message}"), last


def _args(*argv):
    args, passthrough = build_run_parser().parse_known_args(list(argv))
    return args, passthrough


@needs_lmms_eval
def test_a_run_in_progress_is_neither_continued_nor_resumed_and_changed_options_are_refused(tmp_path):
    from filelock import FileLock

    argv = ["--model", "convis_colour_histogram", "--tasks", "convis_location", "--output_path", str(tmp_path)]
    args, rest = _args(*argv)
    first = plan_run(args, argv, ["convis_location"], rest, str(REPO / "convis_tasks"), tmp_path, DEMO_DIR)
    assert first.model == "convis_resumable" and first.journal == first.folder.resolve() / JOURNAL_NAME
    assert first.model_args == f"inner=convis_colour_histogram,journal={first.journal}"
    from convis_tasks.harness.resume import record_start

    record_start(first, ["lmms_eval"])
    first.lock.release()
    # the run goes on in another process, as a real one does, holding the folder's lock (in this process, filelock
    # may take a lock file on an inode that an earlier test's deleted lock file had for one it already holds)
    holder = subprocess.Popen([sys.executable, "-c", "import sys; from filelock import FileLock; "
                               f"lock = FileLock({str(first.folder / LOCK_NAME)!r}); lock.acquire(); print('held', "
                               "flush=True); sys.stdin.read()"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        # the same command while the first still runs (its lock held): a new folder, not the running one
        second = plan_run(args, argv, ["convis_location"], rest, str(REPO / "convis_tasks"), tmp_path, DEMO_DIR)
        assert second.folder != first.folder and not second.continued
        with pytest.raises(RunError, match="a run is in progress in this folder"):
            plan_run(args, argv, ["convis_location"], rest, str(REPO / "convis_tasks"), tmp_path, DEMO_DIR,
                     resume=str(first.folder))
    finally:
        holder.communicate("", timeout=30)  # its end releases the lock
    # released: the same command continues it (second never recorded a start, so it is no candidate)
    third = plan_run(args, argv, ["convis_location"], rest, str(REPO / "convis_tasks"), tmp_path, DEMO_DIR)
    assert third.continued and third.folder == first.folder
    assert "continuing the unfinished run in" in third.notes[0]
    third.lock.release()
    changed, more = _args(*argv, "--batch_size", "4")
    with pytest.raises(RunError, match=r"change the stored command's lmms_eval_options \(\[\] -> \['--batch_size', '4'\]\)"):
        plan_run(changed, argv, ["convis_location"], more, str(REPO / "convis_tasks"), tmp_path, DEMO_DIR,
                 resume=str(first.folder))
    assert FileLock(str(first.folder / LOCK_NAME)).acquire(timeout=0)  # nothing left holding it


@needs_lmms_eval
def test_models_the_journal_cannot_wrap_run_unwrapped_and_say_so(tmp_path):
    argv = ["--model", "convis_colour_histogram", "--model_args", "chunk=3", "--tasks", "convis_location",
            "--output_path", str(tmp_path)]
    args, rest = _args(*argv)
    plan = plan_run(args, argv, ["convis_location"], rest, str(REPO / "convis_tasks"), tmp_path, DEMO_DIR)
    assert (plan.model, plan.model_args, plan.journal) == ("convis_colour_histogram", "chunk=3", None)
    assert plan.notes == [("answers are not journaled: its --model_args set chunk, which the journal wrapper takes "
                           "itself; an interrupted run cannot be continued")]
    chat, rest = _args("--model", "qwen2_5_vl", "--tasks", "convis_location", "--output_path", str(tmp_path))
    plan = plan_run(chat, [], ["convis_location"], rest, str(REPO / "convis_tasks"), tmp_path, DEMO_DIR)
    assert plan.model == "qwen2_5_vl" and "through its chat class" in plan.notes[0]
    off, rest = _args("--model", "convis_colour_histogram", "--tasks", "convis_location", "--output_path",
                      str(tmp_path), "--no-journal")
    plan = plan_run(off, [], ["convis_location"], rest, str(REPO / "convis_tasks"), tmp_path, DEMO_DIR)
    assert (plan.model, plan.journal, plan.notes) == ("convis_colour_histogram", None, [])


# --- small pieces ----------------------------------------------------------------------------------------------------

def test_quiet_progress_shows_the_journal_line_and_the_bars(tmp_path):
    out = io.StringIO()
    progress = Progress(out)
    progress.line("\x1b[33mconvis: note: m: 3 answers from the journal /r/journal, 8 to compute\x1b[0m")
    progress.line("m answers:  27%|██▋       | 3/11 [00:00<?, ?it/s]")
    progress.line("m answers: 100%|██████████| 11/11 [00:01<00:00, 9.0it/s]")
    assert out.getvalue().splitlines() == ["convis: note: m: 3 answers from the journal /r/journal, 8 to compute",
                                           "  m answers: 11/11"]


def test_count_answers_counts_complete_lines_only(tmp_path):
    journal = AnswerJournal(tmp_path, "m")
    journal.put("k1", "Score: 1")
    journal.put("k2", "Score: 2")
    journal.close()
    with open(tmp_path / "answers.rank0.jsonl", "a") as handle:
        handle.write('{"model": "m", "key": "k3"')  # torn by an interruption
    assert count_answers(tmp_path) == 2 and count_answers(tmp_path / "absent") == 0


# --- through the real command line ------------------------------------------------------------------------------------

def _env(tmp: Path, **extra) -> dict:
    env = dict(os.environ, CONVIS_DATA_DIR=str(DEMO_DIR), CONVIS_CACHE_DIR=str(tmp / "clips"), HF_HUB_OFFLINE="1",
               HF_DATASETS_OFFLINE="1", HF_DATASETS_CACHE=str(tmp / "hf_datasets"), LMMS_EVAL_PLUGINS="convis_test_models",
               PYTHONPATH=os.pathsep.join([str(REPO), str(PLUGINS), os.environ.get("PYTHONPATH", "")]))
    env.pop("CONVIS_TEST_STOP_AFTER", None)
    env.update(extra)
    return env


def _convis(args, env) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "convis_tasks", *map(str, args)], env=env, capture_output=True,
                          text=True, timeout=900, cwd=REPO, check=False)


def _metrics(folder: Path) -> dict:
    results = json.loads(Path(glob.glob(str(folder / "**" / "*_results.json"), recursive=True)[-1]).read_text())
    return {k: v for k, v in results["results"]["convis_location"].items() if isinstance(v, (int, float))}


def _pairs(folder: Path) -> dict:
    from convis_tasks.report.submission import build_from_run

    doc = build_from_run(str(folder), {"size": "0B"})
    return {(p["task"], p["video1"], p["video2"]): (p["score"], p["answer"]) for p in doc["pairs"]}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """An uninterrupted run; then the test model's run stopped by SIGINT after 3 answers, the same command again
    (stopped after 3 more), and ``--resume`` to the end."""
    if importlib.util.find_spec("lmms_eval") is None:
        pytest.skip("lmms-eval is not installed (pip install -e '.[harness]')")
    tmp = tmp_path_factory.mktemp("resume")
    computed = tmp / "computed.txt"
    common = ["--tasks", "convis_location", "--output_path", tmp / "out", "--quiet"]
    plain = _convis(["run", "--model", "convis_colour_histogram", "--tasks", "convis_location", "--output_path",
                     tmp / "plain", "--quiet"], _env(tmp))
    first = _convis(["run", "--model", "interrupting_colour", *common],
                    _env(tmp, CONVIS_TEST_STOP_AFTER="3", CONVIS_TEST_COMPUTED=str(computed)))
    again = _convis(["run", "--model", "interrupting_colour", *common],
                    _env(tmp, CONVIS_TEST_STOP_AFTER="3", CONVIS_TEST_COMPUTED=str(computed)))
    folders = sorted((tmp / "out").iterdir())
    resumed = _convis(["run", "--resume", folders[0], "--no-tables"], _env(tmp, CONVIS_TEST_COMPUTED=str(computed)))
    return {"tmp": tmp, "plain": plain, "first": first, "again": again, "resumed": resumed, "folders": folders,
            "computed": computed}


@pytest.mark.slow
def test_a_plain_run_journals_one_answer_per_request_and_names_the_real_model(runs):
    assert runs["plain"].returncode == 0, runs["plain"].stderr[-3000:]
    (folder,) = list((runs["tmp"] / "plain").iterdir())
    assert count_answers(folder / JOURNAL_NAME) == DEMO_PAIRS
    entries = [json.loads(line) for line in (folder / JOURNAL_NAME / "answers.rank0.jsonl").read_text().splitlines()]
    assert len({e["key"] for e in entries}) == DEMO_PAIRS  # one entry per request
    assert {e["model"].split(":")[0] for e in entries} == {"convis_colour_histogram"}
    record = json.loads((folder / RECORD_NAME).read_text())
    assert record["finished"] and record["lmms_eval_command"][record["lmms_eval_command"].index("--model") + 1] == (
        "convis_resumable")
    meta = select_runs(str(folder)).metadata()
    assert (meta["model"], meta.get("model_args")) == ("convis_colour_histogram", None)


@pytest.mark.slow
def test_progress_counts_every_request_of_the_task_and_the_journal_line_reaches_the_terminal(runs):
    err = runs["plain"].stderr
    assert f"  convis_colour_histogram answers: {DEMO_PAIRS}/{DEMO_PAIRS}" in err.splitlines()
    assert not re.search(r": 1/1$", err, re.MULTILINE)  # no bar per chunk
    assert "convis_colour_histogram: 0 answers from the journal" in err
    assert "interrupting_colour: 6 answers from the journal" in runs["resumed"].stderr
    assert f"{DEMO_PAIRS - 6} to compute" in runs["resumed"].stderr
    assert f"  interrupting_colour answers: {DEMO_PAIRS}/{DEMO_PAIRS}" in runs["resumed"].stderr.splitlines()


@pytest.mark.slow
def test_ctrl_c_exits_130_with_the_answers_kept_and_the_same_command_continues_the_same_folder(runs):
    (folder,) = runs["folders"]  # one run folder for the three attempts
    first, again = runs["first"], runs["again"]
    assert first.returncode == 130, first.stderr[-3000:]
    assert first.stderr.strip().splitlines()[-1] == (
        f"convis run: interrupted: 3 answers kept in {folder.resolve() / JOURNAL_NAME}; to continue, run the same "
        f"command again (or `convis run --resume {folder}`)")
    assert again.returncode == 130, again.stderr[-3000:]
    assert (f"convis run: continuing the unfinished run in {folder} (same model, model_args, tasks and options): "
            "3 answers in its journal") in again.stderr
    assert "interrupting_colour: 3 answers from the journal" in again.stderr
    assert "interrupted: 6 answers kept" in again.stderr.strip().splitlines()[-1]
    assert {p.name for p in folder.glob("lmms_eval*.log")} == {"lmms_eval.log", "lmms_eval.attempt1.log",
                                                               "lmms_eval.attempt2.log"}


@pytest.mark.slow
def test_resume_finishes_with_the_numbers_of_an_uninterrupted_run_recomputing_nothing(runs):
    resumed = runs["resumed"]
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    (folder,) = runs["folders"]
    assert f"continuing the unfinished run in {folder} with its stored command: 6 answers" in resumed.stderr
    computed = runs["computed"].read_text().splitlines()
    assert len(computed) == DEMO_PAIRS and sorted(computed) == sorted(f"convis_location {i}" for i in range(DEMO_PAIRS))
    (plain,) = list((runs["tmp"] / "plain").iterdir())
    assert _metrics(folder) == _metrics(plain)
    assert len(_pairs(plain)) == DEMO_PAIRS and _pairs(folder) == _pairs(plain)
    assert select_runs(str(folder)).metadata()["model"] == "interrupting_colour"
    # finished now: --resume refuses it
    again = _convis(["run", "--resume", folder], _env(runs["tmp"]))
    assert again.returncode == 2
    assert re.match(rf"convis: error: --resume {re.escape(str(folder))}: this run finished on ",
                    again.stderr.strip().splitlines()[-1])
