"""``convis run``: task names, preflight before any model loads, its own run folder, failures that lmms-eval hides."""

import glob
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from convis_tasks.harness import run as convis_run
from convis_tasks.harness.preflight import Problem, check_data, model_reads_videos
from convis_tasks.harness.run import (RunError, TaskInfo, check_outcome, launcher_command, leaf_tasks, resolve_tasks,
                                      task_index)
from convis_tasks.harness.launch import failure_message, new_run_folder
from convis_tasks.reading.datafolder import DATA_ENV, DEMO_DIR

REPO = Path(__file__).resolve().parent.parent
CONCEPT_TASKS = ["convis_main_action", "convis_main_subjects", "convis_main_objects", "convis_location",
                 "convis_order_of_actions"]
DEMO_PAIRS = [json.loads(line) for line in (DEMO_DIR / "ConVIS.jsonl").read_text().splitlines() if line.strip()]
needs_lmms_eval = pytest.mark.skipif(importlib.util.find_spec("lmms_eval") is None,
                                     reason="lmms-eval is not installed (pip install -e '.[harness]')")


# --- task names ---------------------------------------------------------------------------------------------

def test_task_names_match_in_any_case_and_groups_expand_to_their_tasks():
    index = task_index()
    assert resolve_tasks("Convis_Location,CONVIS_RETRIEVAL", index) == ["convis_location", "convis_retrieval"]
    leaves = leaf_tasks(resolve_tasks("convis", index), index)
    assert [t.name for t in leaves] == CONCEPT_TASKS
    assert [(t.kind, t.concept) for t in leaves][3] == ("pair", "location")
    retrieval = leaf_tasks(["convis_retrieval"], index)
    assert {(t.kind, t.concept) for t in retrieval} == {("retrieval", c) for c in
                                                        ("main_action", "main_subjects", "main_objects", "location")}
    assert index["convis_global"] == TaskInfo("convis_global", "pair", None)
    # a group and one of its members: each task once
    assert [t.name for t in leaf_tasks(["convis", "convis_location"], index)] == CONCEPT_TASKS


def test_misspelled_task_names_get_suggestions():
    with pytest.raises(RunError) as info:
        resolve_tasks("convis_locaton,convis_retreival", task_index())
    message = str(info.value)
    assert "'convis_locaton' (did you mean convis_location" in message
    assert "'convis_retreival' (did you mean convis_retrieval" in message
    with pytest.raises(RunError, match="unknown task 'mmmu'"):
        resolve_tasks("mmmu", task_index())


def test_a_users_own_task_folder_is_indexed_with_its_concept(tmp_path):
    (tmp_path / "convis_point_of_view.yaml").write_text(
        "task: convis_point_of_view\n"
        f"include: {convis_run.task_path()}/_template_yaml\n"
        "process_docs: !function convis_tasks.hooks.docs_location\n")
    assert task_index(tmp_path) == {"convis_point_of_view": TaskInfo("convis_point_of_view", "pair", "location")}


# --- preflight: data ------------------------------------------------------------------------------------------

def _copy_demo(tmp_path) -> Path:
    data = tmp_path / "data"
    shutil.copytree(DEMO_DIR, data)
    return data


def test_wrong_data_folder_is_one_problem_naming_it(tmp_path):
    problems = check_data(leaf_tasks(["convis_location"], task_index()), data_dir=str(tmp_path / "nowhere"))
    assert len(problems) == 1
    assert str(tmp_path / "nowhere") in problems[0].what and "ConVIS.jsonl" in problems[0].what
    assert "`convis data fetch`" in problems[0].fix


def test_missing_and_unreadable_videos_are_named_with_their_pair(tmp_path, monkeypatch):
    data = _copy_demo(tmp_path)
    first, second = DEMO_PAIRS[0], DEMO_PAIRS[1]
    (data / first["video2"]).unlink()
    monkeypatch.setenv(DATA_ENV, str(data))
    problems = check_data(leaf_tasks(["convis_location"], task_index()))
    assert len(problems) == 1 and first["video2"] in problems[0].what and "convis_location" in problems[0].what
    # the file is back but holds no video: its header does not open
    victim = second["video1"] if second["video1"] != first["video2"] else second["video2"]
    (data / first["video2"]).write_bytes((DEMO_DIR / first["video2"]).read_bytes())
    (data / victim).write_bytes(os.urandom(4096))
    problems = check_data(leaf_tasks(["convis_location"], task_index()))
    assert len(problems) == 1
    assert str(data / victim) in problems[0].what and "header not readable" in problems[0].what
    assert "pair" in problems[0].what


def test_retrieval_tasks_need_their_rankings(tmp_path, monkeypatch):
    data = _copy_demo(tmp_path)
    (data / "ranked.json").unlink()
    monkeypatch.setenv(DATA_ENV, str(data))
    monkeypatch.delenv("CONVIS_RANKINGS", raising=False)
    index = task_index()
    assert check_data(leaf_tasks(["convis_location"], index)) == []
    problems = check_data(leaf_tasks(["convis_retrieval_location"], index))
    assert len(problems) == 1 and str(data / "ranked.json") in problems[0].what
    # caption-only models need no videos, but still the rankings
    assert len(check_data(leaf_tasks(["convis_retrieval_location"], index), reads_videos=False)) == 1


def test_caption_only_models_skip_the_video_check(tmp_path, monkeypatch):
    data = _copy_demo(tmp_path)
    (data / DEMO_PAIRS[0]["video1"]).unlink()
    monkeypatch.setenv(DATA_ENV, str(data))
    tasks = leaf_tasks(["convis_location"], task_index())
    assert check_data(tasks, reads_videos=False) == []
    assert len(check_data(tasks, reads_videos=True)) == 1


def test_reads_videos_is_read_from_the_model_manifest_without_importing_the_model(monkeypatch):
    from convis_tasks.model_wrappers import manifest

    monkeypatch.setitem(manifest.MODELS, "fake_judge", manifest.ModelSpec("fakewrappers.judge.Judge",
                                                                          reads_videos=False))
    monkeypatch.setitem(manifest.MODELS, "fake_watcher", manifest.ModelSpec("fakewrappers.judge.Watcher"))
    assert model_reads_videos("fake_judge") is False
    assert model_reads_videos("fake_watcher") is True
    assert model_reads_videos("convis_resumable", "inner=fake_judge,journal=/tmp/j") is False
    assert model_reads_videos("llava_onevision") is True
    assert model_reads_videos("convis_caption_judge") is False and model_reads_videos("convis_caption_similarity") is False
    assert "fakewrappers" not in sys.modules


# --- after the run ----------------------------------------------------------------------------------------------

def test_failure_message_prefers_the_plugins_own_line():
    retry = ("\x1b[31mERROR\x1b[0m | lmms_eval.__main__:cli_evaluate:614 - Error during evaluation: RetryError[<Future "
             "at 0x7f state=finished raised DataNotFoundError>]. Please set `--verbosity=DEBUG` to get more "
             "information.")
    assert failure_message("Traceback (most recent call last):\n  File x\nconvis_tasks.video.decode.VideoDecodeError: "
                           "cannot decode /d/v1.mp4: moov atom not found\n" + retry) == \
        "VideoDecodeError: cannot decode /d/v1.mp4: moov atom not found"
    assert failure_message("noise\nconvis: error: docs_location: $CONVIS_DATA_DIR points at /x\n") == \
        "docs_location: $CONVIS_DATA_DIR points at /x"
    assert failure_message(retry) == \
        "lmms-eval: RetryError[<Future at 0x7f state=finished raised DataNotFoundError>]"
    assert failure_message("ModuleNotFoundError: No module named 'filelock._api'\n") == \
        "ModuleNotFoundError: No module named 'filelock._api'"
    assert failure_message("all fine\n") is None


def test_exit_0_without_results_or_without_a_task_is_a_failure(tmp_path):
    tasks = [TaskInfo("convis_location", "pair", "location"), TaskInfo("convis_global", "pair", None)]
    log = tmp_path / "lmms_eval.log"
    log.write_text("ERROR | x - Error during evaluation: boom. Please set `--verbosity=DEBUG` to get more\n")
    with pytest.raises(RunError, match="^lmms-eval: boom$"):
        check_outcome(0, tmp_path, tasks, log)
    log.write_text("")
    with pytest.raises(RunError, match="exited 0 but wrote no results"):
        check_outcome(0, tmp_path, tasks, log)
    (tmp_path / "m").mkdir()
    results = tmp_path / "m" / "x_results.json"
    results.write_text(json.dumps({"results": {"convis_location": {}}}))
    with pytest.raises(RunError, match="no results for convis_global"):
        check_outcome(0, tmp_path, tasks, log)
    with pytest.raises(RunError, match="exited with status 3"):
        check_outcome(3, tmp_path, tasks[:1], log)
    assert check_outcome(0, tmp_path, tasks[:1], log) == results


def test_every_run_gets_a_new_folder(tmp_path):
    now = time.time()
    first, second = new_run_folder(tmp_path, "m/x", now), new_run_folder(tmp_path, "m/x", now)
    assert first != second and first.parent == second.parent == tmp_path
    assert first.name.startswith("m_x_") and second.name == first.name + "_2"


def test_launchers():
    assert launcher_command(1, "accelerate") == [sys.executable, "-m", "lmms_eval"]
    assert launcher_command(2, "accelerate", "--main_process_port 29511") == [
        sys.executable, "-m", "accelerate.commands.launch", "--num_processes", "2", "--multi_gpu",
        "--main_process_port", "29511", "-m", "lmms_eval"]
    assert launcher_command(4, "torchrun") == [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node",
                                               "4", "-m", "lmms_eval"]


def test_under_a_launcher_it_refuses_and_names_the_supported_form(monkeypatch, tmp_path):
    monkeypatch.setenv("LOCAL_RANK", "0")
    with pytest.raises(RunError, match="convis run --num_processes N"):
        convis_run.execute(["--model", "m", "--tasks", "convis", "--output_path", str(tmp_path)])


def test_problem_line_carries_the_fix():
    assert Problem("a is wrong", "do b").line() == "a is wrong (fix: do b)"


# --- plain lmms-eval: the process_docs hook -------------------------------------------------------------------

def test_the_hook_turns_a_plugin_error_into_an_exit_that_tenacity_does_not_retry(tmp_path, monkeypatch):
    from tenacity import retry, stop_after_attempt

    from convis_tasks import hooks
    from convis_tasks.reading.datafolder import DataNotFoundError

    monkeypatch.setenv(DATA_ENV, str(tmp_path / "nowhere"))
    calls = []

    @retry(stop=stop_after_attempt(5))  # what lmms-eval 0.7.3 wraps around process_docs (ConfigurableTask.download)
    def download():
        calls.append(1)
        return hooks.docs_location(None)

    with pytest.raises(SystemExit) as info:
        download()
    assert len(calls) == 1
    assert str(info.value.code) == f"convis: error: docs_location: $CONVIS_DATA_DIR points at {tmp_path / 'nowhere'}, " \
                                   "which has no ConVIS.jsonl"
    assert isinstance(info.value.__cause__, DataNotFoundError)


@needs_lmms_eval
def test_plain_lmms_eval_with_a_wrong_data_folder_exits_1_with_the_plugins_message_last(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "lmms_eval", "--model", "convis_colour_histogram", "--tasks",
                           "convis_retrieval_location", "--include_path", convis_run.task_path(), "--output_path",
                           str(tmp_path / "out")], env=_env(tmp_path, CONVIS_DATA_DIR=str(tmp_path / "nowhere")),
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 1
    assert _last_line(proc.stdout + proc.stderr) == (
        f"convis: error: retrieval_docs_location: $CONVIS_DATA_DIR points at {tmp_path / 'nowhere'}, which has no "
        "ConVIS.jsonl")
    assert "RetryError" not in proc.stdout + proc.stderr


# --- through the real CLI ----------------------------------------------------------------------------------------

def _env(tmp_path, **extra) -> dict:
    env = dict(os.environ, CONVIS_DATA_DIR=str(DEMO_DIR), CONVIS_CACHE_DIR=str(tmp_path / "clips"),
               HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", HF_DATASETS_CACHE=str(tmp_path / "hf_datasets"),
               PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    env.update(extra)
    return env


def _convis(args, env, timeout=900):
    return subprocess.run([sys.executable, "-m", "convis_tasks", *args], env=env, capture_output=True, text=True,
                          timeout=timeout)


def _last_line(text: str) -> str:
    return [line for line in text.splitlines() if line.strip()][-1]


def test_wrong_data_folder_fails_before_anything_runs(tmp_path):
    out = tmp_path / "out"
    proc = _convis(["run", "--model", "convis_colour_histogram", "--tasks", "convis_location", "--output_path",
                    str(out)], _env(tmp_path, CONVIS_DATA_DIR=str(tmp_path / "nowhere")))
    assert proc.returncode == 2
    assert _last_line(proc.stderr).startswith(f"convis: error: $CONVIS_DATA_DIR points at {tmp_path / 'nowhere'}")
    assert "(fix: run `convis data fetch`" in _last_line(proc.stderr)
    assert not out.exists() or not any(out.iterdir())  # no run folder, nothing started


def test_misspelled_task_through_the_cli(tmp_path):
    proc = _convis(["run", "--model", "convis_colour_histogram", "--tasks", "convis_Locaton", "--output_path",
                    str(tmp_path)], _env(tmp_path))
    assert proc.returncode == 2 and "did you mean convis_location" in _last_line(proc.stderr)


@pytest.fixture(scope="module")
def one_run(tmp_path_factory):
    """One ``convis run`` of the weight-free model on the demo set (pair and retrieval task), with a submission."""
    tmp = tmp_path_factory.mktemp("convis_run")
    proc = _convis(["run", "--model", "convis_colour_histogram", "--tasks", "Convis_Location,convis_retrieval_location",
                    "--output_path", str(tmp / "out"), "--batch_size", "1", "--quiet",
                    "--submission", str(tmp / "sub.json"), "--name", "hist", "--size", "0B"], _env(tmp))
    return tmp, proc


@needs_lmms_eval
def test_a_run_prints_its_tables_and_writes_a_submission(one_run):
    tmp, proc = one_run
    assert proc.returncode == 0, proc.stderr[-3000:]
    (folder,) = list((tmp / "out").iterdir())
    results = json.loads(Path(glob.glob(str(folder / "**" / "*_results.json"), recursive=True)[0]).read_text())
    rho = results["results"]["convis_location"]["spearman,none"]
    tau = results["results"]["convis_location"]["kendall,none"]
    assert f"| Location | {rho:.2f} | {tau:.2f} | {len(DEMO_PAIRS)}* | 0 |" in proc.stdout  # *: a small sample
    f1 = results["results"]["convis_retrieval_location"]["f1@1,none"]
    assert re.search(rf"\| Location \| [\d.]+ \| [\d.]+ \| {f1:.1f} \|", proc.stdout)
    assert "INFO" not in proc.stdout and (folder / "lmms_eval.log").is_file()  # --quiet: the log is in the file
    other = f"other data ({len(DEMO_PAIRS)} pairs, differs from the published set: 610 missing, 0 changed, "
    assert f"\nData: {other}{len(DEMO_PAIRS)} extra)" in proc.stdout  # under each table: which data it scored
    assert "\nData: other retrieval sets (4 anchors, differ from the published candidate sets: 133 missing" \
        in proc.stdout
    submission = json.loads((tmp / "sub.json").read_text())
    assert submission["metadata"]["data_identity"]["label"] == f"{other}{len(DEMO_PAIRS)} extra)"
    assert submission["metadata"]["name"] == "hist" and len(submission["pairs"]) == len(DEMO_PAIRS)
    assert len(submission["retrieval"]) == 4 * len(json.loads((DEMO_DIR / "ranked.json").read_text()))


@needs_lmms_eval
def test_a_second_run_into_the_same_output_path_gets_its_own_folder(one_run):
    tmp, first = one_run
    assert first.returncode == 0
    proc = _convis(["run", "--model", "convis_colour_histogram", "--model_args", "bins=2", "--tasks", "convis_location",
                    "--output_path", str(tmp / "out"), "--quiet"], _env(tmp))
    assert proc.returncode == 0, proc.stderr[-3000:]
    folders = sorted((tmp / "out").iterdir())
    assert len(folders) == 2
    assert all(len(glob.glob(str(f / "**" / "*_results.json"), recursive=True)) == 1 for f in folders)


@pytest.mark.slow  # a full convis run (~35 s); the fast tests of test_predict_only.py / test_all_unparsed.py cover the rule
@needs_lmms_eval
def test_a_predict_only_run_prints_and_scores_what_the_full_run_does(one_run):
    """lmms-eval 0.7.3's --predict_only skips process_results; `convis run` adds the records from the documents,
    so the run prints the full run's tables, exits 0, and scores exactly as the full run (#21)."""
    from cli_helpers import convis_in_process

    tmp, full = one_run
    assert full.returncode == 0
    proc = _convis(["run", "--model", "convis_colour_histogram", "--tasks", "Convis_Location,convis_retrieval_location",
                    "--output_path", str(tmp / "predict_only"), "--batch_size", "1", "--quiet", "--predict_only"],
                   _env(tmp))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "convis_location: the ConViS records of 11 --predict_only sample(s) added" in proc.stderr
    assert proc.stdout == full.stdout and "| Location |" in proc.stdout  # the same tables, to the digit
    (folder,) = list((tmp / "predict_only").iterdir())
    full_folder = sorted((tmp / "out").iterdir())[0]
    for command, truth in (("correlate", DEMO_DIR / "ConVIS.jsonl"), ("retrieval", DEMO_DIR / "ranked.json")):
        scored = []
        for run in (full_folder, folder):
            code, out, _ = convis_in_process(command, run, "--ground-truth", truth, "--json")
            assert code == 0
            scored.append(json.loads(out.replace(str(run), "RUN")))
        assert scored[1] == scored[0]
    assert scored[0]["location"]["anchors"] == 4


UNPARSED_PLUGIN = '''
from lmms_eval.api.model import lmms


class Unparsed(lmms):
    def __init__(self, **kwargs):
        super().__init__()

    def generate_until(self, requests):
        return ["I cannot compare these two videos." for _ in requests]

    def generate_until_multi_round(self, requests):
        raise NotImplementedError

    def loglikelihood(self, requests):
        raise NotImplementedError
'''


def _plugin(tmp_path, name: str, cls: str, source: str) -> dict:
    """An lmms-eval model plugin ``name`` (class ``cls``) and the environment that loads it."""
    plugin = tmp_path / "plug" / f"{name}plug"
    (plugin / "models").mkdir(parents=True)
    (plugin / "tasks").mkdir()
    for init in (plugin / "__init__.py", plugin / "tasks" / "__init__.py"):
        init.write_text("")
    (plugin / "models" / "__init__.py").write_text(f"AVAILABLE_MODELS = {{'{name}': '{cls}'}}\n")
    (plugin / "models" / f"{name}.py").write_text(source)
    env = _env(tmp_path, LMMS_EVAL_PLUGINS=f"{name}plug")
    env["PYTHONPATH"] = os.pathsep.join([str(tmp_path / "plug"), env["PYTHONPATH"]])
    return env


@pytest.mark.slow  # a full convis run (~35 s); the fast tests of test_predict_only.py / test_all_unparsed.py cover the rule
@needs_lmms_eval
def test_a_run_whose_answers_are_all_unparsed_says_so_and_exits_1_unless_allowed(tmp_path):
    from cli_helpers import convis_in_process

    env = _plugin(tmp_path, "unparsed_model", "Unparsed", UNPARSED_PLUGIN)
    proc = _convis(["run", "--model", "unparsed_model", "--tasks", "convis_location", "--output_path",
                    str(tmp_path / "out"), "--quiet", "--skip-model-check"], env)
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert f"| Location | - | - | {len(DEMO_PAIRS)}* | {len(DEMO_PAIRS)} (all) |" in proc.stdout
    assert f"Note: Location: all {len(DEMO_PAIRS)} answers unparsed" in proc.stdout
    last = _last_line(proc.stderr)
    assert last.startswith("convis: error: the run in ") and "every answer is unparsed for location:" in last
    assert "--allow-unparsed" in last
    (folder,) = list((tmp_path / "out").iterdir())
    gt = DEMO_DIR / "ConVIS.jsonl"
    code, out, err = convis_in_process("correlate", folder, "--ground-truth", gt, "--json")
    assert code == 1 and json.loads(out)["location"]["all_unparsed"] is True  # the results first, then the error
    assert "every answer is unparsed for location" in err.strip().splitlines()[-1]
    assert convis_in_process("correlate", folder, "--ground-truth", gt, "--allow-unparsed")[0] == 0


BROKEN_PLUGIN = '''
from lmms_eval.api.model import lmms


class Broken(lmms):
    def __init__(self, **kwargs):
        super().__init__()

    def generate_until(self, requests):
        raise RuntimeError("the model broke on its first request")

    def generate_until_multi_round(self, requests):
        raise NotImplementedError

    def loglikelihood(self, requests):
        raise NotImplementedError
'''


@needs_lmms_eval
def test_a_run_that_lmms_eval_ends_with_status_0_is_a_failure_with_its_message_last(tmp_path):
    """lmms-eval 0.7.3 catches the model's exception, logs it and exits 0; ``convis run`` exits 1."""
    env = _plugin(tmp_path, "broken_model", "Broken", BROKEN_PLUGIN)
    cmd = ["--model", "broken_model", "--tasks", "convis_location", "--batch_size", "1"]
    plain = subprocess.run([sys.executable, "-m", "lmms_eval", *cmd, "--include_path", convis_run.task_path(),
                            "--output_path", str(tmp_path / "plain")], env=env, capture_output=True, text=True,
                           timeout=900)
    assert plain.returncode == 0  # the harness's behaviour this guards against; if it changes, so much the better
    proc = _convis(["run", *cmd, "--output_path", str(tmp_path / "out"), "--quiet"], env)
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert _last_line(proc.stderr) == "convis: error: lmms-eval: the model broke on its first request"


@needs_lmms_eval
def test_two_cpu_ranks_through_accelerate_give_the_metrics_of_one(one_run):
    tmp, first = one_run
    assert first.returncode == 0
    out = tmp / "two_ranks"
    proc = _convis(["run", "--model", "convis_colour_histogram", "--tasks", "convis_location,convis_retrieval_location",
                    "--output_path", str(out), "--num_processes", "2", "--launcher_args", "--main_process_port 29517",
                    "--no-tables"], _env(tmp, ACCELERATE_USE_CPU="1"))
    assert proc.returncode == 0, proc.stderr[-3000:] + proc.stdout[-3000:]
    (folder,) = list(out.iterdir())
    log = (folder / "lmms_eval.log").read_text(errors="replace")
    assert "Running on rank 1" in log and "accelerate.commands.launch" in proc.stderr

    def metrics(root):
        results = json.loads(Path(glob.glob(str(root / "**" / "*_results.json"), recursive=True)[0]).read_text())
        return {(t, k): v for t, values in results["results"].items() for k, v in values.items()
                if isinstance(v, (int, float))}

    single = metrics(next(f for f in sorted((tmp / "out").iterdir())))
    assert metrics(folder) and metrics(folder) == single


def test_plain_lmms_eval_names_the_missing_include_path_or_the_right_task_name():
    """lmms-eval 0.7.3 says only "Tasks not found"; the entry point it loads first adds what is wrong."""
    from convis_tasks import task_path
    from convis_tasks.harness.tasks import task_hint

    missing = task_hint(["--model", "m", "--tasks", "convis_location,mme"])
    assert "--include_path " + task_path() in missing and "convis_location" in missing
    assert "did you mean convis_location" in task_hint(["--tasks=convis_locaton", "--include_path", task_path()])
    assert "convis_Location -> convis_location" in task_hint(["--tasks", "convis_Location",
                                                               "--include_path", task_path()])
    assert task_hint(["--tasks", "convis_location", "--include_path", task_path()]) is None
    assert task_hint(["--tasks", "mme"]) is None


def test_plain_lmms_eval_without_include_path_prints_the_hint(tmp_path):
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1")
    proc = subprocess.run([sys.executable, "-m", "lmms_eval", "--model", "convis_colour_histogram", "--tasks",
                           "convis_location", "--output_path", str(tmp_path)], env=env, capture_output=True,
                          text=True, timeout=300)
    assert "convis: note: the ConViS tasks (convis_location) are not in lmms-eval's own task tree: add " \
           "--include_path" in proc.stderr


@pytest.mark.skipif(importlib.util.find_spec("lmms_eval") is None, reason="lmms-eval is not installed")
def test_the_task_hint_speaks_only_in_lmms_evals_own_command_line(monkeypatch, capsys):
    """`convis run` loads the model entry point in its own process (preflight): the hint must not read convis's
    arguments there and advise --include_path, which `convis run` adds itself (#21)."""
    from convis_tasks.model_wrappers import manifests

    monkeypatch.setattr(sys, "argv", ["/usr/bin/convis", "run", "--model", "m", "--tasks", "convis_location"])
    manifests()
    assert "include_path" not in capsys.readouterr().err
    monkeypatch.setattr(sys, "argv", ["/x/site-packages/lmms_eval/__main__.py", "--tasks", "convis_location"])
    manifests()
    assert "add --include_path" in capsys.readouterr().err
