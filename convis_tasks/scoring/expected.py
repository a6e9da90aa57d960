"""The scoring math of expected scores (no torch): which captions, which concept, the expected score.

The judge (``convis_tasks/model_wrappers/caption_judge.py``) shows a causal LM the two videos' captions and then the
benchmark prompt adapted to captions (``prompts/judge_captions.jinja`` + ``prompts/judge.jinja``, or
``judge_global.jinja`` for the concept-free task), in one user message. Two answers come from the first answer
token's distribution:

* ``greedy``: the protocol, the decoded arg-max token (or greedy generation when more tokens are allowed), parsed
  by :func:`convis_tasks.scoring.parsing.parse_score` like any model's text;
* ``expected``: G-Eval's probability-weighted score. With ``l_k`` the logit of the single token spelling the digit
  ``k`` (``"1"`` .. ``"5"``, no leading space), ``p_k = exp(l_k) / sum_j exp(l_j)`` over those five only (the full
  softmax restricted to the five tokens and renormalised; the two are the same thing) and the score is
  ``sum_k k p_k``, in [1, 5]. The mass the full softmax gives the five tokens is reported beside it.
"""

from __future__ import annotations

import math
from typing import Iterable, Mapping, Sequence

from convis_tasks.errors import InputError

SCORE_DIGITS: tuple[str, ...] = ("1", "2", "3", "4", "5")


def expected_score(digit_logits: Sequence[float]) -> float:
    """``sum_k k p_k`` with ``p`` the softmax of the five logits of ``"1"`` .. ``"5"`` (in that order)."""
    logits = [float(x) for x in digit_logits]
    if len(logits) != len(SCORE_DIGITS):
        raise InputError(f"expected {len(SCORE_DIGITS)} logits (for '1'..'5'), got {len(logits)}")
    if not all(math.isfinite(x) for x in logits):
        raise InputError(f"non-finite score-token logits {logits}")
    top = max(logits)
    weights = [math.exp(x - top) for x in logits]
    total = sum(weights)
    return sum((k + 1) * w for k, w in enumerate(weights)) / total


def digit_mass(digit_logits: Sequence[float], logsumexp_all: float) -> float:
    """The probability the full next-token softmax gives the five score tokens together."""
    return float(sum(math.exp(float(x) - float(logsumexp_all)) for x in digit_logits))


def format_expected_answer(score: float, mass: float | None = None) -> str:
    """The answer text of expected mode; ``parse_score`` reads the labelled score back (8 decimals keep ties rare)."""
    if not (1.0 <= score <= 5.0):
        raise InputError(f"expected score {score} outside [1, 5]")
    text = f"Score: {score:.8f}"
    return text if mass is None else f"{text} (mass on 1-5: {mass:.6f})"


LOGPROB_TOLERANCE = 1e-6  # a log-probability may exceed 0 by this much (rounding); more is impossible
MASS_TOLERANCE = 1e-5  # the listed tokens' probabilities may sum to 1 + this (20 float32 terms); more is impossible


def check_top_logprobs(top: Iterable[tuple[str, float]]) -> float:
    """The probability mass of a top-log-probability list; :class:`InputError` naming the token when a value is not
    a finite number <= ``LOGPROB_TOLERANCE``, or when the mass exceeds ``1 + MASS_TOLERANCE`` (impossible replies)."""
    mass = 0.0
    for token, logprob in top:
        if isinstance(logprob, bool) or not isinstance(logprob, (int, float)) or not math.isfinite(logprob):
            raise InputError(f"log-probability of token {token!r} is {logprob!r}, not a finite number")
        if logprob > LOGPROB_TOLERANCE:
            raise InputError(f"log-probability of token {token!r} is {logprob!r} > 0 (a probability above 1)")
        mass += math.exp(logprob)
    if mass > 1.0 + MASS_TOLERANCE:
        raise InputError(f"the listed tokens' probabilities sum to {mass:.9g} > 1")
    return mass


def expected_from_top_logprobs(top: Mapping[str, float] | Iterable[tuple[str, float]]) -> tuple[float, float] | None:
    """Expected score and mass from an endpoint's top log-probabilities of the first answer token.

    ``top``: ``(token, logprob)`` pairs (or a mapping), checked by :func:`check_top_logprobs` first. Only tokens that
    are exactly a digit 1..5 (surrounding whitespace ignored, duplicates summed) count; digits absent from the list
    get probability 0. None when no digit is listed (the caller falls back to the text).
    """
    pairs = list(top.items()) if isinstance(top, Mapping) else list(top)
    check_top_logprobs(pairs)
    probs = {d: 0.0 for d in SCORE_DIGITS}
    for token, logprob in pairs:
        d = str(token).strip()
        if d in probs:
            probs[d] += math.exp(float(logprob))
    mass = sum(probs.values())
    if mass <= 0.0:
        return None
    return sum(int(d) * p for d, p in probs.items()) / mass, mass
