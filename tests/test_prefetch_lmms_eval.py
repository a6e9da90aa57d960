"""Prefetching changes no clip and no metric: the real lmms-eval CLI on the bundled set, 1 rank without
workers, 1 rank with workers, 2 ranks (torchrun + gloo on CPU) with workers, each on its own fresh cache."""

import glob
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from convis_tasks import task_path
from convis_tasks.reading.datafolder import DEMO_DIR

pytestmark = pytest.mark.skipif(importlib.util.find_spec("lmms_eval") is None,
                                reason="lmms-eval is not installed (pip install -e '.[harness]')")

RUNS = {  # name: (launcher, workers)
    "one_rank_no_workers": ((sys.executable, "-m"), "0"),
    "one_rank_2_workers": ((sys.executable, "-m"), "2"),
    "two_ranks_2_workers": ((sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "-m"), "2"),
}


def _start(out: Path, launcher, workers: str) -> subprocess.Popen:
    env = dict(os.environ, CONVIS_DATA_DIR=str(DEMO_DIR), CONVIS_CACHE_DIR=str(out / "clips"), HF_HUB_OFFLINE="1",
               HF_DATASETS_OFFLINE="1", HF_DATASETS_CACHE=str(out / "hf_datasets"), ACCELERATE_USE_CPU="1",
               CONVIS_PREFETCH_WORKERS=workers)
    cmd = [*launcher, "lmms_eval", "--model", "convis_colour_histogram", "--tasks", "convis,convis_retrieval",
           "--include_path", task_path(), "--batch_size", "1", "--output_path", str(out / "run")]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    outs = {name: tmp_path_factory.mktemp(name) for name in RUNS}
    procs = {name: _start(outs[name], *RUNS[name]) for name in RUNS}
    done = {}
    for name, proc in procs.items():
        log, _ = proc.communicate(timeout=900)
        assert proc.returncode == 0, f"{name}:\n{log[-3000:]}"
        results = json.loads(open(glob.glob(str(outs[name] / "run" / "**" / "*_results.json"),
                                            recursive=True)[0]).read())
        metrics = {(task, key): value for task, values in results["results"].items()
                   for key, value in values.items() if isinstance(value, (int, float))}
        clips = {Path(p).name: Path(p).read_bytes() for p in glob.glob(str(outs[name] / "clips" / "*"))}
        done[name] = (metrics, clips, log)
    return done


def test_metrics_are_identical_with_and_without_workers_on_one_and_two_ranks(runs):
    base = runs["one_rank_no_workers"][0]
    assert base and ("convis_location", "spearman,none") in base
    for name in RUNS:
        assert runs[name][0] == base, name


def test_clips_are_byte_identical_and_no_temporary_file_is_left(runs):
    base = runs["one_rank_no_workers"][1]
    assert base and sum(n.endswith(".mp4") for n in base) == sum(n.endswith(".json") for n in base)
    for name in RUNS:
        assert runs[name][1] == base, name
        assert not any(n.startswith(".") for n in runs[name][1]), name
