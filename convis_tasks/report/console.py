"""What every ``convis`` command shares at its edge: exit codes, messages, strict JSON, concept arguments, and the
sample-size rules (nothing evaluated is an error; a small sample is a warning in every output format).

Exit codes: 0 success; 1 a submission failed validation; 2 a usage or input error (``convis: error: ...``, the
last line printed); 3 an internal error (a bug: the traceback, then ``convis: internal error: ...`` last);
130 interrupted. User mistakes never end in a traceback.

Nothing here imports torch or lmms-eval (nor numpy).
"""

from __future__ import annotations

import argparse
import difflib
import json
import math
import sys
import traceback
import warnings

from ..utils.concepts import CONCEPTS, CONCEPT_KEYS, canonical_concept
from ..utils.safetext import terminal

EXIT_OK, EXIT_INVALID, EXIT_ERROR, EXIT_INTERNAL, EXIT_INTERRUPTED = 0, 1, 2, 3, 130


# --- sample size ----------------------------------------------------------------------------------------------------
# utils.metrics defines these where the metrics live; this module falls back to the same names and meaning when
# run against a metrics module that does not (yet) have them.

class _EmptyEvaluationError(ValueError):
    """Nothing was evaluated (n = 0): no pair in common, or every answer left out."""


class _SmallSampleWarning(UserWarning):
    """Fewer pairs than ``min_pairs()``: the correlation is reported but is not a reliable number."""


_DEFAULT_MIN_PAIRS = 10


def _metrics_name(name: str, fallback):
    from ..utils import metrics  # numpy and scipy: imported only when a command scores something

    return getattr(metrics, name, fallback)


def empty_evaluation_error() -> type:
    """``utils.metrics.EmptyEvaluationError`` (a ValueError)."""
    return _metrics_name("EmptyEvaluationError", _EmptyEvaluationError)


def small_sample_warning() -> type:
    """``utils.metrics.SmallSampleWarning``."""
    return _metrics_name("SmallSampleWarning", _SmallSampleWarning)


def min_pairs() -> int:
    """``utils.metrics.MIN_PAIRS``: below it, a correlation carries a warning in every output format."""
    return int(_metrics_name("MIN_PAIRS", _DEFAULT_MIN_PAIRS))


def sample_size_warning(n: int, what: str, unit: str = "pairs") -> str | None:
    """The small-sample warning for ``n`` (None when n >= min_pairs()); n = 0 raises EmptyEvaluationError."""
    if n == 0:
        raise empty_evaluation_error()(f"{what}: nothing was evaluated (0 {unit}); check that the predictions "
                                       "and the ground truth name the same videos")
    minimum = min_pairs()
    if n < minimum:
        return f"{what}: only {n} {unit} (fewer than {minimum}); the correlation is not a reliable estimate"
    return None


def caught_messages(caught: list[warnings.WarningMessage], prefix: str) -> list[str]:
    """``warning: <prefix>: <message>`` for each caught warning, small-sample warnings left out (the callers state
    those themselves, once, in every output format)."""
    small = small_sample_warning()
    return [f"warning: {prefix}: {w.message}" for w in caught if not issubclass(w.category, small)]


# --- messages and JSON ------------------------------------------------------------------------------------------------

def say(message: str) -> None:
    """``convis: <message>`` on stderr, made safe for the terminal (it may quote names from input files)."""
    print(f"convis: {terminal(message)}", file=sys.stderr)


def json_ready(value):
    """Plain JSON values: NaN and infinities become null, tuples lists, keys strings, ``to_dict()`` objects dicts."""
    if isinstance(value, dict):
        return {str(k): json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_ready(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if hasattr(value, "to_dict"):
        return json_ready(value.to_dict())
    return value


def dumps(value, indent: int | None = None) -> str:
    """Strict JSON (RFC 8259): never ``NaN`` or ``Infinity``."""
    return json.dumps(json_ready(value), indent=indent, allow_nan=False)


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
    """Run a subcommand handler; every failure ends with one actionable line last and a non-zero status."""
    try:
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
    except (ValueError, OSError) as exc:  # the suite's input errors are ValueErrors; files: OSError
        say(f"error: {exc}")
        return EXIT_ERROR
    except Exception as exc:  # a bug: show where, then the line to act on
        traceback.print_exc()
        say(f"internal error: {type(exc).__name__}: {exc} (this is a bug in convis; please report it with the "
            "traceback above)")
        return EXIT_INTERNAL
