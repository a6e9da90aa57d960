"""Ctrl-C, then the same command again: what an interruption costs a ``convis run``.

    python benchmarks/interrupt_resume.py [--seconds-per-answer 0.5] [--stop-after 5]

Three runs of the test model ``interrupting_colour`` (tests/plugins: the colour-histogram answers, slowed to S
seconds per answer) on the demo set's ``convis_location`` (11 requests):

1. uninterrupted;
2. interrupted by a real Ctrl-C (SIGINT to the process group of ``convis run``: it and lmms-eval) halfway through
   answer k+1, once the journal holds k answers;
3. the same command again, which continues run 2.

It prints the wall time of each, the interruption's loss (answers kept in the journal / answers the model had
computed when SIGINT came), and whether run 3's metrics equal run 1's.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from convis_tasks.harness.journal import count_answers
from convis_tasks.reading.datafolder import DEMO_DIR

REPO = Path(__file__).resolve().parent.parent


def environment(tmp: Path, computed: Path, seconds: float) -> dict:
    return dict(os.environ, CONVIS_DATA_DIR=str(DEMO_DIR), CONVIS_CACHE_DIR=str(tmp / "clips"), HF_HUB_OFFLINE="1",
                HF_DATASETS_OFFLINE="1", HF_DATASETS_CACHE=str(tmp / "hf"), LMMS_EVAL_PLUGINS="convis_test_models",
                CONVIS_TEST_COMPUTED=str(computed), CONVIS_TEST_SECONDS_PER_ANSWER=str(seconds),
                PYTHONPATH=os.pathsep.join([str(REPO), str(REPO / "tests" / "plugins"),
                                            os.environ.get("PYTHONPATH", "")]))


def command(output: Path) -> list[str]:
    return [sys.executable, "-m", "convis_tasks", "run", "--model", "interrupting_colour", "--tasks",
            "convis_location", "--output_path", str(output), "--quiet", "--no-tables"]


def metrics(output: Path) -> dict:
    (path,) = glob.glob(str(output / "*" / "*_results.json"))
    values = json.loads(Path(path).read_text())["results"]["convis_location"]
    return {k: v for k, v in values.items() if isinstance(v, (int, float))}


def lines(path: Path) -> int:
    return len(path.read_text().splitlines()) if path.exists() else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds-per-answer", type=float, default=0.5)
    parser.add_argument("--stop-after", type=int, default=5, help="answers in the journal before Ctrl-C")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        env = environment(tmp, tmp / "computed_plain.txt", args.seconds_per_answer)
        start = time.monotonic()
        plain = subprocess.run(command(tmp / "plain"), env=env, capture_output=True, text=True, cwd=REPO, check=False)
        t_plain = time.monotonic() - start
        if plain.returncode != 0:
            sys.exit(plain.stderr[-3000:])

        computed = tmp / "computed.txt"
        env = environment(tmp, computed, args.seconds_per_answer)
        start = time.monotonic()
        proc = subprocess.Popen(command(tmp / "out"), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, cwd=REPO, start_new_session=True)
        while sum(count_answers(j) for j in glob.glob(str(tmp / "out" / "*" / "journal"))) < args.stop_after:
            if proc.poll() is not None:
                sys.exit("the run ended before the interruption: " + proc.stderr.read()[-3000:])
            time.sleep(0.02)
        time.sleep(args.seconds_per_answer / 2)
        computed_at_signal = lines(computed)
        os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
        t_signal = time.monotonic() - start
        _, err = proc.communicate()
        t_first = time.monotonic() - start
        journal = glob.glob(str(tmp / "out" / "*" / "journal"))[0]
        kept = count_answers(journal)

        start = time.monotonic()
        again = subprocess.run(command(tmp / "out"), env=env, capture_output=True, text=True, cwd=REPO, check=False)
        t_again = time.monotonic() - start
        recomputed = lines(computed) - computed_at_signal - (11 - kept)

        print(f"model time per answer: {args.seconds_per_answer} s; 11 requests (demo convis_location)")
        print(f"uninterrupted run:               {t_plain:6.1f} s")
        print(f"interrupted run:                 {t_first:6.1f} s (SIGINT at {t_signal:.1f} s, exit status "
              f"{proc.returncode}; {t_first - t_signal:.1f} s from SIGINT to exit)")
        print(f"same command again (continues):  {t_again:6.1f} s (exit status {again.returncode})")
        print(f"interrupted + continued:         {t_first + t_again:6.1f} s ({t_first + t_again - t_plain:+.1f} s "
              "against uninterrupted)")
        print(f"loss at the interruption:        {kept} answers kept / {computed_at_signal} computed; "
              f"{recomputed} journaled answers computed again")
        print(f"last line of the interrupted run: {err.strip().splitlines()[-1]}")
        print(f"metrics equal to the uninterrupted run's: {metrics(tmp / 'out') == metrics(tmp / 'plain')}")


if __name__ == "__main__":
    main()
