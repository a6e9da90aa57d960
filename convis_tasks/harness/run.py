"""``convis run`` as a library: check everything a run needs, run lmms-eval, and say plainly how it went.

1. Task names are matched case-insensitively against the ConViS tasks and groups (misspellings get suggestions).
2. Preflight, before any model loads (:mod:`.preflight`): the data folder and every video the tasks read (present,
   header readable), the rankings of retrieval tasks, the model's packages, the output folder.
3. lmms-eval runs in a child process (``--num_processes N`` starts N ranks through ``accelerate launch`` or
   ``torchrun``), with the task folder on its include path, into a new sub-folder of ``--output_path`` of its own;
   every answer is journaled there as it is computed, and an interrupted run (Ctrl-C: exit status 130) is continued
   by running the same command again or ``convis run --resume RUN`` (:mod:`.resume`).
4. The run failed if the child exited non-zero, wrote no results, or lacks a requested task (lmms-eval 0.7.3 exits 0
   when a task fails): then the exit status is 1 and the last line is the plugin's own message.
5. The correlation and retrieval tables are printed; ``--submission FILE`` also writes a leaderboard submission.
   A ``--predict_only`` run gets its ConViS records first (:mod:`.predict_only`); options lmms-eval would refuse or
   misread are found before the run (:mod:`.options`). A concept whose answers are all unparsed ends the command
   with exit status 1 after everything is written, unless ``--allow-unparsed``.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import shlex
import sys
import time
from pathlib import Path

from convis_tasks import task_path
from convis_tasks.errors import EXIT_INTERRUPTED, AllUnparsedError, RunError, RunFailed
from convis_tasks.reading.datafolder import PAIR_FILE, resolve_data_dir, resolve_rankings
from convis_tasks.report.submission import SubmissionError, build_from_run, write_submission
from convis_tasks.report.text import ambiguous_note, correlation_table, retrieval_table
from convis_tasks.scoring.evaluate import check_parsed, correlate, retrieve
from convis_tasks.harness.launch import (LOG_NAME, Progress, check_outcome, launcher_command, lmms_eval_command,
                                         stream)
from convis_tasks.harness.options import option_problems
from convis_tasks.harness.predict_only import asks_predict_only, complete_run
from convis_tasks.harness.resume import plan_run, record_finished, record_start, resume_argv, take_resume
from convis_tasks.harness.preflight import (data_reachable_problems, environment_problems, model_path_problems,
                                            preflight, submission_problems)
from convis_tasks.harness.tasks import TaskInfo, leaf_tasks, resolve_tasks, task_index

LAUNCHER_ENV = ("LOCAL_RANK", "RANK", "WORLD_SIZE")


def print_tables(folder: Path, tasks: list[TaskInfo], data_dir: Path, show: bool = True) -> list[dict]:
    """The correlation table (pair tasks) and the retrieval table (retrieval tasks) of one run folder, each
    followed by the identity of the data scored (published ConViS-Bench, a subset of it, or other data), printed
    when ``show``; returns their results (for the unparsed check)."""
    scored = []
    if any(t.kind == "pair" for t in tasks):
        pairs = correlate(str(folder), str(data_dir / PAIR_FILE))
        scored.append(pairs.results)
        if show:
            note = ambiguous_note(str(folder))
            print("\nCorrelation with the human means (x100)\n")
            print(correlation_table(pairs.results, data=pairs.data) + (f"\n\n{note}" if note else ""))
    if any(t.kind == "retrieval" for t in tasks):
        ranked = retrieve(str(folder), str(resolve_rankings(data_dir)))
        scored.append(ranked.results)
        if show:
            print("\nConcept-conditioned retrieval (x100), with the expected score of a random choice\n")
            print(retrieval_table(ranked.results, ranked.data))
    return scored


def write_submission_of(results: Path, path: str, overrides: dict) -> list[str]:
    """Write the run's leaderboard submission to ``path``; returns the builder's notes.

    Raises :class:`RunFailed` naming the ``convis submit`` command that finishes the job (the run is kept).
    """
    messages: list[str] = []
    try:
        doc = build_from_run(str(results), {k: v for k, v in overrides.items() if v}, messages)
        write_submission(doc, path)
    except (SubmissionError, OSError) as exc:
        raise RunFailed(f"the run succeeded ({results.parent}) but no submission was written: {exc}; then run "
                        f"`convis submit {results} -o {path} ...`") from None
    return messages


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
    p.add_argument("--no-journal", dest="journal", action="store_false",
                   help="do not journal the answers in the run folder (an interrupted run then cannot continue)")
    p.add_argument("--resume", metavar="RUN_FOLDER", default=None,
                   help="continue this interrupted run with its stored command (running the same command again "
                        "also continues the newest unfinished run of it)")
    p.add_argument("--allow-unparsed", dest="allow_unparsed", action="store_true",
                   help="exit 0 even when every answer of a concept is unparsed (by default: exit status 1, after "
                        "the tables)")
    return p


def _under_launcher() -> bool:
    try:
        return int(os.environ.get("WORLD_SIZE", "1")) > 1 or "LOCAL_RANK" in os.environ
    except ValueError:
        return True


def _say(text: str) -> None:
    print(f"convis run: {text}", file=sys.stderr, flush=True)


def execute(argv: list[str]) -> int:
    """``convis run``: 0 when every task ran; 2 for a problem found before the run; 1 when the run failed; 130 when
    interrupted (Ctrl-C), after a line saying how many answers the journal kept and how to continue."""
    resume, argv = take_resume(argv)
    if resume is not None:
        argv = resume_argv(resume, argv)
    args, passthrough = build_run_parser().parse_known_args(argv)
    if importlib.util.find_spec("lmms_eval") is None:
        raise RunError("convis run needs the harness: pip install -e '.[harness]' (lmms-eval 0.7.3)")
    if _under_launcher():
        raise RunError("convis run starts the ranks itself: run `convis run --num_processes N ...` "
                       "(not under accelerate launch or torchrun)")
    if args.num_processes < 1:
        raise RunError("--num_processes must be at least 1")
    try:
        shlex.split(args.launcher_args or "")
    except ValueError as exc:
        raise RunError(f"--launcher_args {args.launcher_args!r} is not a valid option string ({exc})") from None
    for opt in ("--tasks", "--output_path", "--include_path"):
        if any(a == opt or a.startswith(opt + "=") for a in passthrough):
            raise RunError(f"{opt} given twice")
    for problem in data_reachable_problems():  # offline with no data, or a wrong $CONVIS_DATA_DIR: said at once
        raise RunError(problem.line())
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
    problems = (option_problems(args.model, args.model_args, names, include, passthrough, tasks)
                + submission_problems(args) + environment_problems() + model_path_problems(args.model_args)
                + preflight(tasks, args.model, args.model_args, output, check_model=args.model_check))
    if problems:
        for problem in problems[:-1]:
            print(f"convis: error: {problem.line()}", file=sys.stderr)
        raise RunError(problems[-1].line())
    data_dir = resolve_data_dir()
    _say(f"preflight passed in {time.monotonic() - started:.1f} s: {len(tasks)} task(s) on {data_dir}")

    plan = plan_run(args, argv, names, passthrough, include, output, data_dir, resume)
    try:
        folder = plan.folder
        log_path = folder / LOG_NAME
        cmd = lmms_eval_command(launcher_command(args.num_processes, args.launcher, args.launcher_args), plan.model,
                                plan.model_args, names, include, folder, passthrough)
        for note in plan.notes:
            _say(note)
        _say("$ " + shlex.join(cmd))
        _say(f"run folder {folder}; harness log {log_path}")
        record_start(plan, cmd)
        try:
            code = stream(cmd, dict(os.environ), log_path, echo=not args.quiet,
                          progress=Progress() if args.quiet else None)
        except KeyboardInterrupt:
            _say(plan.interrupted_line())
            return EXIT_INTERRUPTED
        try:
            results = check_outcome(code, folder, tasks, log_path)
        except RunError as exc:
            _say(f"the run failed; the harness log is {log_path}")
            if (kept := plan.failed_line()) is not None:
                _say(kept)
            raise RunFailed(str(exc)) from None
        record_finished(plan)
        if asks_predict_only(passthrough):  # lmms-eval logged answers without records: add them (harness/predict_only)
            for note in complete_run(folder, tasks):
                _say(note)
        scored = print_tables(folder, tasks, data_dir, show=args.tables)
        if args.submission:
            for note in write_submission_of(results, args.submission, {"name": args.name, "size": args.size}):
                _say(note)
            _say(f"submission written to {args.submission}")
        for result in scored:  # every answer of a concept unparsed: exit status 1, after everything is written
            try:
                check_parsed(result, f"the run in {folder}", args.allow_unparsed)
            except AllUnparsedError as exc:  # a run that failed (convis demo keeps its folder)
                raise RunFailed(str(exc)) from None
        _say(f"done: results in {folder}")
        return 0
    finally:  # the run folder's lock is held for the run only
        if plan.lock is not None:
            plan.lock.release()


def run_command_line(args: argparse.Namespace) -> int:
    """``convis run``: RunError (2) and RunFailed (1) reach the command line's one error map with their status."""
    argv = list(args.run_args)
    if argv[:1] == ["--"]:
        argv = argv[1:]
    return execute(argv)
