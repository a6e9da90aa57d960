"""The one way the package speaks to a person: ``convis: <message>`` on stderr, made safe for the terminal.

Warnings have one form and are said once: :func:`warn` prints ``convis: warning: <text>`` the first time a text is
warned and never again in the process (its one record of what was said is :data:`_SAID`), or within one command:
:func:`package_warnings`, the scope of every ``convis`` command (``cli.common.run_command``), starts with nothing
said and restores the record after, so a caller that runs several commands in one process hears each command's
warnings. :func:`say` routes a message that starts with ``warning: `` through :func:`warn`, so every caller that says
``say(f"warning: ...")`` is deduplicated. Within :func:`package_warnings` the package's own Python warnings
(``warnings.warn`` in scoring, video, harness) become such lines instead of Python's raw ``file:line: Category:``
output; warnings of other libraries are left to Python.
"""

from __future__ import annotations

import contextlib
import sys
import warnings
from pathlib import Path
from typing import Iterator

from convis_tasks.safetext import terminal

WARNING_PREFIX = "warning: "
PACKAGE_DIR = Path(__file__).resolve().parent
_SAID: set[str] = set()  # the warning texts already said by this process (each is said once)


def say(message: str) -> None:
    """``convis: <message>`` on stderr, made safe for the terminal (it may quote names from input files); a
    ``warning: ...`` message goes through :func:`warn` (said once per process)."""
    if message.startswith(WARNING_PREFIX):
        warn(message[len(WARNING_PREFIX):])
        return
    print(f"convis: {terminal(message)}", file=sys.stderr)


NOTE_PREFIX = "convis: note: "  # `convis run` shows such lines of the harness's output also with --quiet


def note(message: str) -> None:
    """``convis: note: <message>`` on stderr, flushed: a line ``convis run`` passes to the terminal from the harness
    it runs, also with ``--quiet`` (:class:`convis_tasks.harness.launch.Progress`)."""
    print(f"{NOTE_PREFIX}{terminal(message)}", file=sys.stderr, flush=True)


def warn(text: str) -> bool:
    """``convis: warning: <text>`` on stderr, the first time ``text`` is warned in this process; True when printed."""
    text = text.strip()
    if text.startswith(WARNING_PREFIX):  # "warning: warning: ..." never
        text = text[len(WARNING_PREFIX):]
    if text in _SAID:
        return False
    _SAID.add(text)
    print(f"convis: {WARNING_PREFIX}{terminal(text)}", file=sys.stderr)
    return True


def forget_warnings() -> None:
    """Forget which warnings were said (a test, or a long-lived caller that runs several commands)."""
    _SAID.clear()


def from_package(category: type, filename: str) -> bool:
    """A Python warning raised by this package: its category is defined here, or the code that warned is here."""
    if getattr(category, "__module__", "").startswith("convis_tasks"):
        return True
    try:
        return Path(filename).resolve().is_relative_to(PACKAGE_DIR)
    except (OSError, ValueError):
        return False


@contextlib.contextmanager
def package_warnings() -> Iterator[None]:
    """One command's scope: within the block, nothing said before counts, and the package's own Python warnings are
    said by :func:`warn` (each text once); every other warning is shown as Python would show it."""
    shown = warnings.showwarning
    said_before = set(_SAID)
    _SAID.clear()

    def show(message, category, filename, lineno, file=None, line=None):
        if from_package(category, filename):
            warn(str(message))
        else:
            shown(message, category, filename, lineno, file, line)

    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("always", module=r"convis_tasks(\.|$)")
            warnings.showwarning = show
            yield
    finally:
        _SAID.clear()
        _SAID.update(said_before)
