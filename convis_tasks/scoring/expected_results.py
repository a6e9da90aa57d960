"""Expected-value scores of the ``*_expected`` tasks from the harness's log-likelihoods of the answers (no torch).

lmms-eval turns a ``multiple_choice`` task into one ``loglikelihood`` request per answer ``"1"`` .. ``"5"`` (in
that order, ``hooks.score_choices``) and hands the task the five ``(loglikelihood, is_greedy)`` pairs. The score
is ``sum_k k * softmax(loglik)_k``: the caption judge's :func:`convis_tasks.scoring.expected.expected_score` applied to
log-probabilities instead of logits (the softmax is the same, since the two differ by one constant).

A response that is not a log-probability is not scored, never guessed: a wrong count, a non-number, a non-finite
value, or a positive value (a log-probability is at most 0; lmms-eval 0.7.3's own LLaVA, VILA, Oryx and Ola
classes return the mean cross-entropy *loss*, a positive number, in this slot).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Sequence

from convis_tasks.scoring.expected import SCORE_DIGITS, expected_score, format_expected_answer


@dataclass(frozen=True)
class ExpectedScore:
    """One document's outcome: ``score`` None (unparsed) comes with the ``reason``."""

    score: float | None
    logliks: list[float | None]
    reason: str | None = None

    @property
    def answer(self) -> str:
        """The record's answer text: ``Score: x.xxxxxxxx`` (``parse_score`` reads it back), empty when unparsed."""
        return "" if self.score is None else format_expected_answer(self.score)


# lmms-eval 0.7.3 stores a loglikelihood response as ``str((loglik, is_greedy))`` (its evaluator passes every
# response through ``unwrap_generation_output``, which turns a non-text answer into its ``str``).
_RESPONSE_TEXT = re.compile(r"\(([-+]?(?:\d+(?:\.\d*)?(?:[eE][-+]?\d+)?|inf|nan)), (?:True|False)\)")


def loglikelihood_of(response: object) -> float | None:
    """The log-likelihood in one harness response, or None when it holds none: a ``(number, bool)`` pair, or its
    text as lmms-eval 0.7.3 logs it (``"(-6.14, False)"``, also ``"(-inf, False)"``); never a bool."""
    if isinstance(response, str):
        match = _RESPONSE_TEXT.fullmatch(response.strip())
        return float(match.group(1)) if match else None
    if isinstance(response, (list, tuple)) and len(response) == 2:
        value = response[0]
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    return None


def expected_from_responses(responses: Sequence[object]) -> ExpectedScore:
    """The expected score of the harness's responses to the five answers' requests, in score order.

    Each response is lmms-eval's ``(loglikelihood, is_greedy)``, or its text (:func:`loglikelihood_of`). The
    result keeps the five log-likelihoods as read (None where one is not a number) so anyone can recompute the score.
    """
    values = [loglikelihood_of(r) for r in responses]
    if len(values) != len(SCORE_DIGITS):
        return ExpectedScore(None, values, f"expected {len(SCORE_DIGITS)} log-likelihoods (answers "
                                           f"{', '.join(SCORE_DIGITS)}), got {len(values)}")
    if any(v is None for v in values):
        return ExpectedScore(None, values, f"a log-likelihood is not a number: {list(responses)!r:.200}")
    bad = [f"{d}: {v}" for d, v in zip(SCORE_DIGITS, values) if not math.isfinite(v)]
    if bad:
        return ExpectedScore(None, values, f"non-finite log-likelihood ({', '.join(bad)})")
    positive = [f"{d}: {v:g}" for d, v in zip(SCORE_DIGITS, values) if v > 0.0]
    if positive:
        return ExpectedScore(None, values, f"positive log-likelihood ({', '.join(positive)}): the model returned "
                                           "a loss, not a log-probability (lmms-eval 0.7.3's own llava_onevision, "
                                           "llava_vid, vila, oryx and ola do; see docs/models.md)")
    return ExpectedScore(expected_score(values), values)


def tied_pair_share(scores: Sequence[float | None]) -> float:
    """The share of the pairs of scored items ``(i, j)``, ``i < j``, whose scores are equal (unscored items left out):
    the ties that cap what Kendall's tau and Spearman's rho can resolve. 0.0 with fewer than two scores."""
    values = sorted(float(s) for s in scores if s is not None)
    n = len(values)
    if n < 2:
        return 0.0
    counts: dict[float, int] = {}
    for v in values:
        counts[v] = counts.get(v, 0) + 1
    return sum(c * (c - 1) // 2 for c in counts.values()) / (n * (n - 1) // 2)
