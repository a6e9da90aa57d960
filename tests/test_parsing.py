import pytest

from convis_tasks.scoring.unparsed import NEUTRAL_SCORE
from convis_tasks.scoring.parsing import parse_score
from convis_tasks.scoring.unparsed import counted as score_or_neutral


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
