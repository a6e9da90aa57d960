"""What ``convis report`` / ``convis plot`` read: lmms-eval runs, samples files, release files and submissions.

An input is one of

* an lmms-eval output folder or ``*_results.json`` file: read under the run-folder rule of :mod:`.runs` (one
  model; for each task the newest run holding it; the choice is reported in the input's notes);
* a folder of ``*_samples_*.jsonl`` without a results file, or one samples ``.jsonl`` file (the same rule);
* a release-format answer file (a JSON list of ``{video1, video2, similarity}``; concept read off the path, or
  concept-free when the path names none), or a release retrieval score file (``{anchor: {candidate: score}}``);
* a submission file (``convis submit``; see ``docs/submission_format.md``).

Inputs given the same label are merged into one model (e.g. the five per-concept release files of one model).
Labels: ``LABEL=PATH`` or ``--label`` (one per input, in order); by default the model name of the run or
submission, or the release file's model folder.

Concept-free answers (the ``convis_global`` task, the release's global baselines) are kept apart from the
concept-conditioned ones (``ReportInput.global_scores``); they are never used as a concept's own answers.

Dependencies run one way: :mod:`.runs` <- this module <- :mod:`.submission`.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from convis_tasks.reading.annotations import pair_key
from convis_tasks.concepts import CONCEPTS, CONCEPT_KEYS, RETRIEVAL_CONCEPT_KEYS
from convis_tasks.reading.predictions import PredictionError, Predictions, load_log_samples, load_release
from convis_tasks.reading.runs import (RESULTS_SUFFIX, read_json, samples_kind, select_runs, task_concept)
from convis_tasks.reading.rankings import load_retrieval_predictions

SUBMISSION_FORMAT = "convis-submission"


@dataclass
class ReportInput:
    """One model's predictions as read from one or more paths."""

    label: str
    paths: list[str]
    predictions: Predictions | None = None
    retrieval: dict | None = None  # concept (None: concept-free) -> anchor -> candidate -> score
    meta: dict = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # how the input was read (run selection), for stderr

    @property
    def concepts(self) -> list[str]:
        """Concept keys with their own (concept-conditioned) predictions, in benchmark order."""
        have = set(self.predictions.scores) if self.predictions else set()
        return [c for c in CONCEPT_KEYS if c in have]

    @property
    def global_scores(self):
        """The concept-free scores (one per pair), or None."""
        return self.predictions.scores.get(None) if self.predictions else None

    @property
    def path(self) -> str:
        return ", ".join(self.paths)


def merge_predictions(into: Predictions, other: Predictions, where: str) -> None:
    """Add ``other``'s tables to ``into``; a pair scored differently on the two sides is an error."""
    for concept, table in other.scores.items():
        target = into.scores.setdefault(concept, {})
        for key, score in table.items():
            if key in target and target[key] != score:
                raise PredictionError(f"{where}: pair {key[0]} / {key[1]} of concept {concept} has two different "
                                      f"scores ({target[key]} vs {score})")
            target[key] = score
    for concept, table in other.answers.items():
        into.answers.setdefault(concept, {}).update(table)


def merge_retrieval(into: dict, other: dict, where: str) -> None:
    for concept, anchors in other.items():
        for anchor, candidates in anchors.items():
            target = into.setdefault(concept, {}).setdefault(anchor, {})
            for candidate, score in candidates.items():
                if candidate in target and target[candidate] != score:
                    raise PredictionError(f"{where}: anchor {anchor} candidate {candidate} of concept {concept} has "
                                          f"two different scores")
                target[candidate] = score


def _load_samples_files(files: list[str], where: str) -> tuple[Predictions | None, dict | None]:

    pairs: Predictions | None = None
    retrieval: dict | None = None
    for file in files:
        kind = samples_kind(file)
        if kind == "pair":
            loaded = load_log_samples(file)
            if pairs is None:
                pairs = Predictions(source=where)
            merge_predictions(pairs, loaded, where)
        elif kind == "retrieval":
            if retrieval is None:
                retrieval = {}
            merge_retrieval(retrieval, load_retrieval_predictions(file), where)
    return pairs, retrieval


def _is_run_path(path: str) -> bool:
    return os.path.isdir(path) or path.endswith(RESULTS_SUFFIX) or path.endswith(".jsonl")


def _from_selection(paths: str | list[str]) -> ReportInput:
    paths = [paths] if isinstance(paths, str) else list(paths)
    selection = select_runs(paths)
    where = ", ".join(paths)
    pairs, retrieval = _load_samples_files(list(selection.files.values()), where)
    meta = selection.metadata()
    first = paths[0]
    default = meta.get("name") or (Path(first).parent.name if os.path.isfile(first) else Path(first).name)
    if first.endswith(".jsonl") and not meta.get("name"):
        default = Path(first).stem
    return ReportInput(default, paths, pairs, retrieval, meta, list(selection.notes))


def load_path(path: str) -> ReportInput:
    """Read one input path (see the module docstring); the label is a default, possibly overridden later."""
    path = str(path)
    if not os.path.exists(path):
        raise PredictionError(f"{path}: input not found")
    if _is_run_path(path):
        item = _from_selection(path)
        if item.predictions is None and item.retrieval is None:
            raise PredictionError(f"{path}: the run logged no ConViS samples (was --log_samples passed?)")
        return item
    data = read_json(path)
    if isinstance(data, dict) and data.get("format") == SUBMISSION_FORMAT:
        pairs, retrieval = submission_predictions(data, path)
        meta = dict(data.get("metadata") or {})
        return ReportInput(str(meta.get("name") or Path(path).stem), [path], pairs, retrieval, meta)
    if isinstance(data, list):
        pairs = load_release(path)
        return ReportInput(_release_label(path), [path], pairs, None, {})
    if isinstance(data, dict):

        return ReportInput(_release_label(path), [path], None, dict(load_retrieval_predictions(path)), {})
    raise PredictionError(f"{path}: not a predictions file (expected a JSON list, a score object or a submission)")


def _release_label(path: str) -> str:
    """The model folder of a release file (``<Concept>/<Model>/<Model>_..._similarities.json``), else its stem."""
    parent = Path(path).parent.name
    if parent and Path(path).name.startswith(parent):
        return parent
    return re.sub(r"_(similarities|ranking)$", "", Path(path).stem)


# --- specs and labels -------------------------------------------------------------------------------------------

def parse_specs(specs: list[str], labels: list[str] | None = None) -> list[tuple[str | None, str]]:
    """``[LABEL=]PATH`` arguments plus optional ``--label``s -> (label or None, path)."""
    labels = list(labels or [])
    if labels and len(labels) != len(specs):
        raise PredictionError(f"{len(labels)} --label value(s) for {len(specs)} input(s); give one per input "
                              "(or use LABEL=PATH)")
    out: list[tuple[str | None, str]] = []
    for i, spec in enumerate(specs):
        label, path = None, spec
        if not os.path.exists(spec) and "=" in spec:
            label, path = spec.split("=", 1)
            label = label.strip()
            if not label:
                raise PredictionError(f"{spec!r}: empty label before '='")
        if labels:
            if label is not None:
                raise PredictionError(f"{spec!r} has a LABEL= and a --label; use one of the two")
            label = labels[i]
        if not os.path.exists(path):
            raise PredictionError(f"{path}: input not found")
        out.append((label, path))
    return out


def load_inputs(specs: list[str], labels: list[str] | None = None, merge: bool = True) -> list[ReportInput]:
    """Read every input; with ``merge`` the inputs sharing a label become one model (first-seen order).

    Inputs that share a label only by default (their run's model name) and are lmms-eval runs are read together
    under the run-folder rule of :mod:`.runs` (one model, newest run per task); a label given explicitly
    (``LABEL=PATH``, ``--label``) merges its inputs as they are, and a pair scored differently is an error."""
    loaded: list[ReportInput] = []
    explicit: list[bool] = []
    for label, path in parse_specs(specs, labels):
        item = load_path(path)
        if label is not None:
            item.label = label
        loaded.append(item)
        explicit.append(label is not None)
    if not merge:
        return loaded
    # lmms-eval runs that only share a DEFAULT label (the model name) are one model's runs only under the
    # run-folder rule: read them together with it (several models: an error listing the runs)
    runs_by_label: dict[str, list[int]] = {}
    for i, item in enumerate(loaded):
        if not explicit[i] and all(_is_run_path(p) for p in item.paths):
            runs_by_label.setdefault(item.label, []).append(i)
    for label, indices in runs_by_label.items():
        if len(indices) > 1:
            combined = _from_selection([p for i in indices for p in loaded[i].paths])
            combined.label = label
            loaded[indices[0]] = combined
            for i in indices[1:]:
                loaded[i] = None
    loaded = [item for item in loaded if item is not None]
    by_label: dict[str, ReportInput] = {}
    for item in loaded:
        if item.label not in by_label:
            by_label[item.label] = item
            continue
        first = by_label[item.label]
        first.paths += item.paths
        first.notes += item.notes
        if item.predictions is not None:
            if first.predictions is None:
                first.predictions = Predictions(source=item.predictions.source)
            merge_predictions(first.predictions, item.predictions, f"{first.label} ({item.path})")
        if item.retrieval is not None:
            if first.retrieval is None:
                first.retrieval = {}
            merge_retrieval(first.retrieval, item.retrieval, f"{first.label} ({item.path})")
        for key, value in item.meta.items():
            first.meta.setdefault(key, value)
    return list(by_label.values())


# --- the authors' release ---------------------------------------------------------------------------------------

def release_root(path: str) -> Path:
    """The folder holding ``<Concept folder>/<Model>/``: ``computed_conditioned_similarities`` or its parent."""
    root = Path(path)
    if (root / "computed_conditioned_similarities").is_dir():
        root = root / "computed_conditioned_similarities"
    if not root.is_dir():
        raise PredictionError(f"{path}: not a folder of the authors' release")
    return root


def release_models(path: str) -> list[str]:
    root = release_root(path)
    return sorted({p.name for c in CONCEPTS for p in (root / c.folder).glob("*") if p.is_dir()})


def release_files(path: str, model: str) -> dict[str, str]:
    """Concept key -> the model's per-pair answer file in the release (concepts it lacks are absent)."""
    root = release_root(path)
    found = {}
    for concept in CONCEPTS:
        file = root / concept.folder / model / f"{model}_{concept.folder}_similarities.json"
        if file.is_file():
            found[concept.key] = str(file)
    if not found:
        known = release_models(path)
        raise PredictionError(f"{path}: no release answers for model {model!r}; models there: {', '.join(known)}")
    return found


def release_retrieval_files(path: str, model: str) -> dict[str, str]:
    """Concept key -> the model's retrieval score file (``computed_retrieval_scores`` beside the pair folder)."""
    root = release_root(path)
    base = root.parent / "computed_retrieval_scores"
    found = {}
    for key in RETRIEVAL_CONCEPT_KEYS:
        folder = next(c.folder for c in CONCEPTS if c.key == key)
        file = base / folder / model / f"{model}_{folder}_ranking.json"
        if file.is_file():
            found[key] = str(file)
    return found


def load_release_model(path: str, model: str, label: str | None = None) -> ReportInput:
    """One released model, its five per-concept answer files merged into one input."""
    files = release_files(path, model)
    merged = Predictions(source=f"{path}:{model}")
    for concept, file in files.items():
        merge_predictions(merged, load_release(file, concept), file)
    return ReportInput(label or model, list(files.values()), merged, None, {"name": model})


# --- submissions (read only; building and checking them is in .submission) -----------------------------------------

def submission_predictions(doc: dict, where: str = "submission") -> tuple[Predictions | None, dict | None]:
    """The submission's pair scores as :class:`Predictions` and its retrieval scores (concept -> anchor -> ...)."""
    preds = Predictions(source=where)
    for i, entry in enumerate(doc.get("pairs") or []):
        try:
            known = task_concept(entry["task"])
            key = pair_key(entry["video1"], entry["video2"])
            score = entry["score"]
        except (KeyError, TypeError):
            raise PredictionError(f"{where}: pairs[{i}] lacks task / video1 / video2 / score") from None
        if known is None or known[0] != "pair":
            raise PredictionError(f"{where}: pairs[{i}]: unknown task {entry['task']!r}")
        concept = known[1]
        table = preds.scores.setdefault(concept, {})
        if key in table and table[key] != score:
            raise PredictionError(f"{where}: pairs[{i}] ({entry['task']}, {key[0]} / {key[1]}) appears twice with "
                                  "different scores")
        table[key] = None if score is None else float(score)
        if entry.get("answer") is not None:
            preds.answers.setdefault(concept, {})[key] = entry["answer"]
    retrieval: dict = {}
    for i, entry in enumerate(doc.get("retrieval") or []):
        try:
            known = task_concept(entry["task"])
            anchor, candidate = os.path.basename(entry["anchor"]), os.path.basename(entry["candidate"])
            score = entry["score"]
        except (KeyError, TypeError):
            raise PredictionError(f"{where}: retrieval[{i}] lacks task / anchor / candidate / score") from None
        if known is None or known[0] != "retrieval":
            raise PredictionError(f"{where}: retrieval[{i}]: unknown task {entry['task']!r}")
        retrieval.setdefault(known[1], {}).setdefault(anchor, {})[candidate] = score
    return (preds if preds.scores else None), (retrieval or None)
