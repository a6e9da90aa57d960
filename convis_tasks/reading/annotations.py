"""Load ConViS ground truth from any of the three shapes the authors released.

* ``ConVIS.jsonl`` (the Hugging Face release): one pair per line, ``video1``, ``video2`` and the
  per-concept mean rating under ``MainAction``, ``MainSubjects``, ``Location``, ``OrderOfActions``, ``MainObjects``.
* ``gt_conditioned_similarities.json``: a JSON list of ``{video1, video2, conditioned_similarity: {...}}``.
* ``vicos.user_inputs.json``: the raw ratings, one record per (annotator, pair); means are computed here.

Pairs are identified by the two video base names, in order (path prefixes differ between files).

Every file is read strictly (docs/faults.md): duplicate JSON keys, non-finite numbers, booleans, scores outside
1-5, self-pairs (a video paired with itself), a pair given twice (also mirrored, ``A-B`` and ``B-A``) and an
annotator rating one pair twice with different values are errors naming file, line or entry, and field.
Tolerances the release needs, and only those:

* a rating may be written as a string holding a plain decimal numeral (``"4"``, ``"3.75"``): the raw release
  stores every rating that way. ``" 4"``, ``"4e0"``, ``"nan"`` or ``"four"`` are still errors.
* an annotator who submitted the same ratings of one pair twice (the raw release has three such double
  submissions, milliseconds apart) is kept as the release kept it: both records count in the mean, so that the
  released means are reproduced bit for bit, and one cell of the agreement matrix holds the shared value. Both
  readings are independent of record order; two *different* ratings of one pair by one annotator are an error.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, field

import numpy as np

from convis_tasks.concepts import CONCEPTS
from convis_tasks.reading.jsonio import is_number, strict_jsonl_objects, strict_loads
from convis_tasks.errors import EmptyEvaluationError, InputError

PairKey = tuple[str, str]


class AnnotationError(InputError):
    """A ground-truth file is unreadable or malformed; the message names the file, the row and the field."""


class EmptyGroundTruthError(AnnotationError, EmptyEvaluationError):
    """A ground-truth file holds no pair at all (an empty list, or a JSON Lines file without rows)."""


def pair_key(video1: str, video2: str) -> PairKey:
    """The identity of a pair: both video base names, in order."""
    return (os.path.basename(str(video1)), os.path.basename(str(video2)))


_EXT_DASH = re.compile(r"(\.(?:mp4|webm|mkv|avi|mov))-(?=.)", re.IGNORECASE)
_NUMERAL = re.compile(r"[0-9]+(?:\.[0-9]+)?")


def split_pair_id(pair_id: str) -> PairKey:
    """Split the raw file's ``"<video1>-<video2>"`` id (video names end in an extension, e.g. ``.mp4``)."""
    splits = [(m.start() + len(m.group(1)), m.end()) for m in _EXT_DASH.finditer(pair_id)]
    if len(splits) > 1:
        raise AnnotationError(f"video_pair_id {pair_id!r} is ambiguous: it splits into two video names in "
                              f"{len(splits)} ways")
    if splits:
        cut, rest = splits[0]
        return (pair_id[:cut], pair_id[rest:])
    if pair_id.count("-") == 1:
        left, right = pair_id.split("-")
        if left and right:
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


def check_rating(value: object, where: str, field_name: str, integer: bool = False) -> float:
    """One rating on the 1-5 scale: a JSON number or a string holding a plain decimal numeral (the raw release's
    tolerance); never a bool, NaN or infinity; ``integer=True`` also refuses fractions (raw annotator ratings)."""
    if isinstance(value, str) and _NUMERAL.fullmatch(value):
        score = float(value)
    elif is_number(value):
        score = float(value)  # type: ignore[arg-type]
    else:
        raise AnnotationError(f"{where}: field {field_name!r} is not a number: {value!r}")
    if not math.isfinite(score) or not 1.0 <= score <= 5.0:
        raise AnnotationError(f"{where}: field {field_name!r} = {value!r} is outside the rating scale 1-5")
    if integer and score != int(score):
        raise AnnotationError(f"{where}: field {field_name!r} = {value!r} is not a whole rating 1-5")
    return score


def _concept_scores(row: object, where: str, key_attr: str = "gt_key", integer: bool = False) -> dict[str, float]:
    if not isinstance(row, dict):
        raise AnnotationError(f"{where}: expected an object with the concept scores, got {type(row).__name__}")
    scores = {}
    for concept in CONCEPTS:
        name = getattr(concept, key_attr)
        if name not in row:
            if not concept.required:
                continue  # a concept added after the release: read where a file has it
            raise AnnotationError(f"{where}: missing concept score {name!r}")
        scores[concept.key] = check_rating(row[name], where, name, integer)
    return scores


def check_pair(key: PairKey, where: str, seen: dict[PairKey, str], source: str,
               error: type[ValueError] = AnnotationError) -> None:
    """Refuse a self-pair, a repeated pair and a mirrored pair (``B-A`` after ``A-B``); record ``key`` in ``seen``."""
    if key[0] == key[1]:
        raise error(f"{where}: pair {key[0]} / {key[1]} pairs a video with itself (videos are identified by "
                    "base name)")
    if key in seen:
        raise error(f"{where}: duplicate pair {key[0]} / {key[1]} ({source} repeats {seen[key]})")
    mirrored = (key[1], key[0])
    if mirrored in seen:
        raise error(f"{where}: pair {key[0]} / {key[1]} mirrors pair {key[1]} / {key[0]} of {seen[mirrored]}; "
                    "a pair is given once, in one order")
    seen[key] = source


def _add_unique(pairs: list[PairRecord], seen: dict[PairKey, str], record: PairRecord, path: str) -> None:
    check_pair(record.key, f"{path}, {record.source}", seen, record.source)
    pairs.append(record)


def _require_videos(row: dict, where: str) -> tuple[str, str]:
    for name in ("video1", "video2"):
        if not isinstance(row.get(name), str) or not row.get(name):
            raise AnnotationError(f"{where}: missing or empty field {name!r}")
    return row["video1"], row["video2"]


def _from_jsonl(path: str) -> GroundTruth:
    pairs: list[PairRecord] = []
    seen: dict[PairKey, str] = {}
    for lineno, where, row in strict_jsonl_objects(path, AnnotationError, "annotation file"):
        v1, v2 = _require_videos(row, where)
        scores = _concept_scores(row.get("conditioned_similarity", row), where)
        _add_unique(pairs, seen, PairRecord(v1, v2, scores, source=f"line {lineno}"), path)
    if not pairs:
        raise EmptyGroundTruthError(f"{path}: holds no pairs")
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
    pair_seen: dict[PairKey, str] = {}
    given: dict[tuple[str, PairKey], tuple[int, dict[str, float]]] = {}
    for index, row in enumerate(data):
        where = f"{path}, entry {index}"
        if not isinstance(row, dict) or not isinstance(row.get("video_pair_id"), str):
            raise AnnotationError(f"{where}: missing field 'video_pair_id' (a string)")
        if not isinstance(row.get("user_id"), str) or not row["user_id"]:
            raise AnnotationError(f"{where}: missing field 'user_id' (the annotator, a non-empty string)")
        try:
            key = split_pair_id(row["video_pair_id"])
        except AnnotationError as exc:
            raise AnnotationError(f"{where}: {exc}") from None
        where = f"{where} (pair {row['video_pair_id']})"
        if key not in per_pair:
            check_pair(key, where, pair_seen, f"entry {index}")
        scores = _concept_scores(row.get("user_inputs"), where, "raw_key", integer=True)
        annotator = row["user_id"]
        if (annotator, key) in given:
            first, before = given[(annotator, key)]
            if before != scores:
                raise AnnotationError(f"{where}: annotator {annotator} rated this pair twice with different "
                                      f"ratings (entry {first}: {before}; entry {index}: {scores})")
        else:
            given[(annotator, key)] = (index, scores)
        bucket = per_pair.setdefault(key, {k: [] for k in scores})
        if set(bucket) != set(scores):
            raise AnnotationError(f"{where}: rates concepts {sorted(scores)}, another record of the pair "
                                  f"{sorted(bucket)}")
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
        data = strict_loads(text, path, AnnotationError)
    except AnnotationError:
        if text.lstrip().startswith("{") and "\n" in text.strip():  # JSON Lines under another extension
            return _from_jsonl(path)
        raise
    if not isinstance(data, list):
        raise AnnotationError(f"{path}: expected a JSON list of pairs or ratings")
    if not data:
        raise EmptyGroundTruthError(f"{path}: holds no pairs (an empty list)")
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
            cell = (r.annotator, r.pair)
            if cell in cells and cells[cell] != r.value:
                raise AnnotationError(f"annotator {r.annotator} rated pair {r.pair[0]} / {r.pair[1]} twice on "
                                      f"{concept} with different values ({cells[cell]:g} and {r.value:g})")
            cells[cell] = r.value
    annotators = sorted({a for a, _ in cells})
    pairs = sorted({p for _, p in cells})
    a_index = {a: i for i, a in enumerate(annotators)}
    p_index = {p: j for j, p in enumerate(pairs)}
    matrix = np.full((len(annotators), len(pairs)), np.nan)
    for (a, p), value in cells.items():
        matrix[a_index[a], p_index[p]] = value
    return matrix, annotators, pairs
