"""Scoring a ``--predict_only`` run: the ConViS records that lmms-eval 0.7.3 leaves out in that mode, filled in.

With ``--predict_only`` lmms-eval replaces every task's metrics by ``bypass`` and never calls the task's
``process_results`` hook, so each logged sample holds the answer (``filtered_resps``), the document's index
(``doc_id``) and the text of ``doc_to_target``, but not the per-pair record that every reader scores
(:mod:`convis_tasks.reading.predictions`). :func:`complete_run` adds it:

1. Each task's documents are loaded again by the task's own loader (:func:`convis_tasks.harness.clips.task_documents`, over
   the data folder the run read) and put through ``datasets`` as the ``process_docs`` hook does.
2. A sample's document is the one at its ``doc_id``, and only if it is the one that was answered: its
   ``doc_to_target`` text (the pair or anchor/candidate and its human scores) must equal the logged ``target``;
   any difference is an error naming the file and line (the data folder changed since the run), never a guess.
3. The record is made by the task's own ``process_results`` hook from the logged answer, as lmms-eval would have
   called it (``ConfigurableTask.process_results`` strips a generated answer; the ``*_expected`` tasks get the
   five logged log-likelihood responses as they are), and added to the sample under the task's metric names.
4. Each file is rewritten atomically, every other field of every line kept; a sample that already carries its
   record is left as it is, so completing twice changes nothing.

The folder then reads as a full run's: ``convis correlate``, ``retrieval``, ``report`` and ``submit`` score it with
the same numbers. ``convis run --predict_only`` does this itself; ``convis complete FOLDER`` does it for a plain
``lmms-eval --predict_only`` run.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path
from typing import Callable

from convis_tasks import hooks, task_path
from convis_tasks.harness.clips import task_documents
from convis_tasks.console import say
from convis_tasks.reading.jsonio import dumps, strict_jsonl_objects
from convis_tasks.reading.predictions import PredictionError
from convis_tasks.reading.runs import find_runs, predict_only_samples
from convis_tasks.harness.tasks import TaskInfo, task_index

PREDICT_ONLY = "--predict_only"


def asks_predict_only(argv: list[str]) -> bool:
    """Whether the options passed to lmms-eval include ``--predict_only``."""
    return PREDICT_ONLY in argv


def _has_record(sample: dict) -> bool:
    return any(isinstance(v, dict) and v.get("kind") in ("pair", "retrieval") for v in sample.values())


def _task_hooks(task: TaskInfo) -> tuple[Callable[[dict], str], Callable[[dict, list], dict]]:
    """The task's ``doc_to_target`` and ``process_results`` hooks (those its YAML template names)."""
    target = hooks.retrieval_doc_to_target if task.kind == "retrieval" else hooks.doc_to_target
    if task.scoring == "expected":
        return target, hooks.process_expected_results
    return target, hooks.process_retrieval_results if task.kind == "retrieval" else hooks.process_results


def logged_results(sample: dict, task: TaskInfo, where: str) -> list:
    """What lmms-eval would have handed ``process_results`` for this sample.

    A generated answer is logged as its text (one request per document): the hook gets ``[text.strip()]``, as
    lmms-eval 0.7.3's ``ConfigurableTask.process_results`` strips it. An ``*_expected`` task logs the five
    log-likelihood responses as a list of their texts, which is what the hook gets."""
    responses = sample.get("filtered_resps")
    if task.scoring == "expected":
        if not isinstance(responses, list):
            raise PredictionError(f"{where}: field 'filtered_resps' should list the five log-likelihood responses")
        return responses
    if not isinstance(responses, str):
        raise PredictionError(f"{where}: field 'filtered_resps' is not one answer text ({type(responses).__name__})")
    return [responses.strip()]


def complete_samples(path: str, task: TaskInfo) -> int:
    """Add the ConViS records to one task's samples file (module docstring); returns how many were added."""
    import datasets  # the documents go through datasets, as lmms-eval hands them to process_results

    docs = datasets.Dataset.from_list(task_documents(task.kind, task.concept))
    target_of, process = _task_hooks(task)
    lines, added = [], 0
    for _, where, sample in strict_jsonl_objects(path, PredictionError, "sample log", " (one lmms-eval sample)",
                                                 allow_nonfinite=True):
        if not _has_record(sample):
            doc_id = sample.get("doc_id")
            if not isinstance(doc_id, int) or isinstance(doc_id, bool) or not 0 <= doc_id < len(docs):
                raise PredictionError(f"{where}: field 'doc_id' = {doc_id!r} is not a document of {task.name} "
                                      f"({len(docs)} documents in the data folder)")
            doc = docs[doc_id]
            expected = str(target_of(doc))
            if sample.get("target") != expected:
                raise PredictionError(f"{where}: the logged target {sample.get('target')!r} is not that of document "
                                      f"{doc_id} of {task.name} in the data folder ({expected!r}): the run read "
                                      "another data folder (set $CONVIS_DATA_DIR to it), or was made by an older "
                                      "convis; nothing was changed")
            sample.update(process(doc, logged_results(sample, task, where)))
            added += 1
        lines.append(dumps(sample) + "\n")
    if added:
        folder = os.path.dirname(os.path.abspath(path))
        handle = tempfile.NamedTemporaryFile("w", encoding="utf-8", dir=folder, prefix=".convis-", delete=False)
        try:
            with handle:
                handle.writelines(lines)
            os.replace(handle.name, path)
        finally:
            if os.path.exists(handle.name):
                os.unlink(handle.name)
    return added


def complete_run(folder: str | os.PathLike, tasks: list[TaskInfo]) -> list[str]:
    """Complete every ``--predict_only`` samples file of ``tasks`` under ``folder``; one note per file completed.

    Each file is checked whole before it is rewritten; a problem stops at that file (those before it are complete,
    it and the rest untouched), and a second call after the fix completes the rest."""
    by_name = {t.name: t for t in tasks if t.kind in ("pair", "retrieval")}
    notes = []
    for run in find_runs(str(folder)):
        for name, path in sorted(run.samples.items()):
            task = by_name.get(name)
            if task is not None and predict_only_samples(path):
                added = complete_samples(path, task)
                notes.append(f"{name}: the ConViS records of {added} --predict_only sample(s) added to {path}")
    return notes


def complete_command(args: argparse.Namespace) -> int:
    """``convis complete FOLDER``: add the ConViS records to the samples of a ``lmms-eval --predict_only`` run."""
    index = task_index(args.include_path or task_path())
    notes = complete_run(Path(args.folder).expanduser(), list(index.values()))
    for note in notes or [f"{args.folder}: no --predict_only samples of a ConViS task to complete"]:
        say(note)
    return 0
