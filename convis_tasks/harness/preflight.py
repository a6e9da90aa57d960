"""Preflight: everything that would make a run fail, found before any model loads; cheap checks first."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from convis_tasks.errors import ConvisError
from convis_tasks.reading.annotations import load_ground_truth
from convis_tasks.reading.datafolder import DOWNLOAD_HINT, PAIR_FILE, DataNotFoundError, Problem, resolve_rankings
from convis_tasks.reading.documents import load_documents, load_retrieval_documents
from convis_tasks.reading.rankings import load_rankings
from convis_tasks.reading.runs import parse_model_args
from convis_tasks.report.submission import guess_size, parse_args_pretrained
from convis_tasks.video.decode import header_problem
from convis_tasks.model_wrappers.manifest import expected_scoring_problem
from convis_tasks.model_wrappers.manifest import reads_videos as model_reads_videos
from convis_tasks.console import say
from convis_tasks.harness.doctor import WARN, check_cache, check_decoders, check_filelock, model_checks, write_probe
from convis_tasks.harness.fetch import check_data_reachable, ensure_data
from convis_tasks.video.prefetch import WORKERS_ENV, default_workers
from convis_tasks.harness.tasks import TaskInfo


def _data_problem(exc: Exception) -> Problem:
    if isinstance(exc, DataNotFoundError):  # $CONVIS_DATA_DIR or the argument names a folder without the pair file
        return Problem(str(exc), DOWNLOAD_HINT)
    return Problem(str(exc))  # the fetch's own message names the dataset and command


def data_reachable_problems() -> list[Problem]:
    """At once, before anything slow: a wrong ``$CONVIS_DATA_DIR``, or offline with no data in the cache
    (:func:`~convis_tasks.harness.fetch.check_data_reachable`), as :func:`check_data` says them."""
    try:
        check_data_reachable()
    except (ConvisError, OSError) as exc:
        return [_data_problem(exc)]
    return []


def check_data(tasks: list[TaskInfo], reads_videos: bool = True, data_dir: str | None = None) -> list[Problem]:
    """The inputs of ``tasks``: the data folder, the ground truth, the rankings, and every video they read.

    When no data folder is given and the Hugging Face cache has none, ConViS-Bench is fetched here, once, before
    any rank starts (:func:`~convis_tasks.harness.fetch.ensure_data`); offline with an empty cache that is one
    problem naming the dataset and ``convis data fetch``. With ``reads_videos=False`` (caption-only models) the
    annotation files are checked and the videos are not.
    It uses the loaders of :mod:`convis_tasks.reading.documents`, which locate videos by the one rule
    (:func:`~convis_tasks.reading.datafolder.scan_videos`), and the one header probe.
    """
    try:
        root = ensure_data(data_dir)
    except (ConvisError, OSError) as exc:
        return [_data_problem(exc)]
    problems: list[Problem] = []
    if reads_videos:  # the probes below need PyAV: a broken install is a finding, not a crash
        problems += [Problem(f"{c.name}: {c.detail}", c.fix) for c in check_decoders() if c.blocks]
        if problems:
            return problems
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
    bad = [(path, why, where) for path, where in videos.items() if (why := header_problem(path))]
    for path, why, where in bad[:5]:
        problems.append(Problem(f"{where}: video {path} {why}", "replace the file with a readable copy"))
    if len(bad) > 5:
        problems.append(Problem(f"... and {len(bad) - 5} more unreadable videos"))
    return problems


def check_output(folder: Path) -> list[Problem]:
    """The output folder exists or can be made, and takes a file."""
    if (exc := write_probe(folder)) is not None:
        return [Problem(f"output folder {folder} is not writable: {exc}", "pass a writable --output_path")]
    return []


def preflight(tasks: list[TaskInfo], model: str, model_args: str | None, output: Path,
              check_model: bool = True) -> list[Problem]:
    """Everything that would make the run fail, found before any model loads; cheap checks first.

    The model's packages are imported (in a child process) only when the data and the output folder are fine,
    so that a wrong data folder is reported in seconds.
    """
    expected = [t.name for t in tasks if t.scoring == "expected"]
    if expected:  # the *_expected tasks need a model whose loglikelihood scores video (issue #20)
        if (why := expected_scoring_problem(model)) is not None:
            return [Problem(f"--model {model} cannot run {', '.join(expected)}: {why}",
                            f"run the greedy tasks ({', '.join(n.removesuffix('_expected') for n in expected)}) "
                            "with this model, or use a model of docs/models.md, 'Expected scores'")]
        mixed = sorted({t.name for t in tasks if t.scoring == "greedy" and f"{t.name}_expected" in expected})
        if mixed:  # one run folder would hold two scores per pair of a concept, which its readers refuse
            return [Problem(f"{', '.join(mixed)} and their *_expected tasks in one run: the run folder would hold "
                            "two scores per pair of a concept", "run the greedy and the expected tasks as two runs")]
    videos = model_reads_videos(model, model_args)
    problems = check_output(output) + check_data(tasks, reads_videos=videos)
    for check in [check_filelock()] + ([check_cache()] if videos else []):
        if check.blocks:
            problems.append(Problem(f"{check.name}: {check.detail}", check.fix))
    if problems:
        return problems
    for check in model_checks(model, model_args, import_module=check_model):
        if check.blocks:
            problems.append(Problem(f"{check.name}: {check.detail}", check.fix))
        elif check.status == WARN:
            say(f"warning: {check.name}: {check.detail} (fix: {check.fix})")
    return problems




def submission_problems(args: argparse.Namespace) -> list[Problem]:
    """The submission's file and required metadata that neither the options nor the model's name give (checked up
    front: a run must not end in a submission that cannot be written)."""
    if not args.submission:
        return []
    problems = []
    parent = Path(args.submission).expanduser().resolve().parent
    if not parent.is_dir():
        problems.append(Problem(f"--submission {args.submission}: folder {parent} does not exist",
                                "make the folder first, or pass a path in an existing one"))
    elif not os.access(parent, os.W_OK):
        problems.append(Problem(f"--submission {args.submission}: folder {parent} is not writable",
                                "pass a path in a writable folder"))
    if not args.size and not (guess_size(args.name) or guess_size(parse_args_pretrained(args.model_args))):
        problems.append(Problem("--submission needs the model's size, which its name does not say", "pass --size "
                                "(e.g. --size 7B; --size unknown for an API model)"))
    return problems


PATH_ARGS = ("pretrained", "captions", "journal", "gguf_file")  # model_args that may name a local file or folder


def model_path_problems(model_args: str | None) -> list[Problem]:
    """``--model_args`` values that name a local path (absolute, ``./``, ``../`` or ``~``; a caption folder always)
    that does not exist: found now, not after the model has loaded."""
    problems = []
    for key, value in parse_model_args(model_args).items():
        if key not in PATH_ARGS or not value or key == "journal":
            continue
        local = key == "captions" or value.startswith(("/", "./", "../", "~"))
        if local and not Path(value).expanduser().exists():
            problems.append(Problem(f"--model_args {key}={value}: no such file or folder",
                                    "pass an existing path (or a hub id such as org/name for pretrained)"))
    return problems


def environment_problems() -> list[Problem]:
    """Settings read from the environment during the run, checked before it starts."""
    try:
        default_workers()
    except ValueError as exc:
        return [Problem(str(exc), f"unset {WORKERS_ENV} or set it to a whole number >= 0 (0: no background "
                                  "preparation)")]
    return []
