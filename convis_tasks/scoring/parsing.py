"""Turn a model's free-text answer into a 1-5 similarity score, or ``None`` (unparsed, counted and reported).

The parser is an input reader like the file loaders: a number in the answer that is not the model's answer must
never become a score. It collects every number that could be the answer and gives a score only when they all agree;
anything else is ``None`` with a reason, never a guess. The grammar (docs/parsing.md lists examples of each):

1. A non-string answer: an int or float (never a bool) in [1, 5]; anything else is ``None``.
2. The text is normalised (NFKC: full-width digits and letters; typographic quotes, dashes and the fraction slash
   to ASCII; every Unicode decimal digit to its ASCII digit; zero-width characters removed) before any rule.
3. Reasoning is dropped: text inside ``<think>...</think>`` (or ``<thinking>``); an unclosed ``<think>`` drops
   everything after it (the answer was cut off while thinking); a ``</think>`` with no opening drops everything
   before it (the opening tag was in the prompt). If ``<CONCLUSION>`` tags remain (LLaVA-CoT), only the last
   conclusion's text is read.
4. Mentions that are not numbers become one non-digit mark: the videos (``video 1``, ``clip #2``), the scale
   (``(1-5)``, ``on a scale of 1 to 5``, ``between 1 and 5``, ``(out of 5)``) and another quantity's rating
   (``Confidence: 3/5``, ``quality score 4``, the baselines' ``(cosine 0.83)`` and ``(mass on 1-5: 0.98)``).
5. Answers (the forms that can give a score):
   a. an explicit answer: ``N/5``, ``N out of 5``, ``N of 5``, or a label (``score``, ``rating``, ``rate``,
      ``rated``, ``answer``, ``similarity``, ``conclusion``, ``give``/``gave``, whole words) followed within 25
      characters, without another number or a bracket in between, by ``N``. ``N`` must END there: it is followed
      by the end of the line, by punctuation or Markdown (``. , ; : ! ? ) ] } * _ " ' ` (``), by a spaced dash
      not followed by a number, or by ``because``/``since``/``given``/``as``; ``N`` may sit in brackets
      (``Score: [4]``) and the denominator may be written ``5.0``;
   b. the whole text, its first line or its last line is one number, optionally wrapped in Markdown, quotes or
      brackets (``4``, ``**4**``, ``(3)``, ``4.``, ``3,5`` = 3.5), optionally followed by one parenthetical
      remark of up to 80 characters on the same line (``4 (quite similar)``).
6. Mentions (forms that never give a score but compete with the answers): any other number from 1 to 5 outside
   an answer that ends as ``N`` must (rule 5a) or is followed by ``for`` (``2 for location``); except a number
   that starts a line with more text after it (a list marker: ``1. The man walks``) and a denominator (``1/2``). An answer preceded in its clause (up to 24 characters back, after the last ``, ; : . ! ? ``) by a
   negation or a comparison (``not``, ``n't``, ``never``, ``neither``, ``nor``, ``cannot``, ``than``,
   ``instead of``, ``except``) is demoted to a mention: ``Score: not 2, but 4`` is not 2.
7. Revisions: a ``final answer``/``final score``/``final rating``/``final similarity`` answer (the first one,
   not negated) sets aside every answer and mention before it. Nothing else is read as a revision.
8. The result: no answer -> ``None`` ("no score"); answers and mentions with more than one distinct value ->
   ``None`` ("ambiguous"); else the one value, ``None`` ("out of range") when it is outside [1, 5].

Numbers have at most 9 digits before and after the decimal point; every regular expression here is bounded or
anchored, and every scan is one pass, so parsing time is linear in the answer's length
(``benchmarks/parser_speed.py`` measures it on 1 MB adversarial answers).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Iterator

from convis_tasks.concepts import SCORE_MAX, SCORE_MIN

# Why an answer is unparsed (ParsedAnswer.reason); a parsed answer has reason None.
EMPTY = "empty"  # no text, or nothing left after the reasoning
NO_SCORE = "no score"  # no number in any answer form
OUT_OF_RANGE = "out of range"  # one answer, outside [1, 5]
AMBIGUOUS = "ambiguous"  # more than one distinct value among the answers and mentions
REASONS = (EMPTY, NO_SCORE, OUT_OF_RANGE, AMBIGUOUS)

_NUM = r"(?<![\w.,])(-?\d{1,9}(?:[.,]\d{1,9})?)"
_END = (r"(?=[ \t]*(?:$|\n|[.,;:!?)\]}*_\"'`(]|-[ \t]+(?![\d-])"
        r"|(?:because|since|given|as)\b))")
_ASCII = str.maketrans({
    "\u2018": "'", "\u2019": "'", "\u201a": "'", "\u201b": "'", "\u2032": "'",
    "\u201c": '"', "\u201d": '"', "\u201e": '"', "\u201f": '"', "\u2033": '"', "\u00ab": '"', "\u00bb": '"',
    "\u2010": "-", "\u2011": "-", "\u2012": "-", "\u2013": "-", "\u2014": "-", "\u2015": "-", "\u2212": "-",
    "\u2044": "/", "\u2215": "/",
    "\u200b": None, "\u200c": None, "\u200d": None, "\u2060": None, "\ufeff": None,
})
_OTHER_DIGIT = re.compile(r"(?![0-9])\d")  # a decimal digit of another script (Unicode category Nd)
_THINK_TAG = re.compile(r"<(/?)think(?:ing)?>", re.IGNORECASE)
_CONCLUSION_OPEN = re.compile(r"<CONCLUSION>", re.IGNORECASE)
_CONCLUSION_CLOSE = re.compile(r"</CONCLUSION>", re.IGNORECASE)
_MARK = "\u00a7"  # what a mention becomes: one character that is no digit, bracket or line break
_MENTION = re.compile(
    r"\b(?:videos?|clips?)[ \t]*#?[ \t]*[12]\b"
    r"|(?:[(\[][ \t]{0,3})?"
    r"(?:\b(?:on[ \t]+)?(?:a[ \t]+)?scale[ \t]+(?:of[ \t]+|from[ \t]+)?|\bfrom[ \t]+|\bbetween[ \t]+)?"
    r"(?<![\w.,])1[ \t]*(?:-|to|and)[ \t]*5(?!\w|[.,]\d)[ \t]*[)\]]?"
    r"|[(\[][ \t]*out[ \t]+of[ \t]+5[ \t]*[)\]]",
    re.IGNORECASE,
)
_RATING = re.compile(  # after _MENTION: "Confidence (1-5): 4" is a mark, then "Confidence §: 4", no rating
    r"\b(?:confidence|certainty|quality|cosine|mass)(?:[ \t]+(?:level|score|rating|on[ \t]+" + _MARK + r"))?"
    r"[ \t*_]{0,3}(?:[:=]|\bis\b|\bof\b)?"
    r"[ \t*_]{0,3}[(\[]?" + _NUM + r"(?:[ \t]*(?:/|\bout[ \t]+of\b|\bof\b)[ \t]*\d{1,9}(?:\.\d{1,9})?|[ \t]*%)?",
    re.IGNORECASE,
)
_LABELS = r"score|rating|rate|rated|answer|similarity|conclusion|give|gave"
_EXPLICIT = re.compile(
    r"(?:" + _NUM + r"[ \t]*(?:/|\bout[ \t]+of\b|\bof\b)[ \t]*5(?:\.0{1,9})?(?!\d|[.,]\d)" + _END + r")"
    r"|(?:\b(?:" + _LABELS + r")\b[^0-9\n()\[\]]{0,25}?[(\[]?" + _NUM + r"(?!\d|[.,]\d)" + _END + r")",
    re.IGNORECASE | re.MULTILINE,
)
_FINAL = re.compile(r"\bfinal[ \t*_]+\Z", re.IGNORECASE)  # before one of _FINAL_LABELS
_FINAL_LABELS = re.compile(r"answer|score|rating|similarity", re.IGNORECASE)
_NUMBER = re.compile(r"(?<![\w.,/])(-?\d{1,9}(?:[.,]\d{1,9})?)(?!\d|[.,]\d)(?:" + _END + r"|(?=[ \t]+for\b))",
                     re.MULTILINE | re.IGNORECASE)
_CLAUSE = re.compile(r"[,;:.!?\n]")
_NEGATION = re.compile(r"\b(?:not|never|neither|nor|cannot|than|instead[ \t]+of|except)\b|n't\b", re.IGNORECASE)
_BARE = re.compile(r"[\s*_`'\"(\[{:#>]*(-?\d{1,9}(?:[.,]\d{1,9})?)[\s*_`'\")\]}.!" + _MARK + r"]*"
                   r"(?:\([^()\n]{0,80}\)[\s*_`'\"\]}.!" + _MARK + r"]*)?")


@dataclass(frozen=True)
class ParsedAnswer:
    """A parsed answer: ``score`` in [1, 5], or ``None`` with ``reason`` one of :data:`REASONS`."""

    score: float | None
    reason: str | None


def _to_float(token: str) -> float:
    return float(token.replace(",", "."))


def _in_range(value: float) -> bool:
    return SCORE_MIN <= value <= SCORE_MAX


def normalise(text: str) -> str:
    """Rule 2: NFKC, typographic punctuation to ASCII, every decimal digit to ASCII, no zero-width characters."""
    if text.isascii():  # ASCII text is NFKC already
        return text
    text = unicodedata.normalize("NFKC", text).translate(_ASCII)
    return text if text.isascii() else _OTHER_DIGIT.sub(lambda m: str(unicodedata.decimal(m.group())), text)


def _drop_reasoning(text: str) -> str:
    """Rule 3, in one linear pass over the think tags."""
    kept: list[str] = []
    position = 0
    inside = False
    for tag in _THINK_TAG.finditer(text):
        closing = tag.group(1) == "/"
        if not closing and not inside:
            kept.append(text[position:tag.start()])
            inside = True
        elif closing and inside:
            inside = False
        elif closing and not inside:  # a closing tag whose opening was in the prompt: all before it is reasoning
            kept = []
        position = tag.end()
    if not inside:
        kept.append(text[position:])
    return "".join(kept)


def _last_conclusion(text: str) -> str:
    """Rule 3: the text of the last ``<CONCLUSION>`` (to its closing tag, or to the end)."""
    opening = None
    for opening in _CONCLUSION_OPEN.finditer(text):
        pass
    if opening is None:
        return text
    closing = _CONCLUSION_CLOSE.search(text, opening.end())
    return text[opening.end():closing.start() if closing else len(text)]


def _negated(text: str, start: int) -> bool:
    """Rule 6: a negation or comparison in the clause before ``start`` (at most 24 characters back)."""
    window = text[max(0, start - 24):start]
    clause = None
    for clause in _CLAUSE.finditer(window):
        pass
    return _NEGATION.search(window, clause.end() if clause else 0) is not None


def _bare_number(text: str, start: int, end: int) -> tuple[int, float] | None:
    """Rule 5b: (position, value) when ``text[start:end]``, stripped, is one decorated number."""
    match = _BARE.fullmatch(text, start, end)
    return (match.start(1), _to_float(match.group(1))) if match else None


_DECORATION = frozenset(" \t>*#_+-")


def _list_marker(text: str, position: int) -> bool:
    """A number that starts its line (after Markdown) with more text after it on the line. Linear overall: the
    decoration run walked back over lies between this number and the previous one."""
    start = position
    while start > 0 and text[start - 1] in _DECORATION:
        start -= 1
    if start > 0 and text[start - 1] != "\n":
        return False
    end = text.find("\n", position)
    return _bare_number(text, start, len(text) if end < 0 else end) is None


def _answers(text: str) -> tuple[list[tuple[int, float, bool, bool]], list[tuple[int, int]]]:
    """Rule 5 (with 6's negation and 7's final marks): ``(position, value, answer, final)`` of each answer form
    (``answer`` False: demoted by a negation), and the spans whose numbers are no mentions."""
    found: list[tuple[int, float, bool, bool]] = []
    spans: list[tuple[int, int]] = []
    for match in _EXPLICIT.finditer(text):
        group = 1 if match.group(1) is not None else 2
        position = match.start(group)
        negated = _negated(text, position)
        final = (group == 2 and not negated and _FINAL_LABELS.match(text, match.start()) is not None
                 and _FINAL.search(text, max(0, match.start() - 12), match.start()) is not None)
        found.append((position, _to_float(match.group(group)), not negated, final))
        spans.append((match.start(), match.end()))
    first_end = text.find("\n")
    last_start = text.rfind("\n") + 1
    lines = [(0, len(text))] if first_end < 0 else [(0, len(text)), (0, first_end), (last_start, len(text))]
    for start, end in lines:
        bare = _bare_number(text, start, end)
        if bare is not None:
            found.append((bare[0], bare[1], True, False))
            spans.append((bare[0], bare[0] + 1))
    return found, sorted(spans)


def _mentions(text: str, spans: list[tuple[int, int]], start: int) -> Iterator[tuple[int, float]]:
    """Rule 6, from ``start`` on: ``(position, value)`` of numbers 1-5 that end as an answer does, outside
    ``spans`` (sorted) and denominators. List markers are left to the caller (:func:`_list_marker`)."""
    index = 0
    for match in _NUMBER.finditer(text, start):
        position = match.start(1)
        while index < len(spans) and spans[index][1] <= position:
            index += 1
        if index < len(spans) and spans[index][0] <= position:
            continue
        value = _to_float(match.group(1))
        if _in_range(value):
            yield position, value


def _decide(text: str) -> ParsedAnswer:
    """Rules 5-8 on the normalised text: the answers after the first final answer, then the mentions after it
    (read only until a second value shows up)."""
    answers, spans = _answers(text)
    cut = min((position for position, _, _, final in answers if final), default=0)
    answers = [a for a in answers if a[0] >= cut]
    if not any(answer for _, _, answer, _ in answers):
        return ParsedAnswer(None, NO_SCORE)
    values = {value for _, value, answer, _ in answers if answer or _in_range(value)}
    for position, value in _mentions(text, spans, cut) if len(values) == 1 else ():
        if value not in values and not _list_marker(text, position):
            return ParsedAnswer(None, AMBIGUOUS)
    if len(values) > 1:
        return ParsedAnswer(None, AMBIGUOUS)
    value = values.pop()
    return ParsedAnswer(value, None) if _in_range(value) else ParsedAnswer(None, OUT_OF_RANGE)


def parse_answer(answer: object) -> ParsedAnswer:
    """Parse a model answer (module doc: the grammar): ``ParsedAnswer(score, None)`` with a score in [1, 5], or
    ``ParsedAnswer(None, reason)``. ``"Score: 4"``, ``"4/5"``, ``"<think>maybe 1</think>4"`` give 4;
    ``"7"`` is out of range, ``"1. The man walks"`` has no score, ``"Score: 2. Confidence: 4/5"`` gives 2 and
    ``"Score: 2. Wait, score: 4"`` is ambiguous."""
    if answer is None:
        return ParsedAnswer(None, EMPTY)
    if isinstance(answer, bool) or not isinstance(answer, (int, float, str)):
        return ParsedAnswer(None, NO_SCORE)
    if not isinstance(answer, str):
        value = float(answer)
        return ParsedAnswer(value, None) if _in_range(value) else ParsedAnswer(None, OUT_OF_RANGE)
    text = _last_conclusion(_drop_reasoning(normalise(answer))).strip()
    if not text:
        return ParsedAnswer(None, EMPTY)
    return _decide(_RATING.sub(_MARK, _MENTION.sub(_MARK, text)))  # rule 4: "video 1", "(1-5)", "Confidence: 3/5"


def parse_score(answer: object) -> float | None:
    """The score of :func:`parse_answer`: a number in [1, 5], or ``None`` for an unparsed answer."""
    return parse_answer(answer).score
