"""Render the Jinja prompt templates in ``convis_tasks/prompts``: the benchmark's prompts and the caption judge's."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import jinja2

from convis_tasks.errors import InputError

PROMPT_DIR = Path(__file__).resolve().parent / "prompts"
PROMPT_VARIANTS = ("benchmark", "global", "cot", "structured")
CAPTIONS_TEMPLATE = "judge_captions.jinja"
CONCEPT_TEMPLATE = "judge.jinja"
GLOBAL_TEMPLATE = "judge_global.jinja"


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
        raise InputError(f"unknown prompt variant {variant!r}; expected one of {', '.join(PROMPT_VARIANTS)}")
    if variant == "benchmark" and not concept_name:
        raise InputError("the 'benchmark' prompt needs a concept name; use the 'global' variant for none")
    return _environment().get_template(f"{variant}.jinja").render(concept_name=concept_name or "")


def render_judge_prompt(caption1: str, caption2: str, concept_name: str | None) -> tuple[str, str]:
    """The user message in two parts: the captions block (concept-free) and the instruction naming the concept.

    The message is their concatenation; keeping them apart lets a pair's five concepts share the captions' forward
    pass. ``concept_name`` None or empty: the concept-free instruction.
    """
    for name, text in (("caption1", caption1), ("caption2", caption2)):
        if not isinstance(text, str) or not text.strip():
            raise InputError(f"judge prompt: {name} is empty")
    env = _environment()
    captions = env.get_template(CAPTIONS_TEMPLATE).render(caption1=caption1.strip(), caption2=caption2.strip())
    if concept_name:
        instruction = env.get_template(CONCEPT_TEMPLATE).render(concept_name=concept_name)
    else:
        instruction = env.get_template(GLOBAL_TEMPLATE).render()
    return captions, instruction.strip()
