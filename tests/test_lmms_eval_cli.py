"""End to end through the real `lmms-eval` CLI on the bundled synthetic set (CPU, offline, no weights)."""

import glob
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from importlib.metadata import entry_points

import numpy as np
import pytest
from scipy.stats import kendalltau, spearmanr

from convis_tasks import task_path
from convis_tasks.scoring.evaluate import run_correlate, run_retrieval
from convis_tasks.reading.datafolder import DEMO_DIR
from convis_tasks.prompting import render_prompt
from convis_tasks.video.decode import count_frames, read_frames

pytestmark = pytest.mark.skipif(importlib.util.find_spec("lmms_eval") is None,
                                reason="lmms-eval is not installed (pip install -e '.[harness]')")

CONCEPTS = {"main_action": ("MainAction", "Main Action"), "main_subjects": ("MainSubjects", "Main Subjects"),
            "main_objects": ("MainObjects", "Main Objects"), "location": ("Location", "Location"),
            "order_of_actions": ("OrderOfActions", "Order Of Actions")}
FRAMES = 8


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("lmms_eval_out")
    env = dict(os.environ, CONVIS_DATA_DIR=str(DEMO_DIR), CONVIS_CACHE_DIR=str(out / "clips"),
               HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", HF_DATASETS_CACHE=str(out / "hf_datasets"))
    cmd = [sys.executable, "-m", "lmms_eval", "--model", "convis_colour_histogram", "--tasks", "convis,convis_global,convis_retrieval",
           "--include_path", task_path(), "--batch_size", "1", "--log_samples", "--output_path", str(out / "run")]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    results = json.loads(open(glob.glob(str(out / "run" / "**" / "*_results.json"), recursive=True)[0]).read())
    samples = {}
    for path in glob.glob(str(out / "run" / "**" / "*_samples_*.jsonl"), recursive=True):
        task = re.search(r"_samples_(.+)\.jsonl$", path).group(1)
        samples[task] = [json.loads(line) for line in open(path)]
    return out, results, samples


def _truth():
    return [json.loads(line) for line in (DEMO_DIR / "ConVIS.jsonl").read_text().splitlines() if line.strip()]


def test_model_is_registered_through_the_entry_point_group():
    names = {ep.name for ep in entry_points(group="lmms_eval.models")}
    assert "convis" in names


def test_every_concept_task_reports_scipy_correlations_of_the_logged_answers(run):
    _, results, samples = run
    truth = {(r["video1"], r["video2"]): r for r in _truth()}
    for concept, (gt_key, prompt_name) in CONCEPTS.items():
        task = f"convis_{concept}"
        logged = samples[task]
        assert len(logged) == len(truth)
        x, y = [], []
        for s in logged:
            record = s["spearman"]
            x.append(float(re.fullmatch(r"Score: (\d\.\d\d)", s["filtered_resps"]).group(1)))
            y.append(truth[(record["video1"], record["video2"])][gt_key])
            assert s["input"] == render_prompt("benchmark", prompt_name)
        metrics = results["results"][task]
        assert metrics["n,none"] == len(truth) and metrics["unparsed,none"] == 0
        assert metrics["spearman,none"] == pytest.approx(100 * spearmanr(x, y).statistic, abs=1e-9)
        assert metrics["kendall,none"] == pytest.approx(100 * kendalltau(x, y).statistic, abs=1e-9)
    group = results["results"]["convis"]
    assert group["spearman,none"] == pytest.approx(
        np.mean([results["results"][f"convis_{c}"]["spearman,none"] for c in CONCEPTS]), abs=1e-9)


def test_global_task_is_correlated_with_every_concept(run):
    _, results, samples = run
    metrics = results["results"]["convis_global"]
    for concept in CONCEPTS:
        assert np.isfinite(metrics[f"spearman_{concept},none"])
    assert samples["convis_global"][0]["input"] == render_prompt("global")


def test_scoring_cli_on_the_logged_samples_agrees_with_the_harness(run):
    out, results, _ = run
    scored = run_correlate(str(out / "run"), str(DEMO_DIR / "ConVIS.jsonl"))
    for concept in CONCEPTS:
        assert scored[concept]["spearman"] == pytest.approx(results["results"][f"convis_{concept}"]["spearman,none"],
                                                            abs=1e-12)


def test_retrieval_tasks_score_each_anchor_from_its_four_requests(run):
    out, results, samples = run
    rankings = json.loads((DEMO_DIR / "ranked.json").read_text())
    for concept, (gt_key, _) in CONCEPTS.items():
        if concept == "order_of_actions":
            continue
        task = f"convis_retrieval_{concept}"
        logged = samples[task]
        assert len(logged) == 4 * len(rankings)  # one request per (anchor, candidate)
        scores = {}
        for s in logged:
            record = s["r@1"]
            scores.setdefault(record["anchor"], {})[record["candidate"]] = float(
                re.fullmatch(r"Score: (\d\.\d\d)", s["filtered_resps"]).group(1))
        # R@1 and P@1 of the top, derived directly from the definitions
        recalls, precisions = [], []
        for entry in rankings:
            human, model = entry[gt_key], scores[entry["anchor"]]
            relevant = {c for c, r in human.items() if r == min(human.values())}
            predicted = {c for c, v in model.items() if v == max(model.values())}
            recalls.append(len(relevant & predicted) / len(relevant))
            precisions.append(len(relevant & predicted) / len(predicted))
        metrics = results["results"][task]
        assert metrics["anchors,none"] == len(rankings) and metrics["excluded,none"] == 0
        assert metrics["r@1,none"] == pytest.approx(100 * np.mean(recalls), abs=1e-9)
        assert metrics["p@1,none"] == pytest.approx(100 * np.mean(precisions), abs=1e-9)
        assert metrics["random_r@1,none"] == pytest.approx(25.0)
    scored = run_retrieval(str(out / "run"), str(DEMO_DIR / "ranked.json"))
    assert scored["location"]["f1@1"] == pytest.approx(results["results"]["convis_retrieval_location"]["f1@1,none"])


def test_the_model_saw_n_frames_of_video_1_then_n_of_video_2(run):
    out, _, _ = run
    clips = sorted(glob.glob(str(out / "clips" / "*.mp4")))
    retrieval_pairs = {(e["anchor"], c) for e in json.loads((DEMO_DIR / "ranked.json").read_text()) for c in e["Location"]}
    pair_pairs = {(r["video1"].split("/")[-1], r["video2"].split("/")[-1]) for r in _truth()}
    # one clip per distinct pair, shared by the five concepts, the global task and the retrieval tasks
    assert len(clips) == len(pair_pairs | retrieval_pairs)
    # the pair whose two videos differ most, so that a swapped or mixed order could not pass
    def frames_of(row):
        return (read_frames(DEMO_DIR / row["video1"], FRAMES).astype(int),
                read_frames(DEMO_DIR / row["video2"], FRAMES).astype(int))

    v1, v2 = max((frames_of(r) for r in _truth()), key=lambda f: np.abs(f[0] - f[1]).mean())
    assert np.abs(v1 - v2).mean() > 10
    for clip in clips:
        assert count_frames(clip) == 2 * FRAMES
        frames = read_frames(clip, 2 * FRAMES).astype(int)
        if np.abs(frames[:FRAMES] - v1).mean() < 3 and np.abs(frames[FRAMES:] - v2).mean() < 3:
            return
    pytest.fail("no cached clip holds the first pair's frames in order (video 1 then video 2)")


def test_a_user_defined_concept_task_loads_through_lmms_eval(tmp_path, monkeypatch):
    from lmms_eval.tasks import TaskManager, get_task_dict

    (tmp_path / "convis_point_of_view.yaml").write_text(
        "task: convis_point_of_view\n"
        f"include: {task_path()}/_template_yaml\n"
        "process_docs: !function convis_tasks.hooks.docs_location\n"
        "lmms_eval_specific_kwargs:\n"
        "  default: {concept_name: point of view, frames_per_video: 4, prompt: benchmark, input: concat}\n")
    monkeypatch.setenv("CONVIS_DATA_DIR", str(DEMO_DIR))
    monkeypatch.setenv("CONVIS_CACHE_DIR", str(tmp_path / "clips"))
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "hf"))
    manager = TaskManager(include_path=str(tmp_path), include_defaults=False)
    task = get_task_dict(["convis_point_of_view"], manager)["convis_point_of_view"]
    docs = task.test_docs()
    assert len(docs) == len(_truth())
    assert task.doc_to_text(docs[0]) == render_prompt("benchmark", "point of view")
    (clip,) = task.doc_to_visual(docs[0])
    assert count_frames(clip) == 2 * 4


def _metrics(results: dict) -> dict:
    return {(task, key): value for task, values in results["results"].items() for key, value in values.items()
            if isinstance(value, (int, float))}


def _lmms_eval(out, model_args, *extra, model="convis_colour_histogram", launcher=(sys.executable, "-m"), **env_extra):
    env = dict(os.environ, CONVIS_DATA_DIR=str(DEMO_DIR), CONVIS_CACHE_DIR=str(out / "clips"), HF_HUB_OFFLINE="1",
               HF_DATASETS_OFFLINE="1", HF_DATASETS_CACHE=str(out / "hf_datasets"), ACCELERATE_USE_CPU="1",
               **env_extra)
    cmd = [*launcher, "lmms_eval", "--model", model, "--tasks", "convis,convis_global,convis_retrieval",
           "--include_path", task_path(), "--batch_size", "1", "--log_samples", "--output_path", str(out / "run")]
    if model_args:
        cmd += ["--model_args", model_args]
    return subprocess.Popen(cmd + list(extra), env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _results_of(out) -> dict:
    return json.loads(open(glob.glob(str(out / "run" / "**" / "*_results.json"), recursive=True)[0]).read())


def _accelerate_launch() -> tuple[str, ...]:
    """The `accelerate` console script exactly as users type it (README: several processes), 2 CPU processes."""
    script = shutil.which("accelerate", path=os.path.dirname(sys.executable)) or shutil.which("accelerate")
    if script is None:
        pytest.skip("the accelerate console script is not installed")
    # --multi_gpu with ACCELERATE_USE_CPU=1 starts 2 gloo ranks on CPU; `--cpu --num_processes 2` starts only one.
    return (script, "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1", "--mixed_precision", "no",
            "--dynamo_backend", "no", "-m")


@pytest.mark.parametrize("launcher", ["torchrun", "accelerate"])
def test_two_processes_give_exactly_the_metrics_of_one(run, tmp_path, launcher):
    """2 gloo ranks on CPU through the real CLI; ranks race to build the same clips in a fresh cache."""
    argv = ((sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "-m") if launcher == "torchrun"
            else _accelerate_launch())
    # an empty accelerate config folder, so a user's default_config.yaml cannot change what is launched
    proc = _lmms_eval(tmp_path, None, launcher=argv, HF_HOME=str(tmp_path / "hf_home"))
    log, _ = proc.communicate(timeout=600)
    assert proc.returncode == 0, log[-3000:]
    assert "Running on rank 1" in log and "Running on rank 0" in log
    single, double = _metrics(run[1]), _metrics(_results_of(tmp_path))
    assert double and double == single


def test_an_interrupted_run_resumes_without_recomputing_and_ends_identical(run, tmp_path):
    journal = tmp_path / "journal"
    args = f"inner=convis_colour_histogram,journal={journal}"
    first = _lmms_eval(tmp_path, args, model="convis_resumable")
    import time

    deadline = time.time() + 300
    while time.time() < deadline and first.poll() is None:
        lines = sum(len(p.read_text().splitlines()) for p in journal.glob("*.jsonl")) if journal.exists() else 0
        if lines >= 10:
            break
        time.sleep(0.1)
    first.kill()  # SIGKILL: no clean-up, possibly a torn last line
    first.communicate()
    done_before = {json.loads(line)["key"] for p in journal.glob("*.jsonl") for line in p.read_text().splitlines()
                   if line.strip().endswith("}")}
    assert 10 <= len(done_before) < 119, "the run was not interrupted midway"

    second = _lmms_eval(tmp_path, args, model="convis_resumable")
    log, _ = second.communicate(timeout=600)
    assert second.returncode == 0, log[-3000:]
    assert f"{len(done_before)} answers from" in log
    keys = [json.loads(line)["key"] for p in journal.glob("*.jsonl") for line in p.read_text().splitlines()
            if line.strip().endswith("}")]
    assert len(keys) == len(set(keys))  # nothing answered twice
    assert _metrics(_results_of(tmp_path)) == _metrics(run[1])
