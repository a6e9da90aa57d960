"""Task names: which tasks and groups a task folder defines, read through lmms-eval's own ``TaskManager``.

A ConViS task is recognised by its ``process_docs`` hook, which carries its kind and concept as data
(``convis_tasks.hooks``: ``hook.convis_task == ("pair", "location")``); a task with another hook is ``other``.
lmms-eval is imported when a folder is indexed, never at import.
"""

from __future__ import annotations

import difflib
import os
from dataclasses import dataclass, field

from convis_tasks import task_path
from convis_tasks.errors import RunError


@dataclass(frozen=True)
class TaskInfo:
    """A task or group of a task folder: ``kind`` is pair / retrieval / group / other."""

    name: str
    kind: str
    concept: str | None = None
    subtasks: tuple[str, ...] = field(default=())
    scoring: str = "greedy"  # "expected": loglikelihood requests over "1".."5" (output_type multiple_choice)


def task_index(folder: str | os.PathLike | None = None) -> dict[str, TaskInfo]:
    """Every task and group defined by the YAML files under ``folder`` (default: the ConViS task folder)."""
    from lmms_eval.tasks import TaskManager  # the harness: only when a folder is indexed

    manager = TaskManager(verbosity="ERROR", include_path=str(folder or task_path()), include_defaults=False)
    index: dict[str, TaskInfo] = {}
    for name in sorted(manager.all_tasks):
        entry = manager.task_index[name]
        if entry["type"] == "group":
            members = manager._get_config(name).get("task") or []
            index[name] = TaskInfo(name, "group", subtasks=tuple(str(t) for t in members if isinstance(t, str)))
        elif entry["type"] == "task":
            try:
                config = manager._get_config(name)
            except Exception:  # noqa: BLE001 - a YAML lmms-eval cannot load: not a ConViS task
                config = {}
            kind, concept = getattr(config.get("process_docs"), "convis_task", ("other", None))
            scoring = "expected" if config.get("output_type") == "multiple_choice" else "greedy"
            index[name] = TaskInfo(name, kind, concept, scoring=scoring)
    return index


def resolve_tasks(spec: str, index: dict[str, TaskInfo]) -> list[str]:
    """The canonical names of a comma list of task or group names, matched case-insensitively.

    Raises :class:`RunError` for a name that is not in ``index``, with the closest names as suggestions.
    """
    by_lower = {name.lower(): name for name in index}
    names, unknown = [], []
    for raw in (part.strip() for part in spec.split(",")):
        if not raw:
            continue
        name = by_lower.get(raw.lower())
        if name is None:
            unknown.append(raw)
        elif name not in names:
            names.append(name)
    if unknown:
        parts = []
        for raw in unknown:
            close = difflib.get_close_matches(raw.lower(), list(by_lower), n=3, cutoff=0.6)
            hint = f" (did you mean {' or '.join(by_lower[c] for c in close)}?)" if close else ""
            parts.append(f"{raw!r}{hint}")
        groups = sorted(n for n, t in index.items() if t.kind == "group")
        raise RunError(f"unknown task {', '.join(parts)}; the ConViS tasks are {', '.join(sorted(index))} "
                       f"(groups: {', '.join(groups)})")
    if not names:
        raise RunError("--tasks names no task")
    return names


def leaf_tasks(names: list[str], index: dict[str, TaskInfo]) -> list[TaskInfo]:
    """The tasks that will run, groups expanded, each once, in order."""
    out: list[TaskInfo] = []

    def add(name: str) -> None:
        info = index.get(name)
        if info is None:
            raise RunError(f"group member {name!r} is not defined in the task folder")
        if info.kind == "group":
            for sub in info.subtasks:
                add(sub)
        elif info not in out:
            out.append(info)

    for name in names:
        add(name)
    return out


def _option(argv: list[str], name: str) -> str | None:
    """The value of ``--name V`` or ``--name=V`` in ``argv`` (the last one wins), else None."""
    value = None
    for i, arg in enumerate(argv):
        if arg == name and i + 1 < len(argv):
            value = argv[i + 1]
        elif arg.startswith(name + "="):
            value = arg.split("=", 1)[1]
    return value


def task_hint(argv: list[str]) -> str | None:
    """What plain ``lmms-eval`` will not say about ConViS task names in ``argv``, or None.

    lmms-eval 0.7.3 answers only "Tasks not found" for a ConViS task without ``--include_path`` (its task index holds
    its own tree plus that folder) and for a misspelt one. This names the missing option, or the closest names.
    """
    tasks = _option(argv, "--tasks")
    names = [t.strip() for t in (tasks or "").split(",") if t.strip().lower().startswith("convis")]
    if not names:
        return None
    include = _option(argv, "--include_path")
    if include is None:
        return (f"the ConViS tasks ({', '.join(names)}) are not in lmms-eval's own task tree: add "
                f"--include_path {task_path()} (python -m convis_tasks path prints it), or use `convis run`, "
                "which adds it and checks the inputs first")
    try:
        index = task_index(include)
    except Exception:  # noqa: BLE001 - not our folder, or unreadable: lmms-eval will say what it says
        return None
    unknown = [n for n in names if n not in index]
    if not index or not unknown:
        return None
    by_lower = {k.lower(): k for k in index}
    cased = [f"{n} -> {by_lower[n.lower()]}" for n in unknown if n.lower() in by_lower]
    if cased:
        return f"lmms-eval matches task names exactly: {', '.join(cased)} (`convis run` accepts any case)"
    try:
        resolve_tasks(",".join(unknown), index)
    except RunError as exc:
        return str(exc)
    return None
