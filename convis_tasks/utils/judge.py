"""The caption judge's prompt and scoring math (no torch): which captions, which concept, the expected score.

The judge (``convis_tasks/model_wrappers/caption_judge.py``) shows a causal LM the two videos' captions and then the
benchmark prompt adapted to captions (``prompts/judge_captions.jinja`` + ``prompts/judge.jinja``, or
``judge_global.jinja`` for the concept-free task), in one user message. Two answers come from the first answer
token's distribution:

* ``greedy``: the protocol, the decoded arg-max token (or greedy generation when more tokens are allowed), parsed
  by :func:`convis_tasks.utils.parsing.parse_score` like any model's text;
* ``expected``: G-Eval's probability-weighted score. With ``l_k`` the logit of the single token spelling the digit
  ``k`` (``"1"`` .. ``"5"``, no leading space), ``p_k = exp(l_k) / sum_j exp(l_j)`` over those five only (the full
  softmax restricted to the five tokens and renormalised; the two are the same thing) and the score is
  ``sum_k k p_k``, in [1, 5]. The mass the full softmax gives the five tokens is reported beside it.
"""

from __future__ import annotations

import math
import os
from functools import lru_cache
from typing import Iterable, Mapping, Sequence

import jinja2

from .prompts import PROMPT_DIR

SCORE_DIGITS: tuple[str, ...] = ("1", "2", "3", "4", "5")
CAPTIONS_TEMPLATE = "judge_captions.jinja"
CONCEPT_TEMPLATE = "judge.jinja"
GLOBAL_TEMPLATE = "judge_global.jinja"


@lru_cache(maxsize=1)
def _environment() -> jinja2.Environment:
    return jinja2.Environment(loader=jinja2.FileSystemLoader(str(PROMPT_DIR)), undefined=jinja2.StrictUndefined,
                              keep_trailing_newline=True, autoescape=False)


def render_judge_prompt(caption1: str, caption2: str, concept_name: str | None) -> tuple[str, str]:
    """The user message in two parts: the captions block (concept-free) and the instruction naming the concept.

    The message is their concatenation; keeping them apart lets a pair's five concepts share the captions' forward
    pass. ``concept_name`` None or empty: the concept-free instruction.
    """
    for name, text in (("caption1", caption1), ("caption2", caption2)):
        if not isinstance(text, str) or not text.strip():
            raise ValueError(f"judge prompt: {name} is empty")
    env = _environment()
    captions = env.get_template(CAPTIONS_TEMPLATE).render(caption1=caption1.strip(), caption2=caption2.strip())
    if concept_name:
        instruction = env.get_template(CONCEPT_TEMPLATE).render(concept_name=concept_name)
    else:
        instruction = env.get_template(GLOBAL_TEMPLATE).render()
    return captions, instruction.strip()


def caption_id(video: str) -> str:
    """A video's caption id: its file name without the extension (``videos_trimmed/1005_001.mp4`` -> ``1005_001``)."""
    name = os.path.basename(str(video))
    return os.path.splitext(name)[0]


def doc_videos(doc: Mapping) -> tuple[str, str]:
    """The two videos of a task document as named in the annotation file: (video1, video2) of a pair, or
    (anchor, candidate) of a retrieval document. Paths on disk are not needed (they may be None without videos)."""
    if doc.get("video1") and doc.get("video2"):
        return str(doc["video1"]), str(doc["video2"])
    if doc.get("anchor") and doc.get("candidate"):
        return str(doc["anchor"]), str(doc["candidate"])
    raise KeyError(f"document {doc.get('pair_id', '?')} names no videos (expected video1/video2 or anchor/candidate)")


def doc_concept_name(doc: Mapping, task_kwargs: Mapping | None = None) -> str | None:
    """The concept named in the prompt, by the rule of ``hooks.doc_to_text``: the task's ``concept_name`` option
    (free text, user-defined concepts) else the document's; None for the concept-free task."""
    kw = dict(task_kwargs or {})
    return kw.get("concept_name") or doc.get("concept_name") or None


def expected_score(digit_logits: Sequence[float]) -> float:
    """``sum_k k p_k`` with ``p`` the softmax of the five logits of ``"1"`` .. ``"5"`` (in that order)."""
    logits = [float(x) for x in digit_logits]
    if len(logits) != len(SCORE_DIGITS):
        raise ValueError(f"expected {len(SCORE_DIGITS)} logits (for '1'..'5'), got {len(logits)}")
    if not all(math.isfinite(x) for x in logits):
        raise ValueError(f"non-finite score-token logits {logits}")
    top = max(logits)
    weights = [math.exp(x - top) for x in logits]
    total = sum(weights)
    return sum((k + 1) * w for k, w in enumerate(weights)) / total


def digit_mass(digit_logits: Sequence[float], logsumexp_all: float) -> float:
    """The probability the full next-token softmax gives the five score tokens together."""
    return float(sum(math.exp(float(x) - float(logsumexp_all)) for x in digit_logits))


def format_expected_answer(score: float, mass: float | None = None) -> str:
    """The answer text of expected mode; ``parse_score`` reads the labelled score back (8 decimals keep ties rare)."""
    if not (1.0 <= score <= 5.0):
        raise ValueError(f"expected score {score} outside [1, 5]")
    text = f"Score: {score:.8f}"
    return text if mass is None else f"{text} (mass on 1-5: {mass:.6f})"


LOGPROB_TOLERANCE = 1e-6  # a log-probability may exceed 0 by this much (rounding); more is impossible
MASS_TOLERANCE = 1e-5  # the listed tokens' probabilities may sum to 1 + this (20 float32 terms); more is impossible


def check_top_logprobs(top: Iterable[tuple[str, float]]) -> float:
    """The probability mass of a top-log-probability list; ``ValueError`` naming the token when a value is not a
    finite number <= ``LOGPROB_TOLERANCE``, or when the mass exceeds ``1 + MASS_TOLERANCE`` (impossible replies)."""
    mass = 0.0
    for token, logprob in top:
        if isinstance(logprob, bool) or not isinstance(logprob, (int, float)) or not math.isfinite(logprob):
            raise ValueError(f"log-probability of token {token!r} is {logprob!r}, not a finite number")
        if logprob > LOGPROB_TOLERANCE:
            raise ValueError(f"log-probability of token {token!r} is {logprob!r} > 0 (a probability above 1)")
        mass += math.exp(logprob)
    if mass > 1.0 + MASS_TOLERANCE:
        raise ValueError(f"the listed tokens' probabilities sum to {mass:.9g} > 1")
    return mass


def expected_from_top_logprobs(top: Mapping[str, float] | Iterable[tuple[str, float]]) -> tuple[float, float] | None:
    """Expected score and mass from an endpoint's top log-probabilities of the first answer token.

    ``top``: ``(token, logprob)`` pairs (or a mapping), checked by :func:`check_top_logprobs` first. Only tokens that
    are exactly a digit 1..5 (surrounding whitespace ignored, duplicates summed) count; digits absent from the list
    get probability 0. None when no digit is listed (the caller falls back to the text).
    """
    pairs = list(top.items()) if isinstance(top, Mapping) else list(top)
    check_top_logprobs(pairs)
    probs = {d: 0.0 for d in SCORE_DIGITS}
    for token, logprob in pairs:
        d = str(token).strip()
        if d in probs:
            probs[d] += math.exp(float(logprob))
    mass = sum(probs.values())
    if mass <= 0.0:
        return None
    return sum(int(d) * p for d, p in probs.items()) / mass, mass
