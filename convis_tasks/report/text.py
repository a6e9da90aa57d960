"""The Markdown tables of ``convis correlate``, ``convis retrieval`` and ``convis run``: one row per concept."""

from __future__ import annotations

import math

from convis_tasks.concepts import get_concept
from convis_tasks.safetext import terminal
from convis_tasks.reading.inputs import load_path
from convis_tasks.reading.published import DataIdentity, RetrievalIdentity
from convis_tasks.scoring.evaluate import CONCEPT_FREE, GLOBAL_KEY
from convis_tasks.scoring.parsing import AMBIGUOUS, parse_answer
from convis_tasks.scoring import samplesize
from convis_tasks.report.tables import markdown_grid

TABLE_DIGITS = 2  # rho and tau alike
RETRIEVAL_COLUMNS = ("r@1", "p@1", "f1@1", "r@1_bottom", "p@1_bottom", "f1@1_bottom", "kendall", "ndcg")
SMALL_MARK = "*"  # beside n (anchors) of a row whose sample is small; the footnote says what it means


def _fmt(value: float, digits: int) -> str:
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"


def _title(key: str, r: dict) -> str:
    return get_concept(key).title + (" (concept-free answers)" if r.get("answers") == CONCEPT_FREE else "")


def _size(r: dict, key: str) -> str:
    return f"{r[key]}{SMALL_MARK}" if r.get("warning") else str(r[key])


def _unparsed_note(title: str, r: dict, what: str) -> str:
    return (f"Note: {title}: all {r['unparsed']} answers unparsed, so {what} (docs/parsing.md; `convis inspect` "
            "shows the answers)")


def _footnotes(rows: list[dict], unit: str, notes: list[str]) -> list[str]:
    """The lines under a table: what the small-sample mark means (once), then the notes. The warnings themselves
    are said once on stderr (``convis: warning: ...``), not repeated here."""
    lines = [f"\n{SMALL_MARK} fewer than {samplesize.min_pairs()} {unit}: not a reliable estimate"] \
        if any(r.get("warning") for r in rows) else []
    return lines + [f"\n{terminal(n)}" for n in notes]


def _correlation_rows(results: dict[str, dict], rows: list[list[str]], notes: list[str], digits: int) -> None:
    for key, r in results.items():
        title = _title(key, r)
        unparsed = f"{r['unparsed']} (all)" if r.get("all_unparsed") else str(r["unparsed"])
        rows.append([title, _fmt(r["spearman"], digits), _fmt(r["kendall"], digits), _size(r, "n"), unparsed])
        if r.get("all_unparsed"):
            notes.append(_unparsed_note(title, r, "every pair counts as the neutral 3.0 and the correlation is "
                                                  "undefined"))


def data_line(data: DataIdentity | RetrievalIdentity | None) -> list[str]:
    """The line under a table that says which data it scored (:mod:`convis_tasks.reading.published`)."""
    return [] if data is None else [f"\nData: {terminal(data.label())}"]


def correlation_table(results: dict[str, dict], digits: int = TABLE_DIGITS, data: DataIdentity | None = None) -> str:
    """A Markdown table of rho/tau (x100, both with ``digits`` decimals), n and unparsed per concept.

    Rows of concept-free answers say so; those of an input that also has concept answers form a second table.
    A small sample marks its n (one footnote says what the mark means); a row whose answers are all unparsed says
    so in its unparsed cell and in a note; then the identity of the data scored (``data``, when given)."""
    head = ["concept", "rho", "tau", "n", "unparsed"]
    rows: list[list[str]] = []
    notes: list[str] = []
    own = {k: v for k, v in results.items() if k != GLOBAL_KEY}
    _correlation_rows(own, rows, notes, digits)
    lines = markdown_grid(head, rows)
    shared = results.get(GLOBAL_KEY) or {}
    if shared:
        rows = []
        _correlation_rows(shared, rows, notes, digits)
        lines += ["", "Concept-free answers (convis_global), correlated with each concept:", ""]
        lines += markdown_grid(head, rows)
    lines += _footnotes(list(own.values()) + list(shared.values()), "pairs", notes) + data_line(data)
    return "\n".join(lines)


def _retrieval_rows(results: dict[str, dict], rows: list[list[str]], notes: list[str]) -> None:
    for key, r in results.items():
        title = _title(key, r)
        rows.append([title] + [_fmt(r[c], 1) for c in RETRIEVAL_COLUMNS] + [_size(r, "anchors")])
        rnd = r["random"]
        rows.append([f"{get_concept(key).title} (random choice)", _fmt(rnd["r@1"], 1), _fmt(rnd["p@1"], 1),
                     _fmt(rnd["f1@1"], 1)] + [""] * (len(RETRIEVAL_COLUMNS) - 3) + [_size(r, "anchors")])
        if r.get("all_unparsed"):
            notes.append(_unparsed_note(title, r, "every candidate counts as the neutral 3.0 and they all tie"))


def retrieval_table(results: dict[str, dict], data: RetrievalIdentity | None = None) -> str:
    """Markdown table: the model's row and the random-choice row per concept (marks and notes as
    :func:`correlation_table`); then the identity of the retrieval sets scored (``data``, when given)."""
    head = ["concept", *RETRIEVAL_COLUMNS, "anchors"]
    rows: list[list[str]] = []
    notes: list[str] = []
    own = {k: v for k, v in results.items() if k != GLOBAL_KEY}
    _retrieval_rows(own, rows, notes)
    lines = markdown_grid(head, rows)
    shared = results.get(GLOBAL_KEY) or {}
    if shared:
        rows = []
        _retrieval_rows(shared, rows, notes)
        lines += ["", "Concept-free scores, against each concept's rankings:", ""] + markdown_grid(head, rows)
    lines += _footnotes(list(own.values()) + list(shared.values()), "complete anchors", notes) + data_line(data)
    return "\n".join(lines)


def ambiguous_note(predictions_path: str) -> str:
    """How many unparsed answers the parser calls ambiguous, per concept, as a line under the correlation table;
    '' for inputs without answer texts or without unparsed answers. The reasons are recomputed from the logged answer texts
    (:func:`convis_tasks.scoring.parsing.parse_answer`)."""
    predictions = load_path(predictions_path).predictions
    if predictions is None or not predictions.answers:
        return ""
    ambiguous, unparsed = {}, 0
    for concept, texts in predictions.answers.items():
        missing = [texts[k] for k, v in predictions.scores[concept].items() if v is None and k in texts]
        unparsed += len(missing)
        ambiguous[concept or CONCEPT_FREE] = sum(parse_answer(t).reason == AMBIGUOUS for t in missing)
    if not unparsed:
        return ""  # nothing unparsed: nothing to say
    return (f"Note: {sum(ambiguous.values())} of the {unparsed} unparsed answers are ambiguous, with two values "
            f"that could be the answer (docs/parsing.md): {', '.join(f'{c} {n}' for c, n in ambiguous.items())}")
