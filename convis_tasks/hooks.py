"""Thin lmms-eval hooks of the ConViS tasks; every piece of logic lives in the library they call.

The task YAMLs name these as ``!function convis_tasks.hooks.<name>``. Per-concept names (``docs_location``, ...)
are bindings of one generic function, made in a loop over the concept registry below; each ``process_docs`` hook
carries its task's kind and concept as data (``hook.convis_task``), which is how ``convis run`` recognises a task.
"""

from __future__ import annotations

from typing import Callable

from convis_tasks.concepts import CONCEPT_KEYS, RETRIEVAL_CONCEPT_KEYS
from convis_tasks.errors import InputError
from convis_tasks.harness.clips import session, task_documents
from convis_tasks.prompting import render_prompt
from convis_tasks.reading.annotations import pair_key
from convis_tasks.reading.provenance import provenance
from convis_tasks.scoring.expected import SCORE_DIGITS
from convis_tasks.scoring.expected_results import expected_from_responses
from convis_tasks.scoring.metrics import score_pairs
from convis_tasks.scoring.parsing import parse_answer
from convis_tasks.scoring.retrieval import evaluate_retrieval
from convis_tasks.scoring.unparsed import is_unparsed
from convis_tasks.video.cache import require_model_readable

DEFAULT_FRAMES = 8  # frames per video, i.e. 16 per pair, as in the benchmark


def _process_docs_hook(name: str, load: Callable[[], list[dict]], kind: str, concept: str | None) -> Callable:
    """A ``process_docs`` hook that replaces the placeholder split by the documents ``load()`` returns.

    The data folder comes from :func:`~convis_tasks.harness.fetch.ensure_data`, which fetches ConViS-Bench into the
    Hugging Face cache when there is none (once per machine: a file lock; under ``convis run`` the preflight has
    fetched it already), then the documents are read from local files; a failure is never worth a blind retry (a
    download resumes by itself, an offline cache fails at once). lmms-eval 0.7.3 retries
    ``process_docs`` on any ``Exception`` (tenacity, 5 tries 2 s apart) and then exits 0 with a ``RetryError``;
    the plugin's error is therefore re-raised as ``SystemExit`` (not an ``Exception``): no retry, exit status 1,
    and the plugin's one-line message as the last line of the output. Missing videos are not an error here (a
    caption-only model needs none): the documents are registered with the run's clip session, which refuses them
    at the first request for frames.
    """

    def process_docs(dataset):
        import datasets

        try:
            docs = load()
        except Exception as exc:
            kind = "" if type(exc).__module__.startswith("convis_tasks") else f"{type(exc).__name__}: "
            raise SystemExit(f"convis: error: {name}: {kind}{exc}") from exc
        session().register_documents(docs)  # the first request then plans its rank's shard from them
        return datasets.Dataset.from_list(docs)

    process_docs.__name__ = name
    process_docs.convis_task = (kind, concept)  # type: ignore[attr-defined]
    return process_docs


def concept_docs(concept: str | None) -> Callable:
    """The pair-scoring documents of ``concept`` (None: the concept-free task)."""
    return _process_docs_hook(f"docs_{concept or 'global'}", lambda: task_documents("pair", concept), "pair", concept)


for _key in CONCEPT_KEYS:
    globals()[f"docs_{_key}"] = concept_docs(_key)
docs_global = concept_docs(None)


def _kwargs(kwargs: dict | None) -> dict:
    return dict(kwargs or {})


def doc_to_visual(doc: dict, lmms_eval_specific_kwargs: dict | None = None) -> list[str]:
    """One video of 2N frames (N from video 1, then N from video 2), built once and cached on disk.

    The first request of a task plans this rank's clips, which a pool of worker processes then builds in
    the background (``convis_tasks.video.prefetch``; ``$CONVIS_PREFETCH_WORKERS=0`` builds each clip here,
    when asked for). With ``input: two_videos`` the two original files are passed instead, for models that
    take several videos.
    """
    kw = _kwargs(lmms_eval_specific_kwargs)
    clips = session()
    try:
        clips.require_videos()
    except FileNotFoundError as exc:  # as process_docs: exit status 1 and the one line, no harness retry
        raise SystemExit(f"convis: error: {exc}") from exc
    if kw.get("input", "concat") == "two_videos":
        return require_model_readable(doc.get("pair_id"), doc.get("video1_path"), doc.get("video2_path"))
    size = kw.get("frame_size")
    return [clips.clip_for(doc, int(kw.get("frames_per_video", DEFAULT_FRAMES)), tuple(size) if size else None,
                           kw.get("cache_dir"))]


def doc_to_text(doc: dict, lmms_eval_specific_kwargs: dict | None = None) -> str:
    """The rendered prompt: ``prompt`` picks the variant, ``concept_name`` renames the concept (free text)."""
    kw = _kwargs(lmms_eval_specific_kwargs)
    concept_name = kw.get("concept_name") or doc["concept_name"] or None
    variant = kw.get("prompt", "benchmark" if concept_name else "global")
    if variant == "benchmark" and not concept_name:
        variant = "global"
    return kw.get("pre_prompt", "") + render_prompt(variant, concept_name) + kw.get("post_prompt", "")


def doc_to_target(doc: dict) -> str:
    """The pair and its human mean(s): ``a.mp4 / b.mp4: location=4.2500``. lmms-eval logs it in every mode (the
    record of a ``--predict_only`` run is rebuilt from the document it names, :mod:`.harness.predict_only`)."""
    means = ", ".join(f"{k}={v:.4f}" for k, v in sorted(doc["gt"].items()) if v is not None)
    return f"{doc['video1']} / {doc['video2']}: {means}"


def _pair_metrics(doc: dict, answer: str, score: float | None, extra: dict | None = None) -> dict:
    """The per-pair record (the same one under every metric, which aggregates it)."""
    record = {
        "kind": "pair",
        "video1": doc["video1"],
        "video2": doc["video2"],
        "concept": doc["concept"] or None,
        "answer": answer,
        "score": score,
        "gt": {k: v for k, v in doc["gt"].items() if v is not None},
        "provenance": provenance(),
        **(extra or {}),
    }
    keys = ["spearman", "kendall", "n", "unparsed"]
    if record["concept"] is None:
        keys += [f"{m}_{c}" for c in CONCEPT_KEYS for m in ("spearman", "kendall")]
    return {key: record for key in keys}


def process_results(doc: dict, results: list[str]) -> dict:
    """Parse the answer; every metric gets the same per-pair record and aggregates it."""
    answer = results[0] if results else ""
    parsed = parse_answer(answer)
    return _pair_metrics(doc, answer, parsed.score, {"parse": parsed.reason})


def _unique_records(records: list[dict]) -> list[dict]:
    """Drop exact repeats (a pair logged twice by padded ranks); sort so the order never matters.

    Pairs are identified as everywhere else, by the videos' base names: two records of one pair with different
    scores or truths are an error, never a silent choice.
    """
    seen: dict[tuple, dict] = {}
    for r in records:
        key = (str(r["concept"]), *pair_key(r["video1"], r["video2"]))
        if key in seen and (seen[key]["score"], seen[key]["gt"]) != (r["score"], r["gt"]):
            raise InputError(f"pair {r['video1']} / {r['video2']} was scored twice with different answers")
        seen[key] = r
    return [seen[k] for k in sorted(seen)]


def _correlation(records: list[dict], concept: str | None = None):
    records = _unique_records(records)
    preds, truth = {}, {}
    for r in records:
        c = concept or r["concept"]
        if c in r["gt"]:
            key = pair_key(r["video1"], r["video2"])
            preds[key] = r["score"]
            truth[key] = r["gt"][c]
    return score_pairs(preds, truth, unparsed="neutral")


def aggregate_spearman(records: list[dict]) -> float:
    return _correlation(records).spearman


def aggregate_kendall(records: list[dict]) -> float:
    return _correlation(records).kendall


def aggregate_n(records: list[dict]) -> int:
    return len(_unique_records(records))


def aggregate_unparsed(records: list[dict]) -> int:
    return sum(1 for r in _unique_records(records) if is_unparsed(r["score"]))


def _concept_aggregator(concept: str, metric: str) -> Callable:
    def aggregate(records: list[dict]) -> float:
        return getattr(_correlation(records, concept), metric)

    aggregate.__name__ = f"aggregate_{metric}_{concept}"
    return aggregate


for _key in CONCEPT_KEYS:
    for _metric in ("spearman", "kendall"):
        globals()[f"aggregate_{_metric}_{_key}"] = _concept_aggregator(_key, _metric)


# --- concept-conditioned retrieval -------------------------------------------------------------

RETRIEVAL_METRICS = ("r@1", "p@1", "f1@1", "r@1_bottom", "p@1_bottom", "f1@1_bottom", "kendall", "ndcg",
                     "anchors", "excluded", "unparsed", "random_r@1", "random_p@1", "random_f1@1")


def retrieval_docs(concept: str) -> Callable:
    """One document per (anchor, candidate) ranked by humans for ``concept``."""
    return _process_docs_hook(f"retrieval_docs_{concept}", lambda: task_documents("retrieval", concept),
                              "retrieval", concept)


for _key in RETRIEVAL_CONCEPT_KEYS:
    globals()[f"retrieval_docs_{_key}"] = retrieval_docs(_key)


def retrieval_doc_to_target(doc: dict) -> str:
    """The anchor, the candidate and its human rank: ``a.mp4 / c.mp4: human rank 2`` (see :func:`doc_to_target`)."""
    return f"{doc['anchor']} / {doc['candidate']}: human rank {doc['human_rank']:g}"


def _retrieval_metrics(doc: dict, answer: str, score: float | None, extra: dict | None = None) -> dict:
    record = {
        "kind": "retrieval",
        "anchor": doc["anchor"],
        "candidate": doc["candidate"],
        "concept": doc["concept"],
        "answer": answer,
        "score": score,
        "human_rank": doc["human_rank"],
        "provenance": provenance(),
        **(extra or {}),
    }
    return {metric: record for metric in RETRIEVAL_METRICS}


def process_retrieval_results(doc: dict, results: list[str]) -> dict:
    """One record per (anchor, candidate); the aggregators put each anchor's candidates back together."""
    answer = results[0] if results else ""
    parsed = parse_answer(answer)
    return _retrieval_metrics(doc, answer, parsed.score, {"parse": parsed.reason})


# --- expected-value scoring (the *_expected tasks, _expected_template_yaml) -------------------------------------

def score_choices(doc: dict) -> list[str]:
    """The answers lmms-eval asks the log-likelihood of, in score order: "1" .. "5" (the same for every doc)."""
    return list(SCORE_DIGITS)


def process_expected_results(doc: dict, results: list) -> dict:
    """The greedy tasks' record (pair or retrieval, by the document) with ``score`` = sum_k k softmax(loglik_k).

    ``results`` are lmms-eval's five ``(loglikelihood, is_greedy)`` responses to the answers "1".."5". The record
    adds ``scoring: "expected"`` and ``logliks`` (the five values, so anyone can recompute the score); a document
    whose responses are not five finite log-probabilities is unparsed, with the reason in ``parse`` (None when
    scored), as a greedy record's.
    """
    outcome = expected_from_responses(results)
    extra = {"scoring": "expected", "logliks": outcome.logliks, "parse": outcome.reason}
    build = _retrieval_metrics if "anchor" in doc else _pair_metrics
    return build(doc, outcome.answer, outcome.score, extra)


def _retrieval_result(records: list[dict]):
    human: dict[str, dict[str, float]] = {}
    scores: dict[str, dict[str, float | None]] = {}
    for r in records:
        known = scores.setdefault(r["anchor"], {})
        if r["candidate"] in known and known[r["candidate"]] != r["score"]:
            raise InputError(f"anchor {r['anchor']} candidate {r['candidate']} was scored twice with different "
                             "answers")
        known[r["candidate"]] = r["score"]
        ranks = human.setdefault(r["anchor"], {})
        if r["candidate"] in ranks and ranks[r["candidate"]] != r["human_rank"]:
            raise InputError(f"anchor {r['anchor']} candidate {r['candidate']} carries two human ranks")
        ranks[r["candidate"]] = r["human_rank"]
    return evaluate_retrieval(human, scores).to_dict()


def _retrieval_aggregator(metric: str) -> Callable:
    def aggregate(records: list[dict]) -> float:
        result = _retrieval_result(records)
        if metric.startswith("random_"):
            return result["random"][metric[len("random_"):]]
        return result[metric]

    aggregate.__name__ = "aggregate_retrieval_" + metric.replace("@", "_at_")
    return aggregate


for _metric in RETRIEVAL_METRICS:
    globals()["aggregate_retrieval_" + _metric.replace("@", "_at_")] = _retrieval_aggregator(_metric)
