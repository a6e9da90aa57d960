"""Load ConViS ground truth from any of the three shapes the authors released.

* ``ConVIS.jsonl`` (the Hugging Face release): one pair per line, ``video1``, ``video2`` and the
  per-concept mean rating under ``MainAction``, ``MainSubjects``, ``Location``, ``OrderOfActions``, ``MainObjects``.
* ``gt_conditioned_similarities.json``: a JSON list of ``{video1, video2, conditioned_similarity: {...}}``.
* ``vicos.user_inputs.json``: the raw ratings, one record per (annotator, pair); means are computed here.

Pairs are identified by the two video base names, in order (path prefixes differ between files).
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field

import numpy as np

from .concepts import CONCEPTS, CONCEPT_KEYS

PairKey = tuple[str, str]


class AnnotationError(ValueError):
    """A ground-truth file is unreadable or malformed; the message names the file, the row and the field."""


def pair_key(video1: str, video2: str) -> PairKey:
    """The identity of a pair: both video base names, in order."""
    return (os.path.basename(str(video1)), os.path.basename(str(video2)))


def split_pair_id(pair_id: str) -> PairKey:
    """Split the raw file's ``"<video1>-<video2>"`` id (video names end in an extension, e.g. ``.mp4``)."""
    for ext in (".mp4-", ".webm-", ".mkv-", ".avi-", ".mov-"):
        if ext in pair_id:
            left, right = pair_id.split(ext, 1)
            return (left + ext[:-1], right)
    if pair_id.count("-") == 1:
        left, right = pair_id.split("-")
        return (left, right)
    raise AnnotationError(f"cannot split video_pair_id {pair_id!r} into two video names")


@dataclass
class PairRecord:
    """One annotated pair: the paths as written in the file and the mean rating per concept key."""

    video1: str
    video2: str
    scores: dict[str, float]
    source: str = ""

    @property
    def key(self) -> PairKey:
        return pair_key(self.video1, self.video2)


@dataclass
class Rating:
    """One annotator's 1-5 rating of one pair on one concept."""

    annotator: str
    pair: PairKey
    concept: str
    value: float


@dataclass
class GroundTruth:
    """Mean human ratings of the pairs, in file order."""

    path: str
    pairs: list[PairRecord]
    ratings: list[Rating] = field(default_factory=list)

    def by_concept(self, concept: str) -> dict[PairKey, float]:
        """Pair key -> mean rating for one concept key (pairs without that concept are left out)."""
        return {p.key: p.scores[concept] for p in self.pairs if concept in p.scores}

    def __len__(self) -> int:
        return len(self.pairs)


def _check_score(value: object, where: str, field_name: str) -> float:
    try:
        score = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise AnnotationError(f"{where}: field {field_name!r} is not a number: {value!r}") from None
    if math.isnan(score) or not 1.0 <= score <= 5.0:
        raise AnnotationError(f"{where}: field {field_name!r} = {value!r} is outside the rating scale 1-5")
    return score


def _concept_scores(row: dict, where: str, key_attr: str = "gt_key") -> dict[str, float]:
    if not isinstance(row, dict):
        raise AnnotationError(f"{where}: expected an object with the concept scores, got {type(row).__name__}")
    scores = {}
    for concept in CONCEPTS:
        name = getattr(concept, key_attr)
        if name not in row:
            raise AnnotationError(f"{where}: missing concept score {name!r}")
        scores[concept.key] = _check_score(row[name], where, name)
    return scores


def _add_unique(pairs: list[PairRecord], seen: dict[PairKey, str], record: PairRecord, path: str) -> None:
    if record.key in seen:
        raise AnnotationError(
            f"{path}: duplicate pair {record.key[0]} / {record.key[1]} ({record.source} repeats {seen[record.key]})"
        )
    seen[record.key] = record.source
    pairs.append(record)


def _require_videos(row: dict, where: str) -> tuple[str, str]:
    for name in ("video1", "video2"):
        if not isinstance(row.get(name), str) or not row.get(name):
            raise AnnotationError(f"{where}: missing or empty field {name!r}")
    return row["video1"], row["video2"]


def _from_jsonl(path: str) -> GroundTruth:
    pairs: list[PairRecord] = []
    seen: dict[PairKey, str] = {}
    with open(path, encoding="utf-8") as handle:
        for lineno, line in enumerate(handle, 1):
            if not line.strip():
                continue
            where = f"{path}, line {lineno}"
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise AnnotationError(f"{where}: invalid JSON ({exc.msg})") from None
            if not isinstance(row, dict):
                raise AnnotationError(f"{where}: expected a JSON object")
            v1, v2 = _require_videos(row, where)
            scores = _concept_scores(row.get("conditioned_similarity", row), where)
            _add_unique(pairs, seen, PairRecord(v1, v2, scores, source=f"line {lineno}"), path)
    return GroundTruth(path=path, pairs=pairs)


def _from_mean_list(path: str, data: list) -> GroundTruth:
    pairs: list[PairRecord] = []
    seen: dict[PairKey, str] = {}
    for index, row in enumerate(data):
        where = f"{path}, entry {index}"
        if not isinstance(row, dict):
            raise AnnotationError(f"{where}: expected a JSON object")
        v1, v2 = _require_videos(row, where)
        scores = _concept_scores(row.get("conditioned_similarity", row), where)
        _add_unique(pairs, seen, PairRecord(v1, v2, scores, source=f"entry {index}"), path)
    return GroundTruth(path=path, pairs=pairs)


def _from_raw(path: str, data: list) -> GroundTruth:
    ratings: list[Rating] = []
    per_pair: dict[PairKey, dict[str, list[float]]] = {}
    for index, row in enumerate(data):
        where = f"{path}, entry {index}"
        if not isinstance(row, dict) or "video_pair_id" not in row:
            raise AnnotationError(f"{where}: missing field 'video_pair_id'")
        key = split_pair_id(str(row["video_pair_id"]))
        scores = _concept_scores(row.get("user_inputs"), f"{where} (pair {row['video_pair_id']})", "raw_key")
        annotator = str(row.get("user_id", f"anonymous-{index}"))
        bucket = per_pair.setdefault(key, {k: [] for k in CONCEPT_KEYS})
        for concept, value in scores.items():
            bucket[concept].append(value)
            ratings.append(Rating(annotator, key, concept, value))
    pairs = [
        # np.mean, as the authors computed the released means, so that the values agree bit for bit
        PairRecord(k[0], k[1], {c: float(np.mean(v)) for c, v in per.items()}, source="ratings")
        for k, per in per_pair.items()
    ]
    return GroundTruth(path=path, pairs=pairs, ratings=ratings)


def load_ground_truth(path: str | os.PathLike) -> GroundTruth:
    """Load per-pair mean ratings from a ``ConVIS.jsonl``, a ``gt_conditioned_similarities.json``,
    a raw ``vicos.user_inputs.json``, or a folder holding ``ConVIS.jsonl``."""
    path = str(path)
    if os.path.isdir(path):
        candidate = os.path.join(path, "ConVIS.jsonl")
        if not os.path.isfile(candidate):
            raise AnnotationError(f"{path}: folder has no ConVIS.jsonl")
        path = candidate
    if not os.path.isfile(path):
        raise AnnotationError(f"{path}: annotation file not found")
    try:
        if path.endswith(".jsonl"):
            return _from_jsonl(path)
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except (OSError, UnicodeDecodeError) as exc:
        raise AnnotationError(f"{path}: cannot read annotation file ({exc})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        if text.lstrip().startswith("{"):  # JSON Lines under another extension
            return _from_jsonl(path)
        raise AnnotationError(f"{path}: invalid JSON ({exc.msg} at line {exc.lineno})") from None
    if not isinstance(data, list) or not data:
        raise AnnotationError(f"{path}: expected a non-empty JSON list of pairs or ratings")
    if isinstance(data[0], dict) and "video_pair_id" in data[0]:
        return _from_raw(path, data)
    return _from_mean_list(path, data)


def load_ratings(path: str | os.PathLike) -> list[Rating]:
    """The individual ratings of a raw annotation file (``vicos.user_inputs.json``)."""
    truth = load_ground_truth(path)
    if not truth.ratings:
        raise AnnotationError(f"{path}: holds mean ratings only; agreement needs the raw per-annotator file")
    return truth.ratings


def ratings_matrix(ratings: list[Rating], concept: str) -> tuple[np.ndarray, list[str], list[PairKey]]:
    """Annotators x pairs matrix of one concept's ratings, NaN where an annotator did not rate a pair.

    Rows and columns are sorted, so the matrix never depends on file order.
    """
    cells: dict[tuple[str, PairKey], float] = {}
    for r in ratings:
        if r.concept == concept:
            cells[(r.annotator, r.pair)] = r.value
    annotators = sorted({a for a, _ in cells})
    pairs = sorted({p for _, p in cells})
    a_index = {a: i for i, a in enumerate(annotators)}
    p_index = {p: j for j, p in enumerate(pairs)}
    matrix = np.full((len(annotators), len(pairs)), np.nan)
    for (a, p), value in cells.items():
        matrix[a_index[a], p_index[p]] = value
    return matrix, annotators, pairs
