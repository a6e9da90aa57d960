"""Leaderboard submissions: build one from an lmms-eval run or from the authors' release, validate it, score it.

The format is documented in ``docs/submission_format.md``. In short::

    {"format": "convis-submission", "format_version": 1,
     "metadata": {"name", "size", "frames_per_video", "prompt", "harness", "harness_version", "date",
                  "convis_eval_version", ...optional "model_args", "input", "source", "notes", "provenance",
                  "data_identity"},
     "pairs":     [{"task": "convis_location", "video1": "a.mp4", "video2": "b.mp4", "answer": "4", "score": 4.0}, ...],
     "retrieval": [{"task": "convis_retrieval_location", "anchor": "a.mp4", "candidate": "c.mp4",
                    "answer": "2", "score": 2.0}, ...]}

Scores are the parsed answers, 1-5, or ``null`` for an answer that could not be parsed (scored 3.0, as the
benchmark does). Videos are base names. ``data_identity`` records which data the answers were made on (the
published ConViS-Bench or not, :mod:`convis_tasks.reading.published`); a leaderboard submission must be made on it.
"""

from __future__ import annotations

import json
import math
import os
import re
from dataclasses import dataclass, field
from datetime import date as _date

from convis_tasks import __version__
from convis_tasks.reading.jsonio import is_number, strict_load_file
from convis_tasks.reading.annotations import GroundTruth, pair_key
from convis_tasks.concepts import CONCEPT_KEYS, RETRIEVAL_CONCEPT_KEYS
from convis_tasks.scoring.metrics import score_pairs
from convis_tasks.scoring.parsing import SCORE_MAX, SCORE_MIN, parse_score
from convis_tasks.reading.predictions import iter_log_records, Predictions, load_log_samples, load_release
from convis_tasks.prompting import PROMPT_VARIANTS
from convis_tasks.reading.provenance import check as check_provenance
from convis_tasks.reading.provenance import describe as describe_provenance
from convis_tasks.reading.published import leaderboard_problems, logged_identity, pair_list_identity, recorded_label
from convis_tasks.scoring.samplesize import sample_size_warning
from convis_tasks.reading.inputs import (SUBMISSION_FORMAT, release_files, release_retrieval_files,
                                         submission_predictions)
from convis_tasks.reading.runs import (pair_task, parse_model_args, retrieval_task, samples_kind, samples_provenance,
                                       select_runs, task_concept)
from convis_tasks.errors import InputError
from convis_tasks.reading.rankings import load_retrieval_predictions
from convis_tasks.scoring.retrieval import evaluate_retrieval

FORMAT_VERSION = 1
REQUIRED_METADATA = ("name", "size", "frames_per_video", "prompt", "harness", "harness_version", "date",
                     "convis_eval_version")
REQUIRED_TASKS = tuple(pair_task(c) for c in CONCEPT_KEYS)
# metadata key -> the flag of `convis submit` that sets it
FLAGS = {"name": "--name", "size": "--size", "frames_per_video": "--frames", "prompt": "--prompt",
         "harness": "--harness", "harness_version": "--harness-version", "date": "--date",
         "convis_eval_version": "(set by convis itself)"}
RELEASE_HARNESS = "authors' release (github.com/benedettaliberatori/convisbench)"


class SubmissionError(InputError):
    """A submission cannot be built, read or scored; the message names the entry or the missing flag."""


def guess_size(name: str | None) -> str | None:
    """``7B`` from ``llava-onevision-qwen2-7b-ov``, ``0.5B`` from ``LLaVA-OneVision-Qwen2-0.5B``; else None."""
    if not name:
        return None
    found = re.findall(r"(?<![\d.])(\d+(?:\.\d+)?)\s*[bB](?![a-zA-Z])", os.path.basename(str(name)))
    return f"{found[-1]}B" if found else None


def _complete_metadata(meta: dict, overrides: dict, messages: list[str]) -> dict:
    out = {k: v for k, v in meta.items() if not k.endswith("_by_task") and k != "results_file"}
    out.update({k: v for k, v in overrides.items() if v is not None})
    if not out.get("size"):
        guess = guess_size(out.get("name")) or guess_size(parse_args_pretrained(out.get("model_args")))
        if guess:
            out["size"] = guess
            messages.append(f"note: model size {guess} read off the model name; pass --size to override")
    out["convis_eval_version"] = __version__
    missing = [k for k in REQUIRED_METADATA if out.get(k) in (None, "")]
    if missing:
        hints = []
        for k in missing:
            extra = ""
            if f"{k}_by_task" in meta:
                extra = f" (the run's tasks disagree: {meta[f'{k}_by_task']})"
            example = {"size": " (e.g. --size 7B; --size unknown for an API model)", "frames_per_video": " (e.g. --frames 8)",
                       "date": " (YYYY-MM-DD)"}.get(k, "")
            hints.append(f"{k}: pass {FLAGS[k]}{example}{extra}")
        raise SubmissionError("required metadata that the input does not record: " + "; ".join(hints))
    ordered = {k: out[k] for k in REQUIRED_METADATA}
    ordered.update({k: v for k, v in out.items() if k not in ordered})
    return ordered


def parse_args_pretrained(model_args) -> str | None:
    args = parse_model_args(model_args)
    return args.get("pretrained")


def _pair_entries(task: str, predictions: Predictions, concept: str | None) -> list[dict]:
    scores = predictions.scores.get(concept, {})
    answers = predictions.answers.get(concept, {})
    return [{"task": task, "video1": k[0], "video2": k[1], "answer": answers.get(k), "score": scores[k]}
            for k in sorted(scores)]


def _retrieval_entries(path: str, task: str) -> list[dict]:
    """Every retrieval record of one samples file, with its raw answer (the rankings loader keeps no answers)."""

    load_retrieval_predictions(path)  # the loader's checks (a candidate scored twice differently, ...)
    seen: dict[tuple[str, str], dict] = {}
    for _, record in iter_log_records(path, "retrieval"):
        anchor, candidate = os.path.basename(record["anchor"]), os.path.basename(record["candidate"])
        seen[(anchor, candidate)] = {"task": task, "anchor": anchor, "candidate": candidate,
                                     "answer": record.get("answer"), "score": record.get("score")}
    return [seen[k] for k in sorted(seen)]


def _run_provenance(files: dict[str, str], messages: list[str]) -> dict | None:
    """The package versions logged with the run's records: one mapping for the whole submission.

    Answers made under different versions are not one experiment: that is an error listing the versions per task.
    Runs logged by an older suite carry none: a note, and no ``provenance`` key."""
    found = {task: samples_provenance(file) for task, file in sorted(files.items())}
    missing = [t for t, p in found.items() if p is None]
    present = {t: p for t, p in found.items() if p is not None}
    if missing:
        messages.append(f"note: no package versions (provenance) logged with {', '.join(missing)} (a run made "
                        "before convis-eval logged them); the submission records none for "
                        + ("them" if present else "the run"))
    distinct = {json.dumps(p, sort_keys=True) for p in present.values()}
    if len(distinct) > 1:
        versions = "; ".join(f"{t}: {describe_provenance(p)}" for t, p in present.items())
        raise SubmissionError(f"the runs combined were made with different package versions ({versions}); "
                              "submit answers made in one environment")
    return next(iter(present.values())) if present and not missing else None


def build_from_run(paths: str | list[str], overrides: dict | None = None,
                   messages: list[str] | None = None) -> dict:
    """A submission from lmms-eval output: folders and/or ``*_results.json`` files of ONE model.

    The run-folder rule of :mod:`.runs` applies: several runs of one model are combined (for each task the newest
    run holding it, e.g. pair scoring and retrieval run separately), and the choice is added to ``messages``."""
    messages = messages if messages is not None else []
    overrides = dict(overrides or {})
    paths = [paths] if isinstance(paths, str) else list(paths)
    selection = select_runs(paths)
    messages += selection.notes
    where = ", ".join(paths)
    if not selection.newest.results_file:
        raise SubmissionError(f"{where}: no lmms-eval *_results.json found (run lmms-eval with --output_path and "
                              "--log_samples; the results file records the model and the settings)")
    meta = selection.metadata()
    pairs: list[dict] = []
    retrieval: list[dict] = []
    used: dict[str, str] = {}
    for task, file in sorted(selection.files.items()):
        known = task_concept(task or "")
        if known is None:
            messages.append(f"note: {os.path.basename(file)}: task {task} is not a standard ConViS task; left out")
            continue
        kind, concept = known
        if kind == "pair" and samples_kind(file) == "pair":
            pairs += _pair_entries(task, load_log_samples(file), concept)
            used[task] = file
        elif kind == "retrieval" and samples_kind(file) == "retrieval":
            retrieval += _retrieval_entries(file, task)
            used[task] = file
    if not pairs:
        raise SubmissionError(f"{where}: the run logged no ConViS pair-scoring samples (was --log_samples passed?)")
    provenance = _run_provenance(used, messages)
    recorded = str(meta.get("harness_version") or "")
    if (not recorded or recorded.startswith("unknown")) and provenance and provenance.get("lmms-eval"):
        # lmms-eval installed from PyPI records its version as "unknown@unknown"; the records logged the real one
        meta["harness_version"] = provenance["lmms-eval"]
        messages.append(f"note: harness_version {provenance['lmms-eval']} from the run's logged provenance (the "
                        f"results file says {recorded or 'nothing'})")
    metadata = _complete_metadata(meta, overrides, messages)
    if provenance is not None:
        metadata["provenance"] = provenance
    metadata["data_identity"] = logged_identity(used.values()).to_dict()
    metadata.setdefault("source", ", ".join(os.path.abspath(r.name) for r in selection.runs))
    return _document(metadata, pairs, retrieval)


def build_from_release(root: str, model: str, overrides: dict | None = None,
                       messages: list[str] | None = None) -> dict:
    """A submission from the authors' released per-pair answers of ``model`` (and its retrieval scores if any).

    The release has no raw answers (``answer`` is null) and marks an unparsed answer with 0.0 (``score`` null).
    """
    messages = messages if messages is not None else []
    overrides = dict(overrides or {})
    pairs: list[dict] = []
    for concept, file in release_files(root, model).items():
        pairs += _pair_entries(pair_task(concept), load_release(file, concept), concept)
    retrieval: list[dict] = []

    for concept, file in release_retrieval_files(root, model).items():
        table = load_retrieval_predictions(file)
        scores = table.get(concept, table.get(None, {}))
        for anchor in sorted(scores):
            for candidate in sorted(scores[anchor]):
                retrieval.append({"task": retrieval_task(concept), "anchor": anchor, "candidate": candidate,
                                  "answer": None, "score": scores[anchor][candidate]})
    meta = {"name": model, "prompt": "benchmark", "harness": RELEASE_HARNESS, "harness_version": "release",
            "date": _date.today().isoformat(), "source": os.path.abspath(root)}
    metadata = _complete_metadata(meta, overrides, messages)
    messages.append("note: the release records no package versions; the submission has no provenance")
    metadata["data_identity"] = pair_list_identity({(e["video1"], e["video2"]) for e in pairs}).to_dict()
    return _document(metadata, pairs, retrieval)


def _document(metadata: dict, pairs: list[dict], retrieval: list[dict]) -> dict:
    doc = {"format": SUBMISSION_FORMAT, "format_version": FORMAT_VERSION, "metadata": metadata, "pairs": pairs}
    if retrieval:
        doc["retrieval"] = retrieval
    return doc


def write_submission(doc: dict, path: str) -> None:
    """Write atomically (a temporary name, then a rename); the folder must exist."""
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise SubmissionError(f"{path}: the folder {folder} does not exist; create it first")
    text = json.dumps(doc, indent=1, allow_nan=False)
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as handle:
        handle.write(text)
        handle.write("\n")
    os.replace(tmp, path)


def load_submission(path: str) -> dict:
    data = strict_load_file(path, SubmissionError)
    if not isinstance(data, dict) or data.get("format") != SUBMISSION_FORMAT:
        raise SubmissionError(f"{path}: not a ConViS submission (expected a JSON object with "
                              f"\"format\": \"{SUBMISSION_FORMAT}\")")
    return data


# --- validation ----------------------------------------------------------------------------------------------

@dataclass
class Validation:
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    summary: str = ""
    provenance: str = ""  # the package versions the answers were made with, for people ("not recorded")
    data: str = ""  # which data the answers were made on (metadata.data_identity's label), for people

    @property
    def ok(self) -> bool:
        return not self.errors


def _check_score(value, where: str, errors: list[str]) -> None:
    if value is None:
        return
    if not is_number(value) or not math.isfinite(value):
        errors.append(f"{where}: score {value!r} is not a number or null")
    elif not SCORE_MIN <= value <= SCORE_MAX:
        errors.append(f"{where}: score {value!r} is outside {SCORE_MIN:g}-{SCORE_MAX:g} (use null for an unparsed answer)")


def _check_metadata(meta, errors: list[str], warnings_: list[str]) -> None:
    if not isinstance(meta, dict):
        errors.append("metadata: missing or not an object")
        return
    if "provenance" in meta:
        errors += [f"metadata: provenance: {problem}" for problem in check_provenance(meta["provenance"])]
    else:
        warnings_.append("metadata: no provenance (package versions of the run); written by an older "
                         "convis-eval or converted from the release, so the environment is unknown")
    for key in REQUIRED_METADATA:
        value = meta.get(key)
        if value is None or (isinstance(value, str) and not value.strip()):
            errors.append(f"metadata: {key} is missing (convis submit sets it with {FLAGS[key]})")
    frames = meta.get("frames_per_video")
    if frames is not None and (isinstance(frames, bool) or not isinstance(frames, int) or frames < 1):
        errors.append(f"metadata: frames_per_video must be a positive integer, got {frames!r}")
    for key in ("name", "size", "prompt", "harness", "harness_version", "convis_eval_version"):
        if meta.get(key) is not None and not isinstance(meta[key], str):
            errors.append(f"metadata: {key} must be a string, got {meta[key]!r}")
    day = meta.get("date")
    if isinstance(day, str) and day.strip():
        try:
            _date.fromisoformat(day)
        except ValueError:
            errors.append(f"metadata: date {day!r} is not an ISO date (YYYY-MM-DD)")
    elif day is not None and not isinstance(day, str):
        errors.append(f"metadata: date {day!r} is not an ISO date (YYYY-MM-DD)")
    if isinstance(meta.get("prompt"), str) and meta["prompt"] and meta["prompt"] not in PROMPT_VARIANTS:
        warnings_.append(f"metadata: prompt {meta['prompt']!r} is not one of the suite's variants "
                         f"({', '.join(PROMPT_VARIANTS)})")


def _expected_retrieval(rankings: dict | None, candidates: dict | None, concept: str) -> set[tuple[str, str]] | None:
    if rankings is not None:
        return {(a, c) for a, ranks in rankings.get(concept, {}).items() for c in ranks}
    if candidates is not None:
        return {(a, c) for a, cands in candidates.items() for c in cands}
    return None


def _listed(items: list, limit: int = 5) -> str:
    shown = ", ".join(items[:limit])
    return shown + (f" ... ({len(items)} in all)" if len(items) > limit else "")


def validate(doc, truth: GroundTruth, rankings: dict | None = None, candidates: dict | None = None,
             leaderboard: bool = True) -> Validation:
    """Check a submission against the benchmark pairs (and retrieval sets when given). Every error names its
    entry (``pairs[i]`` / ``retrieval[i]``, task and videos) or the metadata field. ``leaderboard``: answers made on
    other data than the published ConViS-Bench, or ``truth`` other than its pair file, are errors (else warnings)."""
    out = Validation()
    errors, warns = out.errors, out.warnings
    if not isinstance(doc, dict):
        errors.append("the submission is not a JSON object")
        return out
    if doc.get("format") != SUBMISSION_FORMAT:
        errors.append(f"format: expected {SUBMISSION_FORMAT!r}, got {doc.get('format')!r}")
    if doc.get("format_version") != FORMAT_VERSION:
        errors.append(f"format_version: expected {FORMAT_VERSION}, got {doc.get('format_version')!r}")
    unknown_keys = sorted(set(doc) - {"format", "format_version", "metadata", "pairs", "retrieval"})
    if unknown_keys:
        warns.append(f"unknown top-level key(s) ignored: {', '.join(unknown_keys)}")
    _check_metadata(doc.get("metadata"), errors, warns)
    problems, notes = leaderboard_problems(doc.get("metadata"), truth)
    (errors if leaderboard else warns).extend(problems)
    warns.extend(notes)

    truth_keys = {p.key for p in truth.pairs}
    pairs = doc.get("pairs")
    if not isinstance(pairs, list):
        errors.append("pairs: missing or not a list")
        pairs = []
    seen: dict[tuple[str, tuple[str, str]], int] = {}
    per_task: dict[str, set] = {}
    mismatched: list[str] = []
    unparsed = 0
    for i, entry in enumerate(pairs):
        where = f"pairs[{i}]"
        if not isinstance(entry, dict):
            errors.append(f"{where}: not an object")
            continue
        missing = [k for k in ("task", "video1", "video2", "answer", "score") if k not in entry]
        if missing:
            errors.append(f"{where}: missing field(s) {', '.join(missing)}")
            continue
        task = entry["task"]
        if not all(isinstance(entry[k], str) and entry[k] for k in ("task", "video1", "video2")):
            errors.append(f"{where}: task, video1 and video2 must be non-empty strings")
            continue
        key = pair_key(entry["video1"], entry["video2"])
        where = f"pairs[{i}] ({task}, {key[0]} / {key[1]})"
        known = task_concept(task)
        if known is None or known[0] != "pair":
            errors.append(f"{where}: unknown task {task!r}; pair tasks are "
                          f"{', '.join(REQUIRED_TASKS + ('convis_global',))}")
            continue
        if entry["answer"] is not None and not isinstance(entry["answer"], str):
            errors.append(f"{where}: answer must be a string or null")
        _check_score(entry["score"], where, errors)
        if entry["score"] is None:
            unparsed += 1
        if (task, key) in seen:
            errors.append(f"{where}: duplicate, pairs[{seen[(task, key)]}] has the same task and pair")
            continue
        seen[(task, key)] = i
        if key not in truth_keys:
            errors.append(f"{where}: unknown pair, not in the benchmark ({truth.path})")
            continue
        per_task.setdefault(task, set()).add(key)
        if isinstance(entry["answer"], str) and is_number(entry["score"]) and parse_score(entry["answer"]) != entry["score"]:
            mismatched.append(where)
    for task in REQUIRED_TASKS:
        if task not in per_task and not any(t == task for t, _ in seen):
            errors.append(f"task {task}: no entries (the five concept tasks are required)")
    for task in sorted(per_task):
        absent = sorted(truth_keys - per_task[task])
        if absent:
            errors.append(f"task {task}: {len(absent)} benchmark pair(s) missing: "
                          + _listed([f"{a} / {b}" for a, b in absent]))
    if mismatched:
        warns.append(f"{len(mismatched)} score(s) differ from what the suite's parser reads in the answer: "
                     + _listed(mismatched, 3))

    retrieval = doc.get("retrieval", [])
    if not isinstance(retrieval, list):
        errors.append("retrieval: not a list")
        retrieval = []
    r_seen: dict[tuple[str, str, str], int] = {}
    r_tasks: dict[str, set] = {}
    for i, entry in enumerate(retrieval):
        where = f"retrieval[{i}]"
        if not isinstance(entry, dict):
            errors.append(f"{where}: not an object")
            continue
        missing = [k for k in ("task", "anchor", "candidate", "answer", "score") if k not in entry]
        if missing:
            errors.append(f"{where}: missing field(s) {', '.join(missing)}")
            continue
        if not all(isinstance(entry[k], str) and entry[k] for k in ("task", "anchor", "candidate")):
            errors.append(f"{where}: task, anchor and candidate must be non-empty strings")
            continue
        task = entry["task"]
        anchor, candidate = os.path.basename(entry["anchor"]), os.path.basename(entry["candidate"])
        where = f"retrieval[{i}] ({task}, {anchor} -> {candidate})"
        known = task_concept(task)
        if known is None or known[0] != "retrieval":
            errors.append(f"{where}: unknown task {task!r}; retrieval tasks are "
                          f"{', '.join(retrieval_task(c) for c in RETRIEVAL_CONCEPT_KEYS)}")
            continue
        if entry["answer"] is not None and not isinstance(entry["answer"], str):
            errors.append(f"{where}: answer must be a string or null")
        _check_score(entry["score"], where, errors)
        if (task, anchor, candidate) in r_seen:
            errors.append(f"{where}: duplicate, retrieval[{r_seen[(task, anchor, candidate)]}] has the same task, "
                          "anchor and candidate")
            continue
        r_seen[(task, anchor, candidate)] = i
        expected = _expected_retrieval(rankings, candidates, known[1])
        if expected is not None and (anchor, candidate) not in expected:
            errors.append(f"{where}: unknown (anchor, candidate), not in the retrieval sets")
            continue
        r_tasks.setdefault(task, set()).add((anchor, candidate))
    for task in sorted(r_tasks):
        expected = _expected_retrieval(rankings, candidates, task_concept(task)[1])
        if expected is None:
            continue
        absent = sorted(expected - r_tasks[task])
        if absent:
            errors.append(f"task {task}: {len(absent)} (anchor, candidate) entr(ies) missing: "
                          + _listed([f"{a} -> {c}" for a, c in absent]))
    if retrieval and rankings is None and candidates is None:
        warns.append("retrieval coverage not checked: pass --rankings (ranked.json) or --candidates "
                      "(to_be_ranked.json)")
    if not errors:
        meta = doc["metadata"]
        out.summary = (f"OK: {meta['name']} ({meta['size']}, {meta['frames_per_video']} frames per video, prompt "
                       f"{meta['prompt']}, {meta['harness']} {meta['harness_version']}, {meta['date']}): "
                       f"{len(per_task)} pair task(s) x {len(truth_keys)} pairs, {len(pairs)} answers, "
                       f"{unparsed} unparsed" + (f"; retrieval: {len(r_tasks)} task(s), {len(retrieval)} answers"
                                                  if retrieval else ""))
        out.provenance = describe_provenance(meta.get("provenance"))
        out.data = recorded_label(meta)
    return out


# --- reading and scoring -------------------------------------------------------------------------------------

def _checked(result: dict, task: str) -> dict:
    """n = 0 is an error; below the minimum the task's entry gets a ``warning``."""
    small = sample_size_warning(result["n"], task)
    if small:
        result["warning"] = small
    return result


def score_submission(doc: dict, truth: GroundTruth, rankings: dict | None = None) -> dict:
    """The leaderboard numbers, shaped like lmms-eval's ``results`` (task -> metric -> value, x100, unrounded):
    ``convis_<concept>`` {spearman, kendall, n, unparsed}, the ``convis`` group's mean rho / tau over the five,
    ``convis_global`` {spearman_<concept>, kendall_<concept>, n, unparsed} and, with ``rankings``, the retrieval
    tasks and the ``convis_retrieval`` group's mean F1@1. The same functions as the harness compute them.
    A pair task scored on fewer than the minimum number of pairs carries ``warning``; none scored is an error."""

    preds, retrieval = submission_predictions(doc)
    out: dict[str, dict] = {}
    for concept in CONCEPT_KEYS:
        if preds is not None and concept in preds.scores:
            out[pair_task(concept)] = _checked(score_pairs(preds.scores[concept], truth.by_concept(concept)).to_dict(),
                                               pair_task(concept))
    if all(pair_task(c) in out for c in CONCEPT_KEYS):
        # the `convis` group: lmms-eval's unweighted mean of the five tasks, in the group's task order
        out["convis"] = {m: sum(out[pair_task(c)][m] * 1 for c in CONCEPT_KEYS) / len(CONCEPT_KEYS)
                         for m in ("spearman", "kendall")}
    if preds is not None and None in preds.scores:
        task: dict = {}
        for concept in CONCEPT_KEYS:
            r = score_pairs(preds.scores[None], truth.by_concept(concept))
            task[f"spearman_{concept}"], task[f"kendall_{concept}"] = r.spearman, r.kendall
            task["n"], task["unparsed"] = r.n, r.unparsed
        out["convis_global"] = _checked(task, "convis_global")
    if retrieval and rankings:
        for concept in RETRIEVAL_CONCEPT_KEYS:
            if concept in retrieval and rankings.get(concept):
                r = evaluate_retrieval(rankings[concept], retrieval[concept]).to_dict()
                random = r.pop("random")
                r.pop("kendall_undefined", None)
                r.update({f"random_{k}": v for k, v in random.items()})
                out[retrieval_task(concept)] = r
        tasks = [retrieval_task(c) for c in RETRIEVAL_CONCEPT_KEYS]
        if all(t in out for t in tasks):
            out["convis_retrieval"] = {"f1@1": sum(out[t]["f1@1"] for t in tasks) / len(tasks)}
    return out
