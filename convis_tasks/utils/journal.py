"""An append-only answer journal, so that an interrupted evaluation resumes without recomputing answers.

One JSON line per answered request, flushed and fsync'ed as it is written; each rank appends to its own file
in the journal folder, and a resumed run reads every file there (whatever the number of ranks). A torn last
line (the process was killed while writing it) is ignored; any other bad line is an error naming file and line.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os


class JournalError(ValueError):
    """The journal folder holds answers of another model or a malformed line."""


def request_key(task: str, split: str, doc_id: int, pair_id: str, context: str, gen_kwargs: dict) -> str:
    """Fingerprint of one request: task, document (and its pair), prompt and generation settings."""
    payload = json.dumps([task, split, doc_id, pair_id, context, gen_kwargs], sort_keys=True, default=str)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


class AnswerJournal:
    """Answers already computed, keyed by :func:`request_key`, for one model identity."""

    def __init__(self, folder: str | os.PathLike, model_id: str, rank: int = 0):
        self.folder = str(folder)
        self.model_id = model_id
        os.makedirs(self.folder, exist_ok=True)
        self.path = os.path.join(self.folder, f"answers.rank{rank}.jsonl")
        self.answers: dict[str, str] = {}
        for path in sorted(glob.glob(os.path.join(self.folder, "answers.rank*.jsonl"))):
            self._load(path)
        self._handle = None

    def _load(self, path: str) -> None:
        with open(path, encoding="utf-8") as handle:
            lines = handle.read().split("\n")
        for lineno, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                entry = json.loads(line)
            except json.JSONDecodeError:
                if lineno == len(lines):  # the last line, cut short by an interruption
                    continue
                raise JournalError(f"{path}, line {lineno}: malformed journal line") from None
            if entry.get("model") != self.model_id:
                raise JournalError(f"{path}, line {lineno}: answers of model {entry.get('model')!r}, "
                                   f"not {self.model_id!r}; use another journal folder")
            self.answers[entry["key"]] = entry["answer"]

    def __len__(self) -> int:
        return len(self.answers)

    def get(self, key: str) -> str | None:
        return self.answers.get(key)

    def put(self, key: str, answer: str) -> None:
        """Record one answer durably before returning."""
        if self._handle is None:
            if os.path.exists(self.path):  # drop a torn last line before appending after it
                with open(self.path, "rb+") as raw:
                    data = raw.read()
                    if data and not data.endswith(b"\n"):
                        raw.truncate(data.rfind(b"\n") + 1)
            self._handle = open(self.path, "a", encoding="utf-8")
        self._handle.write(json.dumps({"model": self.model_id, "key": key, "answer": answer}) + "\n")
        self._handle.flush()
        os.fsync(self._handle.fileno())
        self.answers[key] = answer

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None
