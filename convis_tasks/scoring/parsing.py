"""Turn a model's free-text answer into a 1-5 similarity score, or ``None`` (unparsed, counted and reported).

The parser is an input reader like the file loaders: a number in the answer that is not the model's answer must
never become a score, so anything the rules below do not cover is ``None``, never a guess. The grammar, applied
in order (docs/parsing.md lists examples of each):

1. A non-string answer: an int or float (never a bool) in [1, 5]; anything else is ``None``.
2. Reasoning is dropped: text inside ``<think>...</think>`` (or ``<thinking>``); an unclosed ``<think>`` drops
   everything after it (the answer was cut off while thinking); a ``</think>`` with no opening drops everything
   before it (the opening tag was in the prompt).
3. If ``<CONCLUSION>`` tags remain (LLaVA-CoT), only the last conclusion's text is read.
4. The whole remaining text is one number, optionally wrapped in Markdown, quotes or brackets (``4``, ``**4**``,
   ``(3)``, ``4.``, ``3,5`` = 3.5), optionally followed by one parenthetical remark of up to 80 characters on the
   same line (``4 (quite similar)``): that number.
5. Otherwise the LAST explicit answer in the text, where an explicit answer is
   ``N/5``, ``N out of 5``, ``N of 5``, or a label (``score``, ``rating``, ``rate``, ``rated``, ``answer``,
   ``similarity``, ``conclusion``, ``give``/``gave``, whole words) followed within 25 characters, without another
   number or a bracket in between, by ``N``. ``N`` must END there: it is followed by the end of the line, by
   punctuation or Markdown (``. , ; : ! ? ) ] } * _ " ' ` (``), by a spaced dash not followed by a number, or by
   ``because``/``since``/``given``/``as``; ``N`` may sit in brackets (``Score: [4]``) and the denominator may be
   written ``5.0``.
   So ``Score: 4/10``, ``Score: 3-4``, ``Score: 4 or 5``, ``I'd rate 3 of the 5 concepts``, ``rating 80%`` and
   ``Score: 1e5`` are not answers. Mentions of the videos (``video 1``, ``Video 2``, ``clip #1``) and of the
   scale (``(1-5)``, ``on a scale of 1 to 5``, ``between 1 and 5``, ``(out of 5)``) are not numbers and count as
   one character of the 25.
   The last explicit answer counts (models revise); when it is outside [1, 5] the answer is ``None``, never an
   earlier in-range number.
6. Otherwise the first line, else the last line, if it is one number as in rule 4 (``"5\\n\\nBoth videos ..."``);
   when both are, with different numbers, the answer is ``None``.
7. Otherwise ``None``. In particular a number that merely occurs in the text (``2 dogs``, ``Video 1 has 3 cats``),
   and a leading list marker (``1. The man walks``: a number followed by more text on its line) are not scores.

Numbers have at most 9 digits before and after the decimal point; every regular expression here is bounded or
anchored so that parsing time is linear in the answer's length (``benchmarks/parser_speed.py`` measures it on
1 MB adversarial answers).
"""

from __future__ import annotations

import re

from convis_tasks.concepts import SCORE_MAX, SCORE_MIN

_NUM = r"(?<![\w.,])(-?\d{1,9}(?:[.,]\d{1,9})?)"
_END = (r"(?=[ \t]*(?:$|\n|[.,;:!?)\]}*_\"'`(]|[-\u2013\u2014][ \t]+(?![\d-])"
        r"|(?:because|since|given|as)\b))")
_THINK_TAG = re.compile(r"<(/?)think(?:ing)?>", re.IGNORECASE)
_CONCLUSION_OPEN = re.compile(r"<CONCLUSION>", re.IGNORECASE)
_CONCLUSION_CLOSE = re.compile(r"</CONCLUSION>", re.IGNORECASE)
_VIDEO_MENTION = re.compile(r"\b(?:videos?|clips?)[ \t]*#?[ \t]*[12]\b", re.IGNORECASE)
_SCALE_MENTION = re.compile(
    r"(?:[(\[][ \t]{0,3})?"
    r"(?:\b(?:on[ \t]+)?(?:a[ \t]+)?scale[ \t]+(?:of[ \t]+|from[ \t]+)?|\bfrom[ \t]+|\bbetween[ \t]+)?"
    r"(?<![\w.,])1[ \t]*(?:-|\u2013|to|and)[ \t]*5(?![\w.,])[ \t]*[)\]]?"
    r"|[(\[][ \t]*out[ \t]+of[ \t]+5[ \t]*[)\]]",
    re.IGNORECASE,
)
_EXPLICIT = re.compile(
    r"(?:" + _NUM + r"[ \t]*(?:/|\bout[ \t]+of\b|\bof\b)[ \t]*5(?:\.0{1,9})?(?!\d|[.,]\d)" + _END + r")"
    r"|(?:\b(?:score|rating|rate|rated|answer|similarity|conclusion|give|gave)\b[^0-9\n()\[\]]{0,25}?[(\[]?"
    + _NUM + r"(?!\d|[.,]\d)" + _END + r")",
    re.IGNORECASE | re.MULTILINE,
)
_BARE = re.compile(r"[\s*_`'\"(\[{:#>]*(-?\d{1,9}(?:[.,]\d{1,9})?)[\s*_`'\")\]}.!]*"
                   r"(?:\([^()\n]{0,80}\)[\s*_`'\"\]}.!]*)?")


def _to_float(token: str) -> float:
    return float(token.replace(",", "."))


def _in_range(value: float) -> bool:
    return SCORE_MIN <= value <= SCORE_MAX


def _checked(token: str) -> float | None:
    value = _to_float(token)
    return value if _in_range(value) else None


def _drop_reasoning(text: str) -> str:
    """Rule 2, in one linear pass over the think tags."""
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


def _bare(line: str) -> float | None | bool:
    """Rule 4: the line's number if the line is one (decorated) number, ``None`` if out of range, else False."""
    match = _BARE.fullmatch(line)
    if match is None:
        return False
    return _checked(match.group(1))


def parse_score(answer: object) -> float | None:
    """Parse a model answer into a score in [1, 5], or ``None`` when it holds no valid answer (module doc: the
    grammar). Examples: ``"4"``, ``"**4**"``, ``"Score: 4"``, ``"4/5"``, ``"I'd rate it 4 out of 5."``,
    ``"<think>maybe 1</think>4"`` give 4; ``"7"``, ``"Score: 4/10"``, ``"1. The man walks"`` give ``None``."""
    if answer is None or isinstance(answer, bool):
        return None
    if isinstance(answer, (int, float)):
        value = float(answer)
        return value if _in_range(value) else None
    if not isinstance(answer, str):
        return None
    text = _last_conclusion(_drop_reasoning(answer)).strip()
    if not text:
        return None
    whole = _bare(text)
    if whole is not False:
        return whole
    # "video 1", "(1-5)", "on a scale of 1 to 5" -> one non-digit mark: not numbers, and labels may reach past them
    text = _SCALE_MENTION.sub("\u00a7", _VIDEO_MENTION.sub("\u00a7", text))
    last = None
    for last in _EXPLICIT.finditer(text):
        pass
    if last is not None:
        return _checked(last.group(1) or last.group(2))
    lines = text.splitlines()
    first, final = _bare(lines[0].strip()), _bare(lines[-1].strip())
    if first is not False and final is not False and first != final:
        return None  # two different bare numbers, first and last: no single answer
    return first if first is not False else (final if final is not False else None)


def unparsed_reason(answer: object) -> str | None:
    """Why :func:`parse_score` gives ``None`` for ``answer``, in one line naming the rule (module doc), or ``None``
    when the answer parses. For people reading answers (``convis inspect``); it never changes a score."""
    if parse_score(answer) is not None:
        return None
    if answer is None:
        return "no answer"
    if isinstance(answer, bool) or not isinstance(answer, (str, int, float)):
        return f"not text or a number ({type(answer).__name__})"
    if not isinstance(answer, str):
        return f"the number {answer!r} is off the 1-5 scale"
    if not answer.strip():
        return "empty answer"
    dropped = _drop_reasoning(answer)
    if not dropped.strip():
        return "nothing outside the reasoning (<think> ... </think>, or a <think> never closed: cut off)"
    text = _last_conclusion(dropped).strip()
    if not text:
        return "the last <CONCLUSION> is empty"
    whole = _BARE.fullmatch(text)
    if whole is not None:
        return f"the answer is the number {whole.group(1)}, off the 1-5 scale"
    marked = _SCALE_MENTION.sub("\u00a7", _VIDEO_MENTION.sub("\u00a7", text))
    last = None
    for last in _EXPLICIT.finditer(marked):
        pass
    if last is not None:
        return f"the last explicit answer, {last.group(1) or last.group(2)}, is off the 1-5 scale"
    lines = marked.splitlines()
    first, final = _BARE.fullmatch(lines[0].strip()), _BARE.fullmatch(lines[-1].strip())
    if first is not None and final is not None and len(lines) > 1:
        return f"the first and last lines give different numbers ({first.group(1)}, {final.group(1)})"
    if first is not None or final is not None:
        return f"the {'first' if first is not None else 'last'} line's number, " \
               f"{(first or final).group(1)}, is off the 1-5 scale"
    if re.search(r"\d", marked):
        return "numbers occur in the text, none stated as the answer (N/5, 'Score: N', or N alone)"
    return "no number in the answer"
