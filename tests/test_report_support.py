"""Hand-built lmms-eval run folders for the report / submission / plot tests (no harness run needed).

``make_run`` writes what ``lmms-eval --log_samples --output_path DIR`` writes for the ConViS tasks: one
``<date>_results.json`` and one ``<date>_samples_<task>.jsonl`` per task, in the same layout and with the same keys
as a real run (checked against a real ``convis demo`` run). Records come from the task's own
``hooks.process_results``; the metric values in the results file come from the task's own aggregation functions,
i.e. the code lmms-eval calls, and the ``convis`` group's mean is lmms-eval's unweighted mean of the five.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

from convis_tasks import hooks
from convis_tasks.concepts import CONCEPTS, CONCEPT_KEYS, RETRIEVAL_CONCEPT_KEYS

DEMO_DIR = Path(hooks.__file__).resolve().parent / "demo_data"
DEMO_GT = DEMO_DIR / "ConVIS.jsonl"
DEMO_RANKINGS = DEMO_DIR / "ranked.json"
PAIR_METRICS = ("spearman", "kendall", "n", "unparsed")


def demo_rows() -> list[dict]:
    return [json.loads(line) for line in DEMO_GT.read_text().splitlines() if line.strip()]


def write_gt(path: Path, rows: list[dict]) -> Path:
    """A ConVIS.jsonl: rows of {video1, video2, <gt_key>: mean, ...}."""
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def seeded_answer(seed: int, task: str, index: int, unparsed_every: int = 0) -> str:
    """A deterministic answer string: 'Score: k' (sometimes '4.' or free text), or unparsable text."""
    rng = random.Random(f"{seed}:{task}:{index}")
    if unparsed_every and index % unparsed_every == unparsed_every - 1:
        return "I cannot compare these videos."
    k = rng.randint(1, 5)
    return rng.choice([f"Score: {k}", f"{k}", f"{k}.", f"The similarity is {k} out of 5."])


def _kwargs(frames: int, prompt: str) -> dict:
    default = {"frames_per_video": frames, "prompt": prompt, "input": "concat", "concept_name": None}
    return {"default": dict(default), **default}


def _samples_line(doc_id: int, target: str, answer: str, metrics: dict) -> str:
    line = {"doc_id": doc_id, "target": target, "filtered_resps": answer, "token_counts": [None],
            "doc_hash": f"{doc_id:064x}", **metrics, "input": "prompt"}
    return json.dumps(line) + "\n"


def make_run(folder: Path, rows: list[dict] | None = None, seed: int = 0, frames: int = 8,
             prompt: str = "benchmark", model: str = "fake_model", model_args: str = "pretrained=org/fake-7b",
             date: str = "20260102_030405", version: str = "0.7.3", with_global: bool = True,
             with_retrieval: bool = True, unparsed_every: int = 5, answer=None) -> Path:
    """Write one run into ``folder``; returns the results file. ``answer(task, index, doc)`` overrides answers."""
    rows = demo_rows() if rows is None else rows
    folder.mkdir(parents=True, exist_ok=True)
    answer = answer or (lambda task, i, doc: seeded_answer(seed, task, i, unparsed_every))
    results: dict = {}
    configs: dict = {}
    tasks = [(f"convis_{c.key}", c.key) for c in CONCEPTS] + ([("convis_global", None)] if with_global else [])
    for task, concept in tasks:
        records = []
        with open(folder / f"{date}_samples_{task}.jsonl", "w") as handle:
            for i, row in enumerate(rows):
                gt = {c.key: row[c.gt_key] for c in CONCEPTS} if concept is None else {concept: row[
                    next(c.gt_key for c in CONCEPTS if c.key == concept)]}
                doc = {"video1": row["video1"], "video2": row["video2"], "concept": concept or "", "gt": gt}
                out = hooks.process_results(doc, [answer(task, i, doc)])
                records.append(out["spearman"])
                handle.write(_samples_line(i, hooks.doc_to_target(doc), out["spearman"]["answer"], out))
        entry = {"alias": task}
        if concept is None:
            entry.update({"spearman,none": [], "kendall,none": []})
            for c in CONCEPT_KEYS:
                for m in ("spearman", "kendall"):
                    entry[f"{m}_{c},none"] = getattr(hooks, f"aggregate_{m}_{c}")(records)
            entry["n,none"] = hooks.aggregate_n(records)
            entry["unparsed,none"] = hooks.aggregate_unparsed(records)
        else:
            for m in PAIR_METRICS:
                entry[f"{m},none"] = getattr(hooks, f"aggregate_{m}")(records)
                entry[f"{m}_stderr,none"] = "N/A"
        results[task] = entry
        configs[task] = {"task": task, "lmms_eval_specific_kwargs": _kwargs(frames, "global" if concept is None
                                                                            else prompt)}
    # lmms-eval's group aggregation (weight_by_size: false): sum(metric * 1) / 5, in the group's task order
    results["convis"] = {"alias": "convis", **{f"{m},none": sum(results[f"convis_{c}"][f"{m},none"] * 1
                                                                    for c in CONCEPT_KEYS) / 5
                                               for m in ("spearman", "kendall")}}
    if with_retrieval:
        rankings = json.loads(DEMO_RANKINGS.read_text())
        for concept in RETRIEVAL_CONCEPT_KEYS:
            task = f"convis_retrieval_{concept}"
            gt_key = next(c.gt_key for c in CONCEPTS if c.key == concept)
            records = []
            with open(folder / f"{date}_samples_{task}.jsonl", "w") as handle:
                i = 0
                for entry in rankings:
                    for candidate, rank in sorted(entry.get(gt_key, {}).items()):
                        doc = {"anchor": entry["anchor"], "candidate": candidate, "concept": concept,
                               "human_rank": float(rank)}
                        out = hooks.process_retrieval_results(doc, [answer(task, i, doc)])
                        records.append(out["r@1"])
                        handle.write(_samples_line(i, hooks.retrieval_doc_to_target(doc), out["r@1"]["answer"], out))
                        i += 1
            entry = {"alias": task}
            for m in hooks.RETRIEVAL_METRICS:
                entry[f"{m},none"] = getattr(hooks, "aggregate_retrieval_" + m.replace("@", "_at_"))(records)
            results[task] = entry
            configs[task] = {"task": task, "lmms_eval_specific_kwargs": _kwargs(frames, prompt)}
        results["convis_retrieval"] = {"alias": "convis_retrieval", "f1@1,none": sum(
            results[f"convis_retrieval_{c}"]["f1@1,none"] * 1 for c in RETRIEVAL_CONCEPT_KEYS) / 4}
    document = {"results": results, "configs": configs,
                "config": {"model": model, "model_args": model_args, "batch_size": "1", "limit": None},
                "lmms_eval_version": version, "date": date, "model_name": ""}
    path = folder / f"{date}_results.json"
    path.write_text(json.dumps(document, indent=1))
    return path


def test_a_hand_built_run_reads_like_a_real_one(tmp_path):
    from convis_tasks.scoring.evaluate import run_correlate, run_retrieval

    results_file = make_run(tmp_path / "run")
    results = json.loads(results_file.read_text())["results"]
    scored = run_correlate(str(tmp_path / "run"), str(DEMO_GT))
    for concept in CONCEPT_KEYS:
        assert scored[concept]["spearman"] == results[f"convis_{concept}"]["spearman,none"]
        assert scored[concept]["unparsed"] == results[f"convis_{concept}"]["unparsed,none"] > 0
    retrieval = run_retrieval(str(tmp_path / "run"), str(DEMO_RANKINGS))
    assert retrieval["location"]["f1@1"] == results["convis_retrieval_location"]["f1@1,none"]
