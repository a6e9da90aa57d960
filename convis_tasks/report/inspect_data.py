"""What ``convis inspect`` shows, gathered from lmms-eval runs: answers, human scores, residuals, summaries.

Pure data, no HTML and no video: :func:`gather` reads each input under the run-folder rule of :mod:`.runs`
(:func:`.inputs.load_path` checks the answers strictly, :func:`.runs.select_runs` names the samples file of each
task) and returns an :class:`InspectData`: one :class:`PairView` per pair (every model's answers to it, concept
by concept, and the concept-free ones of ``convis_global``), one :class:`AnchorView` per retrieval anchor, and a
:class:`ModelView` per input with its settings, provenance and per-concept summaries (rho / tau from
:func:`~convis_tasks.scoring.metrics.score_pairs`, as ``convis correlate`` computes them; bootstrap intervals; the
answer histogram). The frames are found later (:mod:`.inspect_frames`) from each answer's :class:`ClipSpec`.

Residual: the score as the benchmark scores it (an unparsed answer counts 3.0) minus the human mean. Rank gap:
the score's rank among the task's answers minus the human mean's rank among the same pairs, both scaled to 0-1
(what rho sees). Nothing here imports torch or lmms-eval.
"""

from __future__ import annotations

import hashlib
import math
import os
import warnings
from collections import Counter
from dataclasses import dataclass, field

import numpy as np
from scipy.stats import rankdata

from convis_tasks.reading.annotations import PairKey, load_ground_truth, pair_key
from convis_tasks.concepts import CONCEPT_KEYS
from convis_tasks.scoring.metrics import EmptyEvaluationError, score_pairs
from convis_tasks.scoring.unparsed import NEUTRAL_SCORE
from convis_tasks.scoring.parsing import parse_answer
from convis_tasks.reading.predictions import PredictionError, iter_log_samples
from convis_tasks.reading.provenance import describe
from convis_tasks.reading.inputs import load_path, parse_specs
from convis_tasks.reading.runs import RESULTS_SUFFIX, samples_kind, samples_provenance, select_runs, task_kwargs
from convis_tasks.reading.rankings import load_rankings
from convis_tasks.scoring.bootstrap import bootstrap_ci
from convis_tasks.scoring.retrieval import RetrievalInputError, anchor_metrics, evaluate_retrieval

DEFAULT_FRAMES = 8  # the template's frames_per_video (convis_tasks/_template_yaml)
HISTOGRAM_LABELS = ("1", "2", "3", "4", "5", "unparsed")


@dataclass(frozen=True)
class ClipSpec:
    """How a task showed a pair to the model: N frames per video, the clip's frame size, ``concat`` or
    ``two_videos``, and the task's own ``cache_dir`` option; ``unknown`` says why the settings are not known."""

    n_frames: int | None
    size: tuple[int, int] | None = None
    input: str = "concat"
    cache_dir: str | None = None
    unknown: str | None = None


@dataclass
class Human:
    """The human score of one pair on one concept: the mean, and the raw ratings when they were given."""

    mean: float
    ratings: tuple[float, ...] = ()

    @property
    def sd(self) -> float | None:
        return float(np.std(self.ratings, ddof=1)) if len(self.ratings) > 1 else None


@dataclass
class Answer:
    """One model's answer to one pair (or anchor-candidate pair) in one task."""

    model: str
    task: str
    concept: str | None  # None: concept-free (convis_global)
    answer: str
    score: float | None
    reason: str | None  # why the answer is unparsed (None when it parsed)
    prompt: str | None
    clip: ClipSpec
    residuals: dict[str, float] = field(default_factory=dict)  # concept -> scored value - human mean
    rank_gaps: dict[str, float] = field(default_factory=dict)  # concept -> rank(score) - rank(human), 0-1 scale
    candidate: str | None = None  # retrieval only: the candidate (video 2; the anchor is video 1)
    human_rank: float | None = None  # retrieval only
    model_rank: int | None = None  # retrieval only: 1 + candidates scored strictly higher
    probabilities: list[float] | None = None  # expected-score runs: p(1) .. p(5), from the logged log-likelihoods

    @property
    def value(self) -> float:
        """The score as the benchmark scores it: an unparsed answer counts :data:`NEUTRAL_SCORE`."""
        return NEUTRAL_SCORE if self.score is None else self.score


@dataclass
class PairView:
    """One pair: the videos as the run logged them, the human scores, and every answer to it."""

    key: PairKey
    video1: str
    video2: str
    human: dict[str, Human] = field(default_factory=dict)
    answers: list[Answer] = field(default_factory=list)

    @property
    def disagreement(self) -> float:
        """The largest |residual| of any answer (-1 when no answer has a human score to compare with)."""
        return max((abs(r) for a in self.answers for r in a.residuals.values()), default=-1.0)


@dataclass
class AnchorView:
    """One retrieval anchor: its candidates and every answer (video 1 = the anchor, video 2 = the candidate)."""

    anchor: str
    candidates: list[str]
    answers: list[Answer] = field(default_factory=list)
    metrics: dict[tuple[str, str], dict] = field(default_factory=dict)  # (model, concept) -> anchor metrics


@dataclass
class Summary:
    """One model's answers on one concept (concept-free answers: correlated with that concept)."""

    model: str
    concept: str
    concept_free: bool
    n: int
    unparsed: int
    spearman: float | None
    kendall: float | None
    ci: dict[str, tuple[float, float]] | None  # "spearman"/"kendall" -> (lo, hi), x100
    histogram: list[tuple[str, int]]
    top_answer: tuple[str, int]  # the most frequent raw answer and its count
    distinct: int  # distinct raw answers


@dataclass
class ModelView:
    """One input (one model's runs): what it is, how it was run, and its summaries."""

    label: str
    paths: list[str]
    meta: dict
    provenance: str
    tasks: dict[str, ClipSpec]
    prompts: dict[str, str]  # task -> the prompt most of its answers got
    summaries: list[Summary] = field(default_factory=list)
    retrieval: dict[str, dict] = field(default_factory=dict)  # concept -> evaluate_retrieval().to_dict()
    notes: list[str] = field(default_factory=list)


@dataclass
class InspectData:
    models: list[ModelView]
    pairs: list[PairView]
    anchors: list[AnchorView]
    truth_source: str
    fingerprint: str | None  # sha256 (first 16 hex) of the ground-truth file, when one was given
    messages: list[str] = field(default_factory=list)


# --- small pure helpers ----------------------------------------------------------------------------------------

def histogram(scores: list[float | None]) -> list[tuple[str, int]]:
    """Counts of scores in five bins centred on 1..5 (a non-integer score falls in the nearest; .5 goes up),
    then the unparsed answers."""
    counts = dict.fromkeys(HISTOGRAM_LABELS, 0)
    for score in scores:
        label = "unparsed" if score is None else str(min(5, max(1, int(math.floor(score + 0.5)))))
        counts[label] += 1
    return list(counts.items())


def rank_gaps(values: dict[PairKey, float], truth: dict[PairKey, float]) -> dict[PairKey, float]:
    """Per pair, rank(value) - rank(truth) over the pairs both sides have, each scaled to 0-1 (average ranks)."""
    keys = sorted(set(values) & set(truth))
    if len(keys) < 2:
        return {}
    scale = len(keys) - 1
    model = (rankdata([values[k] for k in keys]) - 1) / scale
    human = (rankdata([truth[k] for k in keys]) - 1) / scale
    return {k: float(m - h) for k, m, h in zip(keys, model, human)}


def model_ranks(scores: dict[str, float | None]) -> dict[str, int]:
    """Competition ranks of candidates by the model's score (unparsed = 3.0), 1 = the most similar."""
    value = {c: NEUTRAL_SCORE if s is None else s for c, s in scores.items()}
    return {c: 1 + sum(1 for other in value.values() if other > v) for c, v in value.items()}


def _clip_spec(results: dict, task: str, has_results: bool) -> ClipSpec:
    if not has_results:
        return ClipSpec(None, unknown="the run has no results file, so its frames per video are not known")
    kw = task_kwargs(results, task)
    size = kw.get("frame_size")
    return ClipSpec(int(kw.get("frames_per_video", DEFAULT_FRAMES)), tuple(int(v) for v in size) if size else None,
                    str(kw.get("input", "concat")), kw.get("cache_dir"))


def _file_fingerprint(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:16]


# --- truth ---------------------------------------------------------------------------------------------------------

def _truth_from_file(path: str) -> dict[str, dict[PairKey, Human]]:
    truth = load_ground_truth(path)
    ratings: dict[tuple[str, PairKey], list[float]] = {}
    for rating in truth.ratings:
        ratings.setdefault((rating.concept, rating.pair), []).append(rating.value)
    return {c: {k: Human(m, tuple(ratings.get((c, k), ()))) for k, m in truth.by_concept(c).items()}
            for c in CONCEPT_KEYS}


def _logged_truth(record: dict, where: str) -> dict[str, float]:
    gt = record.get("gt")
    if not isinstance(gt, dict) or any(c not in CONCEPT_KEYS or isinstance(v, bool) or
                                       not isinstance(v, (int, float)) for c, v in gt.items()):
        raise PredictionError(f"{where}: field 'gt' must map concept keys to human means, got {gt!r}")
    return {c: float(v) for c, v in gt.items()}


# --- gathering -----------------------------------------------------------------------------------------------------

def answer_probabilities(logliks: object) -> list[float] | None:
    """p(1) .. p(5) of an expected-score record's five logged log-likelihoods (the softmax its score is the mean of),
    else None (a greedy record, or log-likelihoods that could not be scored)."""
    if not isinstance(logliks, list) or len(logliks) != 5 or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in logliks):
        return None
    top = max(logliks)
    weights = [math.exp(v - top) for v in logliks]
    return [w / sum(weights) for w in weights]


def _prompts(answers: list[Answer]) -> dict[str, str]:
    by_task: dict[str, Counter] = {}
    for a in answers:
        if a.prompt is not None:
            by_task.setdefault(a.task, Counter())[a.prompt] += 1
    return {task: counts.most_common(1)[0][0] for task, counts in by_task.items()}


def _read_model(label: str | None, path: str
                ) -> tuple[ModelView, list[tuple[dict, Answer]], list[tuple[dict, Answer]]]:
    """One input: its view, and its (record, answer) pairs for pair scoring and for retrieval; the label defaults
    to the run's model name, as in ``convis report``."""
    if not (os.path.isdir(path) or path.endswith(RESULTS_SUFFIX) or path.endswith(".jsonl")):
        raise PredictionError(f"{path}: convis inspect reads lmms-eval runs (an output folder, a *_results.json or "
                              "a samples .jsonl), which hold the answers and the settings the frames depend on")
    item = load_path(path)  # the strict checks of every other command (pairs scored twice, bad scores, ...)
    label = label or item.label
    selection = select_runs(path)
    pairs: list[tuple[dict, Answer]] = []
    retrieval: list[tuple[dict, Answer]] = []
    tasks: dict[str, ClipSpec] = {}
    provenance = None
    for task, file in sorted(selection.files.items()):
        kind = samples_kind(file)
        if kind is None:
            continue
        run = selection.task_run(task)
        spec = tasks[task] = _clip_spec(run.results, task, run.results_file is not None)
        provenance = provenance or samples_provenance(file)
        seen: set[tuple] = set()
        for where, record, sample in iter_log_samples(file, kind):
            if kind == "pair":
                ident = pair_key(record["video1"], record["video2"])
            else:
                ident = (os.path.basename(record["anchor"]), os.path.basename(record["candidate"]))
            if ident in seen:  # padded ranks log a pair twice; load_path checked that the copies agree
                continue
            seen.add(ident)
            answer = record.get("answer", "")
            prompt = sample.get("input") if isinstance(sample.get("input"), str) else None
            reason = record.get("parse", parse_answer(answer).reason) if record.get("score") is None else None
            made = Answer(label, task, record.get("concept"), answer, record.get("score"), reason, prompt, spec,
                          probabilities=answer_probabilities(record.get("logliks")))
            (pairs if kind == "pair" else retrieval).append(({**record, "_where": where}, made))
    view = ModelView(label, list(item.paths), dict(item.meta), describe(provenance), tasks,
                     _prompts([a for _, a in pairs + retrieval]), notes=list(item.notes))
    return view, pairs, retrieval


def _summaries(view: ModelView, answers: list[Answer], truth: dict[str, dict[PairKey, Human]], keys: dict,
               bootstrap: int, seed: int) -> None:
    """Fill residuals and rank gaps of ``answers`` (one model's pair answers) and ``view.summaries``."""

    groups: dict[str | None, list[Answer]] = {}
    for a in answers:
        groups.setdefault(a.concept, []).append(a)
    for concept_group in [c for c in CONCEPT_KEYS if c in groups] + ([None] if None in groups else []):
        group = groups[concept_group]
        for concept in ([concept_group] if concept_group else list(CONCEPT_KEYS)):
            means = {k: h.mean for k, h in truth.get(concept, {}).items()}
            if concept_group is None and not means:
                continue  # concept-free answers are compared with the concepts that have human scores
            scores = {keys[id(a)]: a.score for a in group}
            values = {k: NEUTRAL_SCORE if s is None else s for k, s in scores.items()}
            gaps = rank_gaps(values, means)
            for a in group:
                key = keys[id(a)]
                if key in means:
                    a.residuals[concept] = a.value - means[key]
                if key in gaps:
                    a.rank_gaps[concept] = gaps[key]
            shared = {k: v for k, v in scores.items() if k in means}
            rho = tau = None
            ci = None
            if shared:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")  # small samples and constant answers are shown on the page
                    try:
                        result = score_pairs(shared, means)
                        rho, tau = result.spearman, result.kendall
                        if bootstrap and len(shared) > 1:
                            found = bootstrap_ci(shared, means, b=bootstrap, seed=seed)
                            ci = {m: (i.lo, i.hi) for m, i in found.items()}
                    except EmptyEvaluationError:
                        pass
            rho = None if rho is None or math.isnan(rho) else rho
            tau = None if tau is None or math.isnan(tau) else tau
            raw = Counter(a.answer for a in group)
            top = raw.most_common(1)[0] if raw else ("", 0)
            view.summaries.append(Summary(view.label, concept, concept_group is None, len(shared),
                                          sum(1 for k, s in shared.items() if s is None), rho, tau, ci,
                                          histogram([a.score for a in group]), top, len(raw)))


def gather(specs: list[str], labels: list[str] | None = None, ground_truth: str | None = None,
           rankings: str | None = None, bootstrap: int = 1000, seed: int = 0) -> InspectData:
    """Read every ``[LABEL=]PATH`` (see the module docstring) into an :class:`InspectData`."""
    messages: list[str] = []
    truth: dict[str, dict[PairKey, Human]] = {c: {} for c in CONCEPT_KEYS}
    from_file = ground_truth is not None
    if from_file:
        truth = _truth_from_file(ground_truth)
    human_ranks = None
    if rankings:

        human_ranks = load_rankings(rankings)
    models: list[ModelView] = []
    pairs: dict[PairKey, PairView] = {}
    anchors: dict[str, AnchorView] = {}
    per_model: list[tuple[ModelView, list[Answer], dict]] = []
    logged: dict[tuple[str, PairKey], tuple[float, str]] = {}
    mismatched: set[tuple[str, PairKey]] = set()
    for label, path in parse_specs(specs, labels):
        view, pair_rows, retrieval_rows = _read_model(label, path)
        if any(m.label == view.label for m in models):
            raise PredictionError(f"{path}: a second input labelled {view.label!r}; name each model with "
                                  "LABEL=PATH")
        models.append(view)
        keys: dict[int, PairKey] = {}
        for record, a in pair_rows:
            key = pair_key(record["video1"], record["video2"])
            keys[id(a)] = key
            pv = pairs.setdefault(key, PairView(key, record["video1"], record["video2"]))
            pv.answers.append(a)
            for concept, mean in _logged_truth(record, record["_where"]).items():
                if from_file:
                    known = truth[concept].get(key)
                    if known is not None and abs(known.mean - mean) > 1e-9:
                        mismatched.add((concept, key))
                else:
                    seen = logged.get((concept, key))
                    if seen is not None and abs(seen[0] - mean) > 1e-9:
                        raise PredictionError(f"{record['_where']}: pair {key[0]} / {key[1]} has the human mean "
                                              f"{mean} for {concept}, but {seen[1]} logged {seen[0]}; the runs "
                                              "used different data (give --ground-truth to compare them)")
                    logged[(concept, key)] = (mean, record["_where"])
                    truth[concept][key] = Human(mean)
        per_model.append((view, [a for _, a in pair_rows], keys))
        _gather_retrieval(view, retrieval_rows, anchors, human_ranks, messages)
    for view, answers, keys in per_model:
        _summaries(view, answers, truth, keys, bootstrap, seed)
    order = {m.label: i for i, m in enumerate(models)}
    for key, pv in pairs.items():
        pv.human = {c: truth[c][key] for c in CONCEPT_KEYS if key in truth[c]}
        pv.answers.sort(key=lambda a: (order[a.model], CONCEPT_KEYS.index(a.concept) if a.concept
                                       else len(CONCEPT_KEYS)))
    if mismatched:
        messages.append(f"{len(mismatched)} human mean(s) logged by the run differ from {ground_truth} (e.g. "
                        f"{sorted(mismatched)[0][1][0]} / {sorted(mismatched)[0][1][1]}, "
                        f"{sorted(mismatched)[0][0]}); the page uses {ground_truth}")
    ordered = sorted(pairs.values(), key=lambda p: (-p.disagreement, p.key))
    source = ground_truth if from_file else "the human means logged with the answers (no --ground-truth given)"
    return InspectData(models, ordered, [anchors[a] for a in sorted(anchors)], source,
                       _file_fingerprint(ground_truth) if from_file else None, messages)


def _gather_retrieval(view: ModelView, rows: list[tuple[dict, Answer]], anchors: dict[str, AnchorView],
                      human_ranks: dict | None, messages: list[str]) -> None:
    """Add one model's retrieval answers to ``anchors``, with model ranks, human ranks and per-anchor metrics."""

    grouped: dict[tuple[str, str], list[tuple[dict, Answer]]] = {}
    for record, a in rows:
        grouped.setdefault((a.concept, os.path.basename(record["anchor"])), []).append((record, a))
    humans: dict[str, dict[str, dict[str, float]]] = {}
    scores: dict[str, dict[str, dict[str, float | None]]] = {}
    for (concept, anchor), members in sorted(grouped.items()):
        av = anchors.setdefault(anchor, AnchorView(anchor, []))
        names = [os.path.basename(r["candidate"]) for r, _ in members]
        av.candidates += [n for n in names if n not in av.candidates]
        given = (human_ranks or {}).get(concept, {}).get(anchor)
        ranks = model_ranks({n: a.score for n, (_, a) in zip(names, members)})
        for name, (record, a) in zip(names, members):
            logged_rank = record.get("human_rank")
            a.human_rank = given.get(name) if given is not None else logged_rank
            if given is not None and logged_rank is not None and given.get(name) != logged_rank:
                messages.append(f"{view.label}: anchor {anchor}, candidate {name}, {concept}: the run logged human "
                                f"rank {logged_rank}, the rankings file says {given.get(name)}; the page uses the "
                                "rankings file")
            a.model_rank = ranks[name]
            a.candidate = name
            av.answers.append(a)
        human = {n: a.human_rank for n, (_, a) in zip(names, members) if a.human_rank is not None}
        own = {n: a.score for n, (_, a) in zip(names, members)}
        humans.setdefault(concept, {})[anchor] = human
        scores.setdefault(concept, {})[anchor] = own
        try:
            m = anchor_metrics(human, own)
            av.metrics[(view.label, concept)] = {"f1@1": m.f1 * 100, "kendall": m.kendall * 100, "ndcg": m.ndcg * 100}
        except RetrievalInputError as exc:
            av.metrics[(view.label, concept)] = {"excluded": str(exc)}
    for concept in sorted(humans):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                view.retrieval[concept] = evaluate_retrieval(humans[concept], scores[concept]).to_dict()
            except EmptyEvaluationError as exc:
                view.retrieval[concept] = {"error": str(exc)}
