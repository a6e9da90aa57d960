"""The unparsed policy: what an answer without a valid 1-5 score counts as. The one place that says it.

An unparsed answer is ``None`` (or NaN, from a float array). The benchmark protocol scores it as the neutral 3.0
(``neutral``); ``drop`` leaves the pair out instead (``convis correlate --unparsed drop``). Every metric, the
bootstrap, the composite score and retrieval call these functions.
"""

from __future__ import annotations

import math
import numbers
from typing import Iterable

from convis_tasks.errors import InputError

NEUTRAL_SCORE = 3.0  # the benchmark's value for an answer that cannot be parsed
POLICIES = ("neutral", "drop")


def is_unparsed(score: object) -> bool:
    """``None`` or NaN: an answer the parser could not read (never a bool)."""
    return score is None or (isinstance(score, numbers.Real) and not isinstance(score, bool)
                             and math.isnan(score))


def all_unparsed(scores: Iterable[object]) -> bool:
    """True when there is at least one score and every one is unparsed: not one answer could be read as a score
    (then a correlation of the neutral 3.0s is undefined and a retrieval ranking is all ties)."""
    seen = False
    for score in scores:
        if not is_unparsed(score):
            return False
        seen = True
    return seen


def check_policy(policy: str) -> str:
    """``policy`` if it is one of :data:`POLICIES`, else an :class:`~convis_tasks.errors.InputError`."""
    if policy not in POLICIES:
        raise InputError(f"unparsed must be one of {POLICIES}, got {policy!r}")
    return policy


def counted(score: float | None) -> float:
    """The value an answer counts as under the protocol: its score, or :data:`NEUTRAL_SCORE` when unparsed."""
    return NEUTRAL_SCORE if is_unparsed(score) else float(score)  # type: ignore[arg-type]
