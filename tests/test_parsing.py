import pytest

from convis_tasks.utils.parsing import NEUTRAL_SCORE, parse_score, score_or_neutral


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
