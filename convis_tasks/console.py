"""The one way the package speaks to a person: ``convis: <message>`` on stderr, made safe for the terminal."""

from __future__ import annotations

import sys

from convis_tasks.safetext import terminal


def say(message: str) -> None:
    """``convis: <message>`` on stderr, made safe for the terminal (it may quote names from input files)."""
    print(f"convis: {terminal(message)}", file=sys.stderr)


NOTE_PREFIX = "convis: note: "  # `convis run` shows such lines of the harness's output also with --quiet


def note(message: str) -> None:
    """``convis: note: <message>`` on stderr, flushed: a line ``convis run`` passes to the terminal from the harness
    it runs, also with ``--quiet`` (:class:`convis_tasks.harness.launch.Progress`)."""
    print(f"{NOTE_PREFIX}{terminal(message)}", file=sys.stderr, flush=True)
