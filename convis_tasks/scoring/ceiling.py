"""The human ceiling: how well one annotator agrees with the others, on the same scale as a model's rho / tau.

Leave-one-annotator-out (LOAO), per concept:

1. For each annotator a, take the pairs a rated that at least one OTHER annotator also rated.
2. On those pairs, correlate a's ratings with the mean of the other annotators' ratings (Spearman rho and
   Kendall tau-b, as for a model).
3. Average over annotators: a plain, unweighted mean over the annotators with at least ``min_pairs`` (default 3)
   such pairs whose correlation is defined. Annotators whose own ratings (or the others' means) are constant on
   their pairs have no correlation and are counted in ``undefined``; those with too few pairs in ``too_few``.

Every annotator counts once whatever the number of pairs they rated, so the row reads "a typical annotator",
not "the pool of ratings". Krippendorff's alpha (ordinal) is reported beside it
(:func:`convis_tasks.scoring.agreement.krippendorff_alpha`, the value ``convis agreement`` prints). The composite
row (Eq. 2 weights) applies the weights to each annotator's own five ratings of a pair, then runs the same
procedure on those composite ratings.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from convis_tasks.scoring.agreement import krippendorff_alpha
from convis_tasks.reading.annotations import Rating, ratings_matrix
from convis_tasks.concepts import CONCEPT_KEYS
from convis_tasks.scoring.fastcorr import masked_rows
from convis_tasks.errors import InputError

MIN_PAIRS = 3
COMPOSITE = "composite"


@dataclass(frozen=True)
class CeilingEntry:
    """LOAO rho / tau (x100, mean over the annotators used), and the annotator counts."""

    spearman: float
    kendall: float
    annotators: int
    too_few: int = 0
    undefined: int = 0
    alpha: float | None = None

    def to_dict(self) -> dict:
        return {"spearman": self.spearman, "kendall": self.kendall, "annotators": self.annotators,
                "too_few": self.too_few, "undefined": self.undefined, "alpha": self.alpha}


@dataclass
class Ceiling:
    """Per concept key (and ``"composite"`` when weights were given)."""

    entries: dict[str, CeilingEntry] = field(default_factory=dict)
    annotators: int = 0
    pairs: int = 0
    min_pairs: int = MIN_PAIRS

    def to_dict(self) -> dict:
        return {"concepts": {k: v.to_dict() for k, v in self.entries.items()}, "annotators": self.annotators,
                "pairs": self.pairs, "min_pairs": self.min_pairs}


def loao(matrix: np.ndarray, min_pairs: int = MIN_PAIRS) -> CeilingEntry:
    """Leave-one-annotator-out rho / tau of an annotators x pairs matrix (NaN = not rated); x100."""
    rated = ~np.isnan(matrix)
    counts = rated.sum(axis=0)
    sums = np.where(rated, matrix, 0.0).sum(axis=0)
    usable = rated & (counts >= 2)[None, :]  # pairs the annotator rated that somebody else rated too
    with np.errstate(invalid="ignore", divide="ignore"):
        others = (sums[None, :] - np.where(rated, matrix, 0.0)) / (counts[None, :] - 1)
    k = usable.sum(axis=1)
    too_few = int(((k > 0) & (k < min_pairs)).sum())
    rows = np.flatnonzero(k >= min_pairs)
    rho, tau = masked_rows(matrix[rows], others[rows], usable[rows])
    defined = ~(np.isnan(rho) | np.isnan(tau))
    mean = (lambda v: float(np.mean(v)) * 100.0 if v.size else math.nan)
    return CeilingEntry(spearman=mean(rho[defined]), kendall=mean(tau[defined]), annotators=int(defined.sum()),
                        too_few=too_few, undefined=int((~defined).sum()))


def human_ceiling(ratings: list[Rating], concepts: list[str] | tuple[str, ...] = CONCEPT_KEYS,
                  weights: dict[str, float] | None = None, min_pairs: int = MIN_PAIRS,
                  with_alpha: bool = True) -> Ceiling:
    """LOAO ceiling per concept (and for the composite of ``weights``), with Krippendorff's alpha per concept."""
    needed = list(dict.fromkeys(list(concepts) + [c for c, w in (weights or {}).items() if w > 0]))
    matrices = {c: ratings_matrix(ratings, c) for c in needed}
    out = Ceiling(min_pairs=min_pairs, annotators=len({r.annotator for r in ratings}),
                  pairs=len({r.pair for r in ratings}))
    for c in concepts:
        entry = loao(matrices[c][0], min_pairs)
        alpha = krippendorff_alpha(matrices[c][0]) if with_alpha else None  # as `convis agreement` computes it
        out.entries[c] = CeilingEntry(**{**entry.to_dict(), "alpha": alpha})
    if weights:
        used = [c for c, w in weights.items() if w > 0]
        first = matrices[used[0]]
        if any(matrices[c][1] != first[1] or matrices[c][2] != first[2] for c in used):
            raise InputError("the raw ratings do not hold every weighted concept for the same (annotator, pair) "
                             "cells; the composite ceiling needs all of them")
        composite = sum(weights[c] * matrices[c][0] for c in used)
        out.entries[COMPOSITE] = loao(composite, min_pairs)
    return out
