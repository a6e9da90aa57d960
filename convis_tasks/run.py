"""``convis run``: one command that checks everything a run needs, runs lmms-eval, and says plainly how it went.

    convis run --model M [--model_args A] --tasks convis_location --output_path out/ [any other lmms-eval option]

1. Task names are matched case-insensitively against the ConViS tasks and groups (misspellings get suggestions).
2. Preflight, before any model loads: the data folder and every video the tasks read (present, header readable),
   the rankings of retrieval tasks, the model's packages, the output folder.
3. lmms-eval runs in a child process (``--num_processes N`` starts N ranks through ``accelerate launch`` or
   ``torchrun``), with the task folder on its include path, into a new sub-folder of ``--output_path`` of its own.
4. The run failed if the child exited non-zero, wrote no results, or lacks a requested task (lmms-eval 0.7.3 exits 0
   when a task fails): then the exit status is 1 and the last line is the plugin's own message.
5. The correlation and retrieval tables are printed; ``--submission FILE`` also writes a leaderboard submission.
"""

from __future__ import annotations

import argparse
import ast
import difflib
import glob
import importlib.util
import json
import os
import re
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from . import task_path

LAUNCHER_ENV = ("LOCAL_RANK", "RANK", "WORLD_SIZE")
LOG_NAME = "lmms_eval.log"


class RunError(Exception):
    """A problem found before the run (exit status 2); the message is one actionable line."""


class RunFailed(RunError):
    """lmms-eval ran and failed (exit status 1); the message is the failure's own."""


@dataclass(frozen=True)
class Problem:
    """One preflight finding that blocks the run, with what to do about it."""

    what: str
    fix: str = ""

    def line(self) -> str:
        return self.what + (f" (fix: {self.fix})" if self.fix else "")


# --- task names --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class TaskInfo:
    """A task or group of a task folder: ``kind`` is pair / retrieval / group / other."""

    name: str
    kind: str
    concept: str | None = None
    subtasks: tuple[str, ...] = field(default=())
    scoring: str = "greedy"  # "expected": loglikelihood requests over "1".."5" (output_type multiple_choice)


_HOOK = re.compile(r"convis_tasks\.hooks\.(retrieval_docs|docs)_(\w+)")


def _yaml_mapping(path: Path) -> dict:
    """A task YAML as a mapping, with lmms-eval's ``!function`` tags kept as their text."""
    import yaml

    class Loader(yaml.SafeLoader):
        pass

    Loader.add_multi_constructor("!", lambda loader, suffix, node: loader.construct_scalar(node)
                                 if isinstance(node, yaml.ScalarNode) else None)
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=Loader)
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return {}
    return data if isinstance(data, dict) else {}


def _task_of(path: Path, data: dict) -> TaskInfo | None:
    if isinstance(data.get("group"), str) and isinstance(data.get("task"), list):
        return TaskInfo(data["group"], "group", subtasks=tuple(str(t) for t in data["task"]))
    if not isinstance(data.get("task"), str):
        return None
    hook = str(data.get("process_docs") or "")
    if not hook and isinstance(data.get("include"), str):  # a task whose hook comes from the file it includes
        included = Path(data["include"]) if os.path.isabs(data["include"]) else path.parent / data["include"]
        hook = str(_yaml_mapping(included).get("process_docs") or "")
    match = _HOOK.search(hook)
    if not match:
        return TaskInfo(data["task"], "other")
    kind = "retrieval" if match.group(1) == "retrieval_docs" else "pair"
    concept = None if match.group(2) == "global" else match.group(2)
    scoring = "expected" if _included_value(path, data, "output_type") == "multiple_choice" else "greedy"
    return TaskInfo(data["task"], kind, concept, scoring=scoring)


def _included_value(path: Path, data: dict, key: str, _depth: int = 0):
    """``key`` of a task YAML, else of the files it includes (lmms-eval's rule: the first listed wins)."""
    if key in data or _depth > 5:
        return data.get(key)
    include = data.get("include")
    for name in [include] if isinstance(include, str) else include if isinstance(include, list) else []:
        included = Path(name) if os.path.isabs(name) else path.parent / str(name)
        value = _included_value(included, _yaml_mapping(included), key, _depth + 1)
        if value is not None:
            return value
    return None


def task_index(folder: str | os.PathLike | None = None) -> dict[str, TaskInfo]:
    """Every task and group defined by the YAML files under ``folder`` (default: the ConViS task folder)."""
    index: dict[str, TaskInfo] = {}
    for path in sorted(Path(folder or task_path()).rglob("*.yaml")):
        info = _task_of(path, _yaml_mapping(path))
        if info is not None:
            index[info.name] = info
    return index


def resolve_tasks(spec: str, index: dict[str, TaskInfo]) -> list[str]:
    """The canonical names of a comma list of task or group names, matched case-insensitively.

    Raises :class:`RunError` for a name that is not in ``index``, with the closest names as suggestions.
    """
    by_lower = {name.lower(): name for name in index}
    names, unknown = [], []
    for raw in (part.strip() for part in spec.split(",")):
        if not raw:
            continue
        name = by_lower.get(raw.lower())
        if name is None:
            unknown.append(raw)
        elif name not in names:
            names.append(name)
    if unknown:
        parts = []
        for raw in unknown:
            close = difflib.get_close_matches(raw.lower(), list(by_lower), n=3, cutoff=0.6)
            hint = f" (did you mean {' or '.join(by_lower[c] for c in close)}?)" if close else ""
            parts.append(f"{raw!r}{hint}")
        groups = sorted(n for n, t in index.items() if t.kind == "group")
        raise RunError(f"unknown task {', '.join(parts)}; the ConViS tasks are {', '.join(sorted(index))} "
                       f"(groups: {', '.join(groups)})")
    if not names:
        raise RunError("--tasks names no task")
    return names


def leaf_tasks(names: list[str], index: dict[str, TaskInfo]) -> list[TaskInfo]:
    """The tasks that will run, groups expanded, each once, in order."""
    out: list[TaskInfo] = []

    def add(name: str) -> None:
        info = index.get(name)
        if info is None:
            raise RunError(f"group member {name!r} is not defined in the task folder")
        if info.kind == "group":
            for sub in info.subtasks:
                add(sub)
        elif info not in out:
            out.append(info)

    for name in names:
        add(name)
    return out


# --- preflight ----------------------------------------------------------------------------------------------

def _class_attribute(class_path: str, attribute: str, _depth: int = 0):
    """A class attribute read from the modules' source (no import, so no torch), following the first base class
    within the module or through a ``from ... import`` from the same top-level package.

    Returns ``None`` where the source does not say (not found, not a literal, or inherited from elsewhere).
    """
    module, _, name = class_path.rpartition(".")
    try:
        spec = importlib.util.find_spec(module)
        tree = ast.parse(Path(spec.origin).read_text(encoding="utf-8"))
    except (ImportError, AttributeError, TypeError, ValueError, OSError, SyntaxError):
        return None
    classes = {node.name: node for node in tree.body if isinstance(node, ast.ClassDef)}
    imported = {}
    for node in tree.body:
        if isinstance(node, ast.ImportFrom):
            package = module.rsplit(".", node.level)[0] if node.level else ""
            source = ".".join(p for p in (package, node.module or "") if p)
            for alias in node.names:
                imported[alias.asname or alias.name] = f"{source}.{alias.name}"
    seen = set()
    while name in classes and name not in seen:
        seen.add(name)
        node = classes[name]
        for stmt in node.body:
            targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target] if isinstance(
                stmt, ast.AnnAssign) and stmt.value is not None else []
            if any(isinstance(t, ast.Name) and t.id == attribute for t in targets):
                try:
                    return ast.literal_eval(stmt.value)
                except ValueError:
                    return None
        bases = [b.id for b in node.bases if isinstance(b, ast.Name)]
        name = bases[0] if bases else ""
    top = module.split(".")[0] + "."
    if name in imported and imported[name].startswith(top) and _depth < 5:  # the same package, never the harness
        return _class_attribute(imported[name], attribute, _depth + 1)
    return None


def model_reads_videos(model: str, model_args: str | None = None) -> bool:
    """False only for a plugin model whose class says ``reads_videos = False`` (caption-only models)."""
    from .doctor import inner_model
    from .model_wrappers import MODELS

    inner = inner_model(model, model_args)
    if inner:
        return model_reads_videos(inner)
    path = MODELS.get(model)
    value = _class_attribute(path, "reads_videos") if path else None
    return True if value is None else bool(value)


def _header_problem(path: str) -> str | None:
    """None when the file opens as a container with a video stream, else why not."""
    import av

    try:
        with av.open(path) as container:
            if not container.streams.video:
                return "has no video stream"
            stream = container.streams.video[0]
            if not stream.codec_context.width:
                return "video stream has no frame size"
    except Exception as exc:  # noqa: BLE001 - PyAV raises many kinds; all mean "not readable"
        return f"header not readable ({type(exc).__name__}: {str(exc)[:120]})"
    return None


def check_data(tasks: list[TaskInfo], reads_videos: bool = True, data_dir: str | None = None) -> list[Problem]:
    """The inputs of ``tasks``: the data folder, the ground truth, the rankings, and every video they read.

    With ``reads_videos=False`` (caption-only models) the annotation files are checked and the videos are not.
    This is the one place that decides what a run's data needs; it uses only ``utils.dataset``'s loaders.
    """
    from .utils.annotations import load_ground_truth
    from .utils.dataset import (HF_REPO_ID, PAIR_FILE, load_documents, load_retrieval_documents,
                                resolve_data_dir, resolve_rankings)
    from .utils.rankings import load_rankings

    download = f"huggingface-cli download {HF_REPO_ID} --repo-type dataset --local-dir DIR; export CONVIS_DATA_DIR=DIR"
    try:
        root = resolve_data_dir(data_dir)
    except Exception as exc:  # noqa: BLE001 - DataNotFoundError and friends carry the whole story
        return [Problem(str(exc), download)]
    problems: list[Problem] = []
    videos: dict[str, str] = {}
    for task in tasks:
        if task.kind not in ("pair", "retrieval"):
            continue
        try:
            if reads_videos:
                docs = (load_documents(task.concept, root) if task.kind == "pair"
                        else load_retrieval_documents(task.concept, root))
                for doc in docs:
                    for key in ("video1_path", "video2_path"):
                        videos.setdefault(doc[key], f"{task.name}, pair {doc['pair_id'].replace('|', ' / ')}")
            elif task.kind == "pair":
                load_ground_truth(root / PAIR_FILE)
            else:
                load_rankings(resolve_rankings(root))
        except Exception as exc:  # noqa: BLE001 - the loaders' messages name file, entry and field
            problem = Problem(f"{task.name}: {exc}")
            if problem not in problems:
                problems.append(problem)
    bad = [(path, why, where) for path, where in videos.items() if (why := _header_problem(path))]
    for path, why, where in bad[:5]:
        problems.append(Problem(f"{where}: video {path} {why}", "replace the file with a readable copy"))
    if len(bad) > 5:
        problems.append(Problem(f"... and {len(bad) - 5} more unreadable videos"))
    return problems


def check_output(folder: Path) -> list[Problem]:
    """The output folder exists or can be made, and takes a file."""
    from .doctor import write_probe

    if (exc := write_probe(folder)) is not None:
        return [Problem(f"output folder {folder} is not writable: {exc}", "pass a writable --output_path")]
    return []


def preflight(tasks: list[TaskInfo], model: str, model_args: str | None, output: Path,
              check_model: bool = True) -> list[Problem]:
    """Everything that would make the run fail, found before any model loads; cheap checks first.

    The model's packages are imported (in a child process) only when the data and the output folder are fine,
    so that a wrong data folder is reported in seconds.
    """
    from .doctor import check_filelock, model_checks

    # --- expected scoring (issue 20): the *_expected tasks need a model whose loglikelihood scores video ---
    expected = [t.name for t in tasks if t.scoring == "expected"]
    if expected:
        from .model_wrappers import expected_scoring_problem

        if (why := expected_scoring_problem(model)) is not None:
            return [Problem(f"--model {model} cannot run {', '.join(expected)}: {why}",
                            f"run the greedy tasks ({', '.join(n.removesuffix('_expected') for n in expected)}) "
                            "with this model, or use a model of docs/models.md, 'Expected scores'")]
        mixed = sorted({t.name for t in tasks if t.scoring == "greedy" and f"{t.name}_expected" in expected})
        if mixed:  # one run folder would hold two scores per pair of a concept, which its readers refuse
            return [Problem(f"{', '.join(mixed)} and their *_expected tasks in one run: the run folder would hold "
                            "two scores per pair of a concept", "run the greedy and the expected tasks as two runs")]
    # --- end of expected scoring ---
    problems = check_output(output) + check_data(tasks, reads_videos=model_reads_videos(model, model_args))
    lock = check_filelock()
    if lock.blocks:
        problems.append(Problem(f"filelock: {lock.detail}", lock.fix))
    if problems:
        return problems
    for check in model_checks(model, model_args, import_module=check_model):
        if check.blocks:
            problems.append(Problem(f"{check.name}: {check.detail}", check.fix))
    return problems


# --- the run folder and the command -------------------------------------------------------------------------

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
        """A line of harness output: a log message names the bars that follow it, a bar is shown."""
        message = log_message(text)
        if message:
            self.context = re.sub(r" on rank \d+", "", message).strip(" .")[:60]
        for desc, done, total in progress_updates(text):
            self.update(desc or self.context, done, total)

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


def stream(cmd: list[str], env: dict, log_path: Path, echo: bool, progress: Progress | None = None) -> int:
    """Run ``cmd``, writing its combined output to ``log_path`` and, when ``echo``, to stdout; feed ``progress``."""
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        pending = ""
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
    from .doctor import _last_error_line

    errors = [line for line in lines if re.match(r"^[\w.]+(Error|Exception): ", line)]
    return _last_error_line(errors[-1]) if errors else None


def results_file(folder: Path) -> Path | None:
    found = sorted(glob.glob(str(folder / "**" / "*_results.json"), recursive=True))
    return Path(found[-1]) if found else None


def check_outcome(returncode: int, folder: Path, tasks: list[TaskInfo], log_path: Path) -> Path:
    """The run's results file, or :class:`RunError` with the failure's own message."""
    path = results_file(folder)
    missing: list[str] = []
    if path is not None:
        try:
            done = json.loads(path.read_text(encoding="utf-8")).get("results", {})
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


# --- the command -----------------------------------------------------------------------------------------

def print_tables(folder: Path, tasks: list[TaskInfo], data_dir: Path) -> None:
    """The correlation table (pair tasks) and the retrieval table (retrieval tasks) of one run folder."""
    from .cli import correlation_table, retrieval_table, run_correlate, run_retrieval
    from .utils.dataset import PAIR_FILE, resolve_rankings

    if any(t.kind == "pair" for t in tasks):
        print("\nCorrelation with the human means (x100)\n")
        print(correlation_table(run_correlate(str(folder), str(data_dir / PAIR_FILE))))
    if any(t.kind == "retrieval" for t in tasks):
        print("\nConcept-conditioned retrieval (x100), with the expected score of a random choice\n")
        print(retrieval_table(run_retrieval(str(folder), str(resolve_rankings(data_dir)))))


def write_submission_of(results: Path, path: str, overrides: dict) -> list[str]:
    """Write the run's leaderboard submission to ``path``; returns the builder's notes.

    Raises :class:`RunFailed` naming the ``convis submit`` command that finishes the job (the run is kept).
    """
    from .report.submission import SubmissionError, build_from_run, write_submission

    messages: list[str] = []
    try:
        doc = build_from_run(str(results), {k: v for k, v in overrides.items() if v}, messages)
        write_submission(doc, path)
    except (SubmissionError, OSError) as exc:
        raise RunFailed(f"the run succeeded ({results.parent}) but no submission was written: {exc}; then run "
                        f"`convis submit {results} -o {path} ...`") from None
    return messages


def submission_problems(args: argparse.Namespace) -> list[Problem]:
    """The submission's required metadata that neither the options nor the model's name give (checked up front)."""
    from .report.submission import guess_size, parse_args_pretrained

    if not args.submission or args.size:
        return []
    if guess_size(args.name) or guess_size(parse_args_pretrained(args.model_args)):
        return []
    return [Problem("--submission needs the model's size, which its name does not say", "pass --size (e.g. "
                    "--size 7B; --size unknown for an API model)")]


def build_run_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="convis run", allow_abbrev=False,
        description="Check the inputs, run lmms-eval on ConViS tasks, report. Options not listed here are "
                    "passed to lmms-eval unchanged (e.g. --limit, --batch_size, --gen_kwargs).")
    p.add_argument("--model", required=True, help="an lmms-eval model name")
    p.add_argument("--model_args", "--model-args", dest="model_args", default=None, help="passed to lmms-eval")
    p.add_argument("--tasks", required=True, help="ConViS tasks or groups, comma-separated, any case")
    p.add_argument("--output_path", "--output-path", dest="output_path", required=True,
                   help="each run goes to a new sub-folder <model>_<date-time> of this folder")
    p.add_argument("--include_path", default=None,
                   help="a folder of your own task YAMLs (instead of the ConViS task folder; lmms-eval takes one)")
    p.add_argument("--num_processes", "--num-processes", dest="num_processes", type=int, default=1,
                   help="ranks to start (GPUs; on a CPU set ACCELERATE_USE_CPU=1)")
    p.add_argument("--launcher", choices=("accelerate", "torchrun"), default="accelerate",
                   help="how several ranks are started (default: accelerate launch --multi_gpu)")
    p.add_argument("--launcher_args", "--launcher-args", dest="launcher_args", default=None,
                   help="extra launcher options, one string, e.g. '--main_process_port 29511'")
    p.add_argument("--quiet", action="store_true", help="no harness log on the terminal (it is always in the "
                                                        f"run folder's {LOG_NAME}); progress only")
    p.add_argument("--no-tables", dest="tables", action="store_false", help="do not print the tables at the end")
    p.add_argument("--submission", default=None, help="also write a leaderboard submission JSON here")
    p.add_argument("--name", default=None, help="the model's name in the submission")
    p.add_argument("--size", default=None, help="the model's size in the submission, e.g. 7B")
    p.add_argument("--skip-model-check", dest="model_check", action="store_false",
                   help="do not import the model's packages during preflight")
    return p


def _under_launcher() -> bool:
    try:
        return int(os.environ.get("WORLD_SIZE", "1")) > 1 or "LOCAL_RANK" in os.environ
    except ValueError:
        return True


def _say(text: str) -> None:
    print(f"convis run: {text}", file=sys.stderr, flush=True)


def execute(argv: list[str]) -> int:
    """``convis run``: 0 when every task ran; 2 for a problem found before the run; 1 when the run failed."""
    args, passthrough = build_run_parser().parse_known_args(argv)
    if importlib.util.find_spec("lmms_eval") is None:
        raise RunError("convis run needs the harness: pip install -e '.[harness]' (lmms-eval 0.7.3)")
    if _under_launcher():
        raise RunError("convis run starts the ranks itself: run `convis run --num_processes N ...` "
                       "(not under accelerate launch or torchrun)")
    if args.num_processes < 1:
        raise RunError("--num_processes must be at least 1")
    for opt in ("--tasks", "--output_path", "--include_path"):
        if any(a == opt or a.startswith(opt + "=") for a in passthrough):
            raise RunError(f"{opt} given twice")
    include = args.include_path or task_path()
    index = task_index(include)
    try:
        names = resolve_tasks(args.tasks, index)
    except RunError:
        if args.include_path and all(n.strip().lower() in {k.lower() for k in task_index()}
                                     for n in args.tasks.split(",") if n.strip()):
            raise RunError(f"--include_path {args.include_path} replaces the ConViS task folder (lmms-eval 0.7.3 "
                           "takes one folder): run the ConViS tasks without --include_path") from None
        raise
    tasks = leaf_tasks(names, index)
    output = Path(args.output_path).expanduser()

    started = time.monotonic()
    problems = submission_problems(args) + preflight(tasks, args.model, args.model_args, output,
                                                     check_model=args.model_check)
    if problems:
        for problem in problems[:-1]:
            print(f"convis: error: {problem.line()}", file=sys.stderr)
        raise RunError(problems[-1].line())
    from .utils.dataset import resolve_data_dir

    data_dir = resolve_data_dir()
    _say(f"preflight passed in {time.monotonic() - started:.1f} s: {len(tasks)} task(s) on {data_dir}")

    folder = new_run_folder(output, args.model)
    log_path = folder / LOG_NAME
    cmd = lmms_eval_command(launcher_command(args.num_processes, args.launcher, args.launcher_args), args.model,
                            args.model_args, names, include, folder, passthrough)
    _say("$ " + shlex.join(cmd))
    _say(f"run folder {folder}; harness log {log_path}")
    code = stream(cmd, dict(os.environ), log_path, echo=not args.quiet, progress=Progress() if args.quiet else None)
    try:
        results = check_outcome(code, folder, tasks, log_path)
    except RunError as exc:
        _say(f"the run failed; the harness log is {log_path}")
        raise RunFailed(str(exc)) from None
    if args.tables:
        print_tables(folder, tasks, data_dir)
    if args.submission:
        for note in write_submission_of(results, args.submission, {"name": args.name, "size": args.size}):
            _say(note)
        _say(f"submission written to {args.submission}")
    _say(f"done: results in {folder}")
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    argv = list(args.run_args)
    if argv[:1] == ["--"]:
        argv = argv[1:]
    try:
        return execute(argv)
    except RunError as exc:
        print(f"convis: error: {exc}", file=sys.stderr)
        return 1 if isinstance(exc, RunFailed) else 2


def add_parser(subparsers) -> None:
    """Register ``convis run``; its own parser reads the arguments, so lmms-eval's options pass through."""
    p = subparsers.add_parser("run", add_help=False, prefix_chars="\x00",
                              help="check inputs, run lmms-eval on ConViS tasks, print the tables "
                                   "(`convis run --help`)")
    p.add_argument("run_args", nargs=argparse.REMAINDER)
    p.set_defaults(func=_cmd_run)
