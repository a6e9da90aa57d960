"""``convis doctor`` on broken environments: each problem line, its fix, and the exit status.

Broken packages are simulated by fake packages placed first on PYTHONPATH of a child ``python -m convis_tasks doctor``.
"""

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from convis_tasks.harness.doctor import FAIL, OK, Check, check_cache, check_data, format_checks
from convis_tasks.reading.datafolder import DATA_ENV, DEMO_DIR

REPO = Path(__file__).resolve().parent.parent


def _doctor(tmp_path, *args, fake: Path | None = None, **env_extra):
    path = [str(fake)] if fake else []
    env = dict(os.environ, CONVIS_DATA_DIR=str(DEMO_DIR), CONVIS_CACHE_DIR=str(tmp_path / "clips"),
               PYTHONPATH=os.pathsep.join([*path, str(REPO), os.environ.get("PYTHONPATH", "")]))
    env.update(env_extra)
    return subprocess.run([sys.executable, "-m", "convis_tasks", "doctor", *args], env=env, capture_output=True,
                          text=True, timeout=900)


def _line_and_fix(output: str, name: str) -> tuple[str, str]:
    lines = output.splitlines()
    for i, line in enumerate(lines):
        if line.split()[1:2] == [name] or line[6:].startswith(name + " "):
            following = lines[i + 1].strip() if i + 1 < len(lines) else ""
            return line, following
    raise AssertionError(f"no {name!r} line in:\n{output}")


def test_filelock_without_its_api_module_and_a_missing_data_folder_block_a_run(tmp_path):
    fake = tmp_path / "fake"
    (fake / "filelock").mkdir(parents=True)
    (fake / "filelock" / "__init__.py").write_text(
        "__version__ = '4.3.1'\n\n\nclass FileLock:\n    def __init__(self, *a, **k):\n        pass\n\n\n"
        "class BaseFileLock(FileLock):\n    pass\n\n\nclass SoftFileLock(FileLock):\n    pass\n\n\n"
        "UnixFileLock = Timeout = FileLock\n")
    proc = _doctor(tmp_path, fake=fake, CONVIS_DATA_DIR=str(tmp_path / "no_data"))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    line, fix = _line_and_fix(proc.stdout, "filelock")
    assert line.startswith("FAIL") and "4.3.1: has no filelock._api, which lmms-eval 0.7.3 imports" in line
    assert fix == "fix: pip install 'filelock<4.3'"
    line, fix = _line_and_fix(proc.stdout, "data")
    assert line.startswith("FAIL") and f"{tmp_path / 'no_data'}, which has no ConVIS.jsonl" in line
    assert fix.startswith("fix: run `convis data fetch` (downloads bliberatori/ConViS-Bench")
    assert proc.stdout.splitlines()[-1].startswith("convis doctor: 2 problem(s) block a run: filelock, data")


def test_transformers_5_breaks_llava_and_the_real_import_error_is_shown(tmp_path):
    fake = tmp_path / "fake"
    (fake / "transformers").mkdir(parents=True)
    (fake / "transformers" / "__init__.py").write_text("__version__ = '5.0.0'\n")
    proc = _doctor(tmp_path, "--model", "llava_onevision", fake=fake)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    line, fix = _line_and_fix(proc.stdout, "transformers")
    assert line.startswith("warn") and "5.0.0: LLaVA-NeXT's llava imports only with transformers < 4.56" in line
    assert fix == "fix: pip install 'transformers<4.56' (the version this project locks is 4.55.4)"
    if importlib.util.find_spec("llava") is not None:
        line, fix = _line_and_fix(proc.stdout, "llava")
        assert line.startswith("FAIL") and "does not import: llava_llama: cannot import name" in line
        assert "from 'transformers'" in line  # the real error, not "Failed to import ..." nor a NameError later
        assert "transformers<4.56" in fix
    assert "llava" in proc.stdout.splitlines()[-1]


def test_this_environment_with_the_demo_data_has_nothing_blocking(tmp_path):
    proc = _doctor(tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for name in ("python", "torch", "lmms-eval", "filelock", "data", "videos", "clip"):
        assert _line_and_fix(proc.stdout, name)[0].startswith(("ok", "info", "warn"))
    rows = [json.loads(line) for line in (DEMO_DIR / "ConVIS.jsonl").read_text().splitlines() if line.strip()]
    videos = {r[k] for r in rows for k in ("video1", "video2")}
    assert f"{len(rows)} pairs, {len(videos)} videos" in _line_and_fix(proc.stdout, "data")[0]
    line = _line_and_fix(proc.stdout, "videos")[0]
    assert line.startswith("ok") and line.endswith(f"all {len(videos)} found")
    assert proc.stdout.splitlines()[-1].startswith("convis doctor: nothing blocks a run")


def test_missing_videos_are_counted_and_named(tmp_path, monkeypatch):
    data = tmp_path / "data"
    shutil.copytree(DEMO_DIR, data)
    videos = sorted(p.name for p in (data / "videos").iterdir())
    (data / "videos" / videos[0]).unlink()
    monkeypatch.setenv(DATA_ENV, str(data))
    checks = {c.name: c for c in check_data()}
    assert checks["data"].status == OK
    assert checks["videos"].status == FAIL
    assert checks["videos"].detail.startswith(f"1 of {len(videos)} missing under {data}: videos/{videos[0]}")
    assert DATA_ENV in checks["videos"].fix


def test_an_unwritable_clip_cache_blocks_a_run(tmp_path, monkeypatch):
    (tmp_path / "a_file").write_text("")
    monkeypatch.setenv("CONVIS_CACHE_DIR", str(tmp_path / "a_file" / "clips"))
    check = check_cache()
    assert check.status == FAIL and "is not writable" in check.detail and "CONVIS_CACHE_DIR" in check.fix
    monkeypatch.setenv("CONVIS_CACHE_DIR", str(tmp_path / "clips"))
    check = check_cache()
    assert check.status == OK and "GiB free" in check.detail


def test_format_puts_each_fix_under_its_problem_and_the_verdict_last():
    text = format_checks([Check("a", OK, "fine"), Check("bb", FAIL, "broken", "do x"), Check("c", "warn", "meh", "y")])
    assert text.splitlines() == ["ok    a   fine", "FAIL  bb  broken", "          fix: do x", "warn  c   meh",
                                 "          fix: y", "convis doctor: 1 problem(s) block a run: bb"]


@pytest.mark.parametrize("model,fragment", [("llava_onevison", "did you mean llava_onevision"),
                                            ("no_such_model_xyz", "lmms-eval has no model named 'no_such_model_xyz'")])
def test_unknown_model_names(model, fragment):
    pytest.importorskip("lmms_eval")
    from convis_tasks.harness.doctor import model_checks

    (check,) = model_checks(model, import_module=False)
    assert check.status == FAIL and fragment in check.detail


def test_pyav_missing_blocks_a_run_even_with_decord(monkeypatch):
    import convis_tasks.harness.doctor as D

    real = D._module_version

    def version(name):
        if name == "av":
            raise ImportError("No module named 'av'")
        return real(name)

    monkeypatch.setattr(D, "_module_version", version)
    verdict = {c.name: c for c in D.check_decoders()}["video decoder"]
    assert verdict.status == FAIL and verdict.fix == "pip install av"


HUB_STATEMENTS = """
import socket
s = socket.socket(); s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]; s.close()  # nothing listens there
from huggingface_hub.utils import http_backoff
try:
    http_backoff("HEAD", f"http://127.0.0.1:{port}/m/resolve/main/config.json", max_retries=2, base_wait_time=0.5,
                 max_wait_time=0.5)
except Exception:
    pass
"""


def test_an_import_that_retries_the_hub_is_timed_flagged_and_timed_again_offline(monkeypatch):
    """What lmms-eval's llava_onevision does on a machine without hub access (~45 s of retries): here a module-level
    hub request to a closed port on 127.0.0.1, retried twice by huggingface_hub, 0.5 s apart."""
    import convis_tasks.harness.doctor as D

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    outcome = D.run_import_child(HUB_STATEMENTS)
    assert outcome.error is None and outcome.seconds >= 1.0
    assert len(outcome.hub_retries) == 3  # the first try and two retries, each logged before waiting
    assert outcome.hub_retries[0].startswith("HEAD http://127.0.0.1:") and "/m/resolve/main/config.json" in \
        outcome.hub_retries[0]
    check = D.hub_retry_check("model m", HUB_STATEMENTS, outcome)
    assert check.status == D.WARN and check.name == "hub access"
    assert "retrying the Hugging Face hub 3 time(s)" in check.detail and "export HF_HUB_OFFLINE=1" in check.fix
    offline = float(check.detail.rsplit("with HF_HUB_OFFLINE=1 it takes ", 1)[1].split(" s")[0])
    assert offline < outcome.seconds  # measured again: offline mode refuses the request at once, no retries
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert D.run_import_child(HUB_STATEMENTS).hub_retries == ()
    assert D.hub_retry_check("model m", "pass", D.ChildImport(None, 0.1)) is None


def test_a_llava_model_without_a_working_llava_is_not_reported_as_importing(monkeypatch):
    """lmms-eval's llava_onevision module imports without LLaVA-NeXT (it only warns); the model check must not then
    say "ok ... imports" beside "FAIL llava not installed"."""
    pytest.importorskip("lmms_eval")
    import convis_tasks.harness.doctor as D

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # no hub retries on import (see the test above)
    missing = D.Check("llava (LLaVA-NeXT)", D.FAIL, "not installed (needed only for llava_onevision)", D.LLAVA_INSTALL)
    monkeypatch.setattr(D, "check_llava", lambda required=False: missing)
    checks = {c.name: c for c in D.model_checks("llava_onevision")}
    model = checks["model llava_onevision"]
    assert model.status == D.FAIL and "cannot load a model: LLaVA-NeXT's llava not installed" in model.detail
    assert model.fix == D.LLAVA_INSTALL and checks["llava (LLaVA-NeXT)"] is missing
    lines = D.format_checks(list(checks.values())).splitlines()
    assert not [line for line in lines if line.startswith("ok") and "llava" in line.lower()]
