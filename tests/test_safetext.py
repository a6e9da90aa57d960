"""safetext: untrusted names reach no terminal, Markdown, LaTeX, CSV, HTML or matplotlib unescaped."""

from __future__ import annotations

import csv
import io
import json

import pytest

from convis_tasks import safetext

HOSTILE = "\x1b[31mred\x1b[0m\r\nnext\x07\u202eevil\u200b\x9b2J"


def test_terminal_makes_every_control_and_invisible_format_character_visible():
    out = safetext.terminal(HOSTILE)
    assert out == "\\x1b[31mred\\x1b[0m\\r\\nnext\\x07\\u202eevil\\u200b\\x9b2J"
    assert out.isprintable() and out.isascii()
    assert safetext.terminal("LLaVA-OneVision 7B (ours)") == "LLaVA-OneVision 7B (ours)"  # plain text unchanged
    assert safetext.terminal("模型\u2028x") == "模型\\u2028x"  # printable non-ASCII stays, line separator does not
    lone = json.loads('"name\\ud800"')  # a lone surrogate, valid in JSON, cannot be written to a UTF-8 stream
    assert safetext.terminal(lone) == "name\\ud800"
    safetext.terminal(lone).encode("utf-8")


@pytest.mark.parametrize("name, expected", [
    ("<img src=x onerror=alert(1)>", "&lt;img src=x onerror=alert(1)&gt;"),
    ("a|b", "a\\|b"),
    ("[click](javascript:alert(1))", "\\[click\\](javascript:alert(1))"),
    ("`code` **bold** _em_", "\\`code\\` \\*\\*bold\\*\\* \\_em\\_"),
    ("InternVL2_5-8B", "InternVL2_5-8B"),  # an underscore inside a word cannot start emphasis
    ("A & B\\", "A &amp; B\\\\"),
    ("x\ny", "x\\\\ny"),  # the newline became the visible escape, whose backslash is then escaped
])
def test_markdown_escapes_html_links_code_emphasis_and_cell_breaks(name, expected):
    assert safetext.markdown(name) == expected


def test_latex_escapes_the_ten_specials_and_control_characters():
    assert safetext.latex(r"50% of $x_1$ & {y}~^#\ ") == (r"50\% of \$x\_1\$ \& \{y\}\textasciitilde{}"
                                                          r"\textasciicircum{}\#\textbackslash{} ")
    assert safetext.latex("a\x1bb") == r"a\textbackslash{}x1bb"


@pytest.mark.parametrize("name", ["=HYPERLINK(\"http://x\")", "+1+1", "-2+3", "@SUM(A1)", "\tx", "\rx"])
def test_csv_cells_that_a_spreadsheet_would_run_become_text(name):
    cell = safetext.csv_cell(name)
    assert cell.startswith("'") and cell.isprintable()
    buffer = io.StringIO()
    csv.writer(buffer).writerow([cell, 1.5])
    assert next(csv.reader(io.StringIO(buffer.getvalue())))[0] == cell  # survives a CSV round trip


def test_csv_plain_cells_unchanged():
    assert safetext.csv_cell("LLaVA-OneVision-7B") == "LLaVA-OneVision-7B"


def test_html_and_matplotlib():
    assert safetext.html('<a href="x">\'') == "&lt;a href=&quot;x&quot;&gt;&#x27;"
    assert safetext.matplotlib_text("cost $5 and $10\x1b") == r"cost \$5 and \$10\x1b"
