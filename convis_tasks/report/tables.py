"""A small table model and its three renderings: Markdown (stdout), LaTeX (booktabs) and CSV (tidy, unrounded).

In LaTeX, per column, the best value among the model rows is bold and the second best underlined, as in the
paper. Values are compared as printed (rho with 1 decimal, tau with 2), so models that print the same share the
mark; reference rows (human ceiling, random choice) are never marked. A column may opt out (counts, p-values).
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass, field

from convis_tasks import safetext
from convis_tasks.scoring.bootstrap import Interval, PairedResult


@dataclass
class Column:
    """key: unique id (``main_action.spearman``); header: Markdown/CSV header; group / sub: the LaTeX two-line
    header (``Main Action`` over ``$\\rho$``); digits: decimals printed; mark: best/second marking."""

    key: str
    header: str
    digits: int = 1
    group: str = ""
    sub: str = ""
    mark: bool = True
    higher_is_better: bool = True


@dataclass
class Row:
    label: str
    values: dict = field(default_factory=dict)
    reference: bool = False  # human ceiling / random choice: shown below a rule, never marked


@dataclass
class Table:
    key: str
    title: str
    columns: list[Column]
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    first_header: str = "Model"


def _missing(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def fmt(value, digits: int) -> str:
    """A cell as text: numbers with ``digits`` decimals, intervals as ``est [lo, hi]``, '-' when undefined."""
    if _missing(value):
        return "-"
    if isinstance(value, Interval):
        if _missing(value.lo):
            return f"{fmt(value.estimate, digits)} [-]"
        return f"{value.estimate:.{digits}f} [{value.lo:.{digits}f}, {value.hi:.{digits}f}]"
    if isinstance(value, PairedResult):
        if _missing(value.lo):
            return f"{value.diff:+.{digits}f} [-]"
        return f"{value.diff:+.{digits}f} [{value.lo:+.{digits}f}, {value.hi:+.{digits}f}]"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _sortable(value) -> float | None:
    if isinstance(value, bool) or _missing(value):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    return None


def marks(table: Table) -> dict[tuple[int, str], str]:
    """(row index, column key) -> "best" | "second", comparing the printed values of the model rows."""
    out: dict[tuple[int, str], str] = {}
    for col in table.columns:
        if not col.mark:
            continue
        printed = {}
        for i, row in enumerate(table.rows):
            value = _sortable(row.values.get(col.key))
            if not row.reference and value is not None:
                printed[i] = round(value, col.digits)
        ranked = sorted(set(printed.values()), reverse=col.higher_is_better)
        for i, value in printed.items():
            if value == ranked[0]:
                out[(i, col.key)] = "best"
            elif len(ranked) > 1 and value == ranked[1]:
                out[(i, col.key)] = "second"
    return out


# --- Markdown ------------------------------------------------------------------------------------------------------

def _md_cell(text: str) -> str:
    """Our own text (numbers, headers): only the cell separator needs escaping."""
    return text.replace("|", "\\|")


def markdown_grid(header: list[str], rows: list[list[str]]) -> list[str]:
    """The one Markdown table renderer: a header, a rule (first column left-aligned, the others right-aligned) and
    the rows, cells as given (the caller made them safe)."""
    def line(cells: list[str]) -> str:
        return "|" + "|".join(f" {c} " if c else " " for c in cells) + "|"

    return [line(header), "|---|" + "---:|" * (len(header) - 1)] + [line(r) for r in rows]


def to_markdown(tables: list[Table]) -> str:
    parts = []
    for table in tables:
        lines = [f"### {table.title}", ""]
        if table.columns and table.rows:
            rows = []
            for row in table.rows:
                cells = [_md_cell(fmt(row.values.get(c.key), c.digits)) for c in table.columns]
                label = f"*{safetext.markdown(row.label)}*" if row.reference else safetext.markdown(row.label)
                rows.append([label] + cells)
            lines += markdown_grid([table.first_header] + [c.header for c in table.columns], rows)
        for note in table.notes:  # notes quote model labels: untrusted
            lines.append("")
            lines.append(f"_Note: {safetext.markdown(note)}_")
        parts.append("\n".join(lines))
    return "\n\n".join(parts) + "\n"


# --- LaTeX ---------------------------------------------------------------------------------------------------------

def latex_escape(text: str) -> str:
    return safetext.latex(text)


def _latex_number(text: str) -> str:
    return text.replace("-", "$-$") if text != "-" else text


def _latex_value(value, digits: int) -> str:
    text = fmt(value, digits)
    if isinstance(value, (Interval, PairedResult)):
        est, _, rest = text.partition(" ")
        return _latex_number(est) + (r" {\scriptsize " + _latex_number(rest) + "}" if rest else "")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return _latex_number(text)
    return latex_escape(text)


def to_latex(tables: list[Table]) -> str:
    """One ``table`` environment per table (needs ``\\usepackage{booktabs}``)."""
    parts = []
    for table in tables:
        if not table.columns or not table.rows:
            continue
        marked = marks(table)
        cols = table.columns
        lines = [r"\begin{table}[t]", r"\centering", r"\small",
                 r"\caption{" + latex_escape(table.title) + "}",
                 r"\begin{tabular}{l" + "r" * len(cols) + "}", r"\toprule"]
        grouped = any(c.group for c in cols)
        if grouped:
            spans: list[tuple[str, int, int]] = []  # (group, first column index, count)
            for i, col in enumerate(cols, start=2):
                if spans and spans[-1][0] == col.group and col.group:
                    spans[-1] = (spans[-1][0], spans[-1][1], spans[-1][2] + 1)
                else:
                    spans.append((col.group, i, 1))
            head = [""]
            rules = []
            for group, start, count in spans:
                head.append(r"\multicolumn{" + str(count) + "}{c}{" + latex_escape(group) + "}" if count > 1
                            else latex_escape(group))
                if group:
                    rules.append(r"\cmidrule(lr){" + f"{start}-{start + count - 1}" + "}")
            lines.append(" & ".join(head) + r" \\")
            if rules:
                lines.append(" ".join(rules))
        subs = [c.sub or latex_escape(c.header) for c in cols]
        lines.append(" & ".join([latex_escape(table.first_header)] + subs) + r" \\")
        lines.append(r"\midrule")
        ordered = [i for i, r in enumerate(table.rows) if not r.reference]
        reference = [i for i, r in enumerate(table.rows) if r.reference]
        for block_index, block in enumerate((ordered, reference)):
            if block_index == 1 and block and ordered:
                lines.append(r"\midrule")
            for i in block:
                row = table.rows[i]
                cells = [latex_escape(row.label) if not row.reference else r"\textit{" + latex_escape(row.label) + "}"]
                for col in cols:
                    text = _latex_value(row.values.get(col.key), col.digits)
                    mark = marked.get((i, col.key))
                    if mark == "best":
                        text = r"\textbf{" + text + "}"
                    elif mark == "second":
                        text = r"\underline{" + text + "}"
                    cells.append(text)
                lines.append(" & ".join(cells) + r" \\")
        lines += [r"\bottomrule", r"\end{tabular}"]
        for note in table.notes:
            lines.append(r"\par\smallskip{\footnotesize " + latex_escape(note) + "}")
        lines.append(r"\end{table}")
        parts.append("\n".join(lines))
    return "% generated by `convis report`; needs \\usepackage{booktabs}\n" + "\n\n".join(parts) + "\n"


# --- CSV -----------------------------------------------------------------------------------------------------------

CSV_FIELDS = ("table", "row", "column", "value")


def _csv_value(value):
    if _missing(value):
        return ""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return repr(value) if isinstance(value, float) else value
    return safetext.csv_cell(value)  # text values ("3-5" pair counts) are cells a spreadsheet must not run


def to_csv(tables: list[Table]) -> str:
    """Tidy CSV, one line per (table, row, column) with the unrounded value; an interval cell gives
    ``<column>.estimate`` / ``.lo`` / ``.hi`` lines, a paired test ``.diff`` / ``.lo`` / ``.hi``."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_FIELDS)
    for table in tables:
        for row in table.rows:
            label = safetext.csv_cell(row.label)
            for col in table.columns:
                value = row.values.get(col.key)
                if isinstance(value, Interval):
                    for part in ("estimate", "lo", "hi"):
                        writer.writerow((table.key, label, f"{col.key}.{part}", _csv_value(getattr(value, part))))
                elif isinstance(value, PairedResult):
                    for part in ("diff", "lo", "hi"):
                        writer.writerow((table.key, label, f"{col.key}.{part}", _csv_value(getattr(value, part))))
                elif value is not None:
                    writer.writerow((table.key, label, col.key, _csv_value(value)))
        for note in table.notes:  # the notes (small samples, partial coverage, ...) as rows of column "note"
            writer.writerow((table.key, "", "note", safetext.csv_cell(note)))
    return buffer.getvalue()
