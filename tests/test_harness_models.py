"""lmms-eval's own model classes, driven by the ConViS tasks, with tiny offline checkpoints (CPU).

Every test builds the real task (``TaskManager(include_path=convis_tasks.task_path())``) on the bundled demo set,
runs the real evaluator (``lmms_eval.evaluator.simple_evaluate``, ``limit=2``) with a harness model class loaded by
path from a checkpoint folder written by ``tests/tiny_models.py``, and captures what reaches the model: the
keyword arguments of ``generate`` (``pixel_values_videos``, ``video_grid_thw``, ``second_per_grid_ts``,
``input_ids``), or the request an OpenAI-compatible server receives. From those it rebuilds the frames and checks
them against the demo videos: 2N frames, the first N from video 1 and the last N from video 2, in order (within
codec and resize noise), and the rendered ConViS prompt in the text.
"""

from __future__ import annotations

import base64
import importlib.util
import io
import json
import os
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

pytestmark = [
    pytest.mark.skipif(
        importlib.util.find_spec("lmms_eval") is None or importlib.util.find_spec("transformers") is None,
        reason="lmms-eval / transformers are not installed (pip install -e '.[harness]')"),
    # two pairs answered by a random tiny model: the correlation is often undefined (constant answers)
    pytest.mark.filterwarnings("ignore:correlation undefined"),
]

from convis_tasks import task_path  # noqa: E402
from convis_tasks.reading.datafolder import DEMO_DIR  # noqa: E402
from convis_tasks.prompting import render_prompt  # noqa: E402
from convis_tasks.video.decode import count_frames, read_frames  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from tiny_models import OPENAI_CLIP_MEAN, OPENAI_CLIP_STD  # noqa: E402

N = 8  # frames per video in the stock tasks (2N = 16 per pair clip)
TASK = "convis_location"
PROMPT = render_prompt("benchmark", "Location")
QWEN_ARGS = "min_pixels=3136,max_pixels=12544"  # 64x64 demo frames -> 56x56, 4x4 patches of 14


# --------------------------------------------------------------------------------------------
# fixtures
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    """The demo data, a private clip cache and no network, for the whole module."""
    root = tmp_path_factory.mktemp("harness_models")
    with pytest.MonkeyPatch.context() as mp:
        for key, value in {"CONVIS_DATA_DIR": str(DEMO_DIR), "CONVIS_CACHE_DIR": str(root / "clips"),
                           "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
                           "HF_DATASETS_CACHE": str(root / "hf_datasets"), "NO_PROXY": "127.0.0.1,localhost",
                           "no_proxy": "127.0.0.1,localhost"}.items():
            mp.setenv(key, value)
        yield root


@pytest.fixture(scope="module")
def user_tasks(tmp_path_factory):
    """User-defined variants (the README route: own YAML including the template): the two original videos
    instead of the pair clip, and an odd N."""
    folder = tmp_path_factory.mktemp("user_tasks")
    for name, kwargs in {"convis_location_two_videos": "frames_per_video: 8, input: two_videos",
                         "convis_location_odd": "frames_per_video: 3, input: concat"}.items():
        (folder / f"{name}.yaml").write_text(
            f"task: {name}\ninclude: {task_path()}/_template_yaml\n"
            "process_docs: !function convis_tasks.hooks.docs_location\n"
            f"lmms_eval_specific_kwargs:\n  default: {{prompt: benchmark, {kwargs}}}\n")
    return folder


@pytest.fixture
def captured(monkeypatch):
    """Every ``generate`` call of the two HF model classes, with its keyword arguments (tensors cloned)."""
    import transformers

    calls = []
    for name in ("Qwen2_5_VLForConditionalGeneration", "LlavaOnevisionForConditionalGeneration"):
        cls = getattr(transformers, name)
        original = cls.generate

        def generate(self, *args, _original=original, **kwargs):
            calls.append({k: (v.detach().clone() if hasattr(v, "detach") else v) for k, v in kwargs.items()})
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(cls, "generate", generate)
    return calls


def _evaluate(model, tasks=(TASK,), model_args="", include=(), limit=2):
    from lmms_eval.evaluator import simple_evaluate
    from lmms_eval.tasks import TaskManager

    manager = TaskManager(include_path=[task_path(), *map(str, include)], include_defaults=False)
    return simple_evaluate(model=model, model_args=model_args, tasks=list(tasks), limit=limit,
                           task_manager=manager, batch_size=1, log_samples=True)


def _docs():
    return [json.loads(line) for line in (DEMO_DIR / "ConVIS.jsonl").read_text().splitlines() if line.strip()]


def _pair(doc_id: int) -> tuple[Path, Path]:
    doc = _docs()[doc_id]
    return DEMO_DIR / doc["video1"], DEMO_DIR / doc["video2"]


# --------------------------------------------------------------------------------------------
# from model inputs back to frames
# --------------------------------------------------------------------------------------------


def _denormalise(x: np.ndarray) -> np.ndarray:
    """``(..., C, H, W)`` CLIP-normalised floats -> ``(..., H, W, C)`` 0-255."""
    x = np.moveaxis(np.asarray(x, np.float64), -3, -1)
    return (x * np.asarray(OPENAI_CLIP_STD) + np.asarray(OPENAI_CLIP_MEAN)) * 255.0


def qwen_frames(call: dict, patch: int = 14, merge: int = 2, tps: int = 2) -> list[np.ndarray]:
    """Undo Qwen2-VL's video patch layout (transformers ``Qwen2VLVideoProcessor.patchify``): rows are
    ``(t, h/merge, w/merge, merge_h, merge_w)``, columns ``(C, temporal, patch_h, patch_w)``."""
    rows = call["pixel_values_videos"].float().numpy()
    videos, start = [], 0
    for gt, gh, gw in call["video_grid_thw"].tolist():
        block = rows[start:start + gt * gh * gw]
        start += gt * gh * gw
        x = block.reshape(gt, gh // merge, gw // merge, merge, merge, 3, tps, patch, patch)
        x = x.transpose(0, 6, 5, 1, 3, 7, 2, 4, 8).reshape(gt * tps, 3, gh * patch, gw * patch)
        videos.append(_denormalise(x))
    assert start == len(rows)
    return videos


def llava_frames(call: dict) -> list[np.ndarray]:
    return [_denormalise(v) for v in call["pixel_values_videos"].float().numpy()]


def _resized(frames: np.ndarray, height: int, width: int) -> np.ndarray:
    if frames.shape[1:3] == (height, width):
        return frames.astype(np.float64)
    from PIL import Image

    return np.stack([np.asarray(Image.fromarray(f).resize((width, height), Image.Resampling.BICUBIC))
                     for f in frames]).astype(np.float64)


def assert_frames_match(got: np.ndarray, video: Path, indices, *, tol: float = 1.5, what: str = "") -> None:
    """Frame for frame, ``got`` is ``video``'s frames at ``indices`` (resized to ``got``'s size), within codec
    noise, and closer to them than to the frames at the same positions of any other demo video."""
    import decord

    frames = decord.VideoReader(str(video)).get_batch(list(indices)).asnumpy()
    expected = _resized(frames, *got.shape[1:3])
    diff = np.abs(got - expected).mean(axis=(1, 2, 3))
    assert diff.max() < tol, f"{what}: mean abs error per frame {np.round(diff, 2).tolist()}"
    for other in sorted((DEMO_DIR / "videos").glob("*.mp4")):
        if other.name == video.name:
            continue
        alt = _resized(decord.VideoReader(str(other)).get_batch(list(indices)).asnumpy(), *got.shape[1:3])
        assert np.abs(got - alt).mean() > np.abs(got - expected).mean(), f"{what}: closer to {other.name}"


def assert_pair_clip(frames: np.ndarray, doc_id: int, what: str) -> None:
    video1, video2 = _pair(doc_id)
    first = list(np.linspace(0, count_frames(video1) - 1, N, dtype=int))  # the benchmark's sampling
    second = list(np.linspace(0, count_frames(video2) - 1, N, dtype=int))
    assert len(frames) == 2 * N, f"{what}: {len(frames)} frames reach the model"
    assert_frames_match(frames[:N], video1, first, what=f"{what}, first half")
    assert_frames_match(frames[N:], video2, second, what=f"{what}, second half")


def which_pair(frames: np.ndarray, what: str, docs=(0, 1)) -> int:
    """The demo pair whose pair clip ``frames`` are (see :func:`assert_pair_clip`); fails if none."""
    errors = []
    for doc_id in docs:
        try:
            assert_pair_clip(frames, doc_id, f"{what} (as doc {doc_id})")
            return doc_id
        except AssertionError as exc:
            errors.append(str(exc))
    pytest.fail("; ".join(errors))


def _prompt_text(call: dict, checkpoint: Path) -> str:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(checkpoint)).decode(call["input_ids"][0])


# --------------------------------------------------------------------------------------------
# Qwen2.5-VL: lmms-eval's qwen2_5_vl (simple and chat classes) and --model convis_qwen2_5_vl
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["simple", "chat"])
def test_harness_qwen2_5_vl_receives_the_pair_clip_frame_for_frame(env, qwen_dir, captured, kind):
    import lmms_eval.models.chat.qwen2_5_vl as chat
    import lmms_eval.models.simple.qwen2_5_vl as simple

    cls = simple.Qwen2_5_VL if kind == "simple" else chat.Qwen2_5_VL
    lm = cls(pretrained=str(qwen_dir), device="cpu", device_map="cpu", min_pixels=3136, max_pixels=12544,
             max_num_frames=16)
    model = lm.model  # the evaluator releases it at the end
    results = _evaluate(lm)
    assert results["results"][TASK]["n,none"] == 2 and len(captured) == 2
    seen = set()
    for call in captured:
        assert call["video_grid_thw"].tolist() == [[N, 4, 4]]  # 2N frames in temporal patches of 2, 56x56 px
        (frames,) = qwen_frames(call)
        seen.add(which_pair(frames, f"qwen2_5_vl {kind}"))
        text = _prompt_text(call, qwen_dir)
        assert PROMPT in text
        assert text.index("<|video_pad|>") < text.index(PROMPT)  # the video comes before the question
        assert text.count("<|video_pad|>") == N * 4  # 8 temporal patches x (4x4 patches / 2x2 merge)
    assert seen == {0, 1}
    # Neither class hands the processor a frame rate (the chat class drops the `fps` qwen-vl-utils returns), so
    # transformers 4.55's Qwen2.5-VL processor assumes its default 2 fps: temporal_patch_size 2 / 2 fps = 1 s per
    # temporal patch, whereas the 1-fps clip has 2 s. The 8 temporal patches keep their order, at temporal position
    # ids t x 1 s x tokens_per_second 2 = 0, 2, ..., 14 (half the clip's own time scale).
    assert captured[0]["second_per_grid_ts"].tolist() == [1.0]
    assert _temporal_positions(model, captured[0]) == [0, 2, 4, 6, 8, 10, 12, 14]


def _temporal_positions(model, call: dict) -> list[int]:
    """M-RoPE temporal position id of each temporal patch of the (single) video, relative to the first."""
    position_ids, _ = model.model.get_rope_index(
        call["input_ids"], video_grid_thw=call["video_grid_thw"], second_per_grid_ts=call["second_per_grid_ts"],
        attention_mask=call["attention_mask"])
    temporal = position_ids[0, 0][call["input_ids"][0] == model.config.video_token_id]
    per_patch = temporal.reshape(int(call["video_grid_thw"][0, 0]), -1)[:, 0]
    return (per_patch - per_patch[0]).tolist()


def test_convis_qwen2_5_vl_end_to_end_through_the_entry_point(env, qwen_dir, captured):
    results = _evaluate("convis_qwen2_5_vl", model_args=f"pretrained={qwen_dir},{QWEN_ARGS}")
    assert results["results"][TASK]["n,none"] == 2
    assert results["results"][TASK]["unparsed,none"] == 0  # the tiny model answers digits
    samples = results["samples"][TASK]
    assert [s["arguments"][0] for s in samples] == [PROMPT, PROMPT]
    assert {s["resps"][0][0] for s in samples} <= set("12345")
    seen = set()
    for call in captured:
        (frames,) = qwen_frames(call)
        seen.add(which_pair(frames, "convis_qwen2_5_vl"))
        assert PROMPT in _prompt_text(call, qwen_dir)
        assert call["second_per_grid_ts"].tolist() == [1.0]  # as the harness's chat class (see above)
    assert seen == {0, 1}


def test_convis_qwen2_5_vl_takes_two_videos_in_order(env, qwen_dir, captured, user_tasks):
    import torch

    task = "convis_location_two_videos"
    results = _evaluate("convis_qwen2_5_vl", tasks=[task], include=[user_tasks],
                        model_args=f"pretrained={qwen_dir},{QWEN_ARGS},max_num_frames={N}")
    assert results["results"][task]["n,none"] == 2
    seen = set()
    for call in captured:
        assert call["video_grid_thw"].tolist() == [[N // 2, 4, 4], [N // 2, 4, 4]]
        first, second = qwen_frames(call)
        text = _prompt_text(call, qwen_dir)
        assert text.count("<|vision_start|>") == 2 and PROMPT in text
        errors = []
        for doc_id in (0, 1):
            video1, video2 = _pair(doc_id)
            try:
                # qwen-vl-utils takes N frames of each video, at round(linspace(0, T - 1, N))
                for video, got, which in ((video1, first, "video 1"), (video2, second, "video 2")):
                    idx = torch.linspace(0, count_frames(video) - 1, N).round().long().tolist()
                    assert_frames_match(got, video, idx, what=f"two videos as doc {doc_id}, {which}")
                seen.add(doc_id)
                break
            except AssertionError as exc:
                errors.append(str(exc))
        else:
            pytest.fail("; ".join(errors))
    assert seen == {0, 1}


def test_convis_qwen2_5_vl_refuses_inputs_it_would_resample_or_mix(env, qwen_dir, user_tasks):
    from lmms_eval.models import get_model

    model = get_model("convis_qwen2_5_vl")
    for args in ({"max_num_frames": 8}, {"fps": 0.5}):  # 8 of the 16 frames, or 1 frame every 2 s of the 1-fps clip
        with pytest.raises(ValueError, match="max_num_frames"):
            _evaluate(model(pretrained=str(qwen_dir), min_pixels=3136, max_pixels=12544, **args))
    with pytest.raises(ValueError, match="temporal patch"):  # N = 3: frames 2 and 3 would share a vision token
        _evaluate("convis_qwen2_5_vl", tasks=["convis_location_odd"], include=[user_tasks],
                  model_args=f"pretrained={qwen_dir},{QWEN_ARGS}")


def test_convis_resumable_journals_convis_qwen2_5_vl(env, qwen_dir, captured, tmp_path):
    args = f"inner=convis_qwen2_5_vl,journal={tmp_path / 'journal'},pretrained={qwen_dir},{QWEN_ARGS}"
    first = _evaluate("convis_resumable", model_args=args)
    assert len(captured) == 2
    again = _evaluate("convis_resumable", model_args=args)
    assert len(captured) == 2  # every answer came from the journal
    answers = [[s["resps"] for s in run["samples"][TASK]] for run in (first, again)]
    assert answers[0] == answers[1]


# --------------------------------------------------------------------------------------------
# LLaVA-OneVision (HF format): lmms-eval's llava_hf and --model convis_llava_hf
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind,max_frames_num", [("simple", 16), ("simple", 32), ("chat", 32)])
def test_harness_llava_hf_receives_the_clip(env, llava_dir, captured, kind, max_frames_num):
    import lmms_eval.models.chat.llava_hf as chat
    import lmms_eval.models.simple.llava_hf as simple

    cls = simple.LlavaHf if kind == "simple" else chat.LlavaHf
    lm = cls(pretrained=str(llava_dir), device="cpu", device_map="cpu", max_frames_num=max_frames_num)
    if kind == "chat":
        # `--model llava_hf` resolves to this class. It passes `images=[]` with the video, and transformers 4.55's
        # LLaVA-OneVision image processor indexes images[0]: every video-only request fails before reaching the
        # model. Use the simple class (--force_simple) or convis_llava_hf.
        with pytest.raises(IndexError):
            _evaluate(lm)
        assert not captured
        return
    _evaluate(lm)
    assert len(captured) == 2
    seen = set()
    for call in captured:
        (frames,) = llava_frames(call)
        assert PROMPT in _prompt_text(call, llava_dir)
        if max_frames_num == 16:  # 2N: linspace(0, 15, 16) is the identity
            seen.add(which_pair(frames, "llava_hf max_frames_num=16"))
        else:  # the harness default on a 16-frame clip: uneven repeats; position 16 is still video 1's last frame
            idx = np.linspace(0, 2 * N - 1, 32, dtype=int)
            assert len(frames) == 32 and idx[16] == N - 1 and list(idx[:3]) == [0, 0, 0]
            for doc_id in (0, 1):
                clip = read_frames(_clip_of(doc_id), 2 * N).astype(np.float64)
                if np.abs(frames - clip[idx]).mean() < 1.5:
                    seen.add(doc_id)
    assert seen == {0, 1}


def _clip_of(doc_id: int) -> str:
    from convis_tasks.video.cache import PairClipCache

    video1, video2 = _pair(doc_id)
    return PairClipCache().get(video1, video2, n_frames=N)


def test_convis_llava_hf_end_to_end_passes_every_clip_frame_once(env, llava_dir, captured):
    results = _evaluate("convis_llava_hf", model_args=f"pretrained={llava_dir}")  # harness default max_frames_num=32
    assert results["results"][TASK]["n,none"] == 2 and results["results"][TASK]["unparsed,none"] == 0
    seen = set()
    for call in captured:
        assert tuple(call["pixel_values_videos"].shape) == (1, 2 * N, 3, 64, 64)
        (frames,) = llava_frames(call)
        seen.add(which_pair(frames, "convis_llava_hf"))
        text = _prompt_text(call, llava_dir)
        assert PROMPT in text and text.count("<video>") == 2 * N * 4 + 1  # 2x2 pooled patches per frame + newline
    assert seen == {0, 1}


def test_convis_llava_hf_refuses_two_videos(env, llava_dir, user_tasks):
    with pytest.raises(ValueError, match="one video per request"):
        _evaluate("convis_llava_hf", tasks=["convis_location_two_videos"], include=[user_tasks],
                  model_args=f"pretrained={llava_dir}")


# --------------------------------------------------------------------------------------------
# an OpenAI-compatible API model (lmms-eval's openai) against a local stub server
# --------------------------------------------------------------------------------------------


class _StubServer:
    """``POST /v1/chat/completions`` on 127.0.0.1: records each request body and answers ``"4"``."""

    def __init__(self):
        requests = self.requests = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                requests.append(body)
                reply = json.dumps({"id": "stub", "object": "chat.completion", "created": 0, "model": body["model"],
                                    "choices": [{"index": 0, "finish_reason": "stop",
                                                 "message": {"role": "assistant", "content": "4"}}],
                                    "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}})
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply.encode())

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def api():
    server = _StubServer()
    yield server
    server.close()


def _png_frames(content: list) -> np.ndarray:
    from PIL import Image

    return np.stack([np.asarray(Image.open(io.BytesIO(base64.b64decode(c["image_url"]["url"].split(",", 1)[1]))))
                     for c in content if c["type"] == "image_url"])


def _openai(api, **args):
    from lmms_eval.models import get_model

    base = dict(model_version="stub", base_url=api.url, api_key="none", httpx_trust_env=False, num_concurrent=1,
                max_retries=1)
    base.update(args)
    chat = base.pop("chat", False)
    return get_model("openai", force_simple=not chat)(**base)


def test_openai_simple_receives_the_pair_clip_frames(env, api):
    results = _evaluate(_openai(api, max_frames_num=2 * N))
    assert results["results"][TASK]["n,none"] == 2 and len(api.requests) == 2
    seen = set()
    for request in api.requests:
        content = request["messages"][0]["content"]
        assert content[0] == {"type": "text", "text": PROMPT}
        frames = _png_frames(content)
        doc_id = which_pair(frames.astype(np.float64), "openai")
        assert np.array_equal(frames, read_frames(_clip_of(doc_id), 2 * N))  # PNG: the clip's frames, exactly
        seen.add(doc_id)
    assert seen == {0, 1}


def test_openai_simple_takes_two_videos_in_order(env, api, user_tasks):
    task = "convis_location_two_videos"
    results = _evaluate(_openai(api, max_frames_num=N), tasks=[task], include=[user_tasks])
    assert results["results"][task]["n,none"] == 2 and len(api.requests) == 2
    seen = set()
    for request in api.requests:
        frames = _png_frames(request["messages"][0]["content"])
        assert len(frames) == 2 * N
        for doc_id in range(2):
            video1, video2 = _pair(doc_id)
            # PNG is lossless: the frames are exactly the benchmark's N frames of video 1, then of video 2
            if np.array_equal(frames, np.concatenate([read_frames(video1, N), read_frames(video2, N)])):
                seen.add(doc_id)
    assert seen == {0, 1}


def test_openai_chat_passes_both_video_urls_in_order(env, api, user_tasks):
    task = "convis_location_two_videos"
    _evaluate(_openai(api, chat=True, pass_video_url=True, max_frames_num=N), tasks=[task], include=[user_tasks])
    pairs = {tuple(f"file://{os.path.abspath(p)}" for p in _pair(i)) for i in range(2)}
    got = set()
    for request in api.requests:
        content = request["messages"][0]["content"]
        assert [c["type"] for c in content] == ["video_url", "video_url", "text"] and content[2]["text"] == PROMPT
        got.add(tuple(c["video_url"]["url"] for c in content[:2]))
        assert request["media_io_kwargs"] == {"video": {"num_frames": N}}
    assert got == pairs


# --------------------------------------------------------------------------------------------
# a harness interaction found while driving real models: lmms-eval computes a CLT "stderr" from each record's
# `score_key` field; the task template names a field our records do not have, so an unparsed (None) score
# cannot reach np.std
# --------------------------------------------------------------------------------------------


def test_one_unparsed_answer_does_not_crash_lmms_eval_aggregation(env):
    import torch
    from lmms_eval.api.model import lmms

    class Answers(lmms):
        def __init__(self):
            super().__init__()
            self._device = torch.device("cpu")

        @property
        def device(self):
            return self._device

        def generate_until(self, requests):
            return ["3", "I cannot tell"][: len(requests)]

        def loglikelihood(self, requests):
            raise NotImplementedError

        def generate_until_multi_round(self, requests):
            raise NotImplementedError

    results = _evaluate(Answers())
    assert results["results"][TASK]["unparsed,none"] == 1
