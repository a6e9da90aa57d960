"""The one way the package speaks to a person: ``convis: <message>`` on stderr, made safe for the terminal."""

from __future__ import annotations

import sys

from convis_tasks.safetext import terminal


def say(message: str) -> None:
    """``convis: <message>`` on stderr, made safe for the terminal (it may quote names from input files)."""
    print(f"convis: {terminal(message)}", file=sys.stderr)
