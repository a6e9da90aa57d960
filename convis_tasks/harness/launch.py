"""Starting lmms-eval and reading how it went: the run folder, the command line, the progress, the outcome."""

from __future__ import annotations

import glob
import re
import shlex
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from convis_tasks.console import NOTE_PREFIX
from convis_tasks.errors import RunError
from convis_tasks.reading.runs import read_json
from convis_tasks.harness.doctor import last_error_line
from convis_tasks.harness.tasks import TaskInfo
from convis_tasks.safetext import terminal

LOG_NAME = "lmms_eval.log"


def new_run_folder(output: Path, model: str, now: float | None = None) -> Path:
    """A new, empty sub-folder of ``output`` for one run: ``<model>_<YYYYmmdd-HHMMSS>[_k]``."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(now if now is not None else time.time()))
    base = re.sub(r"[^A-Za-z0-9_.-]", "_", model)[:60] + "_" + stamp
    for k in range(1, 1000):
        folder = output / (base if k == 1 else f"{base}_{k}")
        try:
            folder.mkdir(parents=True)
        except FileExistsError:
            continue
        return folder
    raise RunError(f"{output}: could not create a new run folder for {base}")


def launcher_command(num_processes: int, launcher: str, launcher_args: str | None = None) -> list[str]:
    """How lmms-eval is started: ``python -m lmms_eval`` for one process, else through accelerate or torchrun."""
    extra = shlex.split(launcher_args or "")
    if num_processes <= 1 and not extra:
        return [sys.executable, "-m", "lmms_eval"]
    if launcher == "torchrun":
        return [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(num_processes), *extra,
                "-m", "lmms_eval"]
    # --multi_gpu: without it accelerate runs ONE process (also on CPU, where ACCELERATE_USE_CPU=1 gives gloo ranks)
    multi = ["--multi_gpu"] if num_processes > 1 else []
    return [sys.executable, "-m", "accelerate.commands.launch", "--num_processes", str(num_processes), *multi,
            *extra, "-m", "lmms_eval"]


def lmms_eval_command(launcher: list[str], model: str, model_args: str | None, tasks: list[str],
                      include_path: str, output: Path, passthrough: list[str]) -> list[str]:
    """The full command line; ``--log_samples`` is always on (the tables and submissions read the samples)."""
    cmd = [*launcher, "--model", model, "--tasks", ",".join(tasks), "--include_path", include_path,
           "--output_path", str(output)]
    if model_args:
        cmd += ["--model_args", model_args]
    if "--log_samples" not in passthrough and "--predict_only" not in passthrough:
        cmd.append("--log_samples")
    return cmd + passthrough


_TQDM = re.compile(r"(?P<desc>[^|:\r\n]{0,80}?):?\s*(?P<pct>\d{1,3})%\|[^|]*\|\s*(?P<done>\d+)/(?P<total>\d+)")
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def progress_updates(fragment: str) -> list[tuple[str, int, int]]:
    """The tqdm bars (``desc``, done, total) in one piece of harness output, ANSI colours removed."""
    out = []
    for match in _TQDM.finditer(_ANSI.sub("", fragment)):
        desc = match.group("desc").split(" - ")[-1].strip(" .")
        out.append((desc, int(match.group("done")), int(match.group("total"))))
    return out


def log_message(line: str) -> str | None:
    """The message of a harness log line (``time | LEVEL | where - message``), else None."""
    parts = _ANSI.sub("", line).split(" | ")
    if len(parts) >= 3 and " - " in parts[-1]:
        return parts[-1].split(" - ", 1)[1].strip()
    return None


class Progress:
    """Shows the harness's progress bars as one line: rewritten in place on a terminal, else one line per stage."""

    def __init__(self, out=None):
        self.out = out or sys.stderr
        self.tty = hasattr(self.out, "isatty") and self.out.isatty()
        self.last: tuple[str, int, int] | None = None
        self.context = "progress"

    def line(self, text: str) -> None:
        """A line of harness output: a plugin's note is shown, a log message names the bars that follow it, a bar is
        shown."""
        plain = _ANSI.sub("", text).strip()
        if plain.startswith(NOTE_PREFIX):
            self.note(plain)
            return
        message = log_message(text)
        if message:
            self.context = re.sub(r" on rank \d+", "", message).strip(" .")[:60]
        for desc, done, total in progress_updates(text):
            self.update(desc or self.context, done, total)

    def note(self, text: str) -> None:
        """A whole line (e.g. how many answers came from the journal), below the bar being rewritten."""
        if self.tty and self.last is not None:
            print(file=self.out)
        print(terminal(text), file=self.out, flush=True)

    def update(self, desc: str, done: int, total: int) -> None:
        if self.last == (desc, done, total):
            return
        if self.tty:
            print(f"\r  {desc[:60]}: {done}/{total}".ljust(78), end="", file=self.out, flush=True)
        elif done == total and self.last != (desc, done, total):  # not a terminal: one line per finished bar
            print(f"  {desc[:60]}: {done}/{total}", file=self.out, flush=True)
        self.last = (desc, done, total)

    def close(self) -> None:
        if self.tty and self.last is not None:
            print(file=self.out, flush=True)


def _copy(source, log) -> None:
    """Copy what is left of the child's output to the log (after an interruption: nothing more is shown)."""
    try:
        while chunk := source.read1(65536):
            log.write(chunk)
            log.flush()
    except (OSError, ValueError):
        pass


# After Ctrl-C: wait for the child to end of its own (a terminal's Ctrl-C reaches it too), then ask it with SIGINT,
# then SIGTERM, then kill it; the answers it journaled are on disk already (each is fsync'ed as it is written).
STOP_STEPS = ((None, 5.0), (signal.SIGINT, 30.0), (signal.SIGTERM, 10.0), (signal.SIGKILL, None))


def stop_child(proc: subprocess.Popen, log) -> None:
    """End an interrupted child and keep the rest of its output in the log; a second Ctrl-C kills it at once."""
    drain = threading.Thread(target=_copy, args=(proc.stdout, log), daemon=True)
    drain.start()
    try:
        for sig, patience in STOP_STEPS:
            if sig is not None and proc.poll() is None:
                proc.send_signal(sig)
            try:
                proc.wait(patience)
                break
            except subprocess.TimeoutExpired:
                continue
    except KeyboardInterrupt:
        proc.kill()
        proc.wait()
    drain.join(5)


def stream(cmd: list[str], env: dict, log_path: Path, echo: bool, progress: Progress | None = None) -> int:
    """Run ``cmd``, writing its combined output to ``log_path`` and, when ``echo``, to stdout; feed ``progress``.

    On Ctrl-C (KeyboardInterrupt) the child is ended (:func:`stop_child`) and the KeyboardInterrupt goes on."""
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        pending = ""
        try:
            while True:
                chunk = proc.stdout.read1(65536)
                if not chunk:
                    break
                log.write(chunk)
                log.flush()
                if echo:
                    sys.stdout.buffer.write(chunk)
                    sys.stdout.flush()
                if progress is not None:
                    pieces = re.split(r"[\r\n]", pending + chunk.decode("utf-8", "replace"))
                    pending = pieces.pop()[-2000:]
                    for piece in pieces:
                        progress.line(piece)
            code = proc.wait()
        except KeyboardInterrupt:
            stop_child(proc, log)
            raise
        finally:
            if progress is not None:
                progress.close()
    return code


_PLUGIN_LINE = re.compile(r"^(?:convis: error: (?P<msg>.+)|(?P<cls>convis_tasks(?:\.\w+)+): (?P<text>.+))$")
_EVAL_ERROR = re.compile(r"Error during evaluation: (?P<msg>.+?)(?:\. Please set `--verbosity=DEBUG`.*)?$")


def failure_message(log_text: str) -> str | None:
    """The most useful line of a failed run's log: the plugin's own message if there is one.

    Preference: a ``convis: error:`` line, then a ``convis_tasks.<...>Error: ...`` traceback line, then lmms-eval's
    ``Error during evaluation: ...``, then the last ``SomeError: ...`` line. None if the log has none of these.
    """
    lines = [_ANSI.sub("", line).strip() for line in log_text.replace("\r", "\n").splitlines()]
    for line in reversed(lines):
        match = _PLUGIN_LINE.match(line)
        if match:
            return match.group("msg") or f"{match.group('cls').rsplit('.', 1)[-1]}: {match.group('text')}"
    for line in reversed(lines):
        match = _EVAL_ERROR.search(line)
        if match:
            return f"lmms-eval: {match.group('msg')}"
    errors = [line for line in lines if re.match(r"^[\w.]+(Error|Exception): ", line)]
    return last_error_line(errors[-1]) if errors else None


def results_file(folder: Path) -> Path | None:
    found = sorted(glob.glob(str(folder / "**" / "*_results.json"), recursive=True))
    return Path(found[-1]) if found else None


def check_outcome(returncode: int, folder: Path, tasks: list[TaskInfo], log_path: Path) -> Path:
    """The run's results file, or :class:`RunError` with the failure's own message."""
    path = results_file(folder)
    missing: list[str] = []
    if path is not None:
        try:
            done = read_json(str(path)).get("results", {})
        except (OSError, ValueError) as exc:
            raise RunError(f"{path}: unreadable results file: {exc}") from exc
        missing = [t.name for t in tasks if t.name not in done]
    if returncode == 0 and path is not None and not missing:
        return path
    try:
        message = failure_message(log_path.read_text(encoding="utf-8", errors="replace"))
    except OSError:
        message = None
    if message is None:
        if returncode != 0:
            message = f"lmms-eval exited with status {returncode}"
        elif path is None:
            message = "lmms-eval exited 0 but wrote no results"
        else:
            message = f"lmms-eval wrote no results for {', '.join(missing)}"
    raise RunError(message)
