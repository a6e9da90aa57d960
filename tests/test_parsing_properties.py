"""Property tests of the parser (issue #19): around a known score, whatever else the answer holds, the parser gives
the known score or ``None``, never another value; and with only documented non-answers around it, the known score.

Each test draws a few hundred answers (``derandomize``: the same ones on every run, a few seconds in all)."""

from hypothesis import given, settings
from hypothesis import strategies as st

from convis_tasks.scoring.parsing import REASONS, parse_answer, parse_score

SETTINGS = settings(max_examples=200, deadline=None, derandomize=True)
KNOWN = st.sampled_from([1.0, 2.0, 3.0, 4.0, 5.0, 1.5, 2.5, 3.5, 4.5])
FULL_WIDTH = str.maketrans({**{str(d): chr(0xFF10 + d) for d in range(10)}, "/": "\uff0f", ":": "\uff1a"})

# The documented answer forms (docs/parsing.md, rule 5), {s} the known score. Bare forms must be alone on the
# first or last line to be an answer.
EXPLICIT = ["Score: {s}", "Score: {s}/5", "{s}/5", "{s} out of 5", "I'd rate it {s} out of 5.", "Final answer: {s}",
            "The similarity score is {s}.", "I would give it a {s}.", "**Score:** {s}", "Score: [{s}]",
            "Similarity score (1-5): {s}", "Rating: {s} because both show a kitchen.", "Answer: **{s}**",
            "Similarity between video 1 and video 2: {s}", "Score: {s}/5.0", "Final Score: {s}"]
BARE = ["{s}", "**{s}**", "({s})", "{s}.", "{s} (quite similar)", "`{s}`", '"{s}"']
# Documented non-answers: they never change the result. {d} is any number 1-5.
NEUTRAL = ["Both videos show a kitchen.", "Video 1 shows a man; video 2 shows a woman.",
           "There are {d} people in both videos.", "On a scale of 1 to 5, they are close.", "\n## Analysis\n",
           "\n{d}. The man walks in.\n", "\n- Both are indoors\n", "<think>maybe {d}, or {d}/5</think>",
           "The clips last {d} seconds.", "Confidence: {d}/5.", "**Quality score:** {d}", "Clip #2 is darker.",
           "About 1/{d} of the frames match.", "Score (out of 5) below.", "(cosine 1.00000000)"]
# Numbers that are not the answer but could be read as one: the answer may become ambiguous, never {d}.
DISTRACTORS = ["It is not a {d}.", "Action score: {d}.", "Similarity for location {d}, action {d}.",
               "I first thought {d}.", "({d} for location)", "Hmm, not {d}/5.", "Maybe {d}?", "\n{d}\n",
               "Rating: {d}/5.", "Score: 7.", "Or maybe {d} out of 5.", "I would not give it a {d}.",
               "Location: {d}", "The answer is not {d}.", "Score: not {d}, but", "{d}/5 for the objects.",
               "Action {d}, subjects {d}."]
BEFORE_ONLY = ["Score: {d}. Wait,", "Final answer: {d}.", "<think>Score: {d}</think>"]  # revisions of the answer
SEPARATORS = st.sampled_from([" ", "\n", "\n\n", " \n"])  # after an explicit answer: a line break or ". "


def _spell(value: float, style: str) -> str:
    text = f"{value:g}"
    return {"plain": text, "decimal": f"{value:.1f}", "comma": text.replace(".", ","),
            "wide": text.translate(FULL_WIDTH)}[style]


@st.composite
def _pieces(draw, templates: list[str], known: float, other: bool) -> list[str]:
    """Some filled templates; {d} is another value than ``known`` when ``other``, else any 1-5."""
    choices = [v for v in (1, 2, 3, 4, 5) if not other or v != known]
    return [t.replace("{d}", str(draw(st.sampled_from(choices))))
            for t in draw(st.lists(st.sampled_from(templates), max_size=3))]


def _join(draw, pieces: list[str]) -> str:
    return "".join(piece + draw(SEPARATORS) for piece in pieces)


@st.composite
def clean_answers(draw) -> tuple[str, float]:
    """(answer, known): one documented answer form among documented non-answers."""
    known = draw(KNOWN)
    s = _spell(known, draw(st.sampled_from(["plain", "decimal", "comma", "wide"])))
    before, after = draw(_pieces(NEUTRAL, known, False)), draw(_pieces(NEUTRAL, known, False))
    if draw(st.booleans()):
        answer = draw(st.sampled_from(EXPLICIT)).replace("{s}", s)
        text = _join(draw, before) + answer + draw(st.sampled_from(["\n", ". ", "\n\n"])) + _join(draw, after)
    else:  # a bare answer alone on the first or the last line
        answer = draw(st.sampled_from(BARE)).replace("{s}", s)
        text = answer + "\n" + _join(draw, after) if draw(st.booleans()) else _join(draw, before) + "\n" + answer
    if draw(st.booleans()):
        text = text.translate(FULL_WIDTH)
    if draw(st.booleans()):
        text = "<think>Let me count: 1, 2, 3. Score: 2? Or 5.</think>\n" + text
    return text, known


@st.composite
def answers_with_distractors(draw) -> tuple[str, float]:
    """(answer, known): a clean answer with numbers that are not the answer before and after it."""
    text, known = draw(clean_answers())
    before = draw(_pieces(DISTRACTORS + BEFORE_ONLY, known, True))
    after = draw(_pieces(DISTRACTORS, known, True))
    text = _join(draw, before) + text + "\n" + _join(draw, after)  # "\n": a bare answer stays alone on its line
    if draw(st.booleans()):
        text = text.translate(FULL_WIDTH)
    return text, known


@SETTINGS
@given(clean_answers())
def test_a_documented_answer_among_non_answers_gives_the_known_score(case):
    text, known = case
    assert parse_score(text) == known, text


@SETTINGS
@given(answers_with_distractors())
def test_the_known_score_or_unparsed_never_another_value(case):
    text, known = case
    assert parse_score(text) in (known, None), text


@SETTINGS
@given(st.text(alphabet=st.sampled_from(list("0123456789 .,/:-*()[]\n<>scoreatingfl\uff14\uff0f")), max_size=60))
def test_any_text_gives_a_score_in_range_or_a_reason(text):
    parsed = parse_answer(text)
    assert (parsed.score is None) != (parsed.reason is None)
    assert parsed.reason in REASONS if parsed.score is None else 1.0 <= parsed.score <= 5.0
