"""An append-only answer journal, so that an interrupted evaluation resumes without recomputing answers.

One JSON line per answered request, flushed and fsync'ed as it is written; each rank appends to its own file
in the journal folder, and a resumed run reads every file there (whatever the number of ranks).

Each line is ``{"model", "key", "inputs", "answer", "sha256"}``:

* ``key`` names the request (:func:`request_key`: task, split, document, pair; for a log-likelihood request also
  the continuation it scores);
* ``inputs`` is the identity of everything the answer was computed from (:func:`input_identity`: the prompt, the
  generation settings, and each video's path, size and modification time);
* ``sha256`` is the checksum of the other four fields (:func:`entry_checksum`).

An entry whose ``inputs`` differ from the request's current ones is *stale* (a video or the prompt changed since):
it is never used, the answer is computed again and appended. A *corrupt* entry (checksum mismatch, e.g. an answer
edited by hand; a field missing or of the wrong type; valid JSON that is not an object; a duplicate key) is a
:class:`JournalError` naming file and line, and so are two different answers to the same key and inputs. A torn
last line (the process was killed while writing it: invalid JSON with no newline after it) is ignored and cut
before appending.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os

from convis_tasks.reading.jsonio import strict_loads
from convis_tasks.errors import InputError

ENTRY_FIELDS = ("model", "key", "inputs", "answer")


class JournalError(InputError):
    """The journal folder holds answers of another model, or a corrupt line (named by file and line)."""


def _digest(payload: object) -> str:
    text = json.dumps(payload, sort_keys=True, default=str, ensure_ascii=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def request_key(task: str, split: str, doc_id: int, pair_id: str, context: str = "", gen_kwargs: dict | None = None,
                continuation: str | None = None) -> str:
    """Name of one request: task, split, document and its pair, and for a log-likelihood request the
    ``continuation`` it scores (one request per answer "1".."5" of a document). ``context``/``gen_kwargs`` are
    accepted for compatibility and ignored: they belong to :func:`input_identity`, so that a change makes the entry
    stale."""
    parts: list = [task, split, doc_id, pair_id]
    return _digest(parts if continuation is None else parts + ["loglikelihood", continuation])


def file_identity(path: str | None) -> list:
    """``[path, size, mtime_ns]`` of a video (``[None]`` when there is none, ``[path, "missing"]`` when absent)."""
    if path is None:
        return [None]
    try:
        stat = os.stat(path)
    except OSError:
        return [str(path), "missing"]
    return [str(path), stat.st_size, stat.st_mtime_ns]


def input_identity(context: str, gen_kwargs: dict, videos: list[str | None], environment: dict | None = None,
                   visual: dict | None = None) -> str:
    """Digest of what an answer depends on: the prompt, the generation settings, the videos' identities and, when
    given, the package versions (:func:`convis_tasks.reading.provenance.provenance`: an answer journaled under other
    versions is then stale, recomputed and never mixed into the run) and the task's visual settings (``visual``: its
    ``lmms_eval_specific_kwargs``, e.g. frames per video, frame size, ``input``: a task YAML edited between two
    attempts makes the answers stale)."""
    payload = [context, gen_kwargs, [file_identity(v) for v in videos]]
    payload = payload if environment is None else payload + [environment]
    return _digest(payload if visual is None else payload + [{"visual": visual}])


def entry_checksum(model: str, key: str, inputs: str, answer: str) -> str:
    """Checksum of one journal entry's fields."""
    return _digest([model, key, inputs, answer])


def count_answers(folder: str | os.PathLike) -> int:
    """How many answers the journal folder holds: its complete lines (a torn last line is not an answer; the
    checks of :class:`AnswerJournal` run when a run reads the journal). 0 when the folder does not exist."""
    total = 0
    for path in glob.glob(os.path.join(str(folder), "answers.rank*.jsonl")):
        try:
            with open(path, "rb") as handle:
                total += sum(1 for line in handle if line.endswith(b"\n") and line.strip())
        except OSError:
            continue
    return total


class AnswerJournal:
    """Answers already computed, keyed by :func:`request_key` and checked against :func:`input_identity`, for one
    model identity. ``stale`` counts the entries found outdated by :meth:`get` (never used)."""

    def __init__(self, folder: str | os.PathLike, model_id: str, rank: int = 0):
        self.folder = str(folder)
        self.model_id = model_id
        os.makedirs(self.folder, exist_ok=True)
        self.path = os.path.join(self.folder, f"answers.rank{rank}.jsonl")
        self.answers: dict[str, dict[str, str]] = {}  # key -> inputs -> answer
        self._where: dict[tuple[str, str], str] = {}
        self.stale = 0
        for path in sorted(glob.glob(os.path.join(self.folder, "answers.rank*.jsonl"))):
            self._load(path)
        self._handle = None

    def _load(self, path: str) -> None:
        try:
            with open(path, encoding="utf-8") as handle:
                text = handle.read()
        except (OSError, UnicodeDecodeError) as exc:
            raise JournalError(f"{path}: cannot read the journal ({exc})") from None
        lines = text.split("\n")
        for lineno, line in enumerate(lines, 1):
            if not line.strip():
                continue
            where = f"{path}, line {lineno}"
            try:
                entry = strict_loads(line, where, JournalError)
            except JournalError as exc:
                if lineno == len(lines) and "invalid JSON" in str(exc):
                    continue  # the last line (no newline after it), cut short by an interruption
                raise
            if not isinstance(entry, dict):
                raise JournalError(f"{where}: corrupt journal line: valid JSON but not an object")
            if entry.get("model") != self.model_id and isinstance(entry.get("model"), str):
                raise JournalError(f"{where}: answers of model {entry.get('model')!r}, "
                                   f"not {self.model_id!r}; use another journal folder")
            bad = [f for f in (*ENTRY_FIELDS, "sha256") if not isinstance(entry.get(f), str)]
            if bad:
                raise JournalError(f"{where}: corrupt journal line: field(s) {bad} missing or not strings "
                                   "(a journal from an older version? move it away and run again)")
            if entry["sha256"] != entry_checksum(*(entry[f] for f in ENTRY_FIELDS)):
                raise JournalError(f"{where}: corrupt journal line: checksum mismatch (was the answer edited?); "
                                   "delete the line to recompute it")
            slot = self.answers.setdefault(entry["key"], {})
            known = slot.get(entry["inputs"])
            if known is not None and known != entry["answer"]:
                raise JournalError(f"{where}: a second, different answer to the request of "
                                   f"{self._where[(entry['key'], entry['inputs'])]}; delete one of the two")
            slot[entry["inputs"]] = entry["answer"]
            self._where.setdefault((entry["key"], entry["inputs"]), where)

    def __len__(self) -> int:
        return sum(len(slot) for slot in self.answers.values())

    def get(self, key: str, inputs: str = "") -> str | None:
        """The answer of ``key`` computed from exactly ``inputs``; ``None`` when absent or stale."""
        slot = self.answers.get(key)
        if not slot:
            return None
        if inputs not in slot:
            self.stale += 1
            return None
        return slot[inputs]

    def put(self, key: str, answer: str, inputs: str = "") -> None:
        """Record one answer durably before returning."""
        if self._handle is None:
            if os.path.exists(self.path):  # drop a torn last line before appending after it
                with open(self.path, "rb+") as raw:
                    data = raw.read()
                    if data and not data.endswith(b"\n"):
                        raw.truncate(data.rfind(b"\n") + 1)
            self._handle = open(self.path, "a", encoding="utf-8")
        entry = {"model": self.model_id, "key": key, "inputs": inputs, "answer": answer,
                 "sha256": entry_checksum(self.model_id, key, inputs, answer)}
        self._handle.write(json.dumps(entry) + "\n")
        self._handle.flush()
        os.fsync(self._handle.fileno())
        self.answers.setdefault(key, {})[inputs] = answer

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None

