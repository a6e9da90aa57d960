"""``--model convis_resumable``: any simple harness model, with every answer journaled as soon as it exists.

``convis run`` puts every model in this wrapper, with the journal in the run folder (``<run>/journal``), unless
``--no-journal`` is given; by hand:

    --model convis_resumable --model_args inner=llava_onevision,journal=out/journal,pretrained=...,max_frames_num=16

A run that is interrupted (Ctrl-C, killed, pre-empted, out of memory) and started again with the same journal folder
re-uses every answer already given and computes only the rest; the metrics equal those of an uninterrupted run.
All model arguments but ``inner``, ``journal`` and ``chunk`` go to the inner model.

The inner model is asked ``chunk`` requests at a time (default: its ``batch_size``, else 1) and each answer is
journaled when its chunk returns, so an interruption loses at most one chunk. Generation requests are journaled by
request (task, split, document, pair); log-likelihood requests (the ``*_expected`` tasks) by request and the
continuation they score, one document's requests per chunk (the one-pass adapters score them in one forward pass).
One progress bar counts every request of the call (the inner model's per-chunk bars are not shown), and one line
says how many answers came from the journal and how many are to compute.

An answer is reused only when the prompt, the generation settings and the videos (path, size, modification time)
are those it was computed from; a stale answer is computed again (and counted on stderr), a corrupt journal line
is an error naming it (:mod:`convis_tasks.harness.journal`).
"""

from __future__ import annotations

import contextlib
import json
import re
import sys
from collections.abc import Callable

from lmms_eval.api.instance import unwrap_generation_output
from lmms_eval.api.model import lmms
from tqdm import tqdm

from convis_tasks.console import note
from convis_tasks.harness.journal import AnswerJournal, JournalError, input_identity, request_key
from convis_tasks.model_wrappers.one_pass import group_requests
from convis_tasks.reading.jsonio import strict_loads
from convis_tasks.reading.provenance import provenance

_FORWARDED = {"task_dict", "_rank", "_world_size", "accelerator"}


class _HiddenBars:
    """A stand-in for stderr while the inner model answers one chunk: its progress bars (tqdm's carriage-return
    redraws, empty writes and cursor moves) are dropped; anything else passes through to ``target``."""

    _CURSOR_ONLY = re.compile(r"[\r\n]*(?:\x1b\[A)*")

    def __init__(self, target) -> None:
        self.target = target

    def write(self, text: str) -> int:
        if not text.startswith("\r") and not self._CURSOR_ONLY.fullmatch(text):
            self.target.write(text)
        return len(text)

    def flush(self) -> None:
        self.target.flush()

    def __getattr__(self, name):
        return getattr(self.target, name)


def _chunk_size(chunk, inner_args: dict) -> int:
    """``chunk=`` when given, else the inner model's whole-number ``batch_size``, else 1."""
    if chunk not in (None, ""):
        if not str(chunk).strip().isdigit():
            raise ValueError(f"convis_resumable: chunk={chunk!r} is not a whole number")
        return max(1, int(chunk))
    size = inner_args.get("batch_size")
    return max(1, int(size)) if size is not None and str(size).strip().isdigit() else 1


def _text(answer, model: str) -> str:
    """The text of one generation answer (lmms-eval accepts a string or a result object carrying one)."""
    text = answer if isinstance(answer, str) else unwrap_generation_output(answer)[0]
    if not isinstance(text, str):
        raise TypeError(f"convis_resumable: {model} answered a generation request with {type(answer).__name__}, "
                        "not text")
    return text


def _loglikelihood_text(answer, model: str) -> str:
    """``(log-likelihood, is greedy)`` as journal text: JSON, so a float reads back bit for bit."""
    if not (isinstance(answer, (tuple, list)) and len(answer) == 2):
        raise TypeError(f"convis_resumable: {model} answered a log-likelihood request with {answer!r}, not "
                        "(log-likelihood, is greedy)")
    return json.dumps([float(answer[0]), bool(answer[1])])


def _loglikelihood_value(text: str) -> tuple[float, bool]:
    value = strict_loads(text, "a journaled log-likelihood answer", JournalError, allow_nonfinite=True)
    if not (isinstance(value, list) and len(value) == 2 and isinstance(value[0], (int, float))
            and isinstance(value[1], bool)):
        raise JournalError(f"a journaled log-likelihood answer is {text!r}, not [log-likelihood, is greedy]")
    return float(value[0]), value[1]


def _visual_settings(request) -> dict | None:
    """The visual settings of a request's task: lmms-eval passes the task's bound ``doc_to_visual`` as the third
    argument, and the task holds its ``lmms_eval_specific_kwargs`` (frames per video, frame size, input form)."""
    task = getattr(request.args[2], "__self__", None) if len(request.args) > 2 else None
    settings = getattr(task, "lmms_eval_specific_kwargs", None)
    return dict(settings) if isinstance(settings, dict) else None


class ResumableModel(lmms):
    """Wraps a simple (non-chat) harness model; answers are written to ``journal`` chunk by chunk."""

    def __init__(self, inner: str, journal: str, chunk=None, **inner_args) -> None:
        super().__init__()
        from lmms_eval.models import get_model

        inner_cls = get_model(inner, force_simple=True)
        object.__setattr__(self, "inner", inner_cls(**inner_args))
        self.inner.task_dict = self.task_dict  # the evaluator fills this very dict
        self.chunk = _chunk_size(chunk, inner_args)
        self._inner_name = inner
        self._journal_dir = journal
        self._model_id = f"{inner}:{json.dumps(inner_args, sort_keys=True, default=str)}"
        self._journal: AnswerJournal | None = None

    def __setattr__(self, name, value):
        super().__setattr__(name, value)
        if name in _FORWARDED and "inner" in self.__dict__:
            setattr(self.inner, name, value)

    def __getattr__(self, name):
        """What the wrapper does not have is the inner model's (``accelerator``, ``chat_template``, ...): lmms-eval
        reads such attributes off the model it runs, and must find those of the model that answers."""
        inner = self.__dict__.get("inner")
        if inner is None or name.startswith("__"):
            raise AttributeError(name)
        return getattr(inner, name)

    @property
    def device(self):
        return getattr(self.inner, "device", "cpu")

    def clean(self) -> None:
        """Free the inner model's memory too (lmms-eval calls this once the requests are answered)."""
        self.inner.clean()
        super().clean()

    def _doc(self, request) -> tuple[dict, str, str, int]:
        *_, doc_id, task, split = request.args
        return self.task_dict[task][split][doc_id], task, split, doc_id

    def _key(self, request) -> tuple[str, str]:
        """(request key, input identity) of one generation request."""
        context, gen_kwargs = request.args[:2]
        doc, task, split, doc_id = self._doc(request)
        videos = [doc.get("video1_path"), doc.get("video2_path")]
        return (request_key(task, split, doc_id, str(doc.get("pair_id", ""))),
                input_identity(context, gen_kwargs, videos, provenance(), _visual_settings(request)))

    def _loglikelihood_key(self, request) -> tuple[str, str]:
        """(request key with its continuation, input identity) of one log-likelihood request."""
        context, continuation = request.args[:2]
        doc, task, split, doc_id = self._doc(request)
        if callable(continuation):  # output_type loglikelihood passes doc_to_target
            continuation = continuation(doc)
        videos = [doc.get("video1_path"), doc.get("video2_path")]
        return (request_key(task, split, doc_id, str(doc.get("pair_id", "")), continuation=str(continuation)),
                input_identity(context, {}, videos, provenance(), _visual_settings(request)))

    def _answer(self, kind: str, requests: list, keys: list[tuple[str, str]], chunks: Callable[[list[int]], list],
                encode: Callable, decode: Callable) -> list:
        """Journaled answers where they exist; the rest from the inner model, chunk by chunk, journaled at once."""
        if self._journal is None:
            self._journal = AnswerJournal(self._journal_dir, self._model_id, rank=self.rank)
        stale_before = self._journal.stale
        answers = [self._journal.get(k, inputs) for k, inputs in keys]
        todo = [i for i, a in enumerate(answers) if a is None]
        answers = [None if a is None else decode(a) for a in answers]
        stale = self._journal.stale - stale_before
        where = f" (rank {self.rank})" if self.world_size > 1 else ""
        note(f"{self._inner_name}{where}: {len(requests) - len(todo)} answers from the journal {self._journal_dir}, "
             f"{len(todo)} to compute"
             + (f" ({stale} stale: their videos, prompt, settings or package versions changed)" if stale else ""))
        bar = tqdm(total=len(requests), initial=len(requests) - len(todo), disable=self.rank != 0,
                   desc=f"{self._inner_name} answers")
        for batch in chunks(todo):
            with contextlib.redirect_stderr(_HiddenBars(sys.stderr)):
                out = list(getattr(self.inner, kind)([requests[j] for j in batch]))
            if len(out) != len(batch):
                raise RuntimeError(f"convis_resumable: {self._inner_name} gave {len(out)} answers to {len(batch)} "
                                   f"{kind} requests")
            for i, answer in zip(batch, out):
                text = encode(answer, self._inner_name)
                self._journal.put(keys[i][0], text, keys[i][1])
                answers[i] = decode(text)
            bar.update(len(batch))
        bar.close()
        return answers

    def _in_chunks(self, todo: list[int]) -> list[list[int]]:
        return [todo[start:start + self.chunk] for start in range(0, len(todo), self.chunk)]

    def generate_until(self, requests) -> list[str]:
        keys = [self._key(r) for r in requests]
        return self._answer("generate_until", requests, keys, self._in_chunks, _text, lambda text: text)

    def loglikelihood(self, requests) -> list[tuple[float, bool]]:
        keys = [self._loglikelihood_key(r) for r in requests]

        def by_document(todo: list[int]) -> list[list[int]]:  # a document's answers "1".."5" in one chunk
            groups = group_requests([(requests[i].args[0], *requests[i].args[-3:]) for i in todo])
            return [[todo[j] for j in group] for group in groups]

        return self._answer("loglikelihood", requests, keys, by_document, _loglikelihood_text, _loglikelihood_value)

    def generate_until_multi_round(self, requests):
        raise NotImplementedError("convis_resumable journals generation and log-likelihood requests only")
