"""The composite similarity of the benchmark (its Eq. 2): a weighted sum of the concept-conditioned scores.

Weights are non-negative, sum to 1 and default to 0 for a concept not named. Per pair,
composite prediction = sum_c w_c * pred_c and composite truth = sum_c w_c * gt_c; the two are correlated
(Spearman / Kendall) like any concept. An unparsed component counts as the neutral 3.0 before weighting
(``unparsed="drop"`` leaves such a pair out); a pair is used only when every weighted concept has a
prediction and a human score. Concept-free (global) predictions have one score per pair, so their composite
prediction is that score.
"""

from __future__ import annotations

import math

from convis_tasks.reading.annotations import GroundTruth, PairKey
from convis_tasks.concepts import CONCEPT_KEYS, canonical_concept
from convis_tasks.scoring.metrics import CorrelationResult, score_pairs
from convis_tasks.scoring.unparsed import counted, is_unparsed
from convis_tasks.reading.predictions import Predictions
from convis_tasks.errors import InputError

TOLERANCE = 1e-6


class WeightsError(InputError):
    """A ``--weights`` specification is malformed; the message says what is wrong and shows the syntax."""


SYNTAX = "expected e.g. --weights main_action=0.4,location=0.6 (non-negative, summing to 1)"


def parse_weights(spec: str | dict | None) -> dict[str, float] | None:
    """``"main_action=0.4,location=0.6"`` (any concept spelling) -> weights for all five concept keys."""
    if spec is None or (isinstance(spec, str) and not spec.strip()):
        return None
    items = spec.items() if isinstance(spec, dict) else []
    if isinstance(spec, str):
        items = []
        for part in spec.split(","):
            if not part.strip():
                continue
            if "=" not in part:
                raise WeightsError(f"weight {part.strip()!r} has no '='; {SYNTAX}")
            name, value = part.split("=", 1)
            items.append((name.strip(), value.strip()))
    weights = {c: 0.0 for c in CONCEPT_KEYS}
    seen: set[str] = set()
    for name, value in items:
        try:
            key = canonical_concept(name)
        except ValueError as exc:
            raise WeightsError(f"{exc}; {SYNTAX}") from None
        if key in seen:
            raise WeightsError(f"concept {key} is weighted twice; {SYNTAX}")
        seen.add(key)
        try:
            w = float(value)
        except (TypeError, ValueError):
            raise WeightsError(f"weight of {key} is not a number: {value!r}; {SYNTAX}") from None
        if not math.isfinite(w) or w < 0:
            raise WeightsError(f"weight of {key} must be a finite number >= 0, got {value!r}; {SYNTAX}")
        weights[key] = w
    total = sum(weights.values())
    if abs(total - 1.0) > TOLERANCE:
        raise WeightsError(f"weights sum to {total:g}, not 1; {SYNTAX}")
    return weights


def describe(weights: dict[str, float]) -> str:
    """``0.4 main_action + 0.6 location``."""
    return " + ".join(f"{w:g} {c}" for c, w in weights.items() if w > 0)


def composite_truth(truth: GroundTruth, weights: dict[str, float]) -> dict[PairKey, float]:
    """sum_c w_c * gt_c per pair that has every weighted concept."""
    used = [c for c, w in weights.items() if w > 0]
    return {p.key: sum(weights[c] * p.scores[c] for c in used) for p in truth.pairs
            if all(c in p.scores for c in used)}


def composite_predictions(predictions: Predictions, weights: dict[str, float],
                          unparsed: str = "neutral") -> tuple[dict[PairKey, float | None], set[PairKey]]:
    """(sum_c w_c * pred_c per pair, the pairs with an unparsed component).

    A pair with an unparsed component is scored with 3.0 for it (``neutral``) or mapped to ``None``
    (``drop``, so that :func:`score_pairs` leaves it out).
    """
    used = [c for c, w in weights.items() if w > 0]
    tables = [predictions.for_concept(c) for c in used]
    if any(t is None for t in tables):
        missing = [c for c, t in zip(used, tables) if t is None]
        raise WeightsError(f"{predictions.source} has no predictions for weighted concept(s) {', '.join(missing)}")
    keys = set(tables[0]).intersection(*tables[1:])
    out: dict[PairKey, float | None] = {}
    unparsed_keys: set[PairKey] = set()
    for key in keys:
        values = [t[key] for t in tables]
        bad = [is_unparsed(v) for v in values]
        if any(bad):
            unparsed_keys.add(key)
            if unparsed == "drop":
                out[key] = None
                continue
        out[key] = sum(w * counted(v) for w, v in zip((weights[c] for c in used), values))
    return out, unparsed_keys


def score_composite(predictions: Predictions, truth: GroundTruth, weights: dict[str, float],
                    unparsed: str = "neutral") -> CorrelationResult:
    """rho / tau (x100) of the composite prediction against the composite truth."""
    preds, unparsed_keys = composite_predictions(predictions, weights, unparsed)
    reference = composite_truth(truth, weights)
    result = score_pairs(preds, reference, unparsed="drop")
    return CorrelationResult(result.spearman, result.kendall, result.n, len(unparsed_keys & set(reference)))
