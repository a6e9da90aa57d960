"""The lmms-eval hooks: documents, prompts, per-pair records and rank-independent aggregation."""

import json
import random
import shutil

import pytest
from scipy.stats import kendalltau, spearmanr

from convis_tasks import hooks
from convis_tasks.reading.datafolder import DATA_ENV, DEMO_DIR, DataNotFoundError
from convis_tasks.reading.documents import load_documents, resolve_data_dir

DEMO_PAIRS = [json.loads(line) for line in (DEMO_DIR / "ConVIS.jsonl").read_text().splitlines() if line.strip()]


def test_documents_of_a_concept_carry_the_pair_its_videos_and_truth(monkeypatch):
    monkeypatch.setenv(DATA_ENV, str(DEMO_DIR))
    docs = load_documents("location")
    assert len(docs) == len(DEMO_PAIRS)
    for doc, row in zip(docs, DEMO_PAIRS):
        assert (doc["video1"], doc["video2"]) == (row["video1"], row["video2"])
        assert doc["video1_path"] == str(DEMO_DIR / row["video1"])
        assert doc["gt"] == {"location": row["Location"]}
        assert doc["concept_name"] == "Location"
    assert set(load_documents(None)[0]["gt"]) == {"main_action", "main_subjects", "main_objects", "location",
                                                   "order_of_actions"}


def test_missing_video_fails_before_any_model_runs_naming_pair_and_path(tmp_path, monkeypatch):
    shutil.copytree(DEMO_DIR, tmp_path / "data")
    victim = tmp_path / "data" / DEMO_PAIRS[0]["video2"]
    victim.unlink()
    monkeypatch.setenv(DATA_ENV, str(tmp_path / "data"))
    with pytest.raises(FileNotFoundError) as info:
        load_documents("location")
    assert DEMO_PAIRS[0]["video2"] in str(info.value) and "pair" in str(info.value)


def test_videos_under_another_prefix_are_found_by_base_name(tmp_path, monkeypatch):
    data = tmp_path / "data"
    (data / "videos_trimmed" / "sport").mkdir(parents=True)
    for name in {p["video1"] for p in DEMO_PAIRS} | {p["video2"] for p in DEMO_PAIRS}:
        shutil.copy(DEMO_DIR / name, data / "videos_trimmed" / "sport")
    shutil.copy(DEMO_DIR / "ConVIS.jsonl", data)
    docs = load_documents("main_action", data)
    assert docs[0]["video1_path"].endswith("videos_trimmed/sport/" + DEMO_PAIRS[0]["video1"].split("/")[-1])


def test_data_dir_resolution_and_its_error(tmp_path, monkeypatch):
    monkeypatch.delenv(DATA_ENV, raising=False)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    with pytest.raises(DataNotFoundError, match=DATA_ENV):
        resolve_data_dir()
    snapshot = tmp_path / "hub" / "datasets--bliberatori--ConViS-Bench" / "snapshots" / "abc123"
    snapshot.mkdir(parents=True)
    (snapshot / "ConVIS.jsonl").write_text("")
    (snapshot.parent.parent / "refs").mkdir()
    (snapshot.parent.parent / "refs" / "main").write_text("abc123")
    assert resolve_data_dir() == snapshot
    monkeypatch.setenv(DATA_ENV, str(tmp_path / "elsewhere"))
    with pytest.raises(DataNotFoundError, match="has no ConVIS.jsonl"):
        resolve_data_dir()


def test_prompt_kwargs_variant_and_free_text_concept():
    doc = {"concept_name": "Location"}
    assert "'Location'" in hooks.doc_to_text(doc, {"prompt": "benchmark"})
    assert "'point of view'" in hooks.doc_to_text(doc, {"concept_name": "point of view"})
    assert "Score: N" in hooks.doc_to_text(doc, {"prompt": "cot"})
    assert "concept" not in hooks.doc_to_text({"concept_name": ""}, {"prompt": "benchmark"})


def test_two_videos_input_passes_both_originals(monkeypatch):
    from convis_tasks.reading.datafolder import DATA_ENV, DEMO_DIR

    monkeypatch.setenv(DATA_ENV, str(DEMO_DIR))
    doc = hooks.docs_location(None)[0]
    assert hooks.doc_to_visual(doc, {"input": "two_videos"}) == [doc["video1_path"], doc["video2_path"]]


def _records(answers, concept="location"):
    docs = [{"video1": f"v/{i}a.mp4", "video2": f"v/{i}b.mp4", "concept": concept, "gt": {"location": g}}
            for i, g in enumerate([1.0, 2.0, 2.5, 4.0, 5.0, 3.0])]
    return [hooks.process_results(d, [a])["spearman"] for d, a in zip(docs, answers)]


def test_aggregation_equals_scipy_on_the_parsed_answers():
    answers = ["1", "Score: 3", "garbage", "4/5", "5", "2"]
    recs = _records(answers)
    x = [1, 3, 3.0, 4, 5, 2]  # "garbage" -> neutral 3.0
    y = [1.0, 2.0, 2.5, 4.0, 5.0, 3.0]
    assert hooks.aggregate_spearman(recs) == pytest.approx(100 * spearmanr(x, y).statistic, abs=1e-12)
    assert hooks.aggregate_kendall(recs) == pytest.approx(100 * kendalltau(x, y).statistic, abs=1e-12)
    assert hooks.aggregate_n(recs) == 6 and hooks.aggregate_unparsed(recs) == 1


def test_aggregation_does_not_depend_on_order_or_rank_padding():
    recs = _records(["1", "Score: 3", "garbage", "4/5", "5", "2"])
    reference = (hooks.aggregate_spearman(recs), hooks.aggregate_kendall(recs), hooks.aggregate_n(recs))
    shuffled = recs[:] + recs[:2]  # two ranks padded the last batch with repeats
    random.Random(1).shuffle(shuffled)
    assert (hooks.aggregate_spearman(shuffled), hooks.aggregate_kendall(shuffled),
            hooks.aggregate_n(shuffled)) == reference


def test_conflicting_duplicates_are_an_error_not_a_silent_choice():
    recs = _records(["1", "2", "3", "4", "5", "2"])
    clash = dict(recs[0], score=5.0)
    with pytest.raises(ValueError, match="scored twice"):
        hooks.aggregate_spearman(recs + [clash])


def test_global_records_correlate_with_each_concept():
    doc = {"video1": "a.mp4", "video2": "b.mp4", "concept": "",
           "gt": {"main_action": 1.0, "main_subjects": 2.0, "main_objects": 3.0, "location": 4.0,
                  "order_of_actions": 5.0}}
    out = hooks.process_results(doc, ["4"])
    assert {"spearman_location", "kendall_order_of_actions", "n", "unparsed"} <= set(out)
    assert out["n"]["concept"] is None and out["n"]["score"] == 4.0


def _many_docs(n=240):
    rng = random.Random(7)
    shapes = ["{}", "Score: {}", "I'd rate it {} out of 5.", "<think>maybe 1</think>{}", "garbage", "{}/5",
              "1. The man", "**{}**"]
    docs, answers = [], []
    for i in range(n):
        docs.append({"video1": f"v/{i}a.mp4", "video2": f"v/{i}b.mp4", "concept": "location",
                     "gt": {"location": rng.choice([1.0, 1.5, 2.25, 3.0, 3.75, 4.5, 5.0])}})
        answers.append(rng.choice(shapes).format(rng.choice(["1", "2", "3", "3.5", "4", "5", "7"])))
    return docs, answers


def test_hooks_give_identical_results_with_1_and_4_threads_of_the_harness():
    """lmms-eval 0.7.3 runs process_results in 4 threads by default (--process_docs_parallel): same records,
    same metrics, with its own thread map."""
    from lmms_eval.evaluator import _thread_map_ordered

    docs, answers = _many_docs()
    items = list(zip(docs, answers))
    runs = [_thread_map_ordered(lambda item: hooks.process_results(item[0], [item[1]]), items, workers)
            for workers in (1, 4, 4)]
    assert runs[0] == runs[1] == runs[2]
    metrics = []
    for outputs in runs:
        by_metric = {m: [o[m] for o in outputs] for m in outputs[0]}
        metrics.append({m: getattr(hooks, f"aggregate_{m}")(recs) for m, recs in by_metric.items()})
    assert metrics[0] == metrics[1] == metrics[2]
    assert metrics[0]["n"] == len(docs) and metrics[0]["unparsed"] > 0


def test_process_docs_is_repeatable_and_thread_safe(monkeypatch):
    """The harness retries a failing process_docs: a second call (also concurrent ones) gives the same documents."""
    from concurrent.futures import ThreadPoolExecutor

    monkeypatch.setenv(DATA_ENV, str(DEMO_DIR))
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: hooks.docs_location(None).to_list(), range(4)))
    assert all(r == results[0] for r in results) and len(results[0]) == len(DEMO_PAIRS)
