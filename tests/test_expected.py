"""Expected-value scoring without a model: the score from the harness's responses, the hook's record, the task
files, and the pure helpers of the one-pass adapters (the model runs are in test_expected_llava.py)."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import pytest

from convis_tasks import hooks, task_path
from convis_tasks.model_wrappers.one_pass import answer_in_template, group_requests, single_token
from convis_tasks.harness.tasks import leaf_tasks, task_index
from convis_tasks.concepts import CONCEPT_KEYS, RETRIEVAL_CONCEPT_KEYS
from convis_tasks.scoring.expected_results import expected_from_responses, loglikelihood_of
from convis_tasks.scoring.parsing import parse_score
from convis_tasks.reading.predictions import load_log_samples

# p = (.1, .2, .3, .2, .2): 1*.1 + 2*.2 + 3*.3 + 4*.2 + 5*.2 = 3.2, whatever constant the log-probabilities share
PROBS = (0.1, 0.2, 0.3, 0.2, 0.2)


def _responses(shift: float = 0.0) -> list[str]:
    """lmms-eval 0.7.3's text of five (loglikelihood, is_greedy) responses."""
    return [f"({math.log(p) + shift!r}, {p == 0.3})" for p in PROBS]


@pytest.mark.parametrize("shift", [0.0, -7.5])
def test_score_is_the_probability_weighted_answer(shift):
    outcome = expected_from_responses(_responses(shift))
    assert outcome.reason is None
    assert outcome.score == pytest.approx(3.2, abs=1e-12)
    assert outcome.logliks == pytest.approx([math.log(p) + shift for p in PROBS], abs=1e-15)
    assert parse_score(outcome.answer) == pytest.approx(3.2, abs=1e-8)


def test_responses_are_read_as_pairs_or_as_lmms_eval_logs_them():
    assert loglikelihood_of("(-6.142980098724365, False)") == -6.142980098724365
    assert loglikelihood_of((-1.5, True)) == -1.5 and loglikelihood_of([-2, False]) == -2.0
    assert loglikelihood_of("(-inf, False)") == -math.inf
    for bad in ("-1.5", "(True, False)", "(-1.5, maybe)", "(-1.5, False) extra", (True, False), (-1.0,), None, -1.0):
        assert loglikelihood_of(bad) is None, bad


@pytest.mark.parametrize("responses, why", [
    (["(-inf, False)"] + _responses()[1:], "non-finite log-likelihood (1: -inf)"),
    (_responses()[:4] + ["(nan, False)"], "non-finite log-likelihood (5: nan)"),
    (["(0.7, False)"] * 5, "positive log-likelihood"),  # lmms-eval's own classes return a loss here
    (_responses()[:4], "expected 5 log-likelihoods"),
    (_responses() + _responses()[:1], "expected 5 log-likelihoods"),
    (_responses()[:4] + ["oops"], "not a number"),
])
def test_a_response_that_is_not_five_finite_log_probabilities_is_unparsed_with_the_reason(responses, why):
    outcome = expected_from_responses(responses)
    assert outcome.score is None and outcome.answer == ""
    assert why in outcome.reason


PAIR_DOC = {"video1": "videos/v01.mp4", "video2": "videos/v02.mp4", "concept": "location",
            "gt": {"location": 4.5, "main_action": None}}
RETRIEVAL_DOC = {"anchor": "a.mp4", "candidate": "c.mp4", "concept": "location", "human_rank": 2.0}


def test_expected_hook_writes_the_greedy_record_with_the_expected_score_and_the_five_logliks():
    metrics = hooks.process_expected_results(PAIR_DOC, _responses())
    greedy = hooks.process_results(PAIR_DOC, ["3"])
    assert metrics.keys() == greedy.keys()
    record = metrics["spearman"]
    assert {k: record[k] for k in ("kind", "video1", "video2", "concept", "gt")} == \
        {k: greedy["spearman"][k] for k in ("kind", "video1", "video2", "concept", "gt")}
    assert record["score"] == pytest.approx(3.2) and record["scoring"] == "expected"
    assert record["logliks"] == pytest.approx([math.log(p) for p in PROBS])
    assert record["parse"] is None


def test_expected_hook_scores_retrieval_documents_with_the_retrieval_record():
    metrics = hooks.process_expected_results(RETRIEVAL_DOC, _responses())
    assert metrics.keys() == hooks.process_retrieval_results(RETRIEVAL_DOC, ["3"]).keys()
    assert metrics["r@1"]["kind"] == "retrieval" and metrics["r@1"]["score"] == pytest.approx(3.2)


def test_an_unscorable_pair_is_logged_unparsed_and_counted(tmp_path):
    import json

    bad = hooks.process_expected_results(PAIR_DOC, ["(-inf, False)"] * 5)["unparsed"]
    assert bad["score"] is None and "non-finite" in bad["parse"]
    assert hooks.aggregate_unparsed([bad]) == 1
    log = tmp_path / "x_samples_convis_location_expected.jsonl"  # what every reader of runs reads
    log.write_text(json.dumps({"doc_id": 0, "spearman": bad}) + "\n")
    assert load_log_samples(str(log)).scores == {"location": {("v01.mp4", "v02.mp4"): None}}


# --- the task files -------------------------------------------------------------------------------------------

EXPECTED = [f"convis_{c}_expected" for c in CONCEPT_KEYS]
RETRIEVAL_EXPECTED = [f"convis_retrieval_{c}_expected" for c in RETRIEVAL_CONCEPT_KEYS]


def test_expected_tasks_and_groups_are_indexed_like_the_greedy_ones():
    index = task_index()
    assert [t.name for t in leaf_tasks(["convis_expected"], index)] == EXPECTED
    assert [t.name for t in leaf_tasks(["convis_retrieval_expected"], index)] == RETRIEVAL_EXPECTED
    for name in EXPECTED + RETRIEVAL_EXPECTED:
        greedy = index[name.removesuffix("_expected")]
        assert (index[name].kind, index[name].concept) == (greedy.kind, greedy.concept)
        assert len((Path(task_path()) / f"{name}.yaml").read_text().splitlines()) == 3


@pytest.mark.skipif(importlib.util.find_spec("lmms_eval") is None, reason="lmms-eval is not installed")
@pytest.mark.parametrize("name", ["convis_location_expected", "convis_retrieval_location_expected"])
def test_expected_task_config_is_the_greedy_one_with_loglikelihood_requests(name):
    from lmms_eval.utils import load_yaml_config

    folder = Path(task_path())
    expected = load_yaml_config(str(folder / f"{name}.yaml"))
    greedy = load_yaml_config(str(folder / f"{name.removesuffix('_expected')}.yaml"))
    changed = {"task", "output_type", "doc_to_choice", "target_delimiter", "process_results"}
    assert {k: v for k, v in expected.items() if k not in changed} == \
        {k: v for k, v in greedy.items() if k not in changed}
    assert expected["output_type"] == "multiple_choice" and expected["target_delimiter"] == ""
    assert expected["doc_to_choice"]({}) == ["1", "2", "3", "4", "5"]
    assert expected["process_results"] is hooks.process_expected_results


# --- the one-pass adapters' pure helpers ----------------------------------------------------------------------

def test_requests_are_grouped_by_key_in_first_appearance_order():
    assert group_requests(["b", "a", "b", "c", "a"]) == [[0, 2], [1, 4], [3]]


def test_single_token_only_when_the_answer_adds_exactly_one_token_to_the_unchanged_context():
    assert single_token([5, 6, 7], [5, 6, 7, 9]) == 9
    assert single_token([5, 6, 7], [5, 6, 7, 9, 10]) is None  # two tokens
    assert single_token([5, 6, 7], [5, 6, 8]) is None  # merged across the boundary


def _llava_conv():
    if importlib.util.find_spec("llava") is None:
        pytest.skip("LLaVA-NeXT's `llava` package is not installed")
    import contextlib
    import io

    with contextlib.redirect_stdout(io.StringIO()):
        from llava.conversation import conv_templates
    return conv_templates


@pytest.mark.parametrize("template, written", [("qwen_1_5", "1"), ("qwen_2", "1"), ("vicuna_v1", " 1"),
                                               ("llava_llama_2", " 1")])
def test_the_answer_is_scored_as_the_chat_template_writes_it(template, written):
    import copy

    conv_templates = _llava_conv()

    def render(answer):
        conv = copy.deepcopy(conv_templates[template])
        conv.append_message(conv.roles[0], "<image>\nHow similar?")
        conv.append_message(conv.roles[1], answer)
        return conv.get_prompt()

    assert answer_in_template(render, "1") == written
    assert answer_in_template(render, " 1") == written  # the harness's delimiter never adds a second space


def test_a_template_that_does_not_end_the_prompt_where_the_answer_starts_is_refused():
    with pytest.raises(ValueError, match="not a prefix"):
        answer_in_template(lambda a: "Q: x A:" if a is None else f"Q: x (answer {a}) A:", "1")


def test_tied_pair_share_counts_equal_pairs_of_scores():
    from convis_tasks.scoring.expected_results import tied_pair_share

    assert tied_pair_share([3, 3, 3, 3]) == 1.0
    assert tied_pair_share([1, 2, 3, 4]) == 0.0
    assert tied_pair_share([3, 3, 4, None, 5]) == pytest.approx(1 / 6)  # 1 of the C(4, 2) = 6 pairs; None left out
    assert tied_pair_share([2.5]) == 0.0


# --- convis run: the preflight -------------------------------------------------------------------------------

@pytest.mark.parametrize("model, why", [
    ("qwen2_5_vl", "has no loglikelihood for video"),
    ("convis_colour_histogram", "has no loglikelihood for video"),
    ("llava_onevision", "self.metadata"),
    ("llava_vid", "returns a loss"),
])
def test_preflight_refuses_expected_tasks_for_a_model_without_video_loglikelihood(model, why, tmp_path):
    from convis_tasks.harness.preflight import preflight

    tasks = leaf_tasks(["convis_expected", "convis_global"], task_index())
    problems = preflight(tasks, model, None, tmp_path / "out", check_model=False)
    assert len(problems) == 1
    line = problems[0].line()
    assert why in line and "convis_location_expected" in line and "convis_global" not in line.split("(fix")[0]
    assert "run the greedy tasks (convis_main_action, convis_main_subjects" in line


def test_preflight_lets_a_supported_model_and_greedy_tasks_through(tmp_path, monkeypatch):
    from convis_tasks.harness.preflight import preflight
    from convis_tasks.reading.datafolder import DATA_ENV, DEMO_DIR

    monkeypatch.setenv(DATA_ENV, str(DEMO_DIR))
    index = task_index()
    for model, tasks in (("convis_llava_onevision", ["convis_location_expected"]),
                         ("qwen2_5_vl", ["convis_location"])):
        problems = preflight(leaf_tasks(tasks, index), model, None, tmp_path / "out", check_model=False)
        assert not any("cannot run" in p.line() for p in problems), problems


def test_convis_run_refuses_before_any_model_loads(tmp_path, monkeypatch):
    from convis_tasks.harness import run as convis_run
    from convis_tasks.harness.run import RunError
    from convis_tasks.reading.datafolder import DATA_ENV, DEMO_DIR

    monkeypatch.setenv(DATA_ENV, str(DEMO_DIR))
    monkeypatch.setattr(convis_run, "stream", lambda *a, **k: pytest.fail("lmms-eval was started"))
    with pytest.raises(RunError, match="qwen2_5_vl cannot run convis_main_action_expected.*run the greedy tasks"):
        convis_run.execute(["--model", "qwen2_5_vl", "--tasks", "convis_expected", "--output_path", str(tmp_path),
                            "--skip-model-check"])


def test_preflight_refuses_greedy_and_expected_tasks_of_one_concept_in_one_run(tmp_path):
    from convis_tasks.harness.preflight import preflight

    tasks = leaf_tasks(["convis_location", "convis_location_expected"], task_index())
    (problem,) = preflight(tasks, "convis_llava_onevision", None, tmp_path / "out", check_model=False)
    assert "convis_location and their *_expected tasks in one run" in problem.line()
    assert "two runs" in problem.fix
