"""PNG figures (matplotlib, headless). matplotlib is imported only when a figure is drawn.

* :func:`plot_bars` — rho per concept (and the mean) per model, grouped bars; optional bootstrap error bars and
  the human leave-one-annotator-out level.
* :func:`plot_frames` — rho against frames per video, one line per model label.
* :func:`plot_concept_matrix` — Spearman correlation between the concept columns of the human mean ratings.
* :func:`plot_score_distribution` — per concept, a 2D histogram of the model's parsed score against the human
  mean (unparsed answers are left out and counted in the panel title).

The data behind each figure comes from functions without matplotlib (``*_data``), which the tests check.
"""

from __future__ import annotations

import math
import warnings
from typing import Mapping

import numpy as np

from convis_tasks.reading.annotations import GroundTruth
from convis_tasks.concepts import CONCEPT_KEYS, get_concept
from convis_tasks.scoring.metrics import score_pairs
from convis_tasks import safetext
from convis_tasks.reading.inputs import ReportInput
from convis_tasks.scoring.unparsed import is_unparsed
from convis_tasks.errors import InputError
from convis_tasks.scoring.bootstrap import mean_resampled, resample_table


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


CONCEPT_FREE_SUFFIX = " (concept-free)"


def _tables(item: ReportInput, concepts: list[str]) -> dict[str, Mapping]:
    """The model's own (concept-conditioned) predictions for each concept it has."""
    scores = item.predictions.scores if item.predictions else {}
    return {c: scores[c] for c in concepts if c in scores}


def series(item: ReportInput, concepts: list[str]) -> list[tuple[str, dict[str, Mapping]]]:
    """What a figure draws for one input: its own answers under its label and, as a separate series labelled
    ``<label> (concept-free)``, its concept-free answers correlated with each concept. Concept-free answers are
    never drawn as a concept's own."""
    out = []
    own = _tables(item, concepts)
    if own:
        out.append((item.label, own))
    if item.global_scores is not None:
        out.append((item.label + CONCEPT_FREE_SUFFIX, {c: item.global_scores for c in concepts}))
    return out


def _text(value: object) -> str:
    return safetext.matplotlib_text(value)


def _rho(preds: Mapping, truth: GroundTruth, concept: str) -> float:
    with warnings.catch_warnings():  # undefined and small-sample cases are reported by sample_sizes()
        warnings.simplefilter("ignore")
        return score_pairs(preds, truth.by_concept(concept)).spearman


def sample_sizes(inputs: list[ReportInput], truth: GroundTruth, concepts: list[str]) -> list[tuple[str, str, int]]:
    """(series label, concept, pairs shared with the ground truth) for every series a figure would draw."""
    out = []
    for item in inputs:
        for label, tables in series(item, list(concepts)):
            for c, table in tables.items():
                out.append((label, c, len(set(table) & set(truth.by_concept(c)))))
    return out


# --- bars ------------------------------------------------------------------------------------------------------

def bars_data(inputs: list[ReportInput], truth: GroundTruth, concepts: list[str] = CONCEPT_KEYS) -> dict[str, dict]:
    """label -> concept (and ``mean`` when all concepts are there) -> rho x100."""
    out = {}
    for item in inputs:
        for label, tables in series(item, list(concepts)):
            values = {c: _rho(t, truth, c) for c, t in tables.items()}
            if len(concepts) > 1 and all(c in values for c in concepts):
                values["mean"] = float(np.mean([values[c] for c in concepts]))
            out[label] = values
    return out


def plot_bars(inputs: list[ReportInput], truth: GroundTruth, output: str, concepts: list[str] = CONCEPT_KEYS,
              bootstrap: int = 0, seed: int = 0, ceiling: Mapping[str, float] | None = None,
              title: str | None = None) -> str:
    """Grouped bars of rho per concept per model; ``bootstrap`` > 0 adds 95% percentile error bars; ``ceiling``
    (concept -> rho) draws the human level as a dashed segment over each group."""
    data = bars_data(inputs, truth, concepts)
    if not data:
        raise InputError("no input has predictions for the requested concepts")
    groups = list(concepts) + (["mean"] if any("mean" in v for v in data.values()) else [])
    names = [get_concept(c).title for c in concepts] + (["Mean"] if "mean" in groups else [])
    plt = _pyplot()
    n_models = len(data)
    width = 0.8 / n_models
    fig, ax = plt.subplots(figsize=(max(7.0, 1.2 * len(groups) + 0.35 * len(groups) * n_models), 4.6))
    x = np.arange(len(groups))
    colours = plt.get_cmap("tab10" if n_models <= 10 else "tab20")
    for i, (label, values) in enumerate(data.items()):
        heights = np.array([values.get(g, np.nan) for g in groups], dtype=float)
        positions = x - 0.4 + width * (i + 0.5)
        errors = _error_bars(inputs, label, concepts, groups, heights, truth, bootstrap, seed) if bootstrap else None
        ax.bar(positions, np.nan_to_num(heights), width * 0.92, label=_text(label), color=colours(i % colours.N))
        if errors is not None:
            ax.errorbar(positions, heights, yerr=errors, fmt="none", ecolor="black", elinewidth=0.8, capsize=2)
        if n_models <= 4:
            for j, (px, h) in enumerate(zip(positions, heights)):
                if math.isnan(h):
                    continue
                top = h + (errors[1][j] if errors is not None and not math.isnan(errors[1][j]) else 0.0)
                bottom = h - (errors[0][j] if errors is not None and not math.isnan(errors[0][j]) else 0.0)
                ax.annotate(f"{h:.1f}", (px, top if h >= 0 else bottom), xytext=(0, 2 if h >= 0 else -9),
                            textcoords="offset points", ha="center", fontsize=7, zorder=4,
                            bbox={"boxstyle": "square,pad=0.05", "fc": "white", "ec": "none", "alpha": 0.7})
    if ceiling:
        for gx, g in zip(x, groups):
            level = ceiling.get(g)
            if level is not None and not math.isnan(level):
                ax.hlines(level, gx - 0.45, gx + 0.45, colors="black", linestyles="--", linewidth=1.2,
                          label="Human (LOAO)" if gx == x[0] else None)
    ax.axhline(0, color="grey", linewidth=0.6)
    ax.margins(y=0.08)
    ax.set_xticks(x, names)
    ax.set_ylabel("Spearman rho (x100)")
    ax.set_title(title or "Correlation with the human mean ratings, per concept")
    ax.grid(axis="y", alpha=0.3)
    ax.set_axisbelow(True)
    ax.legend(fontsize=8, ncol=min(4, n_models + (1 if ceiling else 0)), loc="upper center",
              bbox_to_anchor=(0.5, -0.09), frameon=False)
    fig.tight_layout()
    fig.savefig(output, dpi=150, bbox_inches="tight")
    plt.close(fig)
    return output


def _error_bars(inputs, label, concepts, groups, heights, truth, b, seed) -> np.ndarray:
    """(2 x groups) distances to the 95% percentile bounds of rho; NaN (no bar) where there is none."""

    tables = next(t for it in inputs for name, t in series(it, list(concepts)) if name == label)
    per_concept = {c: resample_table(tables[c], truth.by_concept(c), b, seed) for c in tables}
    errors = np.full((2, len(groups)), np.nan)
    for j, g in enumerate(groups):
        res = per_concept.get(g)[1] if g in per_concept else None
        if g == "mean" and len(per_concept) == len(concepts):
            res = mean_resampled([per_concept[c] for c in concepts])
        if res is None or math.isnan(heights[j]):
            continue
        ci = res.ci()["spearman"]
        errors[:, j] = (heights[j] - ci.lo, ci.hi - heights[j])
    return errors


# --- frames curve ----------------------------------------------------------------------------------------------

def frames_data(inputs: list[ReportInput], truth: GroundTruth, frames: list[int] | None = None,
                concept: str = "mean") -> dict[str, list[tuple[int, float]]]:
    """label -> sorted [(frames per video, rho x100)]; ``concept`` is a concept key or ``mean`` (over the five).

    Frames come from ``frames`` (one per input, in order) or else from each run's ``frames_per_video``.
    """
    if frames is not None and len(frames) != len(inputs):
        raise InputError(f"--frames gives {len(frames)} value(s) for {len(inputs)} input(s); give one per input")
    out: dict[str, list[tuple[int, float]]] = {}
    for i, item in enumerate(inputs):
        n = frames[i] if frames is not None else item.meta.get("frames_per_video")
        if n is None:
            raise InputError(f"{item.path}: the run does not say its frames per video; pass --frames (one value "
                             "per input, e.g. --frames 4,8,16)")
        concepts = list(CONCEPT_KEYS) if concept == "mean" else [concept]
        complete = [(label, t) for label, t in series(item, concepts) if all(c in t for c in concepts)]
        if not complete:
            own = _tables(item, concepts)
            raise InputError(f"{item.path}: lacks predictions for {', '.join(c for c in concepts if c not in own)}")
        for label, tables in complete:
            value = float(np.mean([_rho(tables[c], truth, c) for c in concepts]))
            out.setdefault(label, []).append((int(n), value))
    return {k: sorted(v) for k, v in out.items()}


def plot_frames(inputs: list[ReportInput], truth: GroundTruth, output: str, frames: list[int] | None = None,
                concept: str = "mean", title: str | None = None) -> str:
    data = frames_data(inputs, truth, frames, concept)
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    ticks = sorted({n for points in data.values() for n, _ in points})
    for label, points in data.items():
        xs, ys = zip(*points)
        ax.plot(xs, ys, marker="o", label=_text(label))
        for px, py in points:
            ax.annotate(f"{py:.1f}", (px, py), xytext=(0, 5), textcoords="offset points", ha="center", fontsize=7)
    if len(ticks) > 1 and ticks[0] > 0 and ticks[-1] / ticks[0] >= 4:
        ax.set_xscale("log", base=2)
    ax.set_xticks(ticks, [str(t) for t in ticks])
    ax.minorticks_off()
    ax.set_xlabel("frames per video")
    what = "mean over concepts" if concept == "mean" else get_concept(concept).title
    ax.set_ylabel(f"Spearman rho (x100), {what}")
    ax.set_title(title or "Correlation with humans vs frames per video")
    ax.grid(alpha=0.3)
    ax.margins(y=0.15)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(output, dpi=150, bbox_inches="tight")
    plt.close(fig)
    return output


# --- concept inter-correlation ---------------------------------------------------------------------------------

def concept_matrix_data(truth: GroundTruth, concepts: list[str] = CONCEPT_KEYS) -> np.ndarray:
    """Spearman rho between the concept columns of the human mean ratings (pairs with every concept)."""
    from scipy.stats import spearmanr

    rows = [[p.scores[c] for c in concepts] for p in truth.pairs if all(c in p.scores for c in concepts)]
    matrix = np.asarray(spearmanr(np.array(rows)).statistic, dtype=float)
    return matrix.reshape(len(concepts), len(concepts)) if matrix.ndim else np.array([[1.0, matrix], [matrix, 1.0]])


def plot_concept_matrix(truth: GroundTruth, output: str, concepts: list[str] = CONCEPT_KEYS,
                        title: str | None = None) -> str:
    matrix = concept_matrix_data(truth, concepts)
    names = [get_concept(c).title for c in concepts]
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.2, 5.2))
    image = ax.imshow(matrix, cmap="RdBu_r", vmin=-1, vmax=1)
    for i in range(len(concepts)):
        for j in range(len(concepts)):
            ax.text(j, i, f"{matrix[i, j]:.2f}", ha="center", va="center", fontsize=10,
                    color="white" if abs(matrix[i, j]) > 0.6 else "black")
    ax.set_xticks(range(len(concepts)), names, rotation=30, ha="right")
    ax.set_yticks(range(len(concepts)), names)
    bar = fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    bar.set_label("Spearman rho")
    n = sum(1 for p in truth.pairs if all(c in p.scores for c in concepts))
    ax.set_title(title or f"Inter-concept correlation of the human mean ratings ({n} pairs)",
                 fontsize=11)
    fig.tight_layout()
    fig.savefig(output, dpi=150, bbox_inches="tight")
    plt.close(fig)
    return output


# --- score distributions ---------------------------------------------------------------------------------------

HUMAN_EDGES = np.linspace(1.0, 5.0, 17)  # 0.25-wide bins of the human mean
MODEL_EDGES = np.arange(0.75, 5.26, 0.5)  # 0.5-wide bins centred on 1, 1.5, ..., 5


def distribution_data(item: ReportInput | Mapping, truth: GroundTruth,
                      concept: str) -> tuple[np.ndarray, np.ndarray, int]:
    """(human means, parsed model scores, unparsed count) over the pairs both sides have; ``item`` is an input
    (its own answers) or one concept's prediction table."""
    preds = (_tables(item, [concept]).get(concept) if isinstance(item, ReportInput) else item) or {}
    reference = truth.by_concept(concept)
    keys = sorted(set(preds) & set(reference))
    parsed = [k for k in keys if not is_unparsed(preds[k])]
    return (np.array([reference[k] for k in parsed]), np.array([float(preds[k]) for k in parsed]),
            len(keys) - len(parsed))


def plot_score_distribution(inputs: list[ReportInput], truth: GroundTruth, output: str,
                            concepts: list[str] = CONCEPT_KEYS, title: str | None = None) -> str:
    """One row per model, one panel per concept: counts of (human mean, model score)."""
    items = [(label, tables) for i in inputs for label, tables in series(i, list(concepts))]
    if not items:
        raise InputError("no input has predictions for the requested concepts")
    plt = _pyplot()
    from matplotlib.colors import LogNorm

    grids = {}
    vmax = 1
    for label, tables in items:
        for c in concepts:
            human, model, unparsed = distribution_data(tables.get(c, {}), truth, c)
            counts, _, _ = np.histogram2d(human, model, bins=[HUMAN_EDGES, MODEL_EDGES])
            grids[(label, c)] = (counts, human.size, unparsed)
            vmax = max(vmax, int(counts.max()) if counts.size else 1)
    fig, axes = plt.subplots(len(items), len(concepts), figsize=(2.9 * len(concepts) + 1.2, 2.7 * len(items) + 0.9),
                             squeeze=False, sharex=True, sharey=True)
    image = None
    for r, (label, tables) in enumerate(items):
        for k, c in enumerate(concepts):
            ax = axes[r][k]
            counts, n, unparsed = grids[(label, c)]
            masked = np.ma.masked_equal(counts.T, 0)
            image = ax.pcolormesh(HUMAN_EDGES, MODEL_EDGES, masked, cmap="viridis", norm=LogNorm(1, vmax))
            ax.plot([1, 5], [1, 5], color="grey", linewidth=0.7, linestyle=":")
            rho = _rho(tables[c], truth, c) if c in tables else math.nan
            stats = f"rho {rho:.1f}; {n} parsed" + (f", {unparsed} unparsed" if unparsed else "")
            ax.set_title(f"{get_concept(c).title}\n{stats}" if r == 0 else stats, fontsize=9)
            ax.set_xticks([1, 2, 3, 4, 5])
            ax.set_yticks([1, 2, 3, 4, 5])
            if r == len(items) - 1:
                ax.set_xlabel("human mean rating", fontsize=9)
            if k == 0:
                ax.set_ylabel(f"{_text(label)}\nmodel score", fontsize=9)
    fig.suptitle(title or "Parsed model scores against the human mean ratings (rho over all pairs, unparsed = 3)",
                 fontsize=11)
    fig.tight_layout(rect=(0, 0, 0.92, 1))
    cax = fig.add_axes((0.935, 0.15, 0.015, 0.7))
    bar = fig.colorbar(image, cax=cax)
    ticks = [t for t in (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000) if t <= vmax]
    bar.set_ticks(ticks, labels=[str(t) for t in ticks])
    bar.minorticks_off()
    bar.set_label("pairs (log scale)")
    fig.savefig(output, dpi=130, bbox_inches="tight")
    plt.close(fig)
    return output
