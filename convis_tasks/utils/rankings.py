"""Load retrieval ground truth (human partial orders) and retrieval predictions.

* Rankings, the release format: a JSON list of ``{"anchor": "<video>", "MainAction": {"<candidate>": rank, ...},
  "MainSubjects": ..., "MainObjects": ..., "Location": ...}``; rank 1 = most similar, ties share a rank, and a
  concept key may be missing for an anchor.
* Candidate sets: ``to_be_ranked.json``, ``{"<anchor>": ["<candidate>", ...]}``.
* Predictions: the release's per-anchor score files ``{"<anchor>": {"<candidate>": score}}`` (``0.0`` = an answer
  that could not be parsed) or this plugin's lmms-eval ``--log_samples`` output.

Videos are identified by base name.
"""

from __future__ import annotations

import json
import math
import os

from .annotations import AnnotationError
from .concepts import RETRIEVAL_CONCEPT_KEYS, get_concept
from .predictions import PredictionError, concept_from_path, iter_log_records

Ranking = dict[str, dict[str, float]]  # anchor -> candidate -> human rank


def _name(video: object) -> str:
    return os.path.basename(str(video))


def _read_json(path: str, error: type[ValueError]) -> object:
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except FileNotFoundError:
        raise error(f"{path}: file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise error(f"{path}: cannot read ({exc})") from None
    except json.JSONDecodeError as exc:
        raise error(f"{path}: invalid JSON ({exc.msg} at line {exc.lineno})") from None


def load_rankings(path: str | os.PathLike) -> dict[str, Ranking]:
    """Concept key -> anchor -> candidate -> human rank, from the release's ranking file."""
    path = str(path)
    data = _read_json(path, AnnotationError)
    if not isinstance(data, list):
        raise AnnotationError(f"{path}: expected a JSON list of {{anchor, <Concept>: {{candidate: rank}}}}")
    out: dict[str, Ranking] = {c: {} for c in RETRIEVAL_CONCEPT_KEYS}
    for index, entry in enumerate(data):
        where = f"{path}, entry {index}"
        if not isinstance(entry, dict) or not isinstance(entry.get("anchor"), str):
            raise AnnotationError(f"{where}: missing field 'anchor'")
        anchor = _name(entry["anchor"])
        for concept in RETRIEVAL_CONCEPT_KEYS:
            key = get_concept(concept).gt_key
            if key not in entry:
                continue  # the concept was not ranked for this anchor
            ranks = entry[key]
            if not isinstance(ranks, dict) or len(ranks) < 2:
                raise AnnotationError(f"{where} (anchor {anchor}): field {key!r} must map >= 2 candidates to ranks")
            checked = {}
            for candidate, rank in ranks.items():
                if isinstance(rank, bool) or not isinstance(rank, (int, float)) or not rank >= 1:
                    raise AnnotationError(f"{where} (anchor {anchor}): {key}.{candidate} has rank {rank!r}; "
                                          "ranks are numbers >= 1")
                checked[_name(candidate)] = float(rank)
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
    out = {}
    for anchor, candidates in data.items():
        if not isinstance(candidates, list) or len(candidates) < 2:
            raise AnnotationError(f"{path}: anchor {anchor} must list >= 2 candidates")
        out[_name(anchor)] = [_name(c) for c in candidates]
    return out


def _release_score(value: object, where: str) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise PredictionError(f"{where}: score {value!r} is not a number")
    return None if value == 0.0 or math.isnan(value) else float(value)


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
            table = out.setdefault(record["concept"], {}).setdefault(_name(record["anchor"]), {})
            candidate = _name(record["candidate"])
            if candidate in table and table[candidate] != record["score"]:
                raise PredictionError(f"{where}: anchor {record['anchor']} candidate {candidate} logged twice "
                                      "with different scores")
            table[candidate] = record["score"]
        if not out:
            raise PredictionError(f"{path}: no ConViS retrieval samples found")
        return out
    data = _read_json(path, PredictionError)
    if not isinstance(data, dict):
        raise PredictionError(f"{path}: expected an object anchor -> {{candidate: score}}")
    table = {}
    for anchor, scores in data.items():
        if not isinstance(scores, dict):
            raise PredictionError(f"{path}: anchor {anchor}: expected an object candidate -> score")
        table[_name(anchor)] = {_name(c): _release_score(s, f"{path}: anchor {anchor}, candidate {c}")
                                for c, s in scores.items()}
    out[concept_from_path(path)] = table
    return out
