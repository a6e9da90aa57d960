"""Shared fixtures: the benchmark authors' released files in ../shared/reference, when present."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
REFERENCE = Path(os.environ.get("CONVIS_REFERENCE_DIR", REPO.parent / "shared" / "reference"))


@pytest.fixture(scope="session")
def reference() -> Path:
    """The authors' release (../shared/reference); tests using it skip with a clear message when it is absent."""
    if not (REFERENCE / "vicos.user_inputs.json").is_file():
        pytest.skip(f"the authors' released files are not at {REFERENCE} (set CONVIS_REFERENCE_DIR to run these)")
    return REFERENCE


@pytest.fixture(scope="session")
def qwen_dir(tmp_path_factory):
    """A tiny random Qwen2.5-VL checkpoint built offline (tests/tiny_models.py), shared by the harness tests."""
    from tiny_models import build_qwen2_5_vl

    return build_qwen2_5_vl(tmp_path_factory.mktemp("tiny_qwen2_5_vl"))


@pytest.fixture(scope="session")
def llava_dir(tmp_path_factory):
    """A tiny random LLaVA-OneVision (HF format) checkpoint built offline, shared by the harness tests."""
    from tiny_models import build_llava_onevision

    return build_llava_onevision(tmp_path_factory.mktemp("tiny_llava_onevision"))


@pytest.fixture(scope="session")
def llava_next(tmp_path_factory):
    """A tiny random LLaVA-NeXT ``llava_qwen`` checkpoint and the Hugging Face hub cache holding its SigLIP tower
    under the real id (tests/tiny_models.py): ``(checkpoint folder, hub cache)``. Skips, saying why, when LLaVA-NeXT's
    ``llava`` package does not import; fails instead when ``CONVIS_REQUIRE_LLAVA=1`` (CI, once it has installed it)."""
    import contextlib
    import importlib.util
    import io

    skip = pytest.fail if os.environ.get("CONVIS_REQUIRE_LLAVA") == "1" else pytest.skip
    if importlib.util.find_spec("llava") is None:
        skip("LLaVA-NeXT's `llava` package is not installed (pip install --no-deps "
             "../shared/vendor/llava-next-df17966.tar.gz, or the git line in docs/models.md)")
    printed = io.StringIO()  # llava/model/__init__.py prints the real import errors and raises a later one
    try:
        with contextlib.redirect_stdout(printed):
            import llava.model.language_model.llava_qwen  # noqa: F401
    except Exception as exc:  # ImportError, or what it raises under a transformers it does not support
        from importlib.metadata import version

        skip(f"LLaVA-NeXT's `llava` package is installed but does not import with transformers "
             f"{version('transformers')} (docs/models.md: <4.56): {type(exc).__name__}: {exc} "
             f"{' '.join(printed.getvalue().split())[:600]}")
    from tiny_models import build_llava_next_qwen, build_siglip_in_hub_cache

    root = tmp_path_factory.mktemp("llava_next")
    siglip = build_siglip_in_hub_cache(root / "hub")
    return build_llava_next_qwen(root / "tiny-llava-qwen", siglip), root / "hub"


@pytest.fixture(autouse=True)
def _fresh_clip_session():
    """The hooks keep the run's registered documents in the process's clip session (harness.clips); every test
    starts and ends with none, so no test depends on the order the suite runs in. Likewise the warnings said (each
    text once per process, convis_tasks.console): every test starts with none said."""
    from convis_tasks import console
    from convis_tasks.harness import clips

    clips.close()
    console.forget_warnings()
    yield
    clips.close()


@pytest.fixture(scope="session")
def colour_demo_run(tmp_path_factory) -> Path:
    """One real ``convis demo --model convis_colour_histogram --output DIR`` (lmms-eval subprocess, no weights; about
    40 s on 2 cores), shared by the tests that read a run: DIR holds the run folder and its ``clip_cache``; what the
    demo printed is in ``DIR/../demo.stdout`` and ``demo.stderr``."""
    import importlib.util
    import subprocess
    import sys

    if importlib.util.find_spec("lmms_eval") is None:
        pytest.skip("lmms-eval is not installed (pip install -e '.[harness]')")
    root = tmp_path_factory.mktemp("colour_demo")
    (root / "tmp").mkdir()
    env = dict(os.environ, TMPDIR=str(root / "tmp"), HF_DATASETS_CACHE=str(root / "hf_datasets"),
               PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    env.pop("CONVIS_DATA_DIR", None)
    env.pop("CONVIS_CACHE_DIR", None)
    proc = subprocess.run([sys.executable, "-m", "convis_tasks", "demo", "--model", "convis_colour_histogram",
                           "--output", str(root / "out")], env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (root / "demo.stdout").write_text(proc.stdout)  # beside DIR, for the tests of what the demo prints
    (root / "demo.stderr").write_text(proc.stderr)
    return root / "out"
