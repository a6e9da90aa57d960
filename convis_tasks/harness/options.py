"""The options ``convis run`` passes to lmms-eval, checked before any model loads.

lmms-eval 0.7.3 reads some options only after the model has loaded (``--reasoning_tags``, ``--batch_size``, the
values of ``--gen_kwargs``), reports others as a traceback and then exits 0 (``--limit -2``, a malformed
``--gen_kwargs``), and silently misreads a few:

* a fraction ``--limit`` (``0 < limit < 1``) becomes a count for the FIRST task and that count is then used for
  every other task (``evaluator.evaluate`` overwrites ``limit`` with ``get_sample_size(task, limit)`` in its loop
  over the tasks), so tasks of different sizes do not each get that fraction;
* ``--limit 0`` runs every document (a limit of 0 counts as none);
* ``--limit 2.5`` runs 2 documents.

:func:`option_problems` reads the whole command line with lmms-eval's own parser (types, choices, unknown options)
and then checks those cases, each a :class:`~convis_tasks.reading.datafolder.Problem` naming the option. A fraction
with several tasks is refused (naming the tasks and their sizes) unless the tasks have the same number of documents,
where the one count is right for all.
"""

from __future__ import annotations

import argparse
import math
import re
import sys

from convis_tasks.harness.clips import task_documents
from convis_tasks.reading.datafolder import Problem
from convis_tasks.harness.tasks import TaskInfo

_BATCH = re.compile(r"auto(:[1-9]\d*)?|[1-9]\d*")
_GEN_INTEGERS = ("max_new_tokens", "num_beams", "top_k")
_GEN_NUMBERS = ("temperature", "top_p", "repetition_penalty")


class _Refused(Exception):
    """lmms-eval's parser refused the command line (its message)."""


def lmms_eval_parser() -> argparse.ArgumentParser:
    """lmms-eval's own command-line parser, whose errors raise instead of exiting.

    ``lmms_eval.__main__.parse_eval_args`` builds the parser and parses ``sys.argv``; it is given an empty command
    line for the time of the call."""
    from lmms_eval import __main__ as lmms_cli  # the harness: only when a run is checked

    saved = sys.argv
    sys.argv = saved[:1] or ["lmms-eval"]
    try:
        parser, _ = lmms_cli.parse_eval_args()
    finally:
        sys.argv = saved

    def refuse(message: str):
        raise _Refused(message)

    parser.error = refuse  # type: ignore[method-assign]
    return parser


def parse_lmms_eval(argv: list[str]) -> tuple[argparse.Namespace | None, list[Problem]]:
    """lmms-eval's reading of ``argv`` (its command line, less the launcher), or the problem it would report."""
    try:
        return lmms_eval_parser().parse_args(argv), []
    except _Refused as exc:
        return None, [Problem(f"lmms-eval refuses the options: {exc}", "see `python -m lmms_eval --help`")]


def task_sizes(tasks: list[TaskInfo]) -> dict[str, int] | None:
    """The number of documents of each task (None when a task is not a ConViS one, or its data cannot be read:
    preflight reports that)."""
    sizes = {}
    for task in tasks:
        if task.kind not in ("pair", "retrieval"):
            return None
        try:
            sizes[task.name] = len(task_documents(task.kind, task.concept))
        except Exception:  # noqa: BLE001 - the data folder's own problem, found and named by preflight
            return None
    return sizes


def limit_problems(limit: float | None, offset: int, tasks: list[TaskInfo]) -> list[Problem]:
    """What lmms-eval would misread in ``--limit`` / ``--offset`` (module docstring)."""
    problems = []
    if offset < 0:
        problems.append(Problem(f"--offset {offset} is negative", "give the index of the first document, 0 or more"))
    if limit is None or limit == -1:
        return problems
    if limit < 0:
        problems.append(Problem(f"--limit {limit:g} is negative", "give a number of documents per task (or -1: all)"))
    elif limit == 0:
        problems.append(Problem("--limit 0 would run every document (lmms-eval 0.7.3 reads 0 as no limit)",
                                "omit --limit to run everything, or give a number of documents per task"))
    elif limit >= 1 and limit != math.floor(limit):
        problems.append(Problem(f"--limit {limit:g} is neither a whole number of documents nor a fraction below 1 "
                                f"(lmms-eval would run {math.floor(limit)})", "give a whole number, e.g. "
                                                                             f"--limit {math.floor(limit)}"))
    elif limit < 1 and len(tasks) > 1:
        sizes = task_sizes(tasks)
        if sizes is None or len(set(sizes.values())) > 1:
            listed = (", ".join(f"{n}: {s} documents" for n, s in sizes.items()) if sizes else
                      ", ".join(t.name for t in tasks) + "; their sizes are unknown")
            problems.append(Problem(
                f"--limit {limit:g} is a fraction, which lmms-eval 0.7.3 turns into a count for the first task it "
                f"builds and then uses as the count of every other task, but these tasks differ in size ({listed})",
                "give a number of documents per task (e.g. --limit 5), or run each task on its own with the fraction"))
    return problems


def gen_kwargs_problems(gen_kwargs: str | None) -> list[Problem]:
    """``--gen_kwargs`` read as lmms-eval reads it (``key=value,...``), and the values every model reads as numbers."""
    if not gen_kwargs:
        return []
    from lmms_eval.utils import simple_parse_args_string  # lmms-eval's own reading of the option

    fix = "write key=value pairs separated by commas, e.g. --gen_kwargs max_new_tokens=8,temperature=0"
    try:
        values = simple_parse_args_string(gen_kwargs)
    except ValueError:
        return [Problem(f"--gen_kwargs {gen_kwargs!r} is not a list of key=value pairs", fix)]
    problems = []
    shown = lambda v: f"{v:g}" if isinstance(v, float) else str(v)  # noqa: E731 - as typed: -1, not -1.0
    if "" in values:
        problems.append(Problem(f"--gen_kwargs {gen_kwargs!r} has a value without a key", fix))
    for key in _GEN_INTEGERS:
        value = values.get(key)
        if key in values and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            problems.append(Problem(f"--gen_kwargs {key}={shown(value)} is not a whole number of at least 1", fix))
    for key in _GEN_NUMBERS:
        value = values.get(key)
        if key in values and (isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0
                              or not math.isfinite(value)):
            problems.append(Problem(f"--gen_kwargs {key}={shown(value)} is not a number of at least 0", fix))
    return problems


def option_problems(model: str, model_args: str | None, names: list[str], include: str, passthrough: list[str],
                    tasks: list[TaskInfo]) -> list[Problem]:
    """Every problem lmms-eval would report (or not) about the options of ``convis run``, found before the run."""
    from lmms_eval.api.reasoning import parse_reasoning_tags_config
    from lmms_eval.utils import simple_parse_args_string

    argv = ["--model", model, "--tasks", ",".join(names), "--include_path", include, "--output_path", "."]
    if model_args:
        argv += ["--model_args", model_args]
    args, problems = parse_lmms_eval(argv + list(passthrough))
    if args is None:
        return problems
    try:
        if "" in simple_parse_args_string(model_args or ""):
            raise ValueError
    except ValueError:
        problems.append(Problem(f"--model_args {model_args!r} is not a list of key=value pairs",
                                "write key=value pairs separated by commas, e.g. pretrained=org/name,device=cpu"))
    problems += limit_problems(args.limit, args.offset, tasks) + gen_kwargs_problems(args.gen_kwargs)
    if not _BATCH.fullmatch(str(args.batch_size).strip()):
        problems.append(Problem(f"--batch_size {args.batch_size!r} is not auto, auto:N or a whole number N >= 1",
                                "e.g. --batch_size 1"))
    if args.max_batch_size is not None and args.max_batch_size < 1:
        problems.append(Problem(f"--max_batch_size {args.max_batch_size} is below 1", "omit it, or give N >= 1"))
    try:
        parse_reasoning_tags_config(cli_value=args.reasoning_tags)
    except ValueError as exc:  # json.JSONDecodeError is a ValueError
        problems.append(Problem(f"--reasoning_tags {args.reasoning_tags!r} is not JSON ({exc})",
                                "e.g. --reasoning_tags '[[\"<think>\", \"</think>\"]]', or none"))
    if args.fewshot_as_multiturn and args.apply_chat_template is False:  # lmms-eval's own two rules, which it
        problems.append(Problem("--fewshot_as_multiturn needs --apply_chat_template"))  # reports as a traceback
    if args.fewshot_as_multiturn and not args.num_fewshot:
        problems.append(Problem("--fewshot_as_multiturn needs --num_fewshot above 0"))
    return problems
