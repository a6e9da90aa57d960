"""Pure helpers of the one-pass log-likelihood adapters (``llava_next.py``); no torch, no harness imports.

lmms-eval sends a ``multiple_choice`` document as one ``loglikelihood`` request per answer, all with the same
context and visual. The adapters answer such a group from one forward pass of the context: when every answer is a
single token after the context, its log-likelihood is that token's next-token log-probability.
"""

from __future__ import annotations

from typing import Callable, Hashable, Sequence


def group_requests(keys: Sequence[Hashable]) -> list[list[int]]:
    """Indices of the requests sharing a key (document and context), groups in order of first appearance."""
    groups: dict[Hashable, list[int]] = {}
    for i, key in enumerate(keys):
        groups.setdefault(key, []).append(i)
    return list(groups.values())


def answer_in_template(render: Callable[[str | None], str], answer: str) -> str:
    """What the model writes for ``answer`` in its chat template: the text between the prompt (the template
    rendered with an empty assistant turn, ``render(None)``) and the end of ``answer`` in ``render(answer)``.

    Whitespace around ``answer`` is dropped (the template decides it); the template's closing tokens after
    the answer are not part of it. ChatML (``qwen_1_5``) puts the answer
    right after ``"<|im_start|>assistant\\n"``, so ``"1"`` is written ``"1"``; Vicuna (``vicuna_v1``) puts it
    after ``"ASSISTANT:"`` with a space, so ``"1"`` is written ``" 1"``. Raises ``ValueError`` when the prompt is
    not a prefix of the rendered answer or the answer does not appear right after it (a template this rule does
    not fit: the adapter refuses instead of scoring something else).
    """
    answer = answer.strip()  # the harness's target_delimiter is a raw-LM convention; the template decides
    if not answer:
        raise ValueError("chat template: an empty answer cannot be scored")
    prompt, full = render(None), render(answer)
    if not full.startswith(prompt):
        raise ValueError(f"chat template: the prompt is not a prefix of the rendered answer {answer!r}")
    rest = full[len(prompt):]
    lead = rest[: len(rest) - len(rest.lstrip())]
    if not rest[len(lead):].startswith(answer):
        raise ValueError(f"chat template: the answer {answer!r} does not follow the prompt (got {rest[:40]!r})")
    return lead + answer


def single_token(context_ids: Sequence[int], full_ids: Sequence[int]) -> int | None:
    """The one token ``full_ids`` adds to ``context_ids``, or None when it adds several or changes the context's
    tokens (a merge across the boundary): then the answer is not one next token and the general path scores it."""
    n = len(context_ids)
    if len(full_ids) == n + 1 and list(full_ids[:n]) == list(context_ids):
        return int(full_ids[n])
    return None
