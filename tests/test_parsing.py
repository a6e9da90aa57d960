import json
import re
from pathlib import Path

import pytest

from convis_tasks.scoring.parsing import (AMBIGUOUS, EMPTY, NO_SCORE, OUT_OF_RANGE, REASONS, ParsedAnswer, parse_answer,
                                          parse_score)
from convis_tasks.scoring.unparsed import NEUTRAL_SCORE
from convis_tasks.scoring.unparsed import counted as score_or_neutral

DOC = Path(__file__).resolve().parent.parent / "docs" / "parsing.md"


@pytest.mark.parametrize("answer, expected", [
    ("4", 4.0),
    (" 2\n", 2.0),
    ("3.5", 3.5),
    ("3,5", 3.5),
    ("**4**", 4.0),
    ("4.", 4.0),
    ("(3)", 3.0),
    ("Score: 4", 4.0),
    ("Similarity score: 2", 2.0),
    ("4/5", 4.0),
    ("Score: 4.5/5", 4.5),
    ("I'd rate it 4 out of 5", 4.0),
    ("I'd rate it 4 out of 5.", 4.0),
    ("The answer is 2", 2.0),
    ("Rating - 1", 1.0),
    ("5\n\nBoth videos show people dancing.", 5.0),
    ("Final answer: 3", 3.0),
    ("Both videos show 2 people in 1 kitchen. Therefore the similarity score is 4.", 4.0),
    ("Video 1: 2 dogs run.\nVideo 2: 3 dogs sit.\nScore: 2", 2.0),
    ("<SUMMARY>plan</SUMMARY><CAPTION>2 men</CAPTION><REASONING>3 steps</REASONING><CONCLUSION>2</CONCLUSION>", 2.0),
    ("<think>maybe 1</think>4", 4.0),
    (4, 4.0),
    (2.5, 2.5),
])
def test_parses_the_answer_shapes_models_give(answer, expected):
    assert parse_score(answer) == expected


@pytest.mark.parametrize("answer", [
    "", "   ", None, "garbage", "The videos are different.", "7", "0", "-1", "5.5", "Similarity: 10/10",
    "Video 1 has 3 cats, video 2 has 7 dogs", 9, True, "x" * 100_000,
])
def test_unparseable_or_out_of_range_gives_none(answer):
    assert parse_score(answer) is None


def test_very_long_answer_ending_in_a_score_is_parsed_quickly():
    assert parse_score("blah " * 20_000 + "\nScore: 3") == 3.0


def test_unparsed_counts_as_neutral_three():
    assert NEUTRAL_SCORE == 3.0
    assert score_or_neutral(None) == 3.0
    assert score_or_neutral(1.0) == 1.0


@pytest.mark.parametrize("answer, expected", [
    # numbers that are not the model's answer never become a score
    ("1. The man walks into the kitchen.", None),                  # a list marker, not a score
    ("I'd rate 3 of the 5 concepts as similar.", None),
    ("Video 1 has 3 cats, video 2 has 2 dogs", None),              # counts are not scores
    ("There are 2 people in both videos.", None),
    ("Score: 4/10", None),                                         # another scale: 4/10 is not 4
    ("Similarity: 4/10", None),
    ("Score: 3-4", None),                                          # a range is not one answer
    ("Score: 4 or 5", None),
    ("Score: 1e5", None),
    ("Rating: 80%", None),
    ("The score is accurate 3 times", None),                       # 'rate' inside 'accurate' is no label
    ("Score: 4. Actually, on reflection, score: 7", None),         # last answer off the scale: no fallback
    ("score 1" + " " * 1000 + "x", None),
    ("4/4/4/4/", None),
    ("Similarity between video 1 and video 2: 4", 4.0),            # video mentions are not numbers
    ("The similarity between Video 1 and Video 2 is 2.", 2.0),
    ("Score: 2. Wait, I revise: final answer: 4", 4.0),           # the last explicit answer counts
    ("Score: 3.66000000 (cosine 0.83000000)", 3.66),               # the embedding baselines' answer
    ("**Score:** 4", 4.0),
    ("I would give it a 4.", 4.0),
    ("Both are cooking.\n\n4", 4.0),                               # the answer on the last line
    ("<think>a 1 here</think>\nScore: 5", 5.0),
    ("<think>still thinking, maybe 4", None),                      # cut off while thinking
    ("reasoning with 2 numbers 1</think> 3", 3.0),                 # opening tag was in the prompt
    ("<CONCLUSION>4", 4.0),
    ("The answer is 3 because both videos show a kitchen.", 3.0),
    ("Similarity score (1-5): 4", 4.0),                            # the scale echoed from the prompt
    ("Rate the similarity on a scale of 1 to 5. Answer: 2", 2.0),
    ("Score (out of 5): 4", 4.0),
    ("Score: [4]", 4.0),
    ("Score: 4.0/5.0", 4.0),
    ("Score: 1-5", None),                                          # only the scale, no answer
    ("Score between 1 and 5", None),
    ("4\nBoth show cooking.\n2", None),                            # two bare numbers, first and last line
    ("4\nBoth show cooking.\n4", 4.0),
    ("4 (quite similar)", 4.0),                                    # a remark on the number
    ("<CONCLUSION> 2 (different rooms) </CONCLUSION>", 2.0),
    ("1 (the man) walks in. 2 (the woman) sits.", None),           # not a remark: text goes on
    ("4 - quite similar", None),                                   # as '1 - The man walks': could be a list
])
def test_numbers_that_are_not_the_answer_never_become_a_score(answer, expected):
    assert parse_score(answer) == expected


MEGABYTE = 1_000_000
ADVERSARIAL = [
    ("<think>" * (MEGABYTE // 7), None),
    ("<CONCLUSION>" * (MEGABYTE // 12), None),
    ("Score: " + "9" * MEGABYTE, None),
    ("so " * (MEGABYTE // 3) + "Score: 4", 4.0),
    ("score " * (MEGABYTE // 6), None),
    ("video 1 " * (MEGABYTE // 8) + "Score: 2", 2.0),
    ("1." * (MEGABYTE // 2), None),
    (" " * MEGABYTE + "4" + " " * MEGABYTE, 4.0),
    ("x" + " " * MEGABYTE + "x", None),
    ("(1-5) " * (MEGABYTE // 6), None),
    ("([" * (MEGABYTE // 2), None),
]


def test_megabyte_adversarial_answers_are_parsed_without_hanging():
    """Each answer took the old parser minutes to hours (catastrophic backtracking; benchmarks/parser_speed.py
    measures the linear growth). The guard only catches a hang; it is not a speed target."""
    import threading

    results = {}

    def run():
        for i, (answer, _) in enumerate(ADVERSARIAL):
            results[i] = parse_score(answer)

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(timeout=120)
    assert not worker.is_alive(), f"parser hung on adversarial answer #{len(results)}"
    assert [results[i] for i in range(len(ADVERSARIAL))] == [expected for _, expected in ADVERSARIAL]


def test_non_string_answers():
    assert parse_score(True) is None and parse_score(False) is None
    assert parse_score(float("nan")) is None and parse_score(float("inf")) is None
    assert parse_score(["4"]) is None


# --- issue #19: never a number that is not the answer -------------------------------------------------------

@pytest.mark.parametrize("answer, expected", [
    # full-width digits inside "N/5" and "N out of 5": the old parser read the denominator (5)
    ("Score: \uff14/\uff15", 4.0),
    ("Score: \uff14 out of \uff15", 4.0),
    ("\uff33\uff43\uff4f\uff52\uff45\uff1a\uff14\uff0f\uff15", 4.0),       # all full-width
    ("Score: \uff14/\uff11\uff10", None),                                       # 4/10, full-width
    ("The score is \u201c4\u201d.", 4.0),                                        # typographic quotes
    ("Score \u2013 4", 4.0),                                                      # an en dash
    ("Score: \u0664", 4.0),                                                       # an Arabic-Indic 4
    ("Answer: 4\u200b", 4.0),                                                     # a zero-width space
    ("\uff1cthink\uff1e1\uff1c/think\uff1e 3", 3.0),                             # full-width think tags
])
def test_unicode_is_normalised_before_every_rule(answer, expected):
    assert parse_score(answer) == expected


@pytest.mark.parametrize("answer", [
    "Score: 4. Confidence: 3/5",                                   # old: 3 (the last explicit answer)
    "**Confidence:** 3/5. **Score:** 4",
    "Score: 4\nConfidence level: 3",
    "Score: 4 (quality score 3)",
    "Score: 4.00000000 (cosine 1.00000000)",                       # the baselines' remark: old 4, still 4
])
def test_a_confidence_or_quality_rating_is_not_the_answer(answer):
    assert parse_answer(answer) == ParsedAnswer(4.0, None)


@pytest.mark.parametrize("answer", [
    # each answer holds the known score 4 and another number; the old parser's value is in the comment
    "Similarity for action 2, location 4",                         # other concepts' scores in one sentence: 2
    "Score: 2. Wait, score: 4",                                    # a retraction, no final answer: 4
    "Score: 4. Hmm, more like a 2.",                               # 4
    "It is not a 2. Score: 4",                                     # a negated mention still competes: 4
    "Score: 4, not 5.",                                            # 4
    "Action score: 4, location score: 2",                          # 2
    "Final answer: 4 (action), 2 (location)",                      # 4
    "Score: 4 (2 for location)",                                   # 4
    "4\nBoth show cooking.\n2",                                    # None
    "Score: 4. Actually, on reflection, score: 7",                 # None
])
def test_two_values_that_could_be_the_answer_are_ambiguous(answer):
    assert parse_answer(answer) == ParsedAnswer(None, AMBIGUOUS)


@pytest.mark.parametrize("answer", [
    "Score: not 2, but 4",                                         # old: 2
    "The score is not 2",                                          # old: 2
    "I would not give it a 2",                                     # old: 2
    "Score: 4 rather than 2.",                                     # old: None; 4 does not end there
])
def test_a_negated_answer_is_never_the_score(answer):
    assert parse_answer(answer) == ParsedAnswer(None, NO_SCORE)


@pytest.mark.parametrize("answer, expected", [
    ("Score: 2. Wait, final answer: 4", 4.0),                      # rule 7: a final answer revises
    ("I first thought 2. **Final Answer:** 4", 4.0),
    ("Final answer: 2. Final answer: 4", None),                    # two final answers: ambiguous
    ("Score: 4. Final answer: 7", None),                           # out of range, never the earlier 4
    ("Score: 4. It's a solid 4.", 4.0),                            # a mention with the same value
    ("1. Both cook.\n2. Both in a kitchen.\nScore: 4", 4.0),        # list markers are no mentions
    ("About 1/2 of the frames match. Score: 4", 4.0),              # a denominator is no mention
    ("Both videos show 2 people in 1 kitchen. Score: 4", 4.0),     # counts are no mentions
])
def test_revisions_and_mentions(answer, expected):
    assert parse_score(answer) == expected


@pytest.mark.parametrize("answer, reason", [
    (None, EMPTY), ("", EMPTY), ("  \n ", EMPTY), ("<think>maybe 4", EMPTY),
    ("garbage", NO_SCORE), ("I'd say 4.", NO_SCORE), (True, NO_SCORE), (["4"], NO_SCORE),
    ("7", OUT_OF_RANGE), ("Score: 9", OUT_OF_RANGE), (0, OUT_OF_RANGE), (float("nan"), OUT_OF_RANGE),
    ("Score: 2. Wait, score: 4", AMBIGUOUS),
])
def test_every_unparsed_answer_has_a_reason_from_the_fixed_vocabulary(answer, reason):
    parsed = parse_answer(answer)
    assert parsed == ParsedAnswer(None, reason) and reason in REASONS
    assert parse_answer("Score: 4") == ParsedAnswer(4.0, None) and parse_score("Score: 4") == 4.0


def _doc_examples() -> list[tuple[str, float | None, str | None]]:
    """(answer, score, reason or None) for every example of docs/parsing.md: each `answer` -> value, and each
    example in the table's "gives `None`" column."""
    text = DOC.read_text(encoding="utf-8")
    examples = []
    for answer, value, reason in re.findall(r"`([^`]+)` -> (None(?: \(([a-z ]+)\))?|-?[0-9]+(?:\.[0-9]+)?)", text):
        examples.append((answer, None if value.startswith("None") else float(value), reason or None))
    for row in text.splitlines():
        cells = row.split(" | ")
        if row.startswith("| ") and len(cells) == 4 and cells[0][2:].isdigit():
            scored = re.findall(r"`([^`]+)`( ->)?", cells[2])
            assert all(arrow for _, arrow in scored), f"an example without its value in rule {cells[0]}"
            examples += [(answer, None, None) for answer in re.findall(r"`([^`]+)`", cells[3])]
    return [(a.replace("\\n", "\n"), v, r) for a, v, r in examples]


def test_every_example_of_docs_parsing_md():
    examples = _doc_examples()
    assert len(examples) >= 80  # the reader finds them all (88 when written)
    wrong = []
    for answer, score, reason in examples:
        parsed = parse_answer(answer)
        if parsed.score != score or (reason is not None and parsed.reason != reason):
            wrong.append((answer, score, reason, parsed))
    assert not wrong


def test_the_samples_log_records_the_reason():
    from convis_tasks import hooks

    doc = {"video1": "a.mp4", "video2": "b.mp4", "concept": "location", "gt": {"location": 3.0}}
    assert hooks.process_results(doc, ["Score: 2. Wait, score: 4"])["n"]["parse"] == AMBIGUOUS
    assert hooks.process_results(doc, ["Score: 4"])["n"] | {"provenance": None} == {
        "kind": "pair", "video1": "a.mp4", "video2": "b.mp4", "concept": "location", "answer": "Score: 4",
        "score": 4.0, "parse": None, "gt": {"location": 3.0}, "provenance": None}
    retrieval = {"anchor": "a.mp4", "candidate": "b.mp4", "concept": "location", "human_rank": 1}
    assert hooks.process_retrieval_results(retrieval, ["7"])["r@1"]["parse"] == OUT_OF_RANGE


def test_correlate_notes_the_ambiguous_unparsed_answers(tmp_path, capsys):
    from convis_tasks.cli import main

    truth = tmp_path / "gt.jsonl"
    keys = ("MainAction", "MainSubjects", "MainObjects", "Location", "OrderOfActions")
    rows = [{"video1": f"videos/p{i}a.mp4", "video2": f"videos/p{i}b.mp4", **{k: i + 1.0 for k in keys}}
            for i in range(5)]
    truth.write_text("\n".join(json.dumps(r) for r in rows))
    answers = ["1", "Score: 2. Wait, score: 4", "no idea", "4", "5"]
    run = tmp_path / "run"
    run.mkdir()
    lines = []
    for i, answer in enumerate(answers):
        record = {"kind": "pair", "video1": rows[i]["video1"], "video2": rows[i]["video2"], "concept": "location",
                  "answer": answer, "score": parse_score(answer), "gt": {"location": i + 1.0}}
        lines.append(json.dumps({"doc_id": i, "spearman": record, "kendall": record}))
    (run / "20260101_samples_convis_location.jsonl").write_text("\n".join(lines))
    assert main(["correlate", str(run), "--ground-truth", str(truth)]) == 0
    out = capsys.readouterr().out
    assert "| 2 |" in out and "Note: 1 of the 2 unparsed answers are ambiguous" in out and "location 1" in out
    for i, answer in enumerate(answers):  # every answer parsed: no note at all
        lines[i] = lines[i].replace(json.dumps(answer), json.dumps(str(i % 5 + 1))).replace('"score": null',
                                                                                          f'"score": {i % 5 + 1}.0')
    (run / "20260101_samples_convis_location.jsonl").write_text("\n".join(lines))
    assert main(["correlate", str(run), "--ground-truth", str(truth)]) == 0
    assert "ambiguous" not in capsys.readouterr().out
