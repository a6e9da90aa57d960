"""Load retrieval ground truth (human partial orders) and retrieval predictions.

* Rankings, the release format: a JSON list of ``{"anchor": "<video>", "MainAction": {"<candidate>": rank, ...},
  "MainSubjects": ..., "MainObjects": ..., "Location": ...}``; rank 1 = most similar, ties share a rank, and a
  concept key may be missing for an anchor.
* Candidate sets: ``to_be_ranked.json``, ``{"<anchor>": ["<candidate>", ...]}``.
* Predictions: the release's per-anchor score files ``{"<anchor>": {"<candidate>": score}}`` (``0.0`` = an answer
  that could not be parsed) or this plugin's lmms-eval ``--log_samples`` output.

Videos are identified by base name.

Read strictly (docs/faults.md): a candidate named twice (a duplicate JSON key, or two paths with one base name),
an anchor among its own candidates, a rank that is not a whole number >= 1 (booleans, 1.5, 1e999), and a score
off its file's scale (as for pair predictions: 1-5 with 0.0 = unparsed, or -1..1) are errors naming file, anchor
and candidate.
"""

from __future__ import annotations

import os

from convis_tasks.reading.annotations import AnnotationError
from convis_tasks.concepts import CONCEPT_KEYS, RETRIEVAL_CONCEPT_KEYS, get_concept
from convis_tasks.reading.jsonio import is_number, strict_load_file
from convis_tasks.errors import EmptyEvaluationError
from convis_tasks.reading.predictions import (EmptyPredictionsError, PredictionError, check_logged_score,
                                              concept_from_path, iter_log_records, release_scale, release_value)

Ranking = dict[str, dict[str, float]]  # anchor -> candidate -> human rank


def _name(video: object) -> str:
    return os.path.basename(str(video))


def _read_json(path: str, error: type[ValueError]) -> object:
    return strict_load_file(path, error)


class EmptyRankingsError(AnnotationError, EmptyEvaluationError):
    """A rankings or candidate-set file holds no anchor."""


def _candidates(anchor: str, names: list, where: str, error: type[ValueError]) -> list[str]:
    """Base names of ``names``; refuses a non-string, the anchor itself and two candidates with one base name."""
    out: dict[str, object] = {}
    for name in names:
        if not isinstance(name, str) or not _name(name):
            raise error(f"{where}: candidate {name!r} is not a video name")
        base = _name(name)
        if base == anchor:
            raise error(f"{where}: the anchor {anchor} is listed as its own candidate")
        if base in out:
            raise error(f"{where}: candidate {base} is named twice ({out[base]!r} and {name!r})")
        out[base] = name
    return list(out)


def check_rank(rank: object, where: str) -> float:
    """A human rank: a whole JSON number >= 1 (``1`` or ``1.0``), never a bool, a fraction or infinity."""
    if not is_number(rank) or not 1 <= rank < 1e9 or rank != int(rank):
        raise AnnotationError(f"{where} has rank {rank!r}; ranks are whole numbers >= 1")
    return float(rank)


def load_rankings(path: str | os.PathLike) -> dict[str, Ranking]:
    """Concept key -> anchor -> candidate -> human rank, from the release's ranking file."""
    path = str(path)
    data = _read_json(path, AnnotationError)
    if not isinstance(data, list):
        raise AnnotationError(f"{path}: expected a JSON list of {{anchor, <Concept>: {{candidate: rank}}}}")
    if not data:
        raise EmptyRankingsError(f"{path}: holds no anchors (an empty list)")
    out: dict[str, Ranking] = {c: {} for c in RETRIEVAL_CONCEPT_KEYS}
    for index, entry in enumerate(data):
        where = f"{path}, entry {index}"
        if not isinstance(entry, dict) or not isinstance(entry.get("anchor"), str) or not _name(entry["anchor"]):
            raise AnnotationError(f"{where}: missing field 'anchor'")
        anchor = _name(entry["anchor"])
        for concept in RETRIEVAL_CONCEPT_KEYS:
            key = get_concept(concept).gt_key
            if key not in entry:
                continue  # the concept was not ranked for this anchor
            ranks = entry[key]
            if not isinstance(ranks, dict) or len(ranks) < 2:
                raise AnnotationError(f"{where} (anchor {anchor}): field {key!r} must map >= 2 candidates to ranks")
            names = _candidates(anchor, list(ranks), f"{where} (anchor {anchor}), field {key!r}", AnnotationError)
            checked = {name: check_rank(rank, f"{where} (anchor {anchor}): {key}.{candidate}")
                       for name, (candidate, rank) in zip(names, ranks.items())}
            if anchor in out[concept]:
                raise AnnotationError(f"{where}: anchor {anchor} is ranked twice for {key}")
            out[concept][anchor] = checked
    return out


def load_candidate_sets(path: str | os.PathLike) -> dict[str, list[str]]:
    """Anchor -> candidates, from ``to_be_ranked.json``."""
    path = str(path)
    data = _read_json(path, AnnotationError)
    if not isinstance(data, dict):
        raise AnnotationError(f"{path}: expected an object anchor -> list of candidates")
    if not data:
        raise EmptyRankingsError(f"{path}: holds no anchors (an empty object)")
    out: dict[str, list[str]] = {}
    for anchor, candidates in data.items():
        if not isinstance(candidates, list) or len(candidates) < 2:
            raise AnnotationError(f"{path}: anchor {anchor} must list >= 2 candidates")
        if _name(anchor) in out:
            raise AnnotationError(f"{path}: anchor {_name(anchor)} is listed twice (under two paths)")
        out[_name(anchor)] = _candidates(_name(anchor), candidates, f"{path}: anchor {anchor}", AnnotationError)
    return out


class RetrievalPredictions(dict):
    """Concept key (or None: concept-free) -> anchor -> candidate -> score (None = unparsed)."""


def load_retrieval_predictions(path: str | os.PathLike) -> RetrievalPredictions:
    """The release's per-anchor score file, or lmms-eval ``--log_samples`` output (file or folder)."""
    path = str(path)
    if not os.path.exists(path):
        raise PredictionError(f"{path}: predictions not found")
    out = RetrievalPredictions()
    if os.path.isdir(path) or path.endswith(".jsonl"):
        for where, record in iter_log_records(path, "retrieval"):
            concept = record.get("concept")
            if concept is not None and concept not in CONCEPT_KEYS:
                raise PredictionError(f"{where}: field 'concept' = {concept!r} is not a ConViS concept key")
            names = []
            for field_name in ("anchor", "candidate"):
                if not isinstance(record.get(field_name), str) or not _name(record[field_name]):
                    raise PredictionError(f"{where}: field {field_name!r} must name a video file")
                names.append(_name(record[field_name]))
            anchor, candidate = names
            if anchor == candidate:
                raise PredictionError(f"{where}: the anchor {anchor} is scored as its own candidate")
            score = check_logged_score(record.get("score"), where)
            table = out.setdefault(concept, {}).setdefault(anchor, {})
            if candidate in table and table[candidate] != score:
                raise PredictionError(f"{where}: anchor {anchor} candidate {candidate} logged twice "
                                      "with different scores")
            table[candidate] = score
        if not out:
            raise EmptyPredictionsError(f"{path}: no ConViS retrieval samples found")
        return out
    data = _read_json(path, PredictionError)
    if not isinstance(data, dict):
        raise PredictionError(f"{path}: expected an object anchor -> {{candidate: score}}")
    if not data:
        raise EmptyPredictionsError(f"{path}: holds no anchors (an empty object)")
    values: list[tuple[str, object]] = []
    names: dict[str, list[str]] = {}
    for anchor, scores in data.items():
        if not isinstance(scores, dict) or not scores:
            raise PredictionError(f"{path}: anchor {anchor}: expected a non-empty object candidate -> score")
        if _name(anchor) in names:
            raise PredictionError(f"{path}: anchor {_name(anchor)} is listed twice (under two paths)")
        names[_name(anchor)] = _candidates(_name(anchor), list(scores), f"{path}: anchor {anchor}", PredictionError)
        values += [(f"{path}: anchor {anchor}, candidate {c}", s) for c, s in scores.items()]
    scale = release_scale(values, path)
    table = {}
    for (anchor, scores), anchor_name in zip(data.items(), names):
        table[anchor_name] = {c: release_value(s, scale) for c, s in zip(names[anchor_name], scores.values())}
    out[concept_from_path(path)] = table
    return out
