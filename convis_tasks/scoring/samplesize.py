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


def small_sample_summary(sizes: dict[str, int], where: str, unit: str = "pairs") -> str | None:
    """ONE warning for every row of a table whose n is below :func:`min_pairs` (None when there is none):
    ``<where>: only 11 pairs for a, b; only 3 pairs for c (fewer than 20), too few for a reliable estimate``. Each
    row keeps its own warning in the results (JSON, tables); the terminal gets this line."""
    minimum = min_pairs()
    by_n: dict[int, list[str]] = {}
    for label, n in sizes.items():
        if 0 < n < minimum:
            by_n.setdefault(n, []).append(label)
    if not by_n:
        return None
    parts = "; ".join(f"only {n} {unit} for {', '.join(labels)}" for n, labels in sorted(by_n.items()))
    return f"{where}: {parts} (fewer than {minimum}), too few for a reliable estimate"


def caught_messages(caught: list[warnings.WarningMessage], prefix: str) -> list[str]:
    """``warning: <prefix>: <message>`` for each caught warning, small-sample warnings left out (the callers state
    those themselves, once, in every output format)."""
    return [f"warning: {prefix}: {w.message}" for w in caught if not issubclass(w.category, SmallSampleWarning)]
