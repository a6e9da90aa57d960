"""The sample-size rules every output shares: nothing evaluated is an error; a small sample is a warning, stated
once, in every output format (terminal, JSON, tables)."""

from __future__ import annotations

import warnings

from convis_tasks.errors import EmptyEvaluationError
from convis_tasks.scoring.metrics import MIN_PAIRS, SmallSampleWarning


def min_pairs() -> int:
    """:data:`~convis_tasks.scoring.metrics.MIN_PAIRS`: below it, a correlation carries a warning."""
    return MIN_PAIRS


def sample_size_warning(n: int, what: str, unit: str = "pairs") -> str | None:
    """The small-sample warning for ``n`` (None when n >= min_pairs()); n = 0 raises EmptyEvaluationError."""
    if n == 0:
        raise EmptyEvaluationError(f"{what}: nothing was evaluated (0 {unit}); check that the predictions "
                                   "and the ground truth name the same videos")
    minimum = min_pairs()
    if n < minimum:
        return f"{what}: only {n} {unit} (fewer than {minimum}); the correlation is not a reliable estimate"
    return None


def caught_messages(caught: list[warnings.WarningMessage], prefix: str) -> list[str]:
    """``warning: <prefix>: <message>`` for each caught warning, small-sample warnings left out (the callers state
    those themselves, once, in every output format)."""
    return [f"warning: {prefix}: {w.message}" for w in caught if not issubclass(w.category, SmallSampleWarning)]
