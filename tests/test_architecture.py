"""The package's layers, checked: no import cycle (imports inside functions counted), few imports inside functions,
small modules, light scoring/reading/report paths, nothing imports the CLI, a pure-data model manifest, and a sixth
concept that is one registry entry plus its task YAML."""

from __future__ import annotations

import ast
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import convis_tasks

PACKAGE = Path(convis_tasks.__file__).resolve().parent
ROOT = PACKAGE.parent


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _imports(path: Path) -> list[tuple[str, bool]]:
    """(imported package module, inside a function?) for every import of ``convis_tasks`` in ``path``."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    tree = ast.parse(path.read_text())
    inside: set[int] = set()
    for fn in ast.walk(tree):
        if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
            inside.update(id(n) for n in ast.walk(fn))
    out = []
    for node in ast.walk(tree):
        targets = []
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[:len(parts) - node.level + 1] + ([node.module] if node.module else []))
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in node.names]
        elif isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        for target in targets:
            if target.split(".")[0] == "convis_tasks":
                while target not in MODULES and "." in target:
                    target = target.rsplit(".", 1)[0]
                out.append((target, id(node) in inside))
    return out


GRAPH = {name: {t for t, _ in _imports(path) if t != name} for name, path in MODULES.items()}


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
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (found := visit(start)):
            return found
    return None


def test_the_cycle_finder_finds_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"a"}}) == ["a", "b", "a"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None


def test_no_import_cycle_counting_imports_inside_functions():
    assert len(MODULES) > 50
    assert find_cycle(GRAPH) is None, find_cycle(GRAPH)


def test_at_most_15_imports_of_the_package_inside_functions():
    inner = [(name, t) for name, path in MODULES.items() for t, inside in _imports(path) if inside]
    assert len(inner) <= 15, inner


def test_no_module_over_500_lines():
    long = {name: n for name, path in MODULES.items() if (n := len(path.read_text().splitlines())) > 500}
    assert not long, long


def test_nothing_imports_the_cli():
    users = sorted(n for n, deps in GRAPH.items() if any(d == "convis_tasks.cli" or d.startswith("convis_tasks.cli.")
                                                          for d in deps) and not n.startswith("convis_tasks.cli")
                   and n != "convis_tasks.__main__")
    assert not users


def test_the_model_manifest_is_pure_data():
    tree = ast.parse(MODULES["convis_tasks.model_wrappers.manifest"].read_text())
    imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)} | {
        a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    assert imported <= {"__future__", "dataclasses"}, imported


LIGHT = sorted(n for n in MODULES if (n + ".x").split(".")[1] in ("scoring", "reading", "report", "errors", "concepts",
                                                          "safetext", "console"))


def test_scoring_reading_and_report_import_alone_without_torch_lmms_eval_or_pyav():
    # one interpreter; before each module, every convis_tasks module is forgotten, so each import starts alone
    code = f"""
import importlib, sys
for module in {LIGHT!r}:
    for name in [m for m in sys.modules if m == "convis_tasks" or m.startswith("convis_tasks.")]:
        del sys.modules[name]
    importlib.import_module(module)
    bad = [m for m in sys.modules if m.split(".")[0] in ("torch", "lmms_eval", "transformers", "av", "decord")]
    assert not bad, (module, bad)
print(len({LIGHT!r}))
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(len(LIGHT)) and len(LIGHT) >= 30


# --- a sixth concept: one registry entry plus its task YAML ------------------------------------------------------

SIXTH = ('    Concept("point_of_view", "PointOfView", "PointOfView", "Point_Of_View", "Point of View", '
         '"Point Of View",\n            retrieval=False, required=False),\n')


def test_a_sixth_concept_is_one_registry_entry_plus_its_yaml(tmp_path):
    """Copy the package, add one Concept entry and its 3-line task YAML, and run the data path on a pair file
    that carries the new concept: the hook, the task index, the loader and `convis correlate` all know it."""
    pytest.importorskip("lmms_eval")
    copy = tmp_path / "src" / "convis_tasks"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__", "demo_data"))
    registry = copy / "concepts.py"
    text = registry.read_text()
    anchor = "CONCEPT_KEYS: tuple"
    head, tail = text.split(anchor, 1)
    head = head.rstrip().rstrip(")").rstrip() + "\n" + SIXTH + ")\n\n"
    registry.write_text(head + anchor + tail)
    (copy / "convis_point_of_view.yaml").write_text(
        "task: convis_point_of_view\ninclude: _template_yaml\n"
        "process_docs: !function convis_tasks.hooks.docs_point_of_view\n")
    demo = PACKAGE / "demo_data"
    data = tmp_path / "data"
    shutil.copytree(demo, data)
    rows = [json.loads(line) for line in (demo / "ConVIS.jsonl").read_text().splitlines() if line.strip()]
    for i, row in enumerate(rows):
        row["PointOfView"] = 1.0 + (i % 5)
    (data / "ConVIS.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    preds = [{"video1": r["video1"], "video2": r["video2"], "similarity": 1.0 + (i % 5)} for i, r in enumerate(rows)]
    (tmp_path / "Model_PointOfView_similarities.json").write_text(json.dumps(preds))
    code = f"""
import json
from convis_tasks import hooks
from convis_tasks.harness.tasks import task_index
from convis_tasks.reading.documents import load_documents
from convis_tasks.scoring.evaluate import run_correlate
assert hooks.docs_point_of_view.convis_task == ("pair", "point_of_view")
info = task_index()["convis_point_of_view"]
assert (info.kind, info.concept) == ("pair", "point_of_view"), info
docs = load_documents("point_of_view", {str(data)!r})
assert [d["gt"]["point_of_view"] for d in docs] == [1.0 + (i % 5) for i in range(len(docs))]
result = run_correlate({str(tmp_path / 'Model_PointOfView_similarities.json')!r}, {str(data / 'ConVIS.jsonl')!r},
                       notify=lambda m: None)
print(json.dumps(result))
"""
    env = {**__import__("os").environ, "PYTHONPATH": str(tmp_path / "src")}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert list(result) == ["point_of_view"] and result["point_of_view"]["spearman"] == pytest.approx(100.0)
