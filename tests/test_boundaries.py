"""Issue #19, classes "Provenance" and "Preflight and doctor": each boundary refuses what it cannot vouch for,
before anything is computed, with the fix; never a traceback. (The parser, endpoint and caption classes have their
own test files.)"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from collections import namedtuple
from pathlib import Path

import pytest

from convis_tasks.errors import InputError
from convis_tasks.reading.jsonio import MAX_DEPTH, strict_loads
from convis_tasks.reading.predictions import PredictionError
from convis_tasks.reading.runs import samples_provenance
from test_report_support import make_run


# --- provenance ---------------------------------------------------------------------------------------------------

def test_a_samples_file_whose_records_carry_different_versions_is_refused_naming_the_line(tmp_path):
    results = make_run(tmp_path / "run", with_retrieval=False)
    samples = next(tmp_path.joinpath("run").glob("*_samples_convis_location.jsonl"))
    assert samples_provenance(str(samples))["python"]  # one environment: read as it is
    lines = samples.read_text().splitlines()
    third = json.loads(lines[2])
    for value in third.values():
        if isinstance(value, dict) and "provenance" in value:
            value["provenance"] = {**value["provenance"], "torch": "9.9.9"}
    lines[2] = json.dumps(third)
    samples.write_text("\n".join(lines) + "\n")
    with pytest.raises(PredictionError, match=r"line 3: the record's package versions .*torch 9\.9\.9"):
        samples_provenance(str(samples))
    from convis_tasks.report.submission import SubmissionError, build_from_run

    with pytest.raises((PredictionError, SubmissionError), match="torch 9.9.9"):
        build_from_run(str(results), {"size": "7B"}, [])


@pytest.mark.parametrize("text", ["[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1),
                                  '{"a": ' * 100_000 + "1" + "}" * 100_000])
def test_deeply_nested_json_is_an_input_error_not_a_recursion_error(text):
    with pytest.raises(InputError, match="nested"):
        strict_loads(text, "sub.json")


def test_a_submission_with_a_duplicate_metadata_key_is_refused(tmp_path):
    from convis_tasks.report.submission import SubmissionError, load_submission

    path = tmp_path / "sub.json"
    path.write_text('{"format": "convis-submission", "metadata": {"name": "a", "name": "b"}, "pairs": []}')
    with pytest.raises(SubmissionError, match="duplicate key 'name'"):
        load_submission(str(path))


# --- preflight and doctor -----------------------------------------------------------------------------------------

def _args(**kw) -> argparse.Namespace:
    base = {"submission": None, "size": "7B", "name": None, "model_args": None}
    return argparse.Namespace(**{**base, **kw})


def test_a_submission_into_a_missing_folder_is_refused_before_the_run(tmp_path):
    from convis_tasks.harness.preflight import submission_problems

    assert submission_problems(_args(submission=str(tmp_path / "sub.json"))) == []
    problems = submission_problems(_args(submission=str(tmp_path / "nowhere" / "sub.json")))
    assert len(problems) == 1 and str(tmp_path / "nowhere") in problems[0].what and "does not exist" in problems[0].what


def test_a_non_numeric_worker_count_is_refused_before_the_run(monkeypatch):
    from convis_tasks.harness.preflight import environment_problems

    monkeypatch.setenv("CONVIS_PREFETCH_WORKERS", "many")
    (problem,) = environment_problems()
    assert "CONVIS_PREFETCH_WORKERS" in problem.what and "'many'" in problem.what and problem.fix
    monkeypatch.setenv("CONVIS_PREFETCH_WORKERS", "2")
    assert environment_problems() == []


def test_the_doctor_fails_a_clip_cache_that_cannot_hold_one_clip(tmp_path, monkeypatch):
    from convis_tasks.harness import doctor

    monkeypatch.setenv("CONVIS_CACHE_DIR", str(tmp_path / "clips"))
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(doctor.shutil, "disk_usage", lambda p: usage(10**9, 10**9 - 1024, 1024))
    check = doctor.check_cache()
    assert check.blocks and "less than one pair clip" in check.detail and check.fix
    monkeypatch.setattr(doctor.shutil, "disk_usage", lambda p: usage(10**12, 0, 10**12))
    assert doctor.check_cache().status == doctor.OK


@pytest.mark.skipif(not __import__("importlib").util.find_spec("lmms_eval"), reason="lmms-eval is not installed")
def test_convis_run_reports_a_broken_video_decoder_as_a_problem_with_its_fix(tmp_path):
    """PyAV that fails to import: `convis run` lists the problem and exits 2 before any model loads (it ended in an
    internal error, exit 3, when the header probe imported it)."""
    fake = tmp_path / "fake"
    (fake / "av").mkdir(parents=True)
    (fake / "av" / "__init__.py").write_text("raise ImportError('libavcodec.so.61: cannot open shared object file')\n")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(fake), *sys.path]),
               CONVIS_DATA_DIR=str(Path(__file__).resolve().parents[1] / "convis_tasks" / "demo_data"),
               CONVIS_CACHE_DIR=str(tmp_path / "clips"), HF_HUB_OFFLINE="1")
    proc = subprocess.run([sys.executable, "-m", "convis_tasks", "run", "--model", "convis_colour_histogram",
                           "--tasks", "convis_location", "--output_path", str(tmp_path / "out"),
                           "--skip-model-check"], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 2, proc.stderr[-2000:]
    last = proc.stderr.strip().splitlines()[-1]
    assert "PyAV" in last and "fix: pip install av" in last and "internal error" not in proc.stderr
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


@pytest.mark.skipif(not __import__("importlib").util.find_spec("lmms_eval"), reason="lmms-eval is not installed")
def test_an_unparsable_launcher_option_is_a_usage_error_before_the_run(tmp_path):
    from convis_tasks.errors import RunError
    from convis_tasks.harness.run import execute

    with pytest.raises(RunError, match="--launcher_args .* is not a valid option string"):
        execute(["--model", "convis_colour_histogram", "--tasks", "convis_location", "--output_path",
                 str(tmp_path / "out"), "--launcher_args", "--main_process_port '29511"])
    assert not (tmp_path / "out").exists()


def test_model_paths_that_do_not_exist_are_refused_before_the_model_loads(tmp_path):
    from convis_tasks.harness.preflight import model_path_problems

    (tmp_path / "ckpt").mkdir()
    assert model_path_problems(f"pretrained={tmp_path / 'ckpt'},max_frames_num=16") == []
    assert model_path_problems("pretrained=lmms-lab/llava-onevision-qwen2-7b-ov") == []  # a hub id
    (problem,) = model_path_problems(f"pretrained={tmp_path / 'nowhere'}")
    assert f"pretrained={tmp_path / 'nowhere'}" in problem.what and "no such file or folder" in problem.what
    (problem,) = model_path_problems("captions=relative/missing_captions")
    assert "captions=relative/missing_captions" in problem.what
