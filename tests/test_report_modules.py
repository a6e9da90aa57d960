"""report/ has one-way dependencies: no import cycle (counting imports inside functions too), and every module
imports on its own, without torch or lmms-eval."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import convis_tasks

PACKAGE = Path(convis_tasks.__file__).resolve().parent
REPORT = PACKAGE / "report"
MODULES = sorted(p.stem for p in REPORT.glob("*.py") if p.stem != "__init__")


def sibling_imports(module: str) -> set[str]:
    """The report modules that ``module`` imports anywhere in its source (top level or inside functions)."""
    tree = ast.parse((REPORT / f"{module}.py").read_text())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level == 1:  # from .x import y / from . import x
                names = [node.module] if node.module else [a.name for a in node.names]
                found.update(n.split(".")[0] for n in names)
            elif node.module and node.module.startswith("convis_tasks.report."):
                found.add(node.module.split(".")[2])
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("convis_tasks.report."):
                    found.add(alias.name.split(".")[2])
    return found & set(MODULES)


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """A cycle of ``graph`` as a path (first node repeated at the end), or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state:
            found = visit(start)
            if found:
                return found
    return None


def test_the_cycle_finder_finds_a_cycle():
    assert find_cycle({"inputs": {"submission"}, "submission": {"inputs"}}) == ["inputs", "submission", "inputs"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None


def test_report_modules_import_each_other_one_way_only():
    graph = {m: sibling_imports(m) for m in MODULES}
    assert graph["submission"] >= {"inputs", "runs"} and "submission" not in graph["inputs"]
    assert find_cycle(graph) is None, find_cycle(graph)


def test_each_report_module_imports_alone_without_torch_or_lmms_eval():
    # one interpreter; before each module, every convis_tasks module is forgotten, so each import starts alone
    code = f"""
import importlib, sys
for module in {MODULES!r}:
    for name in [m for m in sys.modules if m == "convis_tasks" or m.startswith("convis_tasks.")]:
        del sys.modules[name]
    importlib.import_module("convis_tasks.report." + module)
    bad = [m for m in sys.modules if m.split(".")[0] in ("torch", "lmms_eval", "transformers")]
    assert not bad, (module, bad)
print(len({MODULES!r}))
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(len(MODULES)) and len(MODULES) >= 12
