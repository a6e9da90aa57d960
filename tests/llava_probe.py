"""Run by tests/test_expected_llava.py in a subprocess (so that the tiny SigLIP tower's private Hugging Face hub cache
and offline mode are set before huggingface_hub reads them): ``python llava_probe.py MODE ARGS_JSON`` prints JSON.

* ``by_hand``: the five answers' log-probabilities "1".."5" for each pair, from LLaVA-NeXT loaded directly (no
  harness, no adapter): the pair clip's 2N frames through the model's image processor, the qwen_1_5 prompt written
  out by hand, the last position's log-softmax.
* ``bare``: what lmms-eval's own ``Llava_OneVision.loglikelihood`` does with the ten requests of two pairs.
* ``adapter``: what ``ConvisLlavaOneVision.loglikelihood`` answers to them (whole, in two halves, backwards), and
  the general (teacher-forced) path's values for the same answers.
"""

from __future__ import annotations

import contextlib
import io
import json
import sys

from convis_tasks.reading.datafolder import DEMO_DIR
from convis_tasks.prompting import render_prompt
from convis_tasks.video.cache import PairClipCache

N = 8
PROMPT = render_prompt("benchmark", "Location")
QWEN_1_5_PROMPT = ("<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n<image>\n"
                   f"{PROMPT}<|im_end|>\n<|im_start|>assistant\n")


def _clip(clips: str, pair: dict) -> str:
    return PairClipCache(clips).get(DEMO_DIR / pair["video1"], DEMO_DIR / pair["video2"], n_frames=N)


def by_hand(checkpoint: str, clips: str, pairs: list[dict]) -> list[list[float]]:
    import decord
    import torch

    with contextlib.redirect_stdout(io.StringIO()):
        from llava.mm_utils import tokenizer_image_token
        from llava.model.builder import load_pretrained_model

    tokenizer, model, processor, _ = load_pretrained_model(checkpoint, None, "llava_qwen", device_map="auto",
                                                           attn_implementation="sdpa", multimodal=True)
    ids = torch.tensor([tokenizer_image_token(QWEN_1_5_PROMPT, tokenizer)])
    digits = [tokenizer.convert_tokens_to_ids(d) for d in "12345"]
    assert len(set(digits)) == 5 and tokenizer.unk_token_id not in digits, digits  # tokens of their own
    out = []
    for pair in pairs:
        frames = decord.VideoReader(_clip(clips, pair)).get_batch(list(range(2 * N))).asnumpy()
        pixels = processor.preprocess(frames, return_tensors="pt")["pixel_values"].to(model.dtype)
        with torch.inference_mode():
            logits = model(input_ids=ids, images=[pixels], modalities=["video"])["logits"][0, -1].float()
        out.append([float(x) for x in torch.log_softmax(logits, -1)[digits]])
    return out


def _model_and_requests(cls, checkpoint: str, clips: str, pairs: list[dict]):
    from lmms_eval.api.instance import Instance

    paths = [_clip(clips, p) for p in pairs]
    model = cls(pretrained=checkpoint, conv_template="qwen_1_5", model_name="llava_qwen", device="cpu",
                device_map="auto", max_frames_num=2 * N)
    model.task_dict = {"t": {"test": pairs}}
    requests = [Instance(request_type="loglikelihood", idx=k, metadata={"task": "t", "doc_id": i, "repeats": 1},
                         arguments=(PROMPT, answer, lambda doc: [paths[pairs.index(doc)]], i, "t", "test"))
                for i in range(len(pairs)) for k, answer in enumerate("12345")]
    return model, requests


def bare(checkpoint: str, clips: str, pairs: list[dict]) -> dict:
    from lmms_eval.models.simple.llava_onevision import Llava_OneVision

    model, requests = _model_and_requests(Llava_OneVision, checkpoint, clips, pairs)
    try:
        return {"values": model.loglikelihood(requests)}
    except Exception as exc:  # noqa: BLE001 - the test asserts on what happened
        return {"error": f"{type(exc).__name__}: {exc}"}


def adapter(checkpoint: str, clips: str, pairs: list[dict]) -> dict:
    from convis_tasks.model_wrappers.llava_next import ConvisLlavaOneVision

    model, requests = _model_and_requests(ConvisLlavaOneVision, checkpoint, clips, pairs)
    half = len(requests) // 2
    result = {"whole": model.loglikelihood(requests),
              "halves": model.loglikelihood(requests[:half]) + model.loglikelihood(requests[half:]),
              "backwards": model.loglikelihood(requests[::-1])[::-1]}
    images, kwargs, count = model._visual_inputs(requests[0].args[2](pairs[0]))
    prompt = model._prompt(PROMPT, None, count)
    context = model._ids(prompt)
    result["general"] = [model._sequence_loglikelihood(context, model._ids(prompt + a), images, kwargs)
                         for a in "12345"]
    return result


if __name__ == "__main__":
    mode, args = sys.argv[1], json.loads(sys.argv[2])
    value = {"by_hand": by_hand, "bare": bare, "adapter": adapter}[mode](**args)
    print("PROBE " + json.dumps(value))
