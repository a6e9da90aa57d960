"""Render the Jinja prompt templates in ``convis_tasks/prompts``."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import jinja2

PROMPT_DIR = Path(__file__).resolve().parent.parent / "prompts"
PROMPT_VARIANTS = ("benchmark", "global", "cot", "structured")


@lru_cache(maxsize=1)
def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(PROMPT_DIR)),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,
    )


def render_prompt(variant: str = "benchmark", concept_name: str | None = None) -> str:
    """Render one prompt variant for a concept (``None``: the concept-free wording).

    ``benchmark`` needs a concept and ``global`` takes none; ``cot`` and ``structured`` take either.
    """
    if variant not in PROMPT_VARIANTS:
        raise ValueError(f"unknown prompt variant {variant!r}; expected one of {', '.join(PROMPT_VARIANTS)}")
    if variant == "benchmark" and not concept_name:
        raise ValueError("the 'benchmark' prompt needs a concept name; use the 'global' variant for none")
    return _environment().get_template(f"{variant}.jinja").render(concept_name=concept_name or "")
