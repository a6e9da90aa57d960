"""lmms-eval run folders, and the ONE rule that turns a folder (or several) into one model's answers.

lmms-eval writes each run as ``<output>/<model>/<stamp>_results.json`` beside one ``<stamp>_samples_<task>.jsonl``
per task (``<stamp>`` is ``YYYYMMDD_HHMMSS``). A folder given to ``convis correlate``, ``retrieval``, ``report``,
``plot`` or ``submit`` may hold several runs (one ``--output_path`` reused; ``convis run`` writes each run in its
own sub-folder). :func:`select_runs` applies the rule every one of those commands shares:

1. Every run under the given paths is found (a run = a folder and a ``<stamp>_`` prefix; its results file may be
   absent when only samples files were kept).
2. **One model.** All runs must be of the same model: the results files' ``config.model`` and ``model_args`` (less
   ``device`` / ``device_map``, which do not change answers; a run of the journaling wrapper ``convis_resumable``,
   which ``convis run`` uses by default, is a run of its inner model: :func:`answering_model`). Runs without a
   results file count as the model of their folder. Runs of several models are an error that lists every run and
   asks for one model's folder or ``*_results.json``.
3. **Newest run per task.** For each task, the answers come from the newest run holding it (stamp, then file
   time); a task re-run replaces its older answers and the older run is named in a note. So a submission or a
   report can combine pair scoring and retrieval run separately, and a re-run of one task replaces only that task.
4. **Same settings.** When answers come from several runs, the tasks used must agree on ``frames_per_video``,
   ``input`` and the prompt variant (concept-free task aside); otherwise it is an error listing the values per run.

5. **Scored answers.** A ConViS task whose samples ``lmms-eval --predict_only`` wrote (answers without the ConViS
   records) is an error that names ``convis complete``, which adds the records (:mod:`convis_tasks.harness.predict_only`).

Whenever more than one run is involved, the selection's notes say which run supplied each task.
Nothing here imports torch or lmms-eval.
"""

from __future__ import annotations

import fnmatch
import glob
import json
import math
import os
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone

from convis_tasks.concepts import CONCEPT_KEYS, RETRIEVAL_CONCEPT_KEYS
from convis_tasks.reading.predictions import PredictionError
from convis_tasks.errors import InputError
from convis_tasks.reading.jsonio import strict_jsonl_objects, strict_load_file, strict_loads
from convis_tasks.reading.provenance import describe
from convis_tasks.reading.names import walk_files

RESULTS_SUFFIX = "results.json"
SAMPLES_GLOB = "*_samples_*.jsonl"
_SAMPLES = re.compile(r"^(.*?)samples_(.+)\.jsonl$")
# model_args that choose where a model runs, not what it answers
PLACEMENT_ARGS = frozenset({"device", "device_map"})
# `convis run` journals answers by running the model inside this wrapper (model_wrappers/resumable.py); the wrapper's
# own arguments (which model, where the journal is, how many requests at a time) do not change an answer
JOURNALING_MODEL = "convis_resumable"
JOURNALING_ARGS = ("inner", "journal", "chunk")
SETTINGS = ("frames_per_video", "input", "prompt")


class RunSelectionError(PredictionError):
    """A folder's runs cannot be combined under the rule (several models, settings that differ, ...)."""


# --- small readers of lmms-eval's files ---------------------------------------------------------------------------

def read_json(path: str):
    """An lmms-eval results file, read strictly (duplicate keys are errors; NaN metrics, which lmms-eval writes for
    an undefined correlation, are read), or :class:`PredictionError` naming it."""
    return strict_load_file(path, PredictionError, allow_nonfinite=True)


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


def answering_model(model: str, model_args) -> tuple[str, str]:
    """The model that answered and its own arguments, as a results file's ``config`` records them: a run of
    :data:`JOURNALING_MODEL` is a run of its ``inner`` model with the other arguments (the wrapper's own, which only
    say where the answers are journaled, are left out); any other model is itself. ``model_args`` is returned as
    a string (a dict is written ``key=value,...``)."""
    text = (",".join(f"{k}={v}" for k, v in model_args.items()) if isinstance(model_args, dict)
            else str(model_args or ""))
    inner = parse_model_args(text).get("inner") if model == JOURNALING_MODEL else None
    if not inner:
        return model, text
    kept = [part for part in text.split(",") if part.split("=", 1)[0].strip() not in JOURNALING_ARGS]
    return inner, ",".join(kept)


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


def samples_task(path: str) -> str | None:
    match = _SAMPLES.match(os.path.basename(path))
    return match.group(2) if match else None


def samples_prefix(path: str) -> str:
    match = _SAMPLES.match(os.path.basename(path))
    return match.group(1) if match else ""


def tree_files(folder: str) -> list[str]:
    """Every file under a run folder, sorted, each real file once (:func:`~convis_tasks.reading.names.walk_files`;
    symlinked folders are followed wherever they lead: the user chose the folder)."""
    return walk_files(folder, allow_outside=True)


def results_files(folder: str) -> list[str]:
    return [f for f in tree_files(folder) if os.path.basename(f).endswith("_" + RESULTS_SUFFIX)]


def run_samples(results_file: str) -> list[str]:
    """The samples files of the run of ``results_file`` (same folder, same ``<stamp>_`` prefix)."""
    prefix = os.path.basename(results_file)[: -len(RESULTS_SUFFIX)]
    return sorted(glob.glob(os.path.join(glob.escape(os.path.dirname(results_file) or "."),
                                         glob.escape(prefix) + "samples_*.jsonl")))


def _first_line(path: str) -> str | None:
    """The first non-blank line of a text file (None when there is none); unreadable files name themselves."""
    try:
        with open(path, encoding="utf-8") as handle:
            return next((line for line in handle if line.strip()), None)
    except (OSError, UnicodeDecodeError) as exc:
        raise PredictionError(f"{path}: cannot read ({exc})") from None


def _first_record(path: str) -> dict | None:
    """The first ConViS record (a metric value with a ``score``) of a samples file's first sample, or None.

    A first line that is not JSON gives None too: the loaders report the broken line with its number."""
    line = _first_line(path)
    try:
        sample = strict_loads(line, path, allow_nonfinite=True) if line is not None else None
    except InputError:
        return None
    for value in sample.values() if isinstance(sample, dict) else ():
        if isinstance(value, dict) and "score" in value:
            return value
    return None


def samples_kind(path: str) -> str | None:
    """"pair", "retrieval" or None: the kind of the ConViS records of a samples file (first record decides)."""
    line = _first_line(path)
    if line is None:
        return None
    try:
        strict_loads(line, path, allow_nonfinite=True)
    except InputError:
        return "pair"  # let the loader report the broken line
    record = _first_record(path)
    if record is None:
        return None
    if record.get("kind") == "retrieval":
        return "retrieval"
    return "pair" if "video1" in record and "video2" in record else None


def predict_only_samples(path: str) -> bool:
    """True for a samples file that ``lmms-eval --predict_only`` wrote for a task: its first sample carries the
    ``bypass`` metric that mode logs and no ConViS record (that mode never calls the task's ``process_results``)."""
    line = _first_line(path)
    try:
        sample = strict_loads(line, path, allow_nonfinite=True) if line is not None else None
    except InputError:
        return False
    return isinstance(sample, dict) and "bypass" in sample and _first_record(path) is None


def convis_task(task: str) -> tuple[str, str | None] | None:
    """:func:`task_concept` of a ConViS task name, the ``*_expected`` variants included."""
    return task_concept(task.removesuffix("_expected"))


def samples_provenance(path: str) -> dict | None:
    """The ``provenance`` logged with the ConViS records of a samples file (None when not logged).

    Every record must carry the same versions: a file whose records were made in different environments (a run
    resumed after an upgrade, files concatenated) is an error naming the file and the first line that differs."""
    first: tuple[str, object] | None = None
    for _, where, sample in strict_jsonl_objects(path, PredictionError, "sample log", allow_nonfinite=True):
        for value in sample.values():
            if isinstance(value, dict) and "kind" in value and "score" in value:
                found = value.get("provenance") if isinstance(value.get("provenance"), dict) else None
                if first is None:
                    first = (where, found)
                elif found != first[1]:
                    raise PredictionError(f"{where}: the record's package versions ({describe(found)}) differ from "
                                          f"those of {first[0]} ({describe(first[1])}); a submission is built from "
                                          "the answers of one environment")
                break
    return first[1] if first is not None else None  # type: ignore[return-value]


# --- run metadata -------------------------------------------------------------------------------------------------

def _run_date(results: dict) -> str | None:
    value = results.get("date")
    if isinstance(value, str):
        match = re.match(r"(\d{4})(\d{2})(\d{2})", value) or re.match(r"(\d{4})-(\d{2})-(\d{2})", value)
        if match:
            return "-".join(match.groups())
    if isinstance(value, (int, float)) and math.isfinite(value) and value > 1e8:
        return datetime.fromtimestamp(value, tz=timezone.utc).date().isoformat()
    return None


def _task_kwargs(config: dict) -> dict:
    kwargs = config.get("lmms_eval_specific_kwargs") or {}
    if not isinstance(kwargs, dict):
        return {}
    merged = dict(kwargs.get("default") or {}) if isinstance(kwargs.get("default"), dict) else {}
    merged.update({k: v for k, v in kwargs.items() if k != "default" and not isinstance(v, dict)})
    return merged


def task_kwargs(results: dict, task: str) -> dict:
    """Every ``lmms_eval_specific_kwargs`` option of one task of a run's results (defaults merged; {} when unknown)."""
    configs = results.get("configs") if isinstance(results.get("configs"), dict) else {}
    config = configs.get(task)
    return _task_kwargs(config) if isinstance(config, dict) else {}


def task_settings(results: dict, task: str) -> dict:
    """``frames_per_video`` / ``prompt`` / ``input`` of one task of a run's results (keys absent when unknown)."""
    kwargs = task_kwargs(results, task)
    return {k: kwargs[k] for k in SETTINGS if kwargs.get(k) is not None}


def run_metadata(results: dict) -> dict:
    """What a run's ``*_results.json`` says about the model and the settings (keys absent when unknown).

    ``frames_per_video`` / ``prompt`` / ``input`` come from the tasks' ``lmms_eval_specific_kwargs``; the prompt
    is that of the concept tasks (``global`` when only ``convis_global`` ran). When tasks disagree the value is
    left out and ``<key>_by_task`` lists them.
    """
    config = results.get("config") if isinstance(results.get("config"), dict) else {}
    meta: dict = {}
    model, model_args = answering_model(str(config.get("model") or ""), config.get("model_args"))
    if model:
        meta["model"] = model
    args = parse_model_args(model_args)
    if model_args:
        meta["model_args"] = model_args if isinstance(config.get("model_args"), str) else json.dumps(args)
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
    for task in (results.get("configs") or {}):
        if task_concept(task) or "convis" in task:
            per_task[task] = task_settings(results, task)
    for key in SETTINGS:
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


# --- runs and the rule ----------------------------------------------------------------------------------------------

@dataclass
class Run:
    """One lmms-eval run: a folder and a ``<stamp>_`` prefix."""

    folder: str
    prefix: str
    results_file: str | None
    samples: dict[str, str]  # task -> samples file
    results: dict = field(default_factory=dict)

    @property
    def name(self) -> str:
        """How notes and errors name the run: its results file, else its samples prefix in its folder."""
        return self.results_file or os.path.join(self.folder, f"{self.prefix}samples_*.jsonl")

    @property
    def order(self) -> tuple[str, float]:
        """Sort key, oldest first: the stamp, then the newest file time of the run."""
        files = ([self.results_file] if self.results_file else []) + list(self.samples.values())
        return (self.prefix, max((os.path.getmtime(f) for f in files), default=0.0))

    @property
    def model(self) -> tuple:
        """The model identity (see the module docstring)."""
        config = self.results.get("config") if isinstance(self.results.get("config"), dict) else {}
        if not self.results_file or not config:
            return ("folder", os.path.abspath(self.folder))
        model, model_args = answering_model(str(config.get("model") or ""), config.get("model_args"))
        args = {k: str(v) for k, v in parse_model_args(model_args).items() if k not in PLACEMENT_ARGS}
        return ("model", model, tuple(sorted(args.items())))

    def describe_model(self) -> str:
        kind, *rest = self.model
        if kind == "folder":
            return f"answers in {rest[0]} (no results file)"
        model, args = rest
        return model + (f" ({','.join(f'{k}={v}' for k, v in args)})" if args else "")


def _run_from_results(results_file: str) -> Run:
    results = read_json(results_file)
    if not isinstance(results, dict):
        raise PredictionError(f"{results_file}: not an lmms-eval results file (expected a JSON object)")
    samples = {samples_task(f): f for f in run_samples(results_file)}
    prefix = os.path.basename(results_file)[: -len(RESULTS_SUFFIX)]
    return Run(os.path.dirname(results_file) or ".", prefix, results_file, samples, results)


def find_runs(path: str) -> list[Run]:
    """Every run in ``path``: a folder (searched recursively), a ``*_results.json`` or one samples file."""
    path = str(path)
    if not os.path.exists(path):
        raise PredictionError(f"{path}: not found")
    if os.path.isfile(path):
        if path.endswith(RESULTS_SUFFIX):
            return [_run_from_results(path)]
        if not path.endswith(".jsonl"):
            raise PredictionError(f"{path}: not an lmms-eval results or samples file (*_results.json, "
                                  "*_samples_<task>.jsonl)")
        task = samples_task(path) or os.path.basename(path)[: -len(".jsonl")]  # a renamed samples file
        return [Run(os.path.dirname(path) or ".", samples_prefix(path), None, {task: path})]
    files = tree_files(path)
    runs = [_run_from_results(f) for f in files if os.path.basename(f).endswith("_" + RESULTS_SUFFIX)]
    claimed = {f for r in runs for f in r.samples.values()}
    loose: dict[tuple[str, str], dict[str, str]] = {}
    for file in files:
        if fnmatch.fnmatch(os.path.basename(file), SAMPLES_GLOB) and file not in claimed:
            loose.setdefault((os.path.dirname(file), samples_prefix(file)), {})[samples_task(file)] = file
    runs += [Run(folder, prefix, None, samples) for (folder, prefix), samples in sorted(loose.items())]
    if not runs:
        raise PredictionError(f"{path}: no lmms-eval run found (no '*_results.json' or '*_samples_*.jsonl' files; "
                              "was lmms-eval run with --output_path and --log_samples?)")
    return runs


@dataclass
class Selection:
    """What :func:`select_runs` chose: one samples file per task, from the runs of one model."""

    files: dict[str, str]  # task -> samples file
    runs: list[Run]  # the runs that supplied a task, oldest first
    notes: list[str] = field(default_factory=list)

    def task_run(self, task: str) -> Run:
        return next(r for r in self.runs if r.samples.get(task) == self.files[task])

    @property
    def newest(self) -> Run:
        return self.runs[-1]

    def results(self) -> dict:
        """A results document for :func:`run_metadata`: the newest run's, with each used task's config taken
        from the run that supplied it (tasks not used are left out)."""
        newest = dict(self.newest.results)
        configs = {}
        for task in self.files:
            own = self.task_run(task).results.get("configs")
            if isinstance(own, dict) and task in own:
                configs[task] = own[task]
        newest["configs"] = configs
        return newest

    def metadata(self) -> dict:
        meta = run_metadata(self.results()) if self.newest.results else {}
        if self.newest.results_file:
            meta["results_file"] = self.newest.results_file
        return meta


def _listing(runs: list[Run]) -> str:
    return "; ".join(f"{r.name} [{r.describe_model()}: {', '.join(sorted(r.samples))}]" for r in runs)


def select_runs(paths: list[str] | str) -> Selection:
    """Apply the run-folder rule (module docstring) to one or more paths; errors name every run involved."""
    paths = [paths] if isinstance(paths, str) else list(paths)
    runs: list[Run] = []
    for path in paths:
        for run in find_runs(path):
            if not any(r.folder == run.folder and r.prefix == run.prefix for r in runs):
                runs.append(run)
    where = ", ".join(paths)
    models = {}
    for run in runs:
        models.setdefault(run.model, []).append(run)
    if len(models) > 1:
        raise RunSelectionError(
            f"{where}: holds runs of {len(models)} different models, which are never merged: {_listing(runs)}. "
            "Pass the folder or the *_results.json of one model's runs")
    runs.sort(key=lambda r: r.order)
    files: dict[str, str] = {}
    superseded: list[str] = []
    for run in runs:  # oldest first: a newer run's task replaces an older one's
        for task, file in sorted(run.samples.items()):
            if task in files:
                superseded.append(f"{task} of {next(r for r in runs if r.samples.get(task) == files[task]).name}")
            files[task] = file
    if not files:
        raise PredictionError(f"{where}: the run(s) logged no samples files ({_listing(runs)}); run lmms-eval with "
                              "--log_samples, which writes the answers these commands read")
    unscored = sorted(t for t, f in files.items() if convis_task(t) and predict_only_samples(f))
    if unscored:
        raise PredictionError(f"{where}: lmms-eval --predict_only logged the answers of {', '.join(unscored)} without "
                              "their ConViS records (that mode skips the tasks' process_results); add them with "
                              f"`convis complete {os.path.dirname(files[unscored[0]]) or '.'}` (`convis run "
                              "--predict_only` does it itself), then score the folder")
    used = [r for r in runs if any(files[t] == f for t, f in r.samples.items())]
    selection = Selection(files, used)
    if len(used) > 1:
        _check_settings(selection, where)
    if len(runs) > 1:
        per_run = "; ".join(f"{r.name}: {', '.join(t for t in sorted(files) if selection.task_run(t) is r)}"
                            for r in used)
        note = f"note: {where}: {len(runs)} runs of one model; each task is taken from the newest run holding it: {per_run}"
        if superseded:
            note += f"; replaced by a newer run (not used): {', '.join(superseded)}"
        selection.notes.append(note)
    return selection


def _check_settings(selection: Selection, where: str) -> None:
    conflicts = []
    for key in SETTINGS:
        values: dict[str, list[str]] = {}
        for task in selection.files:
            if key == "prompt" and task == "convis_global":
                continue  # the concept-free task always uses its own prompt
            run = selection.task_run(task)
            value = task_settings(run.results, task).get(key)
            if value is not None:
                values.setdefault(str(value), []).append(f"{task} ({os.path.basename(run.name)})")
        if len(values) > 1:
            conflicts.append(f"{key}: " + " vs ".join(f"{v} in {', '.join(ts)}" for v, ts in values.items()))
    if conflicts:
        raise RunSelectionError(f"{where}: the runs combined here were made with different settings ("
                                + "; ".join(conflicts) + "); pass the folder or *_results.json of one run")
