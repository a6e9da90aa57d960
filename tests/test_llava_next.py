"""lmms-eval's ``llava_onevision`` and ``llava_vid`` (LLaVA-NeXT code) through the real ``lmms-eval`` CLI.

Each test runs ``python -m lmms_eval --model <name> ... --tasks convis_location`` in a subprocess on the bundled
demo set (``--limit 2``), with a tiny random LLaVA-NeXT checkpoint built offline (``tests/tiny_models.py``) and its
SigLIP tower in a private Hugging Face hub cache under the real id (``HF_HUB_OFFLINE=1``). A ``sitecustomize``
module put first on the subprocess's ``PYTHONPATH`` wraps ``LlavaQwenForCausalLM.generate`` and saves what each call
receives (``inputs``, ``images``, ``modalities``). From the saved images the test rebuilds the frames (undoing
SigLIP's normalisation) and checks them against the demo videos: 2N frames, the first N from video 1 and the last
N from video 2, in order, at the benchmark's frame indices; and the ConViS prompt in the decoded text, after the
video placeholder, inside the conversation template asked for. Skipped when LLaVA-NeXT's ``llava`` package does not
import (see the ``llava_next`` fixture in conftest.py).
"""

from __future__ import annotations

import glob
import importlib.util
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

pytestmark = [
    pytest.mark.skipif(importlib.util.find_spec("lmms_eval") is None,
                       reason="lmms-eval is not installed (pip install -e '.[harness]')"),
    pytest.mark.filterwarnings("ignore:correlation undefined"),
]

from convis_tasks import task_path  # noqa: E402
from convis_tasks.reading.datafolder import DEMO_DIR  # noqa: E402
from convis_tasks.prompting import render_prompt  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_harness_models import N, _pair, _resized, which_pair  # noqa: E402

TASK = "convis_location"
PROMPT = render_prompt("benchmark", "Location")
IMAGE_TOKEN_INDEX = -200  # llava.constants.IMAGE_TOKEN_INDEX: where the visual features are spliced in
QWEN_1_5_HEAD = "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n"
QWEN_1_5_TAIL = "<|im_end|>\n<|im_start|>assistant\n"

# Runs at start-up of the lmms-eval subprocess (first `sitecustomize` on sys.path): every call of
# LlavaQwenForCausalLM.generate saves its inputs to $CONVIS_TEST_CAPTURE/<pid>_<n>.pt, then generates as before.
SITECUSTOMIZE = textwrap.dedent('''
    import itertools, os

    import torch
    from llava.model.language_model import llava_qwen

    _generate = llava_qwen.LlavaQwenForCausalLM.generate
    _calls = itertools.count()

    def generate(self, inputs=None, images=None, image_sizes=None, modalities=["image"], **kwargs):
        torch.save({"inputs": inputs.detach().cpu(), "modalities": modalities,
                    "images": [image.detach().float().cpu() for image in images]},
                   os.path.join(os.environ["CONVIS_TEST_CAPTURE"], f"{os.getpid()}_{next(_calls)}.pt"))
        return _generate(self, inputs=inputs, images=images, image_sizes=image_sizes, modalities=modalities,
                         **kwargs)

    llava_qwen.LlavaQwenForCausalLM.generate = generate
''')


def run_cli(model: str, model_args: str, llava_next, tmp_path: Path, *, task: str = TASK, include: str = ""):
    """The real CLI on the demo set; returns (results, logged samples, captured generate() calls in call order).
    The pair clips it builds stay in ``tmp_path / "clips"``."""
    import torch

    checkpoint, hub = llava_next
    site, capture, out = tmp_path / "site", tmp_path / "capture", tmp_path / "out"
    for folder in (site, capture):
        folder.mkdir()
    (site / "sitecustomize.py").write_text(SITECUSTOMIZE)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")])),
               CONVIS_TEST_CAPTURE=str(capture), HF_HUB_CACHE=str(hub), HF_HUB_OFFLINE="1",
               HF_DATASETS_OFFLINE="1", HF_DATASETS_CACHE=str(tmp_path / "hf_datasets"),
               CONVIS_DATA_DIR=str(DEMO_DIR), CONVIS_CACHE_DIR=str(tmp_path / "clips"))
    cmd = [sys.executable, "-m", "lmms_eval", "--model", model, "--model_args", f"pretrained={checkpoint},{model_args}",
           "--tasks", task, "--include_path", include or task_path(), "--batch_size", "1", "--limit", "2",
           "--log_samples", "--output_path", str(out)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    log = proc.stdout[-3000:] + proc.stderr[-3000:]
    # lmms-eval 0.7.3 logs an error during evaluation and still exits 0: the results file is the proof of a run
    results = glob.glob(str(out / "**" / "*_results.json"), recursive=True)
    assert proc.returncode == 0 and results, log
    samples = [json.loads(line) for path in glob.glob(str(out / "**" / f"*_samples_{task}.jsonl"), recursive=True)
               for line in open(path)]
    calls = [torch.load(path) for path in sorted(capture.glob("*.pt"), key=lambda p: int(p.stem.split("_")[1]))]
    return json.loads(Path(results[0]).read_text()), samples, calls


def siglip_frames(image) -> np.ndarray:
    """LLaVA-NeXT's SigLIP input ``(T, 3, 384, 384)`` (rescaled by 1/255, normalised with mean = std = 0.5) ->
    ``(T, 384, 384, 3)`` 0-255."""
    return (np.moveaxis(image.numpy().astype(np.float64), 1, -1) * 0.5 + 0.5) * 255.0


def decoded(call, checkpoint) -> tuple[str, str]:
    """The text before and after the single visual placeholder of a captured call."""
    from transformers import AutoTokenizer

    ids = call["inputs"][0].tolist()
    assert ids.count(IMAGE_TOKEN_INDEX) == 1, ids
    at = ids.index(IMAGE_TOKEN_INDEX)
    tokenizer = AutoTokenizer.from_pretrained(str(checkpoint))
    return tokenizer.decode(ids[:at]), tokenizer.decode(ids[at + 1:])


def assert_pair_clips_reach_generate(calls, checkpoint, what: str) -> None:
    assert len(calls) == 2, f"{what}: {len(calls)} generate() calls"
    seen = set()
    for call in calls:
        (image,) = call["images"]  # one visual per request: the pair clip
        assert tuple(image.shape) == (2 * N, 3, 384, 384)
        seen.add(which_pair(siglip_frames(image), what))
        before, after = decoded(call, checkpoint)
        assert before == QWEN_1_5_HEAD  # the video comes first in the user turn,
        assert after == f"\n{PROMPT}{QWEN_1_5_TAIL}"  # then the benchmark prompt, then the assistant's turn
    assert seen == {0, 1}


def assert_scored(results, samples) -> None:
    assert results["results"][TASK]["n,none"] == 2 and results["results"][TASK]["unparsed,none"] == 0
    assert [s["input"] for s in samples] == [PROMPT, PROMPT]
    assert {s["filtered_resps"] for s in samples} <= set("12345")  # the tiny model answers digits


def test_llava_onevision_cli_gives_generate_2N_frames_video1_then_video2_and_the_prompt(llava_next, tmp_path):
    results, samples, calls = run_cli(
        "llava_onevision", "conv_template=qwen_1_5,model_name=llava_qwen,device=cpu,device_map=auto,"
        f"max_frames_num={2 * N}", llava_next, tmp_path)
    assert_scored(results, samples)
    assert [c["modalities"] for c in calls] == [["video"], ["video"]]
    assert_pair_clips_reach_generate(calls, llava_next[0], "llava_onevision")


def test_llava_vid_cli_gives_generate_2N_frames_video1_then_video2_and_the_prompt(llava_next, tmp_path):
    # llava_vid has no model_name: the folder name ("tiny-llava-qwen") selects LlavaQwenForCausalLM. Its default
    # conv_template is vicuna_v1; LLaVA-Video's Qwen2 checkpoints use qwen_1_5 (docs/models.md)
    assert "llava" in llava_next[0].name and "qwen" in llava_next[0].name
    results, samples, calls = run_cli(
        "llava_vid", f"conv_template=qwen_1_5,device=cpu,device_map=auto,max_frames_num={2 * N}", llava_next,
        tmp_path)
    assert_scored(results, samples)
    assert [c["modalities"] for c in calls] == ["video", "video"]
    assert_pair_clips_reach_generate(calls, llava_next[0], "llava_vid")


# --------------------------------------------------------------------------------------------
# what the frame-budget and one-video rules of docs/models.md guard against (slow: one CLI run each)
# --------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_llava_onevision_default_budget_repeats_frames_and_moves_the_boundary(llava_next, tmp_path):
    from convis_tasks.video.cache import PairClipCache
    from convis_tasks.video.decode import read_frames

    _, _, calls = run_cli("llava_onevision", "conv_template=qwen_1_5,model_name=llava_qwen,device=cpu,device_map=auto",
                          llava_next, tmp_path)  # the harness's default max_frames_num=32
    # linspace(0, 15, 32) floored: 0, 0.48, 0.97, 1.45, ... -> 0,0,0,1,...; position 16 is 7.74 -> clip frame 7
    idx = np.linspace(0, 2 * N - 1, 32, dtype=int)
    assert list(idx[:4]) == [0, 0, 0, 1] and idx[16] == N - 1
    seen = set()
    for call in calls:
        (image,) = call["images"]
        frames = siglip_frames(image)
        assert len(frames) == 32  # 2N + 16 repeats; the 17th, in the second half, is video 1's last frame
        for doc_id in (0, 1):
            clip = PairClipCache(tmp_path / "clips").get(*_pair(doc_id), n_frames=N)  # the clip the model read
            if np.abs(frames - _resized(read_frames(clip, 2 * N), 384, 384)[idx]).mean() < 1.5:
                seen.add(doc_id)
    assert seen == {0, 1}


@pytest.mark.slow
def test_llava_vid_with_two_videos_answers_an_error_text_that_counts_as_unparsed(llava_next, tmp_path):
    tasks = tmp_path / "tasks"
    tasks.mkdir()
    (tasks / "convis_location_two_videos.yaml").write_text(
        f"task: convis_location_two_videos\ninclude: {task_path()}/_template_yaml\n"
        "process_docs: !function convis_tasks.hooks.docs_location\n"
        "lmms_eval_specific_kwargs:\n  default: {prompt: benchmark, frames_per_video: 8, input: two_videos}\n")
    results, samples, calls = run_cli(
        "llava_vid", f"conv_template=qwen_1_5,device=cpu,device_map=auto,max_frames_num={N}", llava_next, tmp_path,
        task="convis_location_two_videos", include=str(tasks))
    assert calls == []  # the model never ran
    assert results["results"]["convis_location_two_videos"]["unparsed,none"] == 2
    answers = [s["filtered_resps"] for s in samples]
    assert len(answers) == 2 and all(a.startswith("Video ") and a.endswith("can not load, check the source")
                                     for a in answers)
