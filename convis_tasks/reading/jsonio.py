"""One strict JSON reading for every input file: duplicate keys and non-finite numbers are errors.

Python's ``json`` keeps the last of two equal keys (``{"a.mp4": 1, "a.mp4": 3}`` silently becomes ``{"a.mp4": 3}``)
and reads ``NaN``, ``Infinity`` and ``1e999`` as floats; neither is valid JSON and either can change a number, so
:func:`strict_loads` refuses both, naming the place.
"""

from __future__ import annotations

import json
import math
from typing import Callable, Iterator

from convis_tasks.errors import InputError

MAX_DEPTH = 64  # deeper nesting than any file of the benchmark has: refused before Python's recursion limit


class StrictJSONError(InputError):
    """A JSON text that :func:`strict_loads` refuses (duplicate key, non-finite number, or invalid JSON)."""


def _no_duplicates(pairs: list[tuple[str, object]]) -> dict:
    out: dict = {}
    for key, value in pairs:
        if key in out:
            raise StrictJSONError(f"duplicate key {key!r} in one object")
        out[key] = value
    return out


def _finite_float(token: str) -> float:
    value = float(token)
    if not math.isfinite(value):
        raise StrictJSONError(f"number {token} is not finite")
    return value


def _no_constant(token: str) -> float:
    raise StrictJSONError(f"{token} is not a JSON number")


def _nesting(text: str) -> int:
    """The deepest bracket nesting of a JSON text, strings skipped (one linear pass)."""
    depth = deepest = 0
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "]}":
            depth -= 1
    return deepest


def strict_loads(text: str, where: str, error: Callable[[str], Exception] = StrictJSONError,
                 allow_nonfinite: bool = False) -> object:
    """Parse ``text`` as JSON; raise ``error`` naming ``where`` for invalid JSON, a duplicate key in one object,
    ``NaN``/``Infinity``, or a number too large to be finite.

    ``allow_nonfinite=True`` reads ``NaN``/``Infinity`` as floats (lmms-eval's sample logs may hold them in fields
    this package does not read; the fields it reads are checked by their own validators)."""
    kwargs = {} if allow_nonfinite else {"parse_float": _finite_float, "parse_constant": _no_constant}
    depth = _nesting(text)
    if depth > MAX_DEPTH:
        raise error(f"{where}: JSON nested {depth} levels deep (at most {MAX_DEPTH})")
    try:
        return json.loads(text, object_pairs_hook=_no_duplicates, **kwargs)
    except StrictJSONError as exc:
        raise error(f"{where}: {exc}") from None
    except json.JSONDecodeError as exc:
        raise error(f"{where}: invalid JSON ({exc.msg} at line {exc.lineno})") from None
    except RecursionError:
        raise error(f"{where}: JSON nested too deeply") from None


def strict_load_file(path: str, error: Callable[[str], Exception] = StrictJSONError,
                     allow_nonfinite: bool = False) -> object:
    """Read and :func:`strict_loads` a UTF-8 JSON file; unreadable files raise ``error`` naming the path."""
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except FileNotFoundError:
        raise error(f"{path}: file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise error(f"{path}: cannot read ({exc})") from None
    return strict_loads(text, path, error, allow_nonfinite=allow_nonfinite)


def strict_jsonl_objects(path: str, error: Callable[[str], Exception], what: str, object_is: str = "",
                         allow_nonfinite: bool = False) -> Iterator[tuple[int, str, dict]]:
    """Yield ``(line number, where, object)`` for each non-blank line of the JSON-lines file ``path``.

    Every line goes through :func:`strict_loads`; a line that is not a JSON object, or an unreadable file (``what``
    names it in the message, e.g. "annotation file"), raises ``error`` naming the file and line. Lines end at
    ``"\\n"`` only: a U+2028 inside a string is no line end (``str.splitlines`` would cut there)."""
    try:
        with open(path, encoding="utf-8") as handle:
            lines = handle.read().split("\n")
    except (OSError, UnicodeDecodeError) as exc:
        raise error(f"{path}: cannot read the {what} ({exc})") from None
    for lineno, line in enumerate(lines, 1):
        if not line.strip():
            continue
        where = f"{path}, line {lineno}"
        row = strict_loads(line, where, error, allow_nonfinite=allow_nonfinite)
        if not isinstance(row, dict):
            raise error(f"{where}: expected a JSON object{object_is}")
        yield lineno, where, row


def is_number(value: object) -> bool:
    """A JSON number: int or float, never a bool (``True`` is an int in Python)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


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
