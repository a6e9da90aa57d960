"""Thin ConViS wrappers around lmms-eval's own HF video models (``--model convis_qwen2_5_vl``, ``convis_llava_hf``).

Each class *is* the harness class (it subclasses it and calls its ``__init__`` and ``generate_until``); the
wrapper adds only what the ConViS input needs and the harness does not do. The pair clip must reach the model
frame for frame: the wrappers check, per request, that the frames the harness is about to sample from the clip are
exactly all of its frames, in order, and refuse (``ValueError`` naming the model argument to change) instead of
silently resampling or mixing the two halves. ``convis_qwen2_5_vl`` also makes the harness's chat class a simple
model, so that ``convis_resumable`` can wrap it.

Documented in docs/models.md, with the plain harness commands that are faithful when their frame arguments are right.
"""

from __future__ import annotations

import os
from typing import List

from lmms_eval.api.instance import GenerationResult, Instance
from lmms_eval.models.chat import qwen2_5_vl as _qwen_chat
from lmms_eval.models.simple import llava_hf as _llava_simple

from convis_tasks.video.decode import count_frames

VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".flv", ".wmv")


def _cpu_defaults(kwargs: dict, *keys: str) -> dict:
    """On a machine without CUDA, default the harness's ``device`` (and ``device_map``) to ``cpu`` (the harness
    defaults are ``cuda`` / ``auto``, and its Qwen class sends inputs to ``cuda`` when ``device_map=auto``)."""
    import torch

    if not torch.cuda.is_available():
        for key in keys:
            kwargs.setdefault(key, "cpu")
    return kwargs


def _text(result) -> str:
    return result.text if isinstance(result, GenerationResult) else result


def _videos(visuals) -> list[str]:
    visuals = list(visuals or [])
    for v in visuals:
        if not (isinstance(v, str) and v.lower().endswith(VIDEO_SUFFIXES)):
            raise ValueError(f"expected video file paths from the ConViS task, got {type(v).__name__}: {v!r:.80}")
    return visuals


class ConvisQwen2_5_VL(_qwen_chat.Qwen2_5_VL):
    """``--model convis_qwen2_5_vl``: lmms-eval's ``qwen2_5_vl`` (its chat implementation) as a simple model.

    Requests are handed to the harness's chat ``generate_until`` as one user turn, ``[video(s)..., text]`` (what
    lmms-eval builds for chat models from ``doc_to_visual`` + ``doc_to_text``), so the frames are chosen as the chat
    class chooses them, and ``convis_resumable`` (simple models only) can wrap it. Model arguments are the harness's
    (``pretrained``, ``max_num_frames``, ``fps``, ``min_pixels``, ``max_pixels``, ``attn_implementation``, ...);
    ``device`` / ``device_map`` default to ``cpu`` where CUDA is absent.

    Checked per request: with one video (the pair clip) the harness must take all its frames (``max_num_frames`` >=
    clip length, ``fps`` unset or >= the clip's 1 fps) and each video's half must fill whole temporal patches
    (``temporal_patch_size`` 2: N even), else one vision token would mix the last frame of video 1 with the first
    of video 2. With two videos (``input: two_videos``) both go in, in order, each sampled to
    ``min(max_num_frames, frames of video 1)`` frames by the harness (set ``max_num_frames=N``).
    """

    is_simple = True

    def __init__(self, **kwargs) -> None:
        _cpu_defaults(kwargs, "device", "device_map")
        super().__init__(**kwargs)

    def _check_pair_clip(self, path: str) -> None:
        total = count_frames(path)
        if self.fps is not None:  # the harness hands `fps` to qwen-vl-utils, which counts frames thus
            from decord import VideoReader
            from qwen_vl_utils.vision_process import smart_nframes

            taken = smart_nframes({"fps": self.fps}, total, VideoReader(path).get_avg_fps())
        else:
            taken = max(2, (min(self.max_num_frames, total) // 2) * 2)
        if taken != total:
            raise ValueError(
                f"convis_qwen2_5_vl: the pair clip {path} has {total} frames but the harness would sample {taken} "
                f"(max_num_frames={self.max_num_frames}, fps={self.fps}); set max_num_frames>={total} and leave fps "
                "unset so that every frame reaches the model once, in order")
        tps = int(getattr(getattr(self.model.config, "vision_config", None), "temporal_patch_size", 2) or 1)
        if (total // 2) % tps:
            raise ValueError(
                f"convis_qwen2_5_vl: the pair clip {path} has {total} frames, {total // 2} per video; the model merges "
                f"{tps} consecutive frames into one temporal patch, so the last frame of video 1 and the first of "
                f"video 2 would share a vision token. Use a frames_per_video divisible by {tps}")

    def generate_until(self, requests: List[Instance]) -> List[str]:
        adapted = []
        for request in requests:
            context, gen_kwargs, doc_to_visual, doc_id, task, split = request.args
            videos = _videos(doc_to_visual(self.task_dict[task][split][doc_id]))
            if len(videos) == 1:
                self._check_pair_clip(videos[0])

            def doc_to_messages(doc, _context=context, _doc_to_visual=doc_to_visual):
                content = [{"type": "video", "url": v} for v in _videos(_doc_to_visual(doc))]
                return [{"role": "user", "content": content + [{"type": "text", "text": _context}]}]

            adapted.append(Instance(request_type=request.request_type, idx=request.idx, metadata=request.metadata,
                                    arguments=(context, doc_to_messages, gen_kwargs, doc_id, task, split)))
        return [_text(r) for r in super().generate_until(adapted)]


class ConvisLlavaHf(_llava_simple.LlavaHf):
    """``--model convis_llava_hf``: lmms-eval's simple ``llava_hf`` (HF-format LLaVA, e.g.
    ``llava-hf/llava-onevision-qwen2-7b-ov-hf``) with the pair clip passed frame for frame.

    The harness samples ``np.linspace(0, T - 1, max_frames_num)`` frames: the identity when ``max_frames_num``
    equals the clip length, but with its default 32 on a 16-frame clip it repeats frames unevenly (frame 0 three
    times) and the 17th position, in the second half of the sequence, is still video 1's last frame. This
    wrapper takes every frame of the clip once, in order, whenever the clip has at most ``max_frames_num``
    frames, and refuses longer clips. ``llava_hf`` takes one video per request: ``input: two_videos`` is refused
    (the harness would silently read only the first video). ``device`` defaults to ``cpu`` where CUDA is absent, and
    in a single process ``device_map`` defaults to ``device`` (transformers rejects the harness's default ``""``).
    """

    def __init__(self, **kwargs) -> None:
        _cpu_defaults(kwargs, "device")
        if int(os.environ.get("WORLD_SIZE", "1")) == 1:
            # the harness's default device_map "" is rejected by transformers 4.55 and 5 ("When passing device_map
            # as a string, the value needs to be a device name ... but found ."); one process: the model on `device`
            kwargs.setdefault("device_map", kwargs.get("device", "cuda"))
        super().__init__(**kwargs)

    def load_video(self, video_path, max_frames_num):
        """The harness's own reader, asked for exactly the clip's length (its ``linspace`` is then the identity)."""
        path = video_path if isinstance(video_path, str) else video_path[0]
        return super().load_video(video_path, count_frames(path))

    def generate_until(self, requests: List[Instance]) -> List[str]:
        for request in requests:
            _, _, doc_to_visual, doc_id, task, split = request.args
            videos = _videos(doc_to_visual(self.task_dict[task][split][doc_id]))
            if len(videos) != 1:
                raise ValueError(f"convis_llava_hf takes one video per request (the pair clip, input: concat); got "
                                 f"{len(videos)}: the harness would read only the first")
            total = count_frames(videos[0])
            if total > self.max_frames_num:
                raise ValueError(f"convis_llava_hf: the pair clip {videos[0]} has {total} frames, more than "
                                 f"max_frames_num={self.max_frames_num}; raise max_frames_num to {total}")
        return [_text(r) for r in super().generate_until(requests)]


__all__ = ["ConvisQwen2_5_VL", "ConvisLlavaHf"]
