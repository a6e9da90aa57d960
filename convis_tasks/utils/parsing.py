"""Turn a model's free-text answer into a 1-5 similarity score."""

from __future__ import annotations

import re

SCORE_MIN = 1.0
SCORE_MAX = 5.0
NEUTRAL_SCORE = 3.0  # the benchmark's value for an answer that cannot be parsed

_NUM = r"(-?\d+(?:[.,]\d+)?)"
_CONCLUSION = re.compile(r"<CONCLUSION>(.*?)(?:</CONCLUSION>|$)", re.IGNORECASE | re.DOTALL)
_THINK = re.compile(r"<think(?:ing)?>.*?</think(?:ing)?>", re.IGNORECASE | re.DOTALL)
_FINAL = re.compile(r"(?:final\s+answer|final\s+score|conclusion|therefore|thus|so)\b", re.IGNORECASE)
_OUT_OF = re.compile(_NUM + r"\s*(?:/|out\s+of|of)\s*5(?![\d.])", re.IGNORECASE)
_LABELLED = re.compile(
    r"(?:score|rating|rate|answer|similarity|rated)\b[^0-9\n]{0,25}?" + _NUM + r"(?![\d.]*\s*%)", re.IGNORECASE
)
_BARE = re.compile(r"^[\s*_`'\"(\[{:#>]*" + _NUM + r"[\s*_`'\")\]}.!]*$")
_ANY = re.compile(r"(?<![\w.])" + _NUM + r"(?![\w]|\.\d)")


def _to_float(token: str) -> float:
    return float(token.replace(",", "."))


def _in_range(value: float) -> bool:
    return SCORE_MIN <= value <= SCORE_MAX


def _last_in_range(tokens: list[str]) -> float | None:
    for token in reversed(tokens):
        value = _to_float(token)
        if _in_range(value):
            return value
    return None


def parse_score(answer: object) -> float | None:
    """Parse a model answer into a score in [1, 5], or ``None`` when no valid score is found.

    Accepted: bare numbers (``"4"``, ``"3.5"``, ``"**4**"``), ``"Score: 4"``, ``"4/5"``, ``"4 out of 5"``,
    a final answer after reasoning (``<CONCLUSION>`` blocks, ``Final answer: 4``, the last labelled score),
    and ``<think>`` blocks are skipped. Numbers outside [1, 5] are never accepted.
    """
    if answer is None:
        return None
    if isinstance(answer, (int, float)) and not isinstance(answer, bool):
        value = float(answer)
        return value if _in_range(value) else None
    text = _THINK.sub(" ", str(answer)).strip()
    if not text:
        return None
    conclusions = _CONCLUSION.findall(text)
    if conclusions and conclusions[-1].strip():
        text = conclusions[-1].strip()
    bare = _BARE.match(text)
    if bare:
        value = _to_float(bare.group(1))
        return value if _in_range(value) else None
    # After reasoning, prefer what follows the last "final answer"/"therefore" marker.
    finals = list(_FINAL.finditer(text))
    scopes = [text[m.end():] for m in reversed(finals)] + [text]
    for scope in scopes:
        for pattern in (_OUT_OF, _LABELLED):
            value = _last_in_range(pattern.findall(scope))
            if value is not None:
                return value
    first_line = text.splitlines()[0]
    bare = _BARE.match(first_line)
    if bare:
        value = _to_float(bare.group(1))
        return value if _in_range(value) else None
    numbers = _ANY.findall(text)
    if len(numbers) == 1:
        value = _to_float(numbers[0])
        return value if _in_range(value) else None
    last_line_numbers = _ANY.findall(text.strip().splitlines()[-1])
    if last_line_numbers:
        value = _to_float(last_line_numbers[-1])
        return value if _in_range(value) else None
    return None


def score_or_neutral(score: float | None) -> float:
    """The benchmark protocol: an unparsed answer counts as the neutral score 3.0."""
    return NEUTRAL_SCORE if score is None else score
