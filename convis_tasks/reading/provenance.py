"""What produced the numbers: this suite's version, Python's and those of the packages that change results.

:func:`provenance` reads installed distributions' metadata (:mod:`importlib.metadata`); it imports none of the
packages, so the scoring path stays free of torch and lmms-eval. It is computed once per process and cached; each
call returns a fresh copy, so a caller can never change what the next one gets.

The same flat mapping is logged with every record of an lmms-eval run (``hooks.process_results``), copied into a
submission's ``metadata.provenance`` by ``convis submit`` and shown by ``convis validate``. A package that is not
installed is ``null``.
"""

from __future__ import annotations

import functools
import importlib.metadata
import platform
from convis_tasks import __version__

# distribution names of the packages whose version can change a ConViS number: the model stack (torch,
# torchvision, transformers), the harness (lmms-eval), the video decoders (decord, PyAV) and the metrics
# (numpy, scipy)
PACKAGES: tuple[str, ...] = ("torch", "torchvision", "transformers", "lmms-eval", "decord", "av", "numpy", "scipy")
SUITE_KEY = "convis_eval"
PYTHON_KEY = "python"
KEYS: tuple[str, ...] = (SUITE_KEY, PYTHON_KEY) + PACKAGES


def _version(distribution: str) -> str | None:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


@functools.lru_cache(maxsize=1)
def _computed() -> tuple[tuple[str, str | None], ...]:

    values = [(SUITE_KEY, __version__), (PYTHON_KEY, platform.python_version())]
    values += [(name, _version(name)) for name in PACKAGES]
    return tuple(values)


def provenance() -> dict[str, str | None]:
    """``{"convis_eval": ..., "python": ..., "torch": ..., ...}`` (see :data:`KEYS`); ``None`` = not installed."""
    return dict(_computed())


def describe(values: dict | None) -> str:
    """One line for people: ``convis_eval 0.1.0, python 3.12.3, torch 2.14.1, ...`` (absent packages left out)."""
    if not values:
        return "not recorded"
    known = [f"{k} {v}" for k, v in values.items() if v is not None]
    absent = [k for k, v in values.items() if v is None]
    return ", ".join(known) + (f" (not installed: {', '.join(absent)})" if absent else "")


def check(values: object) -> list[str]:
    """Problems with a provenance mapping read from a file (empty list: well formed)."""
    if not isinstance(values, dict):
        return [f"expected an object of package -> version, got {type(values).__name__}"]
    problems = []
    for key, value in values.items():
        if value is not None and not isinstance(value, str):
            problems.append(f"{key}: version {value!r} is not a string or null")
    for key in (SUITE_KEY, PYTHON_KEY):
        if not isinstance(values.get(key), str):
            problems.append(f"{key}: missing")
    return problems
