"""Continuing an interrupted ``convis run``: the journal every run keeps, the run's record, the run a command continues.

* **Journal.** Every run journals its answers in ``<run>/journal`` (:mod:`.journal`): the model runs inside
  ``convis_resumable`` (:mod:`convis_tasks.model_wrappers.resumable`), which answers each request from the journal
  or computes it and journals it at once. The results and submissions still name the user's model
  (:func:`convis_tasks.reading.runs.answering_model`). Not journaled, said in one line: ``--no-journal``; a model
  lmms-eval runs through its chat class, which the wrapper cannot wrap; model arguments that the wrapper takes
  itself (``inner``, ``journal``, ``chunk``); task YAMLs that give this model its own settings by name (the wrapped
  model would not get them). ``--model convis_resumable`` is used as given, with its own journal.
* **Record.** ``<run>/convis_run.json`` holds the command (``argv``), what the answers depend on (``signature``:
  model, model_args, tasks, task folder, lmms-eval options, data folder, journal on/off, working folder), the
  lmms-eval command line, the attempts, and ``finished`` once the run wrote its results.
* **Continuing.** Running the same command again continues the newest unfinished run under ``--output_path`` with
  the same signature (one line says so); ``convis run --resume RUN`` continues RUN with its stored command (options
  given after it are added: display options such as ``--quiet`` or ``--num_processes``; one that changes the
  signature is refused). A finished run, a folder without a record, a run without a journal, and a run in progress
  (``<run>/.convis_run.lock`` is held) are refused with the reason. Each attempt's harness log is kept
  (``lmms_eval.attempt<k>.log``).
"""

from __future__ import annotations

import argparse
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

from filelock import FileLock, Timeout

from convis_tasks.errors import RunError
from convis_tasks.harness.journal import count_answers
from convis_tasks.harness.launch import LOG_NAME, new_run_folder
from convis_tasks.reading.jsonio import dumps, strict_load_file
from convis_tasks.reading.runs import JOURNALING_ARGS, JOURNALING_MODEL, parse_model_args

RECORD_NAME = "convis_run.json"
JOURNAL_NAME = "journal"
LOCK_NAME = ".convis_run.lock"
RECORD_FORMAT = 1


@dataclass
class RunPlan:
    """Where a run goes and what lmms-eval is asked to run: the model (wrapped when journaled) and its journal."""

    folder: Path
    model: str
    model_args: str | None
    journal: Path | None  # None: answers are not journaled
    continued: bool = False
    signature: dict = field(default_factory=dict)
    argv: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    lock: FileLock | None = None

    def interrupted_line(self) -> str:
        """What an interrupted run says last: the answers kept and how to continue."""
        if self.journal is None:
            return "interrupted; no answers were kept (not journaled): running the command again starts over"
        return (f"interrupted: {count_answers(self.journal)} answers kept in {self.journal}; to continue, run the "
                f"same command again (or `convis run --resume {self.folder}`)")

    def failed_line(self) -> str | None:
        """After a failed run: the answers kept for the next attempt, when there are any."""
        kept = count_answers(self.journal) if self.journal is not None else 0
        return (f"{kept} answers kept in {self.journal}: once fixed, running the same command again continues this "
                "run" if kept else None)


# --- --resume -------------------------------------------------------------------------------------------------------

def take_resume(argv: list[str]) -> tuple[str | None, list[str]]:
    """``(FOLDER of --resume FOLDER or None, the other arguments)``."""
    rest, folder, i = [], None, 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--resume":
            if i + 1 >= len(argv):
                raise RunError("--resume needs a run folder: convis run --resume OUTPUT/<model>_<date-time>")
            folder, i = argv[i + 1], i + 2
            continue
        if arg.startswith("--resume="):
            folder = arg.split("=", 1)[1]
        else:
            rest.append(arg)
        i += 1
    return folder, rest


def read_record(folder: Path) -> dict:
    """The record of a run folder, or :class:`RunError` saying why the folder is no run to continue."""
    if not folder.is_dir():
        raise RunError(f"--resume {folder}: no such folder")
    path = folder / RECORD_NAME
    if not path.is_file():
        raise RunError(f"--resume {folder}: not a run folder of convis run (no {RECORD_NAME}); --resume continues a "
                       "run that convis run started")
    record = strict_load_file(str(path), RunError)
    if not (isinstance(record, dict) and isinstance(record.get("argv"), list)
            and all(isinstance(a, str) for a in record["argv"]) and isinstance(record.get("signature"), dict)):
        raise RunError(f"{path}: not a convis run record (expected an object with 'argv' and 'signature')")
    return record


def resume_argv(folder: str, extra: list[str]) -> list[str]:
    """The command line that continues ``folder``: its stored arguments, then ``extra``. A finished run, or one that
    kept no journal, is refused."""
    path = Path(folder).expanduser()
    record = read_record(path)
    if record.get("finished"):
        raise RunError(f"--resume {folder}: this run finished on {record['finished']} (its results are in the "
                       "folder): nothing to continue; run the command without --resume for a new run")
    if not record["signature"].get("journal"):
        raise RunError(f"--resume {folder}: this run kept no journal of its answers (--no-journal, or a model the "
                       "journal cannot wrap): nothing to continue; run the command again for a new run")
    return [*record["argv"], *extra]


# --- the signature and the journal ----------------------------------------------------------------------------------

def signature(args: argparse.Namespace, tasks: list[str], passthrough: list[str], data_dir: Path) -> dict:
    """What the answers of a run depend on: two commands with the same signature continue each other's runs."""
    return {"model": args.model, "model_args": args.model_args or "", "tasks": list(tasks),
            "include_path": args.include_path or "", "lmms_eval_options": list(passthrough),
            "data": str(Path(data_dir).expanduser().resolve()), "journal": bool(args.journal),
            "cwd": os.getcwd()}  # relative paths in the command mean something else elsewhere


def _model_classes(model: str) -> tuple[str | None, str | None]:
    """(simple class path, chat class path) lmms-eval has for ``model``; (None, None) when it has none."""
    from lmms_eval.models import MODEL_REGISTRY_V2  # the harness, only when a run is planned

    try:
        manifest = MODEL_REGISTRY_V2.get_manifest(model)
    except Exception:  # noqa: BLE001 - an unknown name; preflight has reported it
        return None, None
    return manifest.simple_class_path, manifest.chat_class_path


def _names_model(include: str, model: str) -> str | None:
    """A task YAML under ``include`` that gives ``model`` settings by name (``<model>:`` as a key), else None."""
    pattern = re.compile(rf"^\s*{re.escape(model)}\s*:", re.MULTILINE)
    for root, _, files in os.walk(include):
        for name in sorted(files):
            if name.endswith(("yaml", "yml")):
                try:
                    text = Path(root, name).read_text(encoding="utf-8", errors="replace")
                except OSError:
                    continue
                if pattern.search(text):
                    return str(Path(root, name))
    return None


def journal_refusal(model: str, model_args: str | None, passthrough: list[str], include: str,
                    folder: Path) -> str | None:
    """Why this run's answers cannot be journaled by wrapping the model, or None when they can."""
    taken = sorted(set(parse_model_args(model_args)) & set(JOURNALING_ARGS))
    if taken:
        return f"its --model_args set {', '.join(taken)}, which the journal wrapper takes itself"
    simple, chat = _model_classes(model)
    if chat is not None and (simple is None or "--force_simple" not in passthrough):
        return (f"lmms-eval runs {model} through its chat class, which the journal cannot wrap"
                + (" (--force_simple runs its simple class, which it can)" if simple is not None else ""))
    if (named := _names_model(include, model)) is not None:
        return f"{named} gives {model} its own settings by name, which a wrapped model would not get"
    if re.search(r"[,=]", str(folder)):
        return f"the run folder's path {folder} holds ',' or '=', which --model_args cannot carry"
    return None


# --- the record ------------------------------------------------------------------------------------------------------

def _write_record(folder: Path, record: dict) -> None:
    path = folder / RECORD_NAME
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(dumps(record, indent=2) + "\n", encoding="utf-8")
    os.replace(temporary, path)


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


def _lock(folder: Path) -> FileLock | None:
    """The folder's run lock, held; None when another run holds it."""
    lock = FileLock(str(folder / LOCK_NAME))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        return None
    return lock


def _unfinished(output: Path, wanted: dict) -> list[Path]:
    """The run folders under ``output`` with this signature that did not finish, newest first."""
    found = []
    folders = sorted(p for p in output.iterdir() if p.is_dir()) if output.is_dir() else []
    for folder in folders:
        try:
            record = read_record(folder)
        except RunError:
            continue  # not a run of convis run (or not one it can read): never continued
        if record["signature"] == wanted and not record.get("finished"):
            found.append((str(record.get("started", "")), folder.name, folder))
    return [folder for *_, folder in sorted(found, reverse=True)]


def _keep_old_log(folder: Path) -> None:
    """The previous attempt's harness log becomes ``lmms_eval.attempt<k>.log``."""
    log = folder / LOG_NAME
    if log.exists():
        k = 1
        while (folder / f"lmms_eval.attempt{k}.log").exists():
            k += 1
        log.rename(folder / f"lmms_eval.attempt{k}.log")


def plan_run(args: argparse.Namespace, argv: list[str], tasks: list[str], passthrough: list[str], include: str,
             output: Path, data_dir: Path, resume: str | None = None) -> RunPlan:
    """Choose the run folder (``resume``, an unfinished run of the same command, or a new one) and the model line.

    The folder's lock is held by the returned plan (released when the process ends)."""
    wanted = signature(args, tasks, passthrough, data_dir)
    folder = lock = None
    if resume is not None:
        folder = Path(resume).expanduser()
        stored = read_record(folder)["signature"]
        if stored.get("cwd") != wanted["cwd"]:
            raise RunError(f"--resume {resume}: the run was started in {stored.get('cwd')}, and its command may name "
                           f"paths relative to there: cd {stored.get('cwd')} and run convis run --resume again")
        changed = sorted(k for k in set(stored) | set(wanted) if stored.get(k) != wanted.get(k))
        if changed:
            raise RunError(f"--resume {resume}: the options given change the stored command's "
                           + ", ".join(f"{k} ({stored.get(k)!r} -> {wanted.get(k)!r})" for k in changed)
                           + "; --resume continues the stored command as it was")
        if (lock := _lock(folder)) is None:
            raise RunError(f"--resume {resume}: a run is in progress in this folder ({folder / LOCK_NAME} is held)")
    elif args.journal:
        for candidate in _unfinished(output, wanted):
            if (lock := _lock(candidate)) is not None:
                folder = candidate
                break
    continued = folder is not None
    if folder is None:
        folder = new_run_folder(output, args.model)
        lock = _lock(folder)
    plan = RunPlan(folder, args.model, args.model_args, None, continued, wanted, list(argv), lock=lock)
    if args.journal and args.model == JOURNALING_MODEL:
        journal = parse_model_args(args.model_args).get("journal")
        plan.journal = Path(journal) if journal else None
    elif args.journal:
        why = journal_refusal(args.model, args.model_args, passthrough, include, folder.resolve())
        if why is None:
            plan.journal = folder.resolve() / JOURNAL_NAME
            plan.model = JOURNALING_MODEL
            plan.model_args = f"inner={args.model},journal={plan.journal}" + (
                f",{args.model_args}" if args.model_args else "")
        else:
            plan.notes.append(f"answers are not journaled: {why}; an interrupted run cannot be continued")
    if continued:
        kept = count_answers(plan.journal) if plan.journal is not None else 0
        how = "with its stored command" if resume is not None else "(same model, model_args, tasks and options)"
        plan.notes.insert(0, f"continuing the unfinished run in {folder} {how}: {kept} answers in its journal")
        _keep_old_log(folder)
    return plan


def record_start(plan: RunPlan, command: list[str]) -> None:
    """Write (or, continuing, update) the run's record before lmms-eval starts."""
    path = plan.folder / RECORD_NAME
    record = strict_load_file(str(path), RunError) if plan.continued and path.is_file() else {
        "format": RECORD_FORMAT, "argv": plan.argv, "signature": plan.signature, "started": _now(), "attempts": 0}
    record["signature"]["journal"] = plan.journal is not None and record["signature"].get("journal", True)
    record.update(attempts=int(record.get("attempts", 0)) + 1, journal=str(plan.journal) if plan.journal else None,
                  lmms_eval_command=command, finished=None)
    _write_record(plan.folder, record)


def record_finished(plan: RunPlan) -> None:
    """Mark the run finished (its results are written): it is never continued again."""
    record = strict_load_file(str(plan.folder / RECORD_NAME), RunError)
    record["finished"] = _now()
    _write_record(plan.folder, record)
