"""The concept registry: the ConViS concepts, the many spellings the released files use for them, and the rating scale.

This is the one place a concept is defined. Adding one is one :class:`Concept` entry here plus its task YAML
(docs/architecture.md lists the lines; ``tests/test_architecture.py`` adds a sixth concept and runs it).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from convis_tasks.errors import InputError


@dataclass(frozen=True)
class Concept:
    """One benchmark concept.

    key:    canonical snake_case key used in every output of this package.
    gt_key: key in ``ConVIS.jsonl`` and ``gt_conditioned_similarities.json``.
    raw_key: key in the raw annotations (``vicos.user_inputs.json``).
    folder: folder name used by the authors' released predictions.
    title:  human-readable name used in tables.
    prompt_name: the name shown to the model in the benchmark prompt (the authors split the CamelCase key).
    retrieval: whether humans ranked retrieval candidates for it (the release has no rankings for order of actions).
    required: whether every ground-truth row must carry it (the released five); a concept added later is read
              where a file has it, and its tasks refuse a pair without it.
    """

    key: str
    gt_key: str
    raw_key: str
    folder: str
    title: str
    prompt_name: str
    retrieval: bool = True
    required: bool = True


CONCEPTS: tuple[Concept, ...] = (
    Concept("main_action", "MainAction", "MainAction", "Main_Action", "Main Action", "Main Action"),
    Concept("main_subjects", "MainSubjects", "MainSubjects", "Main_Subjects", "Main Subjects", "Main Subjects"),
    Concept("main_objects", "MainObjects", "MainObjects", "Main_Objects", "Main Objects", "Main Objects"),
    Concept("location", "Location", "Location", "Location", "Location", "Location"),
    Concept("order_of_actions", "OrderOfActions", "OrderofActions", "Order_Of_Actions", "Order of Actions",
            "Order Of Actions", retrieval=False),
)

CONCEPT_KEYS: tuple[str, ...] = tuple(c.key for c in CONCEPTS)
RETRIEVAL_CONCEPT_KEYS: tuple[str, ...] = tuple(c.key for c in CONCEPTS if c.retrieval)

# The rating scale of the benchmark: humans and models answer 1-5.
SCORE_MIN = 1.0
SCORE_MAX = 5.0

_BY_KEY = {c.key: c for c in CONCEPTS}


def _squash(name: str) -> str:
    return re.sub(r"[^a-z]", "", name.lower())


_ALIASES = {}
for _c in CONCEPTS:
    for _spelling in (_c.key, _c.gt_key, _c.raw_key, _c.folder, _c.title, _c.prompt_name):
        _ALIASES[_squash(_spelling)] = _c.key


def canonical_concept(name: str) -> str:
    """Map any known spelling (``Location``, ``Main_Action``, ``OrderofActions``, ``main action``) to its key.

    Raises :class:`~convis_tasks.errors.InputError` (a ValueError) naming the accepted keys for an unknown name.
    """
    key = _ALIASES.get(_squash(str(name)))
    if key is None:
        raise InputError(f"unknown concept {name!r}; expected one of {', '.join(CONCEPT_KEYS)} (any spelling)")
    return key


def get_concept(name: str) -> Concept:
    """Return the :class:`Concept` for any spelling of its name."""
    return _BY_KEY[canonical_concept(name)]


def parse_concepts(spec: str | None) -> list[str]:
    """Parse a CLI concept selection: ``all``/None, or a comma-separated list of names.

    Raises ``ValueError`` for an unknown name, a concept named twice (in any spellings) or an empty selection.
    """
    if spec is None or spec.strip().lower() == "all":
        return list(CONCEPT_KEYS)
    keys: list[str] = []
    for part in spec.split(","):
        if not part.strip():
            continue
        key = canonical_concept(part.strip())
        if key in keys:
            raise InputError(f"concept {key} is selected twice in {spec!r}")
        keys.append(key)
    if not keys:
        raise InputError(f"no concept selected in {spec!r}; expected 'all' or names among {', '.join(CONCEPT_KEYS)}")
    return keys
