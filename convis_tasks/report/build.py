"""Compute the report: the benchmark's tables for several models side by side.

* **pairs**: rho / tau per concept, their mean over the concepts (only when the model has every requested concept,
  as the ``convis`` group), the composite (``--weights``), pairs scored and unparsed answers (summed over the
  concepts), plus the human-ceiling row when the ground truth is the raw ratings file.
* **global**: concept-free predictions (release baselines, the ``convis_global`` task), correlated with every concept.
* **ceiling**: leave-one-annotator-out rho / tau per concept beside Krippendorff's alpha (see :mod:`.ceiling`).
* **retrieval**: R@1 / P@1 / F1@1 per concept and their mean F1@1, with the random-choice row (``--rankings``).
* **bootstrap** / **paired** (``--bootstrap B``): 95% percentile intervals and paired tests (see :mod:`.bootstrap`).

The pair and retrieval tables end with a note saying which data they scored (``data``/``retrieval_data`` in the
JSON): the published ConViS-Bench, a subset of it, or other data (:mod:`convis_tasks.reading.published`).

All scoring goes through :func:`convis_tasks.scoring.metrics.score_pairs` and
:func:`convis_tasks.scoring.retrieval.evaluate_retrieval`, the functions ``convis correlate`` / ``convis retrieval``
and the lmms-eval aggregation use, so the numbers are the same.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Mapping

import numpy as np

from convis_tasks.reading.annotations import GroundTruth
from convis_tasks.concepts import CONCEPT_KEYS, RETRIEVAL_CONCEPT_KEYS, get_concept
from convis_tasks.scoring.metrics import score_pairs
from convis_tasks.scoring.samplesize import caught_messages, sample_size_warning
from convis_tasks.reading.predictions import Predictions
from convis_tasks.scoring.bootstrap import (DEFAULT_SEED, Resampled, aligned, mean_resampled, paired_from_samples,
                                            resample, resample_table)
from convis_tasks.scoring.ceiling import COMPOSITE, human_ceiling
from convis_tasks.scoring.composite import composite_predictions, composite_truth, describe, score_composite
from convis_tasks.reading.inputs import ReportInput
from convis_tasks.reading.published import compare_candidates, ranked_candidates, truth_identity
from convis_tasks.report.tables import Column, Row, Table
from convis_tasks.errors import InputError
from convis_tasks.scoring.retrieval import evaluate_retrieval

RHO, TAU = "$\\rho$", "$\\tau$"
CONCEPT_FREE_SUFFIX = " (concept-free)"  # the row of a model's concept-free retrieval scores
HUMAN_LABEL = "Human (leave-one-annotator-out)"
RANDOM_LABEL = "Random choice"


class ReportError(InputError):
    """The report cannot be built as asked (unknown label in --compare, nothing to report, ...)."""


@dataclass
class ReportOptions:
    concepts: list[str] = field(default_factory=lambda: list(CONCEPT_KEYS))
    weights: dict[str, float] | None = None
    unparsed: str = "neutral"
    ceiling: bool = True
    min_pairs: int = 3
    bootstrap: int = 0
    seed: int = DEFAULT_SEED
    compare: list[tuple[str, str]] | None = None


@dataclass
class Report:
    tables: list[Table]
    data: dict
    messages: list[str] = field(default_factory=list)  # warnings and notes for stderr


def _mean(values: list) -> float | None:
    if not values or any(v is None or (isinstance(v, float) and math.isnan(v)) for v in values):
        return None
    return float(np.mean(values))


def pair_columns(concepts: list[str], weights: dict | None, with_mean: bool) -> list[Column]:
    cols = []
    for c in concepts:
        title = get_concept(c).title
        cols += [Column(f"{c}.spearman", f"{title} rho", 1, title, RHO),
                 Column(f"{c}.kendall", f"{title} tau", 2, title, TAU)]
    if with_mean:
        cols += [Column("mean.spearman", "Mean rho", 1, "Mean", RHO), Column("mean.kendall", "Mean tau", 2, "Mean", TAU)]
    if weights:
        cols += [Column("composite.spearman", "Composite rho", 1, "Composite", RHO),
                 Column("composite.kendall", "Composite tau", 2, "Composite", TAU)]
    cols += [Column("n", "Pairs", 0, "", "Pairs", mark=False),
             Column("unparsed", "Unparsed", 0, "", "Unparsed", mark=False, higher_is_better=False)]
    return cols


class _Builder:
    def __init__(self, inputs: list[ReportInput], truth: GroundTruth, rankings: dict | None,
                 options: ReportOptions):
        self.inputs = inputs
        self.truth = truth
        self.rankings = rankings
        self.opt = options
        self.messages: list[str] = []
        self.data: dict = {}
        self.references = {c: truth.by_concept(c) for c in options.concepts}
        self.composite_reference = composite_truth(truth, options.weights) if options.weights else None
        self.cache: dict[tuple[str, str], tuple[list, Resampled]] = {}
        self.pending: list[str] = []  # small-sample warnings of the table being built

    # -- pair scoring --------------------------------------------------------------------------------------------
    def _score(self, label: str, concept: str, preds: Mapping) -> dict:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            result = score_pairs(preds, self.references[concept], unparsed=self.opt.unparsed).to_dict()
        self.messages += caught_messages(caught, f"{label}: {concept}")
        left_out = len(set(preds) ^ set(self.references[concept]))
        if left_out:
            self.messages.append(f"note: {label}: {concept}: {left_out} pair(s) present on one side only were left out")
        self._small_sample(result, result["n"], f"{label}: {concept}")
        return result

    def _small_sample(self, result: dict, n: int, what: str, unit: str = "pairs") -> None:
        """n = 0 is an error; a small n is a warning on stderr, in the row's data and as a table note."""
        small = sample_size_warning(n, what, unit)
        if small:
            result["warning"] = small
            self.messages.append(f"warning: {small}")
            self.pending.append(small)
            self.data.setdefault("warnings", []).append(small)

    def _flush_notes(self, table: Table) -> None:
        table.notes += [f"warning: {w}" for w in self.pending]
        self.pending = []

    def _row(self, label: str, tables: dict[str, Mapping], composite_source: Predictions | None) -> tuple[Row, dict]:
        values: dict = {}
        data: dict = {}
        for c, preds in tables.items():
            r = self._score(label, c, preds)
            data[c] = r
            values[f"{c}.spearman"], values[f"{c}.kendall"] = r["spearman"], r["kendall"]
        complete = all(c in tables for c in self.opt.concepts)
        if complete and len(self.opt.concepts) > 1:
            data["mean"] = {"spearman": _mean([data[c]["spearman"] for c in self.opt.concepts]),
                            "kendall": _mean([data[c]["kendall"] for c in self.opt.concepts])}
            values["mean.spearman"], values["mean.kendall"] = data["mean"]["spearman"], data["mean"]["kendall"]
        if self.opt.weights and composite_source is not None:
            needed = [c for c, w in self.opt.weights.items() if w > 0]
            if all(composite_source.for_concept(c) is not None for c in needed):
                with warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("always")
                    r = score_composite(composite_source, self.truth, self.opt.weights, self.opt.unparsed).to_dict()
                self.messages += caught_messages(caught, f"{label}: composite")
                self._small_sample(r, r["n"], f"{label}: composite")
                data["composite"] = r
                values["composite.spearman"], values["composite.kendall"] = r["spearman"], r["kendall"]
            else:
                self.messages.append(f"note: {label}: no composite (lacks a weighted concept)")
        ns = sorted({data[c]["n"] for c in tables})
        values["n"] = (ns[0] if len(ns) == 1 else f"{ns[0]}-{ns[-1]}") if ns else None
        values["unparsed"] = sum(data[c]["unparsed"] for c in tables) if tables else None
        return Row(label, values), data

    def pair_tables(self) -> list[Table]:
        concepts = self.opt.concepts
        with_mean = len(concepts) > 1
        pairs = Table("pairs", "Pair scoring: Spearman rho and Kendall tau (x100) with the human mean ratings",
                      pair_columns(concepts, self.opt.weights, with_mean))
        glob = Table("global", "Global (concept-free) similarity, correlated with every concept (x100)",
                     pair_columns(concepts, self.opt.weights, with_mean))
        self.data["pairs"], self.data["global"] = {}, {}
        for item in self.inputs:
            if item.predictions is None:
                continue
            own = {c: item.predictions.scores[c] for c in concepts if c in item.predictions.scores}
            if own:
                source = Predictions(item.predictions.source, {c: item.predictions.scores[c]
                                                               for c in item.concepts})
                row, data = self._row(item.label, own, source)
                pairs.rows.append(row)
                self.data["pairs"][item.label] = data
                self._flush_notes(pairs)
            if item.global_scores is not None:
                shared = {c: item.global_scores for c in concepts}
                source = Predictions(item.predictions.source, {None: item.global_scores})
                row, data = self._row(item.label, shared, source)
                glob.rows.append(row)
                self.data["global"][item.label] = data
                self._flush_notes(glob)
        for table in (pairs, glob):
            total = max((len(self.references[c]) for c in concepts), default=0)
            partial = [r.label for r in table.rows if r.values.get("n") != total]
            if partial:
                table.notes.append(f"scored on fewer than the {total} benchmark pairs (see Pairs): "
                                   f"{', '.join(partial)}; their correlations are not over the same pairs")
        if self.opt.weights:
            pairs.notes.append(f"composite = {describe(self.opt.weights)} (Eq. 2), on predictions and human means alike")
        pairs.notes.append("unparsed answers count as 3.0 (benchmark protocol)" if self.opt.unparsed == "neutral"
                           else "unparsed answers left out (--unparsed drop)")
        return [t for t in (pairs, glob) if t.rows]

    # -- human ceiling ------------------------------------------------------------------------------------------
    def ceiling(self, pairs: Table | None) -> Table | None:
        if not self.opt.ceiling:
            return None
        if not self.truth.ratings:
            self.messages.append(f"note: no human-ceiling row: {self.truth.path} holds mean ratings only; pass the raw "
                                 "ratings file (vicos.user_inputs.json) as --ground-truth")
            return None
        result = human_ceiling(self.truth.ratings, self.opt.concepts, self.opt.weights, self.opt.min_pairs)
        self.data["ceiling"] = result.to_dict()
        table = Table("ceiling", "Human ceiling: leave-one-annotator-out rho / tau (x100) and Krippendorff's alpha",
                      [Column("spearman", "LOAO rho", 1, sub=RHO, mark=False),
                       Column("kendall", "LOAO tau", 2, sub=TAU, mark=False),
                       Column("annotators", "Annotators", 0, mark=False),
                       Column("too_few", f"< {self.opt.min_pairs} pairs", 0, mark=False),
                       Column("undefined", "Undefined", 0, mark=False),
                       Column("alpha", "Krippendorff alpha", 3, sub=r"$\alpha$", mark=False)],
                      first_header="Concept")
        for key, entry in result.entries.items():
            title = "Composite" if key == COMPOSITE else get_concept(key).title
            table.rows.append(Row(title, entry.to_dict()))
        table.notes.append(
            f"each annotator's ratings vs the mean of the OTHER annotators on the pairs they rated (pairs with at least "
            f"one other rating); plain mean over the annotators with >= {self.opt.min_pairs} such pairs and a defined "
            f"correlation; {result.annotators} annotators, {result.pairs} pairs")
        if pairs is not None:
            values = {}
            for c in self.opt.concepts:
                values[f"{c}.spearman"] = result.entries[c].spearman
                values[f"{c}.kendall"] = result.entries[c].kendall
            if len(self.opt.concepts) > 1:
                values["mean.spearman"] = _mean([result.entries[c].spearman for c in self.opt.concepts])
                values["mean.kendall"] = _mean([result.entries[c].kendall for c in self.opt.concepts])
            if COMPOSITE in result.entries:
                values["composite.spearman"] = result.entries[COMPOSITE].spearman
                values["composite.kendall"] = result.entries[COMPOSITE].kendall
            pairs.rows.append(Row(HUMAN_LABEL, values, reference=True))
        return table

    # -- retrieval -----------------------------------------------------------------------------------------------
    def retrieval(self) -> Table | None:

        concepts = [c for c in self.opt.concepts if c in RETRIEVAL_CONCEPT_KEYS]
        with_retrieval = [i for i in self.inputs if i.retrieval]
        if not with_retrieval or not concepts:
            return None
        if self.rankings is None:
            self.messages.append("note: retrieval predictions found but no --rankings (human rankings); the retrieval "
                                 "table is skipped")
            return None
        ranked = [c for c in concepts if self.rankings.get(c)]
        cols = []
        for c in ranked:
            title = get_concept(c).title
            cols += [Column(f"{c}.r@1", f"{title} R@1", 1, title, "R@1"),
                     Column(f"{c}.p@1", f"{title} P@1", 1, title, "P@1"),
                     Column(f"{c}.f1@1", f"{title} F1@1", 1, title, "F1@1")]
        if len(ranked) > 1:
            cols.append(Column("mean.f1@1", "Mean F1@1", 1, "Mean", "F1@1"))
        table = Table("retrieval", "Concept-conditioned retrieval (x100)", cols)
        self.data["retrieval"] = {}
        self.pending = []
        rows = []  # (label, concept -> scores): a model's own scores; its concept-free scores as a row of their own
        for item in with_retrieval:
            own = {c: item.retrieval[c] for c in ranked if c in item.retrieval}
            if own:
                rows.append((item.label, own))
            if item.retrieval.get(None) is not None:
                rows.append((item.label + CONCEPT_FREE_SUFFIX, {c: item.retrieval[None] for c in ranked}))
        for label, tables in rows:
            values, data = {}, {}
            for c, scores in tables.items():
                result = evaluate_retrieval(self.rankings[c], scores)
                if result.excluded:
                    self.messages.append(f"warning: {label}: {c}: {len(result.excluded)} anchor(s) without "
                                         "complete predictions were left out")
                data[c] = result.to_dict()
                sample_size_warning(data[c]["anchors"], f"{label}: {c} (retrieval)", "complete anchors")  # 0: error
                for m in ("r@1", "p@1", "f1@1"):
                    values[f"{c}.{m}"] = data[c][m]
            if len(ranked) > 1 and all(c in data for c in ranked):
                values["mean.f1@1"] = _mean([data[c]["f1@1"] for c in ranked])
            table.rows.append(Row(label, values))
            self.data["retrieval"][label] = data
        randoms = {}
        for c in ranked:
            dummy = {a: {cand: 3.0 for cand in ranks} for a, ranks in self.rankings[c].items()}
            randoms[c] = evaluate_retrieval(self.rankings[c], dummy).random
        values = {f"{c}.{m}": randoms[c][m] for c in ranked for m in ("r@1", "p@1", "f1@1")}
        if len(ranked) > 1:
            values["mean.f1@1"] = _mean([randoms[c]["f1@1"] for c in ranked])
        table.rows.append(Row(RANDOM_LABEL, values, reference=True))
        self.data["retrieval_random"] = randoms
        table.notes.append("random choice: the expected score of picking one candidate uniformly at random, "
                           "computed exactly from the human ties")
        self._flush_notes(table)
        return table if len(table.rows) > 1 else None

    # -- bootstrap -----------------------------------------------------------------------------------------------
    def _resampled(self, label: str, tag: str, preds: Mapping, reference: Mapping) -> tuple[list, Resampled]:
        key = (label, tag)
        if key not in self.cache:
            self.cache[key] = resample_table(preds, reference, self.opt.bootstrap, self.opt.seed, self.opt.unparsed)
        return self.cache[key]

    _mean_resampled = staticmethod(mean_resampled)

    def _model_tables(self, item: ReportInput) -> dict[str, Mapping] | None:
        scores = item.predictions.scores if item.predictions else {}
        own = {c: scores[c] for c in self.opt.concepts if c in scores}
        return own or None

    def _composite_preds(self, tables: dict[str, Mapping]) -> Mapping | None:
        if not self.opt.weights:
            return None
        needed = [c for c, w in self.opt.weights.items() if w > 0]
        source = Predictions("", dict(tables))
        if any(source.for_concept(c) is None for c in needed):
            return None
        return composite_predictions(source, self.opt.weights, self.opt.unparsed)[0]

    def bootstrap(self) -> list[Table]:
        b = self.opt.bootstrap
        if b <= 0:
            return []
        concepts = self.opt.concepts
        cols = []
        for c in concepts:
            title = get_concept(c).title
            cols += [Column(f"{c}.spearman", f"{title} rho", 1, title, RHO, mark=False),
                     Column(f"{c}.kendall", f"{title} tau", 2, title, TAU, mark=False)]
        if len(concepts) > 1:
            cols += [Column("mean.spearman", "Mean rho", 1, "Mean", RHO, mark=False),
                     Column("mean.kendall", "Mean tau", 2, "Mean", TAU, mark=False)]
        if self.opt.weights:
            cols += [Column("composite.spearman", "Composite rho", 1, "Composite", RHO, mark=False),
                     Column("composite.kendall", "Composite tau", 2, "Composite", TAU, mark=False)]
        table = Table("bootstrap", f"95% bootstrap intervals (percentile, B = {b}, seed {self.opt.seed}, pairs "
                                   "resampled with replacement)", cols)
        self.data["bootstrap"] = {}
        rows: list[tuple[str, str, dict[str, Mapping]]] = []  # (row label, cache label, concept tables)
        for item in self.inputs:
            own = self._model_tables(item)
            if own:
                rows.append((item.label, item.label, own))
            if item.global_scores is not None:
                rows.append((f"{item.label} (global)", f"{item.label}\0global",
                             {c: item.global_scores for c in concepts}))
        for row_label, cache_label, tables in rows:
            values, data = {}, {}
            per_concept = []
            for c, preds in tables.items():
                keys, res = self._resampled(cache_label, c, preds, self.references[c])
                per_concept.append((keys, res))
                for m, ci in res.ci().items():
                    values[f"{c}.{m}"] = ci
                    data.setdefault(c, {})[m] = ci.to_dict()
            if len(concepts) > 1 and all(c in tables for c in concepts):
                mean = self._mean_resampled(per_concept)
                if mean is not None:
                    for m, ci in mean.ci().items():
                        values[f"mean.{m}"] = ci
                        data.setdefault("mean", {})[m] = ci.to_dict()
            comp = self._composite_preds(tables)
            if comp is not None:
                _, res = self._resampled(cache_label, COMPOSITE, comp, self.composite_reference)
                for m, ci in res.ci().items():
                    values[f"composite.{m}"] = ci
                    data.setdefault("composite", {})[m] = ci.to_dict()
            table.rows.append(Row(row_label, values))
            self.data["bootstrap"][row_label] = data
        table.notes.append("cells: estimate [2.5th, 97.5th percentile of the resampled statistic]")
        out = [table]
        paired = self.paired()
        if paired is not None:
            out.append(paired)
        return out

    def _comparisons(self, models: dict[str, dict[str, Mapping]]) -> list[tuple[str, str]]:
        if self.opt.compare:
            for a, b_ in self.opt.compare:
                for label in (a, b_):
                    if label not in models:
                        raise ReportError(f"--compare: no model labelled {label!r} with concept predictions; labels: "
                                          f"{', '.join(models) or 'none'}")
            return list(self.opt.compare)
        if len(models) < 2:
            return []
        pairs_data = self.data.get("pairs", {})

        def strength(label: str) -> float:
            d = pairs_data.get(label, {})
            value = d.get("mean", {}).get("spearman")
            if value is None:
                value = _mean([d[c]["spearman"] for c in self.opt.concepts if c in d]) if d else None
            return -math.inf if value is None else value

        best = max(models, key=strength)
        return [(best, other) for other in models if other != best]

    def paired(self) -> Table | None:
        models = {i.label: self._model_tables(i) for i in self.inputs if self._model_tables(i)}
        comparisons = self._comparisons(models)
        if not comparisons:
            return None
        concepts = self.opt.concepts
        tags = list(concepts) + (["mean"] if len(concepts) > 1 else []) + ([COMPOSITE] if self.opt.weights else [])
        cols = []
        for tag in tags:
            title = {"mean": "Mean", COMPOSITE: "Composite"}.get(tag) or get_concept(tag).title
            cols += [Column(f"{tag}.diff", f"{title} A-B [CI]", 1, title, r"$\Delta$ [CI]", mark=False),
                     Column(f"{tag}.p", f"{title} p", 3, title, "$p$", mark=False)]
        table = Table("paired", f"Paired bootstrap, A - B on the same resampled pairs (B = {self.opt.bootstrap}, "
                                f"seed {self.opt.seed}); one-sided p = share of resamples with A - B <= 0", cols,
                      first_header="A vs B")
        self.data["paired"] = {}
        for a, b_ in comparisons:
            ta, tb = models[a], models[b_]
            per_metric_rows = {m: {} for m in ("spearman", "kendall")}
            data: dict = {}
            per_concept: list[tuple[list, Resampled, Resampled]] = []
            for c in concepts:
                if c not in ta or c not in tb:
                    continue
                keys, (xa, xb), y = aligned([ta[c], tb[c]], self.references[c], self.opt.unparsed)
                ra = self._reuse(a, c, keys) or resample(xa, y, self.opt.bootstrap, self.opt.seed)
                rb = self._reuse(b_, c, keys) or resample(xb, y, self.opt.bootstrap, self.opt.seed)
                per_concept.append((keys, ra, rb))
                for m in per_metric_rows:
                    res = paired_from_samples(ra, rb, m)
                    per_metric_rows[m][f"{c}.diff"], per_metric_rows[m][f"{c}.p"] = res, res.p
                    data.setdefault(c, {})[m] = res.to_dict()
            if len(concepts) > 1 and len(per_concept) == len(concepts):
                ma = self._mean_resampled([(k, ra) for k, ra, _ in per_concept])
                mb = self._mean_resampled([(k, rb) for k, _, rb in per_concept])
                if ma is not None and mb is not None:
                    for m in per_metric_rows:
                        res = paired_from_samples(ma, mb, m)
                        per_metric_rows[m]["mean.diff"], per_metric_rows[m]["mean.p"] = res, res.p
                        data.setdefault("mean", {})[m] = res.to_dict()
            if self.opt.weights:
                ca, cb = self._composite_preds(ta), self._composite_preds(tb)
                if ca is not None and cb is not None:
                    keys, (xa, xb), y = aligned([ca, cb], self.composite_reference, "drop")
                    ra = self._reuse(a, COMPOSITE, keys) or resample(xa, y, self.opt.bootstrap, self.opt.seed)
                    rb = self._reuse(b_, COMPOSITE, keys) or resample(xb, y, self.opt.bootstrap, self.opt.seed)
                    for m in per_metric_rows:
                        res = paired_from_samples(ra, rb, m)
                        per_metric_rows[m][f"{COMPOSITE}.diff"], per_metric_rows[m][f"{COMPOSITE}.p"] = res, res.p
                        data.setdefault(COMPOSITE, {})[m] = res.to_dict()
            for m, symbol in (("spearman", "rho"), ("kendall", "tau")):
                table.rows.append(Row(f"{a} vs {b_} ({symbol})", per_metric_rows[m]))
            self.data["paired"][f"{a} vs {b_}"] = data
        table.notes.append("cells: observed A - B [2.5th, 97.5th percentile of the resampled differences]; p = 0 "
                           f"means below 1/{self.opt.bootstrap}")
        return table

    def _reuse(self, label: str, concept: str, keys: list) -> Resampled | None:
        cached = self.cache.get((label, concept))
        return cached[1] if cached is not None and cached[0] == keys else None


def build_report(inputs: list[ReportInput], truth: GroundTruth, rankings: dict | None = None,
                 options: ReportOptions | None = None) -> Report:
    """All tables for ``inputs`` (see the module docstring), with a JSON-able copy of every number."""
    options = options or ReportOptions()
    if not inputs:
        raise ReportError("no inputs to report on")
    builder = _Builder(inputs, truth, rankings, options)
    tables = builder.pair_tables()
    if tables:  # the pairs scored, by any model, for any concept
        keys = {p.key for p in truth.pairs}
        identity = truth_identity(truth, {k for i in inputs if i.predictions for s in i.predictions.scores.values()
                                          for k in s if k in keys})
        builder.data["data"] = identity.to_dict()
        for table in tables:
            table.notes.append(f"data: {identity.label()}")
    pairs = next((t for t in tables if t.key == "pairs"), None)
    ceiling = builder.ceiling(pairs)
    if ceiling is not None:
        tables.append(ceiling)
    retrieval = builder.retrieval()
    if retrieval is not None:
        anchors = {a for i in inputs if i.retrieval for by_anchor in i.retrieval.values() for a in by_anchor}
        sets = compare_candidates(ranked_candidates(rankings or {}, anchors), False)
        builder.data["retrieval_data"] = sets.to_dict()
        retrieval.notes.append(f"data: {sets.label()}")
        tables.append(retrieval)
    tables += builder.bootstrap()
    if not any(t.key in ("pairs", "global", "retrieval") for t in tables):
        raise ReportError("none of the inputs holds pair predictions for the requested concepts, nor retrieval "
                          "predictions with --rankings")
    return Report(tables, builder.data, builder.messages)
