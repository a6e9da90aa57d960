"""Inter-annotator agreement of the raw ConViS ratings (Krippendorff's alpha, ordinal)."""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import krippendorff
import numpy as np

from convis_tasks.reading.annotations import AnnotationError, Rating, ratings_matrix
from convis_tasks.concepts import CONCEPT_KEYS
from convis_tasks.scoring.metrics import ConstantInputWarning, EmptyEvaluationError

RATING_SCALE = (1.0, 2.0, 3.0, 4.0, 5.0)


class AgreementError(AnnotationError):
    """Agreement cannot be computed from these ratings: no pair was rated by two annotators (alpha needs at least
    one), or a rating lies off the 1-5 scale. The message names the concept."""


def krippendorff_alpha(matrix: np.ndarray, level: str = "ordinal", concept: str = "") -> float:
    """Krippendorff's alpha of a raters x units matrix (NaN = missing) on the 1-5 rating scale.

    Raises :class:`AgreementError` when no unit has two ratings; returns NaN with a :class:`ConstantInputWarning`
    when every rating is equal (no disagreement can be expected: alpha is undefined).
    """
    label = f" of {concept}" if concept else ""
    matrix = np.asarray(matrix, dtype=float)
    if matrix.ndim != 2 or not np.any(np.sum(~np.isnan(matrix), axis=0) >= 2):
        raise AgreementError(f"agreement{label}: no pair was rated by two annotators, so alpha is undefined "
                             "(is this the raw per-annotator file?)")
    values = matrix[~np.isnan(matrix)]
    off = values[~np.isin(values, RATING_SCALE)]
    if off.size:
        raise AgreementError(f"agreement{label}: rating {off[0]:g} is not one of {RATING_SCALE}")
    if np.all(values == values[0]):
        warnings.warn(f"alpha{label} undefined: every rating is {values[0]:g}; reporting NaN", ConstantInputWarning,
                      stacklevel=2)
        return float("nan")
    return float(krippendorff.alpha(reliability_data=matrix, level_of_measurement=level,
                                    value_domain=list(RATING_SCALE)))


@dataclass(frozen=True)
class AgreementReport:
    alpha: dict[str, float]
    annotators: int
    pairs: int
    ratings_per_pair: float

    def to_dict(self) -> dict:
        return {
            "concepts": {c: {"alpha": a} for c, a in self.alpha.items()},
            "annotators": self.annotators,
            "pairs": self.pairs,
            "ratings_per_pair": self.ratings_per_pair,
        }


def agreement(ratings: list[Rating], concepts: tuple[str, ...] = CONCEPT_KEYS) -> AgreementReport:
    """Ordinal alpha per concept, plus annotator and pair counts and mean ratings per pair.

    Raises :class:`~convis_tasks.scoring.metrics.EmptyEvaluationError` for no ratings, :class:`AgreementError`
    when a concept has no pair rated twice, :class:`AnnotationError` when an annotator rated a pair twice with
    different values (the matrix would depend on record order).
    """
    if not ratings:
        raise EmptyEvaluationError("agreement: no ratings")
    alphas = {c: krippendorff_alpha(ratings_matrix(ratings, c)[0], concept=c) for c in concepts}
    annotators = {r.annotator for r in ratings}
    pairs = {r.pair for r in ratings}
    per_pair_records = {(r.annotator, r.pair) for r in ratings}
    return AgreementReport(
        alpha=alphas,
        annotators=len(annotators),
        pairs=len(pairs),
        ratings_per_pair=len(per_pair_records) / len(pairs) if pairs else 0.0,
    )
