"""``--model convis_resumable``: any harness model, with every answer journaled as soon as it exists.

    --model convis_resumable --model_args inner=llava_onevision,journal=out/journal,pretrained=...,max_frames_num=16

A run that is interrupted (killed, pre-empted, out of memory) and started again with the same journal folder
re-uses every answer already given and computes only the rest; the metrics equal those of an uninterrupted run.
All model arguments but ``inner``, ``journal`` and ``chunk`` go to the inner model.

An answer is reused only when the prompt, the generation settings and the videos (path, size, modification time)
are those it was computed from; a stale answer is computed again (and counted on stderr), a corrupt journal line
is an error naming it (:mod:`convis_tasks.harness.journal`).
"""

from __future__ import annotations

import json
import sys

from lmms_eval.api.model import lmms

from convis_tasks.harness.journal import AnswerJournal, input_identity, request_key
from convis_tasks.reading.provenance import provenance

_FORWARDED = {"task_dict", "_rank", "_world_size", "accelerator"}


class ResumableModel(lmms):
    """Wraps a simple (non-chat) harness model; answers are written to ``journal`` request by request."""

    def __init__(self, inner: str, journal: str, chunk: int = 1, **inner_args) -> None:
        super().__init__()
        from lmms_eval.models import get_model

        inner_cls = get_model(inner, force_simple=True)
        object.__setattr__(self, "inner", inner_cls(**inner_args))
        self.inner.task_dict = self.task_dict  # the evaluator fills this very dict
        self.chunk = max(1, int(chunk))
        self._journal_dir = journal
        self._model_id = f"{inner}:{json.dumps(inner_args, sort_keys=True, default=str)}"
        self._journal: AnswerJournal | None = None

    def __setattr__(self, name, value):
        super().__setattr__(name, value)
        if name in _FORWARDED and "inner" in self.__dict__:
            setattr(self.inner, name, value)

    @property
    def device(self):
        return getattr(self.inner, "device", "cpu")

    def _key(self, request) -> tuple[str, str]:
        """(request key, input identity) of one request."""
        context, gen_kwargs, _, doc_id, task, split = request.args
        doc = self.task_dict[task][split][doc_id]
        videos = [doc.get("video1_path"), doc.get("video2_path")]
        return (request_key(task, split, doc_id, str(doc.get("pair_id", ""))),
                input_identity(context, gen_kwargs, videos, provenance()))

    def generate_until(self, requests) -> list[str]:
        if self._journal is None:
            self._journal = AnswerJournal(self._journal_dir, self._model_id, rank=self.rank)
        keys = [self._key(r) for r in requests]
        stale_before = self._journal.stale
        answers = [self._journal.get(k, inputs) for k, inputs in keys]
        todo = [i for i, a in enumerate(answers) if a is None]
        stale = self._journal.stale - stale_before
        print(f"convis_resumable (rank {self.rank}): {len(requests) - len(todo)} answers from {self._journal_dir}, "
              f"{len(todo)} to compute" + (f" ({stale} stale: their videos, prompt, settings or package versions changed)"
                                           if stale else ""), file=sys.stderr, flush=True)
        for start in range(0, len(todo), self.chunk):
            batch = todo[start:start + self.chunk]
            for i, answer in zip(batch, self.inner.generate_until([requests[j] for j in batch])):
                self._journal.put(keys[i][0], answer, keys[i][1])
                answers[i] = answer
        return answers

    def loglikelihood(self, requests):
        raise NotImplementedError("convis_resumable journals generation tasks only")

    def generate_until_multi_round(self, requests):
        raise NotImplementedError("convis_resumable journals generation tasks only")
