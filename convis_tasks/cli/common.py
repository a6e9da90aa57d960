"""What every ``convis`` command shares at its edge: messages, argument types, and the one error -> exit-code map.

Exit codes (:mod:`convis_tasks.errors`): 0 success; 1 a submission failed validation or a run failed; 2 a usage or
input error (``convis: error: ...``, the last line printed); 3 an internal error (a bug: the traceback, then
``convis: internal error: ...`` last); 130 interrupted. User mistakes never end in a traceback.

Nothing here imports torch or lmms-eval (nor numpy).
"""

from __future__ import annotations

import argparse
import difflib
import importlib
import sys
import traceback

from convis_tasks.errors import EXIT_ERROR, EXIT_INTERNAL, EXIT_INTERRUPTED, ConvisError
from convis_tasks.concepts import CONCEPTS, CONCEPT_KEYS, canonical_concept
from convis_tasks.console import package_warnings, say
from convis_tasks.safetext import terminal


# --- concept arguments ------------------------------------------------------------------------------------------------

def _spellings() -> dict[str, str]:
    out = {}
    for c in CONCEPTS:
        for name in (c.key, c.gt_key, c.folder, c.title.lower()):
            out[name.lower()] = c.key
    return out


def suggest_concept(name: str) -> str:
    """The error for an unknown concept name, with the closest known names."""
    spellings = _spellings()
    close = difflib.get_close_matches(name.strip().lower(), list(spellings), n=3, cutoff=0.6)
    keys = list(dict.fromkeys(spellings[c] for c in close))
    hint = f"; did you mean {' or '.join(keys)}?" if keys else ""
    return f"unknown concept {terminal(name)!r}{hint} (concepts: {', '.join(CONCEPT_KEYS)}, or all)"


def concept_spec(extra: tuple[str, ...] = ()):
    """An argparse ``type`` for ``--concept``: ``all``, a name (any spelling) or a comma list; unknown names are a
    usage error with suggestions. Returns the spec unchanged (the commands parse it)."""

    def check(spec: str) -> str:
        if spec.strip().lower() in ("all",) + extra:
            return spec
        parts = [p for p in spec.split(",") if p.strip()]
        if not parts:
            raise argparse.ArgumentTypeError("empty concept list")
        for part in parts:
            try:
                canonical_concept(part)
            except ValueError:
                raise argparse.ArgumentTypeError(suggest_concept(part)) from None
        return spec

    check.__name__ = "concept"
    return check


def counting_number(minimum: int):
    """An argparse ``type``: an integer >= ``minimum``, else a usage error naming the bound."""

    def check(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{terminal(text)!r} is not a whole number") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"{value} is below {minimum}")
        return value

    check.__name__ = "number"
    return check


def int_list(text: str) -> list[int]:
    """An argparse ``type`` for comma lists of positive integers (``--frames 4,8,16``)."""
    values = [counting_number(1)(part.strip()) for part in text.split(",") if part.strip()]
    if not values:
        raise argparse.ArgumentTypeError("expected a comma list of whole numbers, e.g. 4,8,16")
    return values


# --- running a command ------------------------------------------------------------------------------------------------

def run_command(func, args) -> int:
    """Run a subcommand handler; every failure ends with one actionable line last and a non-zero status. The
    package's own Python warnings are said as ``convis: warning: ...`` lines, each once (:mod:`convis_tasks.console`)."""
    try:
        with package_warnings():
            return func(args)
    except KeyboardInterrupt:
        say("interrupted")
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # `convis ... | head`: the reader left; nothing to say
        try:
            sys.stdout = open("/dev/null", "w")  # noqa: SIM115 - keeps Python from failing again at exit
        except OSError:
            pass
        return EXIT_ERROR
    except ConvisError as exc:  # the package's errors carry their exit status
        say(f"error: {exc}")
        return exc.exit_code
    except OSError as exc:  # the file system's answer about a path the user gave
        say(f"error: {exc}")
        return EXIT_ERROR
    except Exception as exc:  # a bug: show where, then the line to act on
        traceback.print_exc()
        say(f"internal error: {type(exc).__name__}: {exc} (this is a bug in convis; please report it with the "
            "traceback above)")
        return EXIT_INTERNAL


def lazy(target: str):
    """The handler ``"module:function"``, imported when its command runs: registering the commands imports no
    numpy, scipy, torch or lmms-eval, so ``convis --help`` and ``convis path`` stay instant."""
    module, _, name = target.partition(":")

    def run(args: argparse.Namespace) -> int:
        return getattr(importlib.import_module(module), name)(args)

    run.__name__ = name
    return run
