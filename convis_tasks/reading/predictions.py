"""Load model predictions: the authors' release format or this plugin's lmms-eval ``--log_samples`` output.

Read strictly (docs/faults.md): duplicate JSON keys, booleans, NaN/infinite numbers, self-pairs and pairs given
twice (also mirrored, ``A-B`` and ``B-A``) are errors naming file, entry and field. A release file holds scores on
ONE of two scales, decided per file:

* ``rating``: every value is ``0.0`` or lies in 1-5; ``0.0`` marks an answer the authors could not parse (their
  documented convention, kept as "unparsed").
* ``similarity``: every value lies in -1..1 (embedding cosines, probabilities; float32 rounding may overshoot 1 by
  up to 1e-4); ``0.0`` is then a value like any other.

A file fitting neither (``7``, ``-3``, ``1e308``, or ``0.5`` next to ``4``) is an error naming the first value off
the scale; a file fitting both in a way that changes the numbers (only ``0.0``/``1.0`` values) is an error too.
"""

from __future__ import annotations

import glob
import os
import re
from dataclasses import dataclass, field
from typing import Iterator, Sequence

from convis_tasks.reading.annotations import PairKey, check_pair, pair_key
from convis_tasks.concepts import CONCEPT_KEYS, canonical_concept
from convis_tasks.reading.jsonio import is_number, strict_jsonl_objects, strict_load_file
from convis_tasks.concepts import SCORE_MAX, SCORE_MIN
from convis_tasks.errors import EmptyEvaluationError, InputError

RELEASE_UNPARSED = 0.0  # the authors wrote 0.0 for an answer they could not parse
SCALE_RATING = "rating"
SCALE_SIMILARITY = "similarity"
SIMILARITY_SLACK = 1e-4  # float32 cosines of identical embeddings come out as 1.0000001


class PredictionError(InputError):
    """A prediction file is unreadable or malformed; the message names the file and the entry."""


class EmptyPredictionsError(PredictionError, EmptyEvaluationError):
    """A prediction file (or folder of sample logs) holds no prediction at all."""


def _on_rating_scale(value: float) -> bool:
    return value == RELEASE_UNPARSED or SCORE_MIN <= value <= SCORE_MAX


def _on_similarity_scale(value: float) -> bool:
    return -1.0 - SIMILARITY_SLACK <= value <= 1.0 + SIMILARITY_SLACK


def release_scale(values: Sequence[tuple[str, object]], path: str) -> str:
    """The scale of one release file's ``(where, value)`` scores: :data:`SCALE_RATING` or :data:`SCALE_SIMILARITY`.

    Every value must be a finite JSON number (not a bool). Raises :class:`PredictionError` naming the first value
    that is off both scales, or naming the file when it fits both and holds ``0.0`` (then "unparsed" and "zero
    similarity" would give different numbers).
    """
    for where, value in values:
        if not is_number(value):
            raise PredictionError(f"{where}: score {value!r} is not a number")
        if not -1e9 < value < 1e9:  # also keeps huge JSON integers away from float()
            raise PredictionError(f"{where}: score {value!r} is on no score scale (1-5, 0.0 = unparsed; or -1..1)")
    rating = all(_on_rating_scale(float(v)) for _, v in values)
    similarity = all(_on_similarity_scale(float(v)) for _, v in values)
    if rating and similarity and any(float(v) == RELEASE_UNPARSED for _, v in values):
        raise PredictionError(f"{path}: every score is 0.0 or 1.0, so the scale is ambiguous (0.0 = unparsed on "
                              "the 1-5 scale, a real zero on the -1..1 scale); refusing to guess")
    if rating:
        return SCALE_RATING
    if similarity:
        return SCALE_SIMILARITY
    off_rating = next((w, v) for w, v in values if not _on_rating_scale(float(v)))
    off_similarity = next((w, v) for w, v in values if not _on_similarity_scale(float(v)))
    raise PredictionError(f"{off_rating[0]}: score {off_rating[1]!r} is off the 1-5 rating scale (0.0 = unparsed) "
                          f"while {off_similarity[0]} has {off_similarity[1]!r}, off the -1..1 similarity scale; "
                          "one file holds one scale")


def release_value(value: object, scale: str) -> float | None:
    """A checked release score on its file's scale: ``None`` for the rating scale's 0.0 (unparsed)."""
    score = float(value)  # type: ignore[arg-type]
    return None if scale == SCALE_RATING and score == RELEASE_UNPARSED else score


def check_logged_score(score: object, where: str) -> float | None:
    """A score this plugin logged: ``None`` (unparsed) or a finite number in 1-5, never a bool."""
    if score is None:
        return None
    if not is_number(score) or not SCORE_MIN <= score <= SCORE_MAX:  # NaN fails the comparison too
        raise PredictionError(f"{where}: field 'score' = {score!r} is neither null (unparsed) nor a number 1-5")
    return float(score)


@dataclass
class Predictions:
    """Parsed per-pair scores per concept; ``None`` as a concept means "concept-free" (global) scores.

    A score of ``None`` is an answer that could not be parsed.
    """

    source: str
    scores: dict[str | None, dict[PairKey, float | None]] = field(default_factory=dict)
    answers: dict[str | None, dict[PairKey, str]] = field(default_factory=dict)
    scale: str = SCALE_RATING

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


def _video_field(row: dict, name: str, where: str) -> str:
    value = row.get(name)
    if not isinstance(value, str) or not os.path.basename(value):
        raise PredictionError(f"{where}: field {name!r} must name a video file, got {value!r}")
    return value


def load_release(path: str, concept: str | None = None) -> Predictions:
    """The release format: a JSON list of ``{video1, video2, similarity}`` on one scale (see the module doc)."""
    data = strict_load_file(path, PredictionError)
    if not isinstance(data, list):
        raise PredictionError(f"{path}: expected a JSON list of {{video1, video2, similarity}}")
    if not data:
        raise EmptyPredictionsError(f"{path}: holds no predictions (an empty list)")
    concept = concept if concept is not None else concept_from_path(path)
    keys: list[PairKey] = []
    values: list[tuple[str, object]] = []
    seen: dict[PairKey, str] = {}
    for index, row in enumerate(data):
        where = f"{path}, entry {index}"
        if not isinstance(row, dict) or not all(k in row for k in ("video1", "video2", "similarity")):
            raise PredictionError(f"{where}: expected fields video1, video2, similarity")
        key = pair_key(_video_field(row, "video1", where), _video_field(row, "video2", where))
        check_pair(key, where, seen, f"entry {index}", PredictionError)
        keys.append(key)
        values.append((f"{where}, field 'similarity'", row["similarity"]))
    scale = release_scale(values, path)
    table = {key: release_value(value, scale) for key, (_, value) in zip(keys, values)}
    return Predictions(source=path, scores={concept: table}, scale=scale)


def iter_log_records(path: str, kind: str) -> Iterator[tuple[str, dict]]:
    """Yield ``(where, record)`` for each ConViS record of ``kind`` (``"pair"`` or ``"retrieval"``) in this
    plugin's ``--log_samples`` output: one ``*_samples_<task>.jsonl`` file, or a folder of them.

    Samples of other tasks in the same folder are skipped; a line that is not JSON (or repeats a key) is an error
    naming it, and so is a sample whose metrics carry two different ConViS records.
    """
    for where, record, _ in iter_log_samples(path, kind):
        yield where, record


def iter_log_samples(path: str, kind: str) -> Iterator[tuple[str, dict, dict]]:
    """:func:`iter_log_records` with the whole lmms-eval sample too: ``(where, record, sample)`` (the sample
    holds what the harness logged beside the metrics, e.g. the rendered prompt under ``"input"``)."""
    files = [path] if os.path.isfile(path) else sorted(
        glob.glob(os.path.join(path, "**", "*samples_*.jsonl"), recursive=True))
    if not files:
        raise PredictionError(f"{path}: no lmms-eval '*_samples_*.jsonl' files found")
    for file in files:
        for _, where, sample in strict_jsonl_objects(file, PredictionError, "sample log", " (one lmms-eval sample)",
                                                     allow_nonfinite=True):
            records = [v for v in sample.values() if isinstance(v, dict) and v.get("kind") == kind]
            if any(r != records[0] for r in records[1:]):
                raise PredictionError(f"{where}: the sample's metrics carry different ConViS records; "
                                      "the log was edited or mixed")
            if records:
                yield where, records[0], sample


def load_log_samples(path: str) -> Predictions:
    """Pair-scoring predictions from this plugin's ``--log_samples`` output (a samples file or a folder)."""
    out = Predictions(source=path)
    seen: dict[str | None, dict[PairKey, str]] = {}
    for where, record in iter_log_records(path, "pair"):
        concept = record.get("concept")
        if concept is not None and concept not in CONCEPT_KEYS:
            raise PredictionError(f"{where}: field 'concept' = {concept!r} is not a ConViS concept key")
        key = pair_key(_video_field(record, "video1", where), _video_field(record, "video2", where))
        score = check_logged_score(record.get("score"), where)
        answer = record.get("answer", "")
        if not isinstance(answer, str):
            raise PredictionError(f"{where}: field 'answer' is not a string")
        table = out.scores.setdefault(concept, {})
        answers = out.answers.setdefault(concept, {})
        if key in table:  # padded ranks log a pair twice: tolerated only as an exact repeat
            if table[key] != score or answers[key] != answer:
                raise PredictionError(f"{where}: pair {key[0]} / {key[1]} of concept {concept} logged twice "
                                      f"with different answers ({table[key]} vs {score})")
            continue
        check_pair(key, where, seen.setdefault(concept, {}), where, PredictionError)
        table[key] = score
        answers[key] = answer
    if not out.scores:
        raise EmptyPredictionsError(f"{path}: no ConViS pair-scoring samples found")
    return out


def load_predictions(path: str) -> Predictions:
    """Detect the format: a folder or ``.jsonl`` is lmms-eval output, a ``.json`` list is the release format."""
    if not os.path.exists(path):
        raise PredictionError(f"{path}: predictions not found")
    if os.path.isdir(path) or path.endswith(".jsonl"):
        return load_log_samples(path)
    return load_release(path)
