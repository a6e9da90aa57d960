"""The unparsed policy: what an answer without a valid 1-5 score counts as. The one place that says it.

An unparsed answer is ``None`` (or NaN, from a float array). The benchmark protocol scores it as the neutral 3.0
(``neutral``); ``drop`` leaves the pair out instead (``convis correlate --unparsed drop``). Every metric, the
bootstrap, the composite score and retrieval call these functions.
"""

from __future__ import annotations

import math
import numbers

from convis_tasks.errors import InputError

NEUTRAL_SCORE = 3.0  # the benchmark's value for an answer that cannot be parsed
POLICIES = ("neutral", "drop")


def is_unparsed(score: object) -> bool:
    """``None`` or NaN: an answer the parser could not read (never a bool)."""
    return score is None or (isinstance(score, numbers.Real) and not isinstance(score, bool)
                             and math.isnan(score))


def check_policy(policy: str) -> str:
    """``policy`` if it is one of :data:`POLICIES`, else an :class:`~convis_tasks.errors.InputError`."""
    if policy not in POLICIES:
        raise InputError(f"unparsed must be one of {POLICIES}, got {policy!r}")
    return policy


def counted(score: float | None) -> float:
    """The value an answer counts as under the protocol: its score, or :data:`NEUTRAL_SCORE` when unparsed."""
    return NEUTRAL_SCORE if is_unparsed(score) else float(score)  # type: ignore[arg-type]
