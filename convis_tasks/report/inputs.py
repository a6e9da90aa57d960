"""What ``convis report`` / ``convis plot`` read: lmms-eval runs, samples files, release files and submissions.

An input is one of

* an lmms-eval output folder holding ONE run (``<date>_results.json`` beside ``<date>_samples_<task>.jsonl``);
  a folder with several runs is refused, pass that run's ``*_results.json`` instead;
* a ``*_results.json`` file: its run's samples files (same prefix, same folder) are read;
* a folder of ``*_samples_*.jsonl`` without a results file, or one samples ``.jsonl`` file;
* a release-format answer file (a JSON list of ``{video1, video2, similarity}``; concept read off the path, or
  concept-free when the path names none), or a release retrieval score file (``{anchor: {candidate: score}}``);
* a submission file (``convis submit``; see ``docs/submission_format.md``).

Inputs given the same label are merged into one model (e.g. the five per-concept release files of one model).
Labels: ``LABEL=PATH`` or ``--label`` (one per input, in order); by default the model name of the run or
submission, or the release file's model folder.
"""

from __future__ import annotations

import glob
import json
import math
import os
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from ..utils.concepts import CONCEPTS, CONCEPT_KEYS, RETRIEVAL_CONCEPT_KEYS
from ..utils.predictions import PredictionError, Predictions, load_log_samples, load_release

SUBMISSION_FORMAT = "convis-submission"
RESULTS_SUFFIX = "results.json"
_TASK_OF_SAMPLES = re.compile(r"samples_(.+)\.jsonl$")


@dataclass
class ReportInput:
    """One model's predictions as read from one or more paths."""

    label: str
    paths: list[str]
    predictions: Predictions | None = None
    retrieval: dict | None = None  # concept (None: concept-free) -> anchor -> candidate -> score
    meta: dict = field(default_factory=dict)

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


# --- lmms-eval run metadata ------------------------------------------------------------------------------------

def parse_model_args(model_args) -> dict:
    """``"pretrained=org/name,max_frames_num=16"`` (or a dict) -> dict of strings."""
    if isinstance(model_args, dict):
        return {str(k): v for k, v in model_args.items()}
    out = {}
    for part in str(model_args or "").split(","):
        if "=" in part:
            key, value = part.split("=", 1)
            out[key.strip()] = value.strip()
    return out


def _run_date(results: dict) -> str | None:
    value = results.get("date")
    if isinstance(value, str):
        match = re.match(r"(\d{4})(\d{2})(\d{2})", value) or re.match(r"(\d{4})-(\d{2})-(\d{2})", value)
        if match:
            return "-".join(match.groups())
    if isinstance(value, (int, float)) and math.isfinite(value) and value > 1e8:
        return datetime.fromtimestamp(value, tz=timezone.utc).date().isoformat()
    return None


def task_concept(task: str) -> tuple[str, str | None] | None:
    """("pair" | "retrieval", concept key or None) of a standard ConViS task name, or None for another task."""
    if task == "convis_global":
        return ("pair", None)
    for kind, prefix, keys in (("retrieval", "convis_retrieval_", RETRIEVAL_CONCEPT_KEYS),
                               ("pair", "convis_", CONCEPT_KEYS)):
        if task.startswith(prefix) and task[len(prefix):] in keys:
            return (kind, task[len(prefix):])
    return None


def pair_task(concept: str | None) -> str:
    return "convis_global" if concept is None else f"convis_{concept}"


def retrieval_task(concept: str) -> str:
    return f"convis_retrieval_{concept}"


def _task_kwargs(config: dict) -> dict:
    kwargs = config.get("lmms_eval_specific_kwargs") or {}
    if not isinstance(kwargs, dict):
        return {}
    merged = dict(kwargs.get("default") or {}) if isinstance(kwargs.get("default"), dict) else {}
    merged.update({k: v for k, v in kwargs.items() if k != "default" and not isinstance(v, dict)})
    return merged


def run_metadata(results: dict) -> dict:
    """What a run's ``*_results.json`` says about the model and the settings (keys absent when unknown).

    ``frames_per_video`` / ``prompt`` / ``input`` come from the tasks' ``lmms_eval_specific_kwargs``; the prompt
    is that of the concept tasks (``global`` when only ``convis_global`` ran). When tasks disagree the value is
    left out and ``<key>_by_task`` lists them.
    """
    config = results.get("config") if isinstance(results.get("config"), dict) else {}
    meta: dict = {}
    if config.get("model"):
        meta["model"] = str(config["model"])
    args = parse_model_args(config.get("model_args"))
    if config.get("model_args"):
        meta["model_args"] = config["model_args"] if isinstance(config["model_args"], str) else json.dumps(args)
    pretrained = args.get("pretrained") or args.get("model") or args.get("model_name") or args.get("model_version")
    name = results.get("model_name") or pretrained or meta.get("model")
    if name:
        meta["name"] = str(name)
    meta["harness"] = "lmms-eval"  # a *_results.json is lmms-eval's
    version = results.get("lmms_eval_version") or results.get("version")
    if version:
        meta["harness_version"] = str(version)
    date = _run_date(results)
    if date:
        meta["date"] = date
    per_task: dict[str, dict] = {}
    for task, task_config in (results.get("configs") or {}).items():
        if isinstance(task_config, dict) and (task_concept(task) or "convis" in task):
            per_task[task] = _task_kwargs(task_config)
    for key in ("frames_per_video", "prompt", "input"):
        tasks = {t: kw[key] for t, kw in per_task.items() if kw.get(key) is not None}
        if key == "prompt":  # the concept tasks' prompt; the global task always uses the global prompt
            conditioned = {t: v for t, v in tasks.items() if t != "convis_global"}
            tasks = conditioned or tasks
        values = set(map(str, tasks.values()))
        if len(values) == 1:
            value = next(iter(tasks.values()))
            meta[key] = int(value) if key == "frames_per_video" else str(value)
        elif values:
            meta[f"{key}_by_task"] = tasks
    return meta


# --- reading one path -------------------------------------------------------------------------------------------

def _read_json(path: str):
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except (OSError, UnicodeDecodeError) as exc:
        raise PredictionError(f"{path}: cannot read ({exc})") from None
    except json.JSONDecodeError as exc:
        raise PredictionError(f"{path}: invalid JSON ({exc.msg} at line {exc.lineno})") from None


def samples_kind(path: str) -> str | None:
    """"pair", "retrieval" or None: the kind of the ConViS records of a samples file (first record decides)."""
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            if not line.strip():
                continue
            try:
                sample = json.loads(line)
            except json.JSONDecodeError:
                return "pair"  # let the loader report the broken line
            for value in sample.values() if isinstance(sample, dict) else ():
                if isinstance(value, dict) and "score" in value:
                    if value.get("kind") == "retrieval":
                        return "retrieval"
                    if "video1" in value and "video2" in value:
                        return "pair"
            return None
    return None


def samples_task(path: str) -> str | None:
    match = _TASK_OF_SAMPLES.search(os.path.basename(path))
    return match.group(1) if match else None


def results_files(folder: str) -> list[str]:
    return sorted(glob.glob(os.path.join(folder, "**", "*_" + RESULTS_SUFFIX), recursive=True))


def run_samples(results_file: str) -> list[str]:
    """The samples files of the run of ``results_file`` (same folder, same ``<date>_`` prefix)."""
    prefix = os.path.basename(results_file)[: -len(RESULTS_SUFFIX)]
    return sorted(glob.glob(os.path.join(glob.escape(os.path.dirname(results_file) or "."),
                                         glob.escape(prefix) + "samples_*.jsonl")))


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
    from ..utils.rankings import load_retrieval_predictions

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


def load_path(path: str) -> ReportInput:
    """Read one input path (see the module docstring); the label is a default, possibly overridden later."""
    path = str(path)
    if not os.path.exists(path):
        raise PredictionError(f"{path}: input not found")
    if os.path.isdir(path):
        runs = results_files(path)
        if len(runs) > 1:
            raise PredictionError(f"{path}: holds {len(runs)} lmms-eval runs ({', '.join(os.path.basename(r) for r in runs[:4])}"
                                  f"{' ...' if len(runs) > 4 else ''}); pass the *_results.json of the run you mean")
        if runs:
            return load_path(runs[0])
        files = sorted(glob.glob(os.path.join(path, "**", "*samples_*.jsonl"), recursive=True))
        if not files:
            raise PredictionError(f"{path}: no lmms-eval '*_results.json' or '*_samples_*.jsonl' files found")
        pairs, retrieval = _load_samples_files(files, path)
        return ReportInput(Path(path).name, [path], pairs, retrieval, {})
    if path.endswith(RESULTS_SUFFIX):
        results = _read_json(path)
        if not isinstance(results, dict):
            raise PredictionError(f"{path}: not an lmms-eval results file (expected a JSON object)")
        files = run_samples(path)
        if not files:
            raise PredictionError(f"{path}: no samples files of this run beside it (was --log_samples passed?)")
        pairs, retrieval = _load_samples_files(files, path)
        meta = run_metadata(results)
        meta["results_file"] = path
        return ReportInput(meta.get("name") or Path(path).parent.name, [path], pairs, retrieval, meta)
    if path.endswith(".jsonl"):
        pairs, retrieval = _load_samples_files([path], path)
        return ReportInput(Path(path).stem, [path], pairs, retrieval, {})
    data = _read_json(path)
    if isinstance(data, dict) and data.get("format") == SUBMISSION_FORMAT:
        from .submission import submission_predictions

        pairs, retrieval = submission_predictions(data, path)
        meta = dict(data.get("metadata") or {})
        return ReportInput(str(meta.get("name") or Path(path).stem), [path], pairs, retrieval, meta)
    if isinstance(data, list):
        pairs = load_release(path)
        return ReportInput(_release_label(path), [path], pairs, None, {})
    if isinstance(data, dict):
        from ..utils.rankings import load_retrieval_predictions

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
    """Read every input; with ``merge`` the inputs sharing a label become one model (first-seen order)."""
    loaded: list[ReportInput] = []
    for label, path in parse_specs(specs, labels):
        item = load_path(path)
        if label is not None:
            item.label = label
        loaded.append(item)
    if not merge:
        return loaded
    by_label: dict[str, ReportInput] = {}
    for item in loaded:
        if item.label not in by_label:
            by_label[item.label] = item
            continue
        first = by_label[item.label]
        first.paths += item.paths
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
