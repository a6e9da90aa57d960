"""Time how ConViS-Bench arrives: a cold ``convis data fetch`` of the demo set from a stand-in hub on 127.0.0.1
(tests/stub_hub.py: the videos packed in a zip), the same ``convis run`` offline from the cache, and offline with an
empty cache (``convis data fetch``, ``convis run``, a task's own hook), which must fail at once.

    PYTHONPATH=$PWD python scripts/time_fetch.py

Prints one line per figure (seconds, wall clock, each command a fresh process); nothing is asserted.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from stub_hub import StubHub, demo_repo  # noqa: E402

from convis_tasks.reading.datafolder import DEMO_DIR  # noqa: E402

RUN = ["run", "--model", "convis_colour_histogram", "--tasks", "convis_location", "--quiet", "--no-tables"]
HOOK = "from convis_tasks import hooks; print(len(hooks.docs_location(None)))"


def timed(label: str, argv: list[str], env: dict) -> None:
    started = time.monotonic()
    proc = subprocess.run(argv, env=env, capture_output=True, text=True)
    seconds = time.monotonic() - started
    last = [line for line in proc.stderr.splitlines() if line.strip()][-1:] or [""]
    why = "" if proc.returncode == 0 else f"  ({last[0][:90]})"
    print(f"{seconds:7.2f} s  exit {proc.returncode}  {label}{why}")


def main() -> None:
    hub = StubHub({"c0" * 20: demo_repo(DEMO_DIR)}, main="c0" * 20).start()
    with tempfile.TemporaryDirectory() as tmp:
        base = dict(os.environ, HF_HOME=f"{tmp}/hf", CONVIS_CACHE_DIR=f"{tmp}/clips", HF_ENDPOINT=hub.endpoint,
                    HF_DATASETS_CACHE=f"{tmp}/datasets", HF_DATASETS_OFFLINE="1", HF_HUB_DISABLE_PROGRESS_BARS="1",
                    PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
        for name in ("CONVIS_DATA_DIR", "HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "HF_HUB_OFFLINE"):
            base.pop(name, None)
        offline = dict(base, HF_HUB_OFFLINE="1")
        convis = [sys.executable, "-m", "convis_tasks"]
        empty = dict(offline, HF_HOME=f"{tmp}/empty")
        timed("offline, empty cache: convis data fetch", convis + ["data", "fetch"], empty)
        timed("offline, empty cache: a task's process_docs hook (plain lmms-eval)", [sys.executable, "-c", HOOK],
              empty)
        timed("offline, empty cache: convis run", convis + RUN + ["--output_path", f"{tmp}/out0"], empty)
        timed("hub unreachable, empty cache: convis data fetch", convis + ["data", "fetch"],
              dict(base, HF_HOME=f"{tmp}/empty", HF_ENDPOINT="http://127.0.0.1:9"))
        timed("cold convis data fetch of the demo set from the stub hub", convis + ["data", "fetch"], base)
        asked = len(hub.requests)
        timed("convis run offline from the cache", convis + RUN + ["--output_path", f"{tmp}/out1"], offline)
        print(f"requests to the hub during the offline run: {len(hub.requests) - asked}")
    hub.stop()


if __name__ == "__main__":
    main()
