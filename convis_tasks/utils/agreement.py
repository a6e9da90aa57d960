"""Inter-annotator agreement of the raw ConViS ratings (Krippendorff's alpha, ordinal)."""

from __future__ import annotations

from dataclasses import dataclass

import krippendorff
import numpy as np

from .annotations import Rating, ratings_matrix
from .concepts import CONCEPT_KEYS

RATING_SCALE = (1.0, 2.0, 3.0, 4.0, 5.0)


def krippendorff_alpha(matrix: np.ndarray, level: str = "ordinal") -> float:
    """Krippendorff's alpha of a raters x units matrix (NaN = missing) on the 1-5 rating scale."""
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
    """Ordinal alpha per concept, plus annotator and pair counts and mean ratings per pair."""
    alphas = {c: krippendorff_alpha(ratings_matrix(ratings, c)[0]) for c in concepts}
    annotators = {r.annotator for r in ratings}
    pairs = {r.pair for r in ratings}
    per_pair_records = {(r.annotator, r.pair) for r in ratings}
    return AgreementReport(
        alpha=alphas,
        annotators=len(annotators),
        pairs=len(pairs),
        ratings_per_pair=len(per_pair_records) / len(pairs) if pairs else 0.0,
    )
