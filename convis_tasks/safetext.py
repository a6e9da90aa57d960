"""Make untrusted strings (model names, labels, answers, video names, file names) safe to print or write.

Every command that shows text it did not write itself goes through one of these:

* :func:`terminal` — one line for the terminal: control characters (C0, DEL, C1, so also ANSI escape sequences,
  which start with ESC), line and paragraph separators, invisible format characters (bidirectional overrides,
  zero-width characters), lone surrogates and unassigned code points are written as visible escapes (``\\x1b``,
  ``\\n``, ``\\u202e``).
* :func:`markdown` — a Markdown table cell or note: :func:`terminal`, then HTML special characters as entities
  (``<`` ``>`` ``&``) and the characters that make links, code, emphasis or table cells (``\\ ` * _ [ ] |``) escaped
  with a backslash (an underscore inside a word, ``InternVL2_5``, cannot start emphasis and stays).
* :func:`latex` — LaTeX text: :func:`terminal`, then the ten special characters escaped.
* :func:`csv_cell` — a CSV text cell: :func:`terminal`, and a cell that a spreadsheet would read as a formula
  (first character ``=``, ``+``, ``-``, ``@``, tab or carriage return) is prefixed with ``'`` (OWASP's advice).
  Numbers are not text cells: write them as numbers.
* :func:`html` — HTML text or attribute value: :func:`terminal`, then :func:`html.escape` with quotes.
* :func:`matplotlib_text` — a plot title, label or legend entry: :func:`terminal`, and ``$`` escaped so that a
  name never switches matplotlib into math mode.

The functions never drop characters: an escaped string still shows what was there.
"""

from __future__ import annotations

import html as _html
import unicodedata

_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape_char(ch: str) -> str:
    if ch in _NAMED:
        return _NAMED[ch]
    code = ord(ch)
    return f"\\x{code:02x}" if code < 0x100 else (f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}")


def _unsafe(ch: str) -> bool:
    # Cc: C0, DEL and C1 controls (ESC starts every ANSI sequence); Cf: bidi overrides, zero-width characters;
    # Zl / Zp: line and paragraph separators; Cs: lone surrogates (from JSON "\ud800"), which cannot even be
    # encoded for output; Cn: unassigned code points
    return unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp", "Cs", "Cn")


def terminal(value: object) -> str:
    """``str(value)`` as one printable line: control and invisible format characters become visible escapes."""
    text = str(value)
    if text.isprintable():  # fast path: nothing to escape
        return text
    return "".join(_escape_char(ch) if _unsafe(ch) else ch for ch in text)


_MARKDOWN = {"\\": "\\\\", "`": "\\`", "*": "\\*", "_": "\\_", "[": "\\[", "]": "\\]", "|": "\\|",
             "<": "&lt;", ">": "&gt;", "&": "&amp;"}


def markdown(value: object) -> str:
    """Text for a Markdown table cell or paragraph: no HTML, no link, no code span, no emphasis, no cell break.

    An underscore between two letters or digits (``InternVL2_5``) cannot start emphasis and is left as it is."""
    text = terminal(value)
    out = []
    for i, ch in enumerate(text):
        if ch == "_" and 0 < i < len(text) - 1 and text[i - 1].isalnum() and text[i + 1].isalnum():
            out.append(ch)
        else:
            out.append(_MARKDOWN.get(ch, ch))
    return "".join(out)


_LATEX = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
          "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}


def latex(value: object) -> str:
    """Text for LaTeX: the ten special characters escaped, control characters visible (``\\x1b`` -> literal)."""
    return "".join(_LATEX.get(ch, ch) for ch in terminal(value))


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: object) -> str:
    """A CSV text cell a spreadsheet shows as text, never runs as a formula (the csv module does the quoting)."""
    raw = str(value)
    text = terminal(raw)
    return "'" + text if raw.startswith(_FORMULA_START) else text


def html(value: object) -> str:
    """Text for HTML (element content or a quoted attribute value)."""
    return _html.escape(terminal(value), quote=True)


def matplotlib_text(value: object) -> str:
    """A title, axis label or legend entry drawn literally (``$`` would start mathtext)."""
    return terminal(value).replace("$", r"\$")
