"""Load model predictions: the authors' release format or this plugin's lmms-eval ``--log_samples`` output."""

from __future__ import annotations

import glob
import json
import math
import os
import re
from dataclasses import dataclass, field
from typing import Iterator

from .annotations import PairKey, pair_key
from .concepts import canonical_concept

RELEASE_UNPARSED = 0.0  # the authors wrote 0.0 for an answer they could not parse


class PredictionError(ValueError):
    """A prediction file is unreadable or malformed; the message names the file and the entry."""


@dataclass
class Predictions:
    """Parsed per-pair scores per concept; ``None`` as a concept means "concept-free" (global) scores.

    A score of ``None`` is an answer that could not be parsed.
    """

    source: str
    scores: dict[str | None, dict[PairKey, float | None]] = field(default_factory=dict)
    answers: dict[str | None, dict[PairKey, str]] = field(default_factory=dict)

    def for_concept(self, concept: str) -> dict[PairKey, float | None] | None:
        """The scores to correlate with ``concept``: its own, else the concept-free ones, else None."""
        if concept in self.scores:
            return self.scores[concept]
        return self.scores.get(None)


def concept_from_path(path: str) -> str | None:
    """Infer the concept from a release path such as ``Location/Model/Model_Location_similarities.json``."""
    parts = re.split(r"[\\/]", os.path.abspath(path))
    stem = os.path.basename(path)
    stem_match = re.search(r"_((?:Main_)?[A-Z][A-Za-z]+(?:_[A-Z][A-Za-z]+)*)_(?:similarities|ranking)\.json$", stem)
    candidates = ([stem_match.group(1)] if stem_match else []) + parts[-3:-1][::-1]
    for candidate in candidates:
        for piece in (candidate, candidate.split("_", 1)[-1]):
            try:
                return canonical_concept(piece)
            except ValueError:
                continue
    return None


def _release_score(value: object, where: str) -> float | None:
    try:
        score = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise PredictionError(f"{where}: 'similarity' is not a number: {value!r}") from None
    if score == RELEASE_UNPARSED or math.isnan(score):
        return None
    return score


def load_release(path: str, concept: str | None = None) -> Predictions:
    """The release format: a JSON list of ``{video1, video2, similarity}`` (``0.0`` = unparsed)."""
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, UnicodeDecodeError) as exc:
        raise PredictionError(f"{path}: cannot read predictions ({exc})") from None
    except json.JSONDecodeError as exc:
        raise PredictionError(f"{path}: invalid JSON ({exc.msg} at line {exc.lineno})") from None
    if not isinstance(data, list):
        raise PredictionError(f"{path}: expected a JSON list of {{video1, video2, similarity}}")
    concept = concept if concept is not None else concept_from_path(path)
    table: dict[PairKey, float | None] = {}
    for index, row in enumerate(data):
        where = f"{path}, entry {index}"
        if not isinstance(row, dict) or not all(k in row for k in ("video1", "video2", "similarity")):
            raise PredictionError(f"{where}: expected fields video1, video2, similarity")
        key = pair_key(row["video1"], row["video2"])
        score = _release_score(row["similarity"], where)
        if key in table and table[key] != score:
            raise PredictionError(f"{where}: pair {key[0]} / {key[1]} appears twice with different scores")
        table[key] = score
    return Predictions(source=path, scores={concept: table})


def iter_log_records(path: str, kind: str) -> Iterator[tuple[str, dict]]:
    """Yield ``(where, record)`` for each ConViS record of ``kind`` (``"pair"`` or ``"retrieval"``) in this
    plugin's ``--log_samples`` output: one ``*_samples_<task>.jsonl`` file, or a folder of them.

    Samples of other tasks in the same folder are skipped; a line that is not JSON is an error naming it.
    """
    files = [path] if os.path.isfile(path) else sorted(
        glob.glob(os.path.join(path, "**", "*samples_*.jsonl"), recursive=True))
    if not files:
        raise PredictionError(f"{path}: no lmms-eval '*_samples_*.jsonl' files found")
    for file in files:
        with open(file, encoding="utf-8") as handle:
            for lineno, line in enumerate(handle, 1):
                if not line.strip():
                    continue
                where = f"{file}, line {lineno}"
                try:
                    sample = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise PredictionError(f"{where}: invalid JSON ({exc.msg})") from None
                record = next((v for v in sample.values() if isinstance(v, dict) and v.get("kind") == kind), None)
                if record is not None:
                    yield where, record


def load_log_samples(path: str) -> Predictions:
    """Pair-scoring predictions from this plugin's ``--log_samples`` output (a samples file or a folder)."""
    out = Predictions(source=path)
    for where, record in iter_log_records(path, "pair"):
        concept = record.get("concept")
        key = pair_key(record["video1"], record["video2"])
        table = out.scores.setdefault(concept, {})
        score = record["score"]
        if key in table and table[key] != score:
            raise PredictionError(f"{where}: pair {key[0]} / {key[1]} of concept {concept} logged twice "
                                  f"with different scores ({table[key]} vs {score})")
        table[key] = score
        out.answers.setdefault(concept, {})[key] = str(record.get("answer", ""))
    if not out.scores:
        raise PredictionError(f"{path}: no ConViS pair-scoring samples found")
    return out


def load_predictions(path: str) -> Predictions:
    """Detect the format: a folder or ``.jsonl`` is lmms-eval output, a ``.json`` list is the release format."""
    if not os.path.exists(path):
        raise PredictionError(f"{path}: predictions not found")
    if os.path.isdir(path) or path.endswith(".jsonl"):
        return load_log_samples(path)
    return load_release(path)
