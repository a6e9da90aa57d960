"""``--model convis_llava_onevision`` / ``convis_llava_vid``: lmms-eval 0.7.3's LLaVA-NeXT classes with a working
``loglikelihood``.

Each class *is* the harness class (a subclass; ``__init__`` and ``generate_until`` are the harness's, unchanged).
It replaces only ``loglikelihood``, which in lmms-eval 0.7.3 cannot serve the ``*_expected`` tasks:

* (``llava_onevision``) it reads ``self.metadata``, which nothing sets: ``AttributeError`` on every request with a
  visual;
* (``llava_onevision``) it casts frames to float16 whatever the model's dtype (harmless only because LLaVA-NeXT's
  loader makes the model float16 even on a CPU);
* (both) it returns the mean cross-entropy *loss* over the answer AND the chat template's closing tokens
  (``"1<|im_end|>\\n"`` with ``qwen_1_5``), not the answer's log-probability.

Here each request gets ``(log P(answer | prompt, video), is_greedy)``, where the answer is written as the chat
template writes it (:func:`one_pass.answer_in_template`: ``"1"`` after ChatML's ``"assistant\\n"``, ``" 1"`` after
Vicuna's ``"ASSISTANT:"``). The five requests of one document share the context and the video, so they are answered
from ONE forward pass (the video encoded once) by the next-token log-probabilities of the five answer tokens; an
answer that is not a single token falls back to one teacher-forced pass per answer (with a warning). The frames and
the prompt are built as the harness's ``generate_until`` builds them, so greedy and expected runs see the same
input. Drop this class once lmms-eval's own ``loglikelihood`` returns log-probabilities for video (docs/models.md).
"""

from __future__ import annotations

import copy
import logging
from typing import List, Tuple

import torch
from lmms_eval.api.instance import Instance
from lmms_eval.models.simple import llava_onevision as _onevision
from lmms_eval.models.simple import llava_vid as _vid
from tqdm import tqdm

from convis_tasks.model_wrappers.one_pass import answer_in_template, group_requests, single_token

log = logging.getLogger(__name__)


class OnePassLoglikelihood:
    """Mixin: ``loglikelihood`` from one forward pass per (document, context). The host class provides
    :meth:`_prompt` (the chat prompt text, with the visual placeholder) and :meth:`_visual_inputs` (the model's
    ``images`` and forward keyword arguments), each as its own ``generate_until`` does."""

    def _prompt(self, context: str, answer: str | None, info) -> str:
        """The chat prompt with the assistant's turn empty (``answer`` None) or holding ``answer``."""
        raise NotImplementedError

    def _visual_inputs(self, visual) -> tuple[list, dict, object]:
        """``(images, forward kwargs, what the prompt needs to know of the visual)`` for the document's visual."""
        raise NotImplementedError

    def _ids(self, text: str) -> list[int]:
        return _onevision.tokenizer_image_token(text, self.tokenizer, _onevision.IMAGE_TOKEN_INDEX)

    def _logprobs(self, ids: list[int], images: list, kwargs: dict, last: int) -> torch.Tensor:
        """Log-softmax over the vocabulary at the ``last`` final positions of ``ids`` (float32, ``(last, V)``).

        The model's own forward, in its two steps (LLaVA-NeXT's ``prepare_inputs_labels_for_multimodal``: the
        visual features spliced into the embedded prompt; then the language model), with the output head applied
        to the ``last`` positions only: the logits of the other (video) positions are never needed.
        """
        model = self.model
        input_ids = torch.tensor([ids], dtype=torch.long, device=self.device)
        with torch.inference_mode():
            _, position_ids, _, _, embeds, _ = model.prepare_inputs_labels_for_multimodal(
                input_ids, None, None, None, None, images, **kwargs)
            # one unpadded sequence: an all-ones mask, as generate passes (without one, transformers 4.55 builds a
            # slower causal mask here: 86 vs 18 ms for the tiny model's 3,367 positions on a CPU)
            mask = torch.ones(embeds.shape[:2], dtype=torch.long, device=embeds.device)
            hidden = model.get_model()(inputs_embeds=embeds, position_ids=position_ids, attention_mask=mask,
                                       use_cache=False, return_dict=True).last_hidden_state
            logits = model.lm_head(hidden[0, -last:])
        return torch.log_softmax(logits.float(), dim=-1)

    def loglikelihood(self, requests: List[Instance]) -> List[Tuple[float, bool]]:
        args = [req.args for req in requests]
        out: list[tuple[float, bool] | None] = [None] * len(args)
        groups = group_requests([(task, split, doc_id, ctx) for ctx, _, _, doc_id, task, split in args])
        pbar = tqdm(total=len(args), disable=(self.rank != 0), desc="Model Responding")
        for group in groups:
            context, _, doc_to_visual, doc_id, task, split = args[group[0]]
            doc = self.task_dict[task][split][doc_id]
            answers = [a if isinstance(a, str) else a(doc) for a in (args[i][1] for i in group)]
            images, kwargs, info = self._visual_inputs(doc_to_visual(doc))
            prompt = self._prompt(context, None, info)
            context_ids = self._ids(prompt)
            full_ids = [self._ids(prompt + answer_in_template(lambda a: self._prompt(context, a, info), answer))
                        for answer in answers]
            tokens = [single_token(context_ids, ids) for ids in full_ids]
            if all(t is not None for t in tokens):
                logprobs = self._logprobs(context_ids, images, kwargs, 1)[0]
                best = int(logprobs.argmax())
                for i, token in zip(group, tokens):
                    out[i] = (float(logprobs[token]), token == best)
            else:
                log.warning("convis: an answer of %s is not one token after the prompt (%r): scoring each answer "
                            "with its own forward pass", task, answers)
                for i, ids in zip(group, full_ids):
                    out[i] = self._sequence_loglikelihood(context_ids, ids, images, kwargs)
            pbar.update(len(group))
        pbar.close()
        return out  # type: ignore[return-value]

    def _sequence_loglikelihood(self, context_ids: list[int], ids: list[int], images: list,
                                kwargs: dict) -> tuple[float, bool]:
        """The general path: the sum of the answer tokens' log-probabilities, teacher-forced."""
        n = len(context_ids)
        if list(ids[:n]) != list(context_ids) or len(ids) == n:
            raise ValueError("the answer changes the prompt's tokens or adds none; cannot score it")
        logprobs = self._logprobs(ids, images, kwargs, len(ids) - n + 1)[:-1]
        target = torch.tensor(ids[n:], device=logprobs.device)
        picked = logprobs.gather(1, target[:, None])[:, 0]
        return float(picked.sum()), bool((logprobs.argmax(-1) == target).all())


class ConvisLlavaOneVision(OnePassLoglikelihood, _onevision.Llava_OneVision):
    """``--model convis_llava_onevision``: the harness's ``llava_onevision`` (same arguments, same generation)
    whose ``loglikelihood`` answers the ``*_expected`` tasks (see the module docstring)."""

    def _visual_inputs(self, visual) -> tuple[list, dict, int]:
        """As ``generate_until``: the first video, ``max_frames_num`` frames, the image processor; the number of
        ``<image>`` placeholders (``token_strategy``)."""
        if not (isinstance(visual, list) and visual and all(isinstance(v, str) for v in visual)):
            raise ValueError(f"convis_llava_onevision scores videos given as file paths, got {visual!r:.120}")
        if self.video_decode_backend == "decord":
            frames = self.load_video(visual, self.max_frames_num)
        elif self.video_decode_backend == "pyav":
            frames = _onevision.read_video(visual[0], num_frm=self.max_frames_num)
        else:
            raise ValueError(f"unknown video_decode_backend {self.video_decode_backend!r} (decord or pyav)")
        pixels = self._image_processor.preprocess(frames, return_tensors="pt")["pixel_values"]
        pixels = pixels.to(device=self._device, dtype=self.model.dtype)
        self._config.mm_spatial_pool_stride = self.mm_spatial_pool_stride
        self._config.mm_spatial_pool_mode = self.mm_spatial_pool_mode
        n_placeholders = len(frames) if self.token_strategy == "multiple" else 1
        return [pixels], {"modalities": ["video"]}, n_placeholders

    def _prompt(self, context: str, answer: str | None, n_placeholders: int) -> str:
        token = _onevision.DEFAULT_IMAGE_TOKEN
        question = context if token in context else " ".join([token] * n_placeholders) + "\n" + context
        template = _onevision.conv_templates[self.conv_template]
        conv = copy.deepcopy(template) if "llama_3" in self.conv_template else template.copy()
        conv.append_message(conv.roles[0], question)
        conv.append_message(conv.roles[1], answer)
        return conv.get_prompt()


class ConvisLlavaVid(OnePassLoglikelihood, _vid.LlavaVid):
    """``--model convis_llava_vid``: the harness's ``llava_vid`` (same arguments, same generation) whose
    ``loglikelihood`` returns log-probabilities (0.7.3's returns the mean loss over the answer and the template's
    closing tokens), from one forward pass per document."""

    def _visual_inputs(self, visual) -> tuple[list, dict, tuple[int, str | None]]:
        """As ``generate_until``: one video, sampled by ``load_video`` (``max_frames_num``, ``video_fps``,
        ``force_sample``), the image processor; the optional time instruction."""
        if not (isinstance(visual, list) and len(visual) == 1 and isinstance(visual[0], str)):
            raise ValueError(f"convis_llava_vid scores one video given as a file path, got {visual!r:.120}")
        if self.video_decode_backend == "decord":
            video, frame_time, video_time = self.load_video(visual[0], self.max_frames_num, self.fps,
                                                            force_sample=self.force_sample)
        elif self.video_decode_backend == "pyav":
            video, frame_time, video_time = _vid.read_video(visual[0], self.max_frames_num, self.fps,
                                                            force_sample=self.force_sample)
        else:
            raise ValueError(f"video_decode_backend {self.video_decode_backend!r}: convis_llava_vid reads decord or "
                             "pyav")
        pixels = self._image_processor.preprocess(video, return_tensors="pt")["pixel_values"]
        pixels = pixels.to(device=self._device, dtype=self.model.dtype)
        timing = None
        if self.add_time_instruction:
            timing = (f"The video lasts for {video_time:.2f} seconds, and {len(video)} frames are uniformly sampled "
                      f"from it. These frames are located at {frame_time}.Please answer the following questions "
                      "related to this video.")
        return [pixels], {"modalities": "video"}, (1, timing)

    def _prompt(self, context: str, answer: str | None, info: tuple[int, str | None]) -> str:
        n_videos, timing = info
        question = f"{timing}\n{context}" if timing else context
        if self.model.config.mm_use_im_start_end:
            image = _vid.DEFAULT_IM_START_TOKEN + _vid.DEFAULT_IMAGE_TOKEN + _vid.DEFAULT_IM_END_TOKEN
            question = image + "\n" + question
        else:
            question = _vid.DEFAULT_IMAGE_TOKEN * n_videos + "\n" + question
        template = _vid.conv_templates[self.conv_template]
        conv = copy.deepcopy(template) if "llama_3" in self.conv_template else template.copy()
        conv.append_message(conv.roles[0], question)
        conv.append_message(conv.roles[1], answer)
        return conv.get_prompt()
