"""Shared fixtures: the benchmark authors' released files in ../shared/reference, when present."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
REFERENCE = Path(os.environ.get("CONVIS_REFERENCE_DIR", REPO.parent / "shared" / "reference"))


@pytest.fixture(scope="session")
def reference() -> Path:
    """The authors' release (../shared/reference); tests using it skip with a clear message when it is absent."""
    if not (REFERENCE / "vicos.user_inputs.json").is_file():
        pytest.skip(f"the authors' released files are not at {REFERENCE} (set CONVIS_REFERENCE_DIR to run these)")
    return REFERENCE
