"""``convis demo``: quiet, checked, tidy, and reusable with another model in the same --output folder."""

import glob
import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from convis_tasks.harness.demo import DEMO_MODEL, DEMO_TASKS, demo_command

REPO = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.skipif(importlib.util.find_spec("lmms_eval") is None,
                                reason="lmms-eval is not installed (pip install -e '.[harness]')")


def _demo(tmp_path, *args, **env_extra):
    env = dict(os.environ, TMPDIR=str(tmp_path / "tmp"), HF_DATASETS_CACHE=str(tmp_path / "hf_datasets"),
               PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    env.pop("CONVIS_DATA_DIR", None)
    env.pop("CONVIS_CACHE_DIR", None)
    env.update(env_extra)
    (tmp_path / "tmp").mkdir(exist_ok=True)
    return subprocess.run([sys.executable, "-m", "convis_tasks", "demo", *args], env=env, capture_output=True,
                          text=True, timeout=900)


def _results(folder: Path) -> dict:
    (path,) = glob.glob(str(folder / "**" / "*_results.json"), recursive=True)
    return json.loads(Path(path).read_text())["results"]


def test_demo_command_is_the_plain_lmms_eval_form():
    cmd = demo_command("/o", limit=2)
    assert cmd[:3] == [sys.executable, "-m", "lmms_eval"] and cmd[cmd.index("--model") + 1] == DEMO_MODEL
    assert cmd[cmd.index("--tasks") + 1] == DEMO_TASKS and cmd[-2:] == ["--limit", "2"]


def test_default_demo_prints_only_progress_and_tables_and_leaves_no_temporary_folder(tmp_path):
    proc = _demo(tmp_path, "--model", "convis_colour_histogram")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert not list((tmp_path / "tmp").glob("convis-demo-*"))  # removed after the run
    assert "removed the temporary folder" in proc.stderr
    assert "| INFO" not in proc.stdout + proc.stderr and "Traceback" not in proc.stderr  # no harness log
    rows = re.findall(r"^\| (Main Action|Main Subjects|Main Objects|Location|Order of Actions) \| (\S+) \| (\S+) \|",
                      proc.stdout.split("Concept-conditioned retrieval")[0], re.M)
    assert len(rows) == 5
    for _, rho, tau in rows:  # rho and tau with the same precision
        assert re.fullmatch(r"-?\d+\.\d\d", rho) and re.fullmatch(r"-?\d+\.\d\d", tau)
    assert "random choice" in proc.stdout


@pytest.mark.slow  # two demo runs (~70 s)
def test_output_folder_reused_with_another_model_keeps_each_run_apart(tmp_path):
    out = tmp_path / "out"
    first = _demo(tmp_path, "--model", "convis_colour_histogram", "--output", str(out))
    assert first.returncode == 0, first.stderr[-3000:]
    second = _demo(tmp_path, "--model", "convis_colour_histogram", "--model-args", "bins=2", "--output", str(out))
    assert second.returncode == 0, second.stderr[-3000:]
    runs = sorted(p for p in out.iterdir() if p.name.startswith("convis_colour_histogram_"))
    assert len(runs) == 2 and (out / "clip_cache").is_dir()
    for run, proc in zip(runs, (first, second)):
        log = run / "lmms_eval.log"
        assert log.is_file() and str(log) in proc.stderr  # the harness log is in a file the demo names
        rho = _results(run)["convis_location"]["spearman,none"]
        assert re.search(rf"^\| Location \| {rho:.2f} \|", proc.stdout, re.M)
    answers = []
    for run in runs:  # the two runs answered differently: merged, they would conflict
        (samples,) = glob.glob(str(run / "**" / "*_samples_convis_location.jsonl"), recursive=True)
        answers.append(sorted((json.loads(line)["doc_id"], json.loads(line)["filtered_resps"])
                              for line in Path(samples).read_text().splitlines()))
    assert answers[0] != answers[1]


def test_a_failing_demo_exits_non_zero_with_the_message_last_and_cleans_up(tmp_path):
    proc = _demo(tmp_path, "--model", "convis_colour_histogram", CONVIS_DATA_DIR=str(tmp_path / "nowhere"))
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1].startswith(
        f"convis: error: $CONVIS_DATA_DIR points at {tmp_path / 'nowhere'}")
    assert not list((tmp_path / "tmp").glob("convis-demo-*"))
