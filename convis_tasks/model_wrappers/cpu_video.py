"""Video input for transformers' Qwen2/2.5-VL and LLaVA-OneVision processors without torchvision.

Why this exists (measured on this project's CPU install: torch 2.13.0+cpu, transformers 5.23, no torchvision):

* every transformers *video* processor (``Qwen2VLVideoProcessor``, ``LlavaOnevisionVideoProcessor``, ...) derives
  from ``BaseVideoProcessor``, which is declared ``requires(backends=("vision", "torchvision"))``; without
  torchvision, ``AutoProcessor.from_pretrained`` of any Qwen2.5-VL or LLaVA-OneVision checkpoint stops with
  ``ImportError: Qwen2VLVideoProcessor requires the Torchvision library but it was not found in your
  environment``, so the harness's ``qwen2_5_vl`` and ``llava_hf`` classes cannot even be constructed;
* ``qwen_vl_utils`` (0.0.14) imports torchvision at module level, so lmms-eval's ``process_vision_info`` is
  ``None`` and the first video request fails with ``TypeError: 'NoneType' object is not callable``
  (``FORCE_QWENVL_VIDEO_READER=decord`` does not help: the import fails before any reader is chosen).

This module provides drop-in replacements for exactly those two leaves, nothing else:

* :class:`QwenVLVideoProcessor` and :class:`LlavaOnevisionVideoProcessor`: numpy/PIL video processors with the
  output contract of transformers' torchvision ones (``pixel_values_videos`` / ``video_grid_thw`` /
  ``video_metadata``); they take frame arrays/tensors, or a file path, which is decoded whole, in order;
* :func:`load_processor`: builds the model's *own* transformers processor class (``Qwen2_5_VLProcessor``,
  ``LlavaOnevisionProcessor``, ...) from a checkpoint with such a video processor plugged in, so prompt
  expansion, tokenisation and ``second_per_grid_ts`` stay transformers' code;
* :func:`process_vision_info`: the qwen-vl-utils function with the same signature and frame-selection rules
  (``nframes`` / ``fps`` / ``min_frames`` / ``max_frames``, ``min_pixels`` / ``max_pixels`` / ``total_pixels``),
  decoding with decord (PyAV fallback) and resizing with Pillow's bicubic filter;
* :func:`harness_module_patched`: temporarily binds those into an lmms-eval model module (``AutoProcessor``,
  ``process_vision_info``) while its class is built or generates. It does nothing when torchvision is present.

The only numerical difference from the torchvision path is the resampling kernel when a frame has to be resized
(Pillow bicubic instead of torchvision's antialiased bicubic); frames that already have the target size pass
through unchanged.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np
from transformers.utils import PushToHubMixin

__all__ = [
    "torchvision_available",
    "QwenVLVideoProcessor",
    "LlavaOnevisionVideoProcessor",
    "load_processor",
    "process_vision_info",
    "harness_module_patched",
    "read_video_frames",
]

OPENAI_CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


def torchvision_available() -> bool:
    """Whether transformers sees a usable torchvision (its video processors are real classes, not stubs)."""
    from transformers.utils import is_torchvision_available

    return bool(is_torchvision_available())


# --------------------------------------------------------------------------------------------
# frame arithmetic shared by the processors
# --------------------------------------------------------------------------------------------


def _to_thwc_uint8_or_float(video: Any) -> np.ndarray:
    """One video as a ``(T, H, W, C)`` array; accepts torch tensors / numpy arrays in THWC or TCHW or a list of
    frames (PIL images or arrays). Values stay as given (uint8 0-255, or float 0-255 as qwen-vl-utils returns)."""
    if isinstance(video, (list, tuple)):
        frames = [np.asarray(f) for f in video]
        arr = np.stack(frames)
    else:
        arr = video.detach().cpu().numpy() if hasattr(video, "detach") else np.asarray(video)
    if arr.ndim == 3:  # a single frame
        arr = arr[None]
    if arr.ndim != 4:
        raise ValueError(f"a video must have 4 dimensions (frames, ...), got shape {arr.shape}")
    if arr.shape[-1] not in (1, 3) and arr.shape[1] in (1, 3):
        arr = arr.transpose(0, 2, 3, 1)
    if arr.shape[-1] == 1:
        arr = np.repeat(arr, 3, axis=-1)
    return arr


def _resize_frames(frames: np.ndarray, height: int, width: int) -> np.ndarray:
    """Bicubic resize (Pillow) of ``(T, H, W, C)`` frames; frames already at the size pass through unchanged."""
    if frames.shape[1:3] == (height, width):
        return frames
    from PIL import Image

    bicubic = getattr(Image, "Resampling", Image).BICUBIC
    out = []
    for frame in frames:
        f = frame if frame.dtype == np.uint8 else np.clip(np.rint(frame), 0, 255).astype(np.uint8)
        out.append(np.asarray(Image.fromarray(f).resize((width, height), bicubic)))
    return np.stack(out)


def _rescale_normalize(frames: np.ndarray, rescale_factor: float | None, mean, std) -> np.ndarray:
    x = frames.astype(np.float32)
    if rescale_factor is not None:
        x = x * np.float32(rescale_factor)
    if mean is not None and std is not None:
        x = (x - np.asarray(mean, np.float32)) / np.asarray(std, np.float32)
    return x


def qwen_smart_resize(height: int, width: int, factor: int, min_pixels: int, max_pixels: int) -> tuple[int, int]:
    """Qwen-VL's resize rule: both sides multiples of ``factor``, area within ``[min_pixels, max_pixels]``,
    aspect ratio kept as well as possible (transformers' own implementation is used when importable)."""
    try:
        from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import smart_resize

        return tuple(int(v) for v in smart_resize(height, width, factor=factor, min_pixels=min_pixels,
                                                   max_pixels=max_pixels))
    except ImportError:  # pragma: no cover - older transformers layouts
        h_bar = max(factor, round(height / factor) * factor)
        w_bar = max(factor, round(width / factor) * factor)
        if h_bar * w_bar > max_pixels:
            beta = math.sqrt((height * width) / max_pixels)
            h_bar = max(factor, math.floor(height / beta / factor) * factor)
            w_bar = max(factor, math.floor(width / beta / factor) * factor)
        elif h_bar * w_bar < min_pixels:
            beta = math.sqrt(min_pixels / (height * width))
            h_bar = math.ceil(height * beta / factor) * factor
            w_bar = math.ceil(width * beta / factor) * factor
        return h_bar, w_bar


def _read_config(path: str | os.PathLike, names: Sequence[str]) -> dict:
    for name in names:
        candidate = Path(os.fspath(path)) / name
        if candidate.is_file():
            data = json.loads(candidate.read_text())
            if name == "processor_config.json":  # nested layout: {"video_processor": {...}}
                data = data.get("video_processor", {}) if isinstance(data.get("video_processor"), dict) else {}
                if not data:
                    continue
            return data
    return {}


def _resolve_local(pretrained: str, **kwargs) -> str:
    """A local folder for ``pretrained`` (a path, or a hub id already in the cache / downloadable)."""
    if Path(os.fspath(pretrained)).is_dir():
        return str(pretrained)
    from huggingface_hub import snapshot_download

    allow = ["*.json", "*.jinja", "*.txt", "*.model", "*.tiktoken"]
    return snapshot_download(pretrained, revision=kwargs.get("revision") or None, allow_patterns=allow,
                             cache_dir=kwargs.get("cache_dir"), token=kwargs.get("token"))


class _VideoProcessorBase(PushToHubMixin):
    """Common plumbing: configuration, ``from_pretrained``, batching and metadata. (``PushToHubMixin`` only so
    that transformers serialises the owning processor's repr through :meth:`to_dict`.)"""

    config_files = ("video_preprocessor_config.json", "processor_config.json", "preprocessor_config.json")
    defaults: dict = {}
    model_input_names: list[str] = []

    def __init__(self, **config) -> None:
        merged = dict(self.defaults)
        merged.update({k: v for k, v in config.items() if v is not None})
        self._apply_size_aliases(merged)
        for key, value in merged.items():
            setattr(self, key, value)
        self.config = merged

    def _apply_size_aliases(self, config: dict) -> None:  # overridden where min/max_pixels mean something
        config.pop("min_pixels", None)
        config.pop("max_pixels", None)

    @classmethod
    def from_pretrained(cls, pretrained: str | os.PathLike, **kwargs):
        """Read the checkpoint's video processor config (falling back to the image processor config, as
        transformers does); ``min_pixels`` / ``max_pixels`` / ``size`` keyword arguments override it."""
        folder = _resolve_local(str(pretrained), **kwargs)
        config = _read_config(folder, cls.config_files)
        for key in ("min_pixels", "max_pixels", "size", "do_resize", "image_mean", "image_std"):
            if kwargs.get(key) is not None:
                config[key] = kwargs[key]
        return cls(**config)

    def to_dict(self) -> dict:
        return dict(self.config, video_processor_type=type(self).__name__)

    def to_json_string(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True, default=str)

    def __repr__(self) -> str:
        return f"{type(self).__name__} {self.to_json_string()}"

    def _prepare(self, videos, video_metadata, do_resize, do_rescale, do_normalize):
        """The videos as a list, their metadata, and the resize/rescale/normalise flags (call overrides config)."""
        videos, video_metadata = self._as_video_list(videos, video_metadata)
        return (videos, self._metadata(videos, video_metadata),
                self.do_resize if do_resize is None else do_resize,
                self.do_rescale if do_rescale is None else do_rescale,
                self.do_normalize if do_normalize is None else do_normalize)

    @staticmethod
    def _metadata(videos: list[np.ndarray], video_metadata) -> list:
        from transformers.video_utils import VideoMetadata

        if video_metadata is None:
            video_metadata = [None] * len(videos)
        elif isinstance(video_metadata, (dict, VideoMetadata)):
            video_metadata = [video_metadata]
        video_metadata = list(video_metadata)
        if len(video_metadata) != len(videos):
            raise ValueError(f"received {len(videos)} videos but {len(video_metadata)} video_metadata entries")
        out = []
        for video, meta in zip(videos, video_metadata):
            if isinstance(meta, VideoMetadata):
                out.append(meta)
                continue
            meta = dict(meta or {})
            fields = {"total_num_frames": meta.get("total_num_frames", len(video)), "fps": meta.get("fps"),
                      "frames_indices": meta.get("frames_indices", list(range(len(video)))),
                      "height": int(video.shape[1]), "width": int(video.shape[2])}
            if "duration" in meta:
                fields["duration"] = meta["duration"]
            if "video_backend" in meta:
                fields["video_backend"] = meta["video_backend"]
            if fields["frames_indices"] is not None and hasattr(fields["frames_indices"], "tolist"):
                fields["frames_indices"] = fields["frames_indices"].tolist()
            out.append(VideoMetadata(**fields))
        return out

    @staticmethod
    def _as_video_list(videos, video_metadata=None) -> tuple[list[np.ndarray], Any]:
        """Videos as ``(T, H, W, C)`` arrays. A file path is decoded whole (every frame, in order), as
        transformers' processors do for paths when ``do_sample_frames`` is off; its metadata is filled in."""
        if videos is None:
            return [], video_metadata
        if isinstance(videos, (str, os.PathLike)):
            videos = [videos]
        if hasattr(videos, "ndim") and videos.ndim == 5:  # a batch tensor/array
            return [_to_thwc_uint8_or_float(v) for v in videos], video_metadata
        if hasattr(videos, "ndim") and videos.ndim in (3, 4):
            return [_to_thwc_uint8_or_float(videos)], video_metadata
        videos = list(videos)
        if videos and not hasattr(videos[0], "ndim") and not isinstance(videos[0], (list, tuple, str, os.PathLike)):
            return [_to_thwc_uint8_or_float(videos)], video_metadata  # one video given as a list of PIL frames
        if any(isinstance(v, (str, os.PathLike)) for v in videos):
            metadata = list(video_metadata) if video_metadata is not None else [None] * len(videos)
            arrays = []
            for i, video in enumerate(videos):
                if isinstance(video, (str, os.PathLike)):
                    total, fps = _probe(os.fspath(video))
                    arrays.append(read_video_frames(video, range(total)))
                    metadata[i] = metadata[i] or {"fps": fps, "total_num_frames": total,
                                                  "frames_indices": list(range(total)), "video_backend": "convis-cpu"}
                else:
                    arrays.append(_to_thwc_uint8_or_float(video))
            return arrays, metadata
        return [_to_thwc_uint8_or_float(v) for v in videos], video_metadata

    def __call__(self, videos, **kwargs):
        return self.preprocess(videos, **kwargs)


class QwenVLVideoProcessor(_VideoProcessorBase):
    """The Qwen2-VL / Qwen2.5-VL video processor without torchvision.

    Per video: resize every frame to ``smart_resize(H, W, patch_size * merge_size, shortest_edge, longest_edge)``
    (skipped when already there), rescale and normalise, pad the frame count to a multiple of
    ``temporal_patch_size`` by repeating the last frame, and flatten into
    ``(grid_t * grid_h * grid_w, C * temporal_patch_size * patch_size**2)`` rows in the order transformers'
    ``Qwen2VLVideoProcessor.patchify`` uses (so the vision tower sees the same tensor). Frame sampling is not
    done here (``do_sample_frames`` is ignored, as in the checkpoints' default): frames are chosen upstream.
    """

    defaults = {
        "do_resize": True, "do_rescale": True, "do_normalize": True, "do_convert_rgb": True,
        "size": {"shortest_edge": 128 * 28 * 28, "longest_edge": 28 * 28 * 768},
        "rescale_factor": 1 / 255, "image_mean": list(OPENAI_CLIP_MEAN), "image_std": list(OPENAI_CLIP_STD),
        "patch_size": 14, "temporal_patch_size": 2, "merge_size": 2,
    }
    model_input_names = ["pixel_values_videos", "video_grid_thw"]

    def _apply_size_aliases(self, config: dict) -> None:
        size = dict(config.get("size") or {})
        if config.get("min_pixels") is not None:
            size["shortest_edge"] = int(config["min_pixels"])
        if config.get("max_pixels") is not None:
            size["longest_edge"] = int(config["max_pixels"])
        size.pop("min_pixels", None)
        size.pop("max_pixels", None)
        config["size"] = size
        config.pop("min_pixels", None)
        config.pop("max_pixels", None)

    def target_size(self, height: int, width: int) -> tuple[int, int]:
        return qwen_smart_resize(height, width, factor=int(self.patch_size) * int(self.merge_size),
                                 min_pixels=int(self.size["shortest_edge"]), max_pixels=int(self.size["longest_edge"]))

    def patchify(self, frames: np.ndarray) -> tuple[np.ndarray, tuple[int, int, int]]:
        """``(T, H, W, C)`` normalised frames -> flattened patches and ``(grid_t, grid_h, grid_w)``."""
        tps, ps, ms = int(self.temporal_patch_size), int(self.patch_size), int(self.merge_size)
        pad = -len(frames) % tps
        if pad:
            frames = np.concatenate([frames, np.repeat(frames[-1:], pad, axis=0)], axis=0)
        t, h, w, c = frames.shape
        gt, gh, gw = t // tps, h // ps, w // ps
        x = frames.transpose(0, 3, 1, 2)  # T, C, H, W
        x = x.reshape(gt, tps, c, gh // ms, ms, ps, gw // ms, ms, ps)
        # -> (gt, gh/ms, gw/ms, ms_h, ms_w, C, tps, ps_h, ps_w): merge windows stay contiguous, as in transformers
        x = x.transpose(0, 3, 6, 4, 7, 2, 1, 5, 8)
        return np.ascontiguousarray(x.reshape(gt * gh * gw, c * tps * ps * ps)), (gt, gh, gw)

    def preprocess(self, videos, video_metadata=None, return_metadata: bool = False, return_tensors=None,
                   do_resize=None, do_rescale=None, do_normalize=None, **kwargs):
        from transformers import BatchFeature

        videos, metadata, do_resize, do_rescale, do_normalize = self._prepare(
            videos, video_metadata, do_resize, do_rescale, do_normalize)
        rows, grids = [], []
        for video in videos:
            if do_resize:
                video = _resize_frames(video, *self.target_size(*video.shape[1:3]))
            x = _rescale_normalize(video, self.rescale_factor if do_rescale else None,
                                   self.image_mean if do_normalize else None, self.image_std if do_normalize else None)
            patches, grid = self.patchify(x)
            rows.append(patches)
            grids.append(list(grid))
        data = {"pixel_values_videos": np.concatenate(rows, axis=0), "video_grid_thw": np.asarray(grids, np.int64)}
        if return_tensors in ("pt", None):
            import torch

            data = {k: torch.from_numpy(v) for k, v in data.items()}
        if return_metadata:
            data["video_metadata"] = metadata
        return BatchFeature(data=data, skip_tensor_conversion=["video_metadata"])

    def get_num_of_video_patches(self, num_frames: int, height: int, width: int, videos_kwargs=None) -> int:
        h, w = self.target_size(height, width)
        t = math.ceil(num_frames / int(self.temporal_patch_size))
        return t * (h // int(self.patch_size)) * (w // int(self.patch_size))


class LlavaOnevisionVideoProcessor(_VideoProcessorBase):
    """The LLaVA-OneVision video processor without torchvision: every frame resized to ``size`` (bicubic, no
    crop), rescaled and normalised; ``pixel_values_videos`` is ``(videos, frames, C, H, W)``."""

    defaults = {
        "do_resize": True, "do_rescale": True, "do_normalize": True, "do_convert_rgb": True,
        "size": {"height": 384, "width": 384}, "rescale_factor": 1 / 255,
        "image_mean": list(OPENAI_CLIP_MEAN), "image_std": list(OPENAI_CLIP_STD),
    }
    model_input_names = ["pixel_values_videos"]

    def preprocess(self, videos, video_metadata=None, return_metadata: bool = False, return_tensors=None,
                   do_resize=None, do_rescale=None, do_normalize=None, **kwargs):
        from transformers import BatchFeature

        videos, metadata, do_resize, do_rescale, do_normalize = self._prepare(
            videos, video_metadata, do_resize, do_rescale, do_normalize)
        out = []
        for video in videos:
            if do_resize:
                video = _resize_frames(video, int(self.size["height"]), int(self.size["width"]))
            x = _rescale_normalize(video, self.rescale_factor if do_rescale else None,
                                   self.image_mean if do_normalize else None, self.image_std if do_normalize else None)
            out.append(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))
        if return_tensors == "pt":
            import torch

            values = torch.from_numpy(np.stack(out)) if len({v.shape for v in out}) == 1 else \
                [torch.from_numpy(v) for v in out]
        else:
            values = out
        data = {"pixel_values_videos": values}
        if return_metadata:
            data["video_metadata"] = metadata
        return BatchFeature(data=data, skip_tensor_conversion=["video_metadata"])


# --------------------------------------------------------------------------------------------
# the model's own processor class, with the CPU video processor plugged in
# --------------------------------------------------------------------------------------------

#: model_type -> (transformers processor class name, torchvision-free video processor)
PROCESSORS = {
    "qwen2_5_vl": ("Qwen2_5_VLProcessor", QwenVLVideoProcessor),
    "qwen2_vl": ("Qwen2VLProcessor", QwenVLVideoProcessor),
    "llava_onevision": ("LlavaOnevisionProcessor", LlavaOnevisionVideoProcessor),
}

_CPU_CLASSES: dict[str, type] = {}


def _cpu_processor_class(model_type: str) -> type:
    if model_type in _CPU_CLASSES:
        return _CPU_CLASSES[model_type]
    import transformers
    from transformers import AutoImageProcessor, AutoTokenizer

    class_name, video_cls = PROCESSORS[model_type]
    base = getattr(transformers, class_name)

    class CpuVideoProcessorMixin(base):  # type: ignore[misc, valid-type]

        @classmethod
        def _get_arguments_from_pretrained(cls, pretrained_model_name_or_path, processor_dict=None, **kwargs):
            kwargs.pop("subfolder", None)
            args = []
            for attribute in cls.get_attributes():
                if attribute == "video_processor":
                    args.append(video_cls.from_pretrained(pretrained_model_name_or_path, **kwargs))
                elif attribute == "tokenizer":
                    args.append(AutoTokenizer.from_pretrained(pretrained_model_name_or_path, **kwargs))
                elif attribute == "image_processor":
                    args.append(AutoImageProcessor.from_pretrained(pretrained_model_name_or_path, **kwargs))
                else:  # pragma: no cover - no such processor in PROCESSORS
                    raise ValueError(f"{base.__name__}: cannot load sub-processor {attribute!r} without torchvision")
            return args

        def check_argument_for_proper_class(self, argument_name, argument):
            if argument_name == "video_processor" and isinstance(argument, _VideoProcessorBase):
                return type(argument)
            return super().check_argument_for_proper_class(argument_name, argument)

    CpuVideoProcessorMixin.__name__ = CpuVideoProcessorMixin.__qualname__ = f"{class_name}WithoutTorchvision"
    CpuVideoProcessorMixin.__doc__ = f"{class_name} whose video processor is {video_cls.__name__} (no torchvision)."
    _CPU_CLASSES[model_type] = CpuVideoProcessorMixin
    return CpuVideoProcessorMixin


def load_processor(pretrained: str | os.PathLike, **kwargs):
    """``AutoProcessor.from_pretrained`` that works without torchvision for the models in :data:`PROCESSORS`.

    With torchvision installed it *is* ``AutoProcessor.from_pretrained``. Without it, it returns the model's own
    transformers processor class (subclassed only to accept a torchvision-free video processor), loaded from the
    same files: tokenizer, chat template, image processor (transformers' PIL backend) and the video processor
    config. Other model types raise the ``ImportError`` transformers raises.
    """
    from transformers import AutoConfig, AutoProcessor

    if torchvision_available():
        return AutoProcessor.from_pretrained(pretrained, **kwargs)
    trust = kwargs.get("trust_remote_code", False)
    config_kwargs = {k: kwargs[k] for k in ("revision", "cache_dir", "token") if kwargs.get(k) is not None}
    model_type = AutoConfig.from_pretrained(pretrained, trust_remote_code=trust, **config_kwargs).model_type
    if model_type not in PROCESSORS:
        return AutoProcessor.from_pretrained(pretrained, **kwargs)
    kwargs.pop("trust_remote_code", None)
    return _cpu_processor_class(model_type).from_pretrained(pretrained, **kwargs)


class _AutoProcessorShim:
    """Stands in for ``transformers.AutoProcessor`` inside an lmms-eval model module (see
    :func:`harness_module_patched`)."""

    @staticmethod
    def from_pretrained(pretrained, *args, **kwargs):
        return load_processor(pretrained, *args, **kwargs)


# --------------------------------------------------------------------------------------------
# qwen-vl-utils' process_vision_info without torchvision
# --------------------------------------------------------------------------------------------

FRAME_FACTOR = 2
FPS = 2.0
FPS_MIN_FRAMES = 4
FPS_MAX_FRAMES = 768
VIDEO_MIN_TOKEN_NUM = 128
VIDEO_MAX_TOKEN_NUM = 768
IMAGE_MIN_TOKEN_NUM = 4
IMAGE_MAX_TOKEN_NUM = 16384
SPATIAL_MERGE_SIZE = 2


def _probe(path: str) -> tuple[int, float]:
    """(frame count, average fps) of a video file: decord as qwen-vl-utils' decord reader, else PyAV."""
    try:
        from decord import VideoReader, cpu

        vr = VideoReader(path, ctx=cpu(0))
        return len(vr), float(vr.get_avg_fps())
    except Exception:
        import av

        from ..utils.video import count_frames

        with av.open(path) as container:
            stream = container.streams.video[0]
            rate = float(stream.average_rate) if stream.average_rate else 1.0
        return count_frames(path), rate


def read_video_frames(path: str | os.PathLike, indices: Iterable[int]) -> np.ndarray:
    """The frames at ``indices`` (any order, repeats allowed) as ``(len, H, W, 3)`` uint8 RGB."""
    from ..utils.video import count_frames, read_frames

    indices = [int(i) for i in indices]
    path = os.fspath(path)
    try:
        from decord import VideoReader, cpu

        vr = VideoReader(path, ctx=cpu(0))
        return vr.get_batch(indices).asnumpy()
    except ImportError:
        total = count_frames(path)
        frames = read_frames(path, total, backend="pyav")
        return np.ascontiguousarray(frames[indices])


def _round_by(n: float, f: int) -> int:
    return round(n / f) * f


def _ceil_by(n: float, f: int) -> int:
    return math.ceil(n / f) * f


def _floor_by(n: float, f: int) -> int:
    return math.floor(n / f) * f


def smart_nframes(ele: dict, total_frames: int, video_fps: float) -> int:
    """How many frames qwen-vl-utils takes from a video: ``nframes`` (rounded to an even number) or
    ``fps`` (default 2) times the duration, clamped to ``[min_frames, max_frames]`` and the frame count."""
    if "fps" in ele and "nframes" in ele:
        raise ValueError("Only accept either `fps` or `nframes`")
    if "nframes" in ele:
        nframes = _round_by(ele["nframes"], FRAME_FACTOR)
    else:
        fps = ele.get("fps", FPS)
        min_frames = _ceil_by(ele.get("min_frames", FPS_MIN_FRAMES), FRAME_FACTOR)
        max_frames = _floor_by(ele.get("max_frames", min(FPS_MAX_FRAMES, total_frames)), FRAME_FACTOR)
        nframes = total_frames / video_fps * fps
        nframes = min(min(max(nframes, min_frames), max_frames), total_frames)
        nframes = _floor_by(nframes, FRAME_FACTOR)
    if not (FRAME_FACTOR <= nframes <= total_frames):
        raise ValueError(f"nframes should in interval [{FRAME_FACTOR}, {total_frames}], but got {nframes}.")
    return int(nframes)


def _fetch_video(ele: dict, image_patch_size: int = 14):
    import torch

    path = ele["video"]
    if isinstance(path, str) and path.startswith("file://"):
        path = path[len("file://"):]
    if not isinstance(path, str):
        raise ValueError("the torchvision-free process_vision_info reads local video files only")
    total, video_fps = _probe(path)
    start, end = 0, total - 1
    if ele.get("video_start") is not None or ele.get("video_end") is not None:
        duration = total / video_fps
        if ele.get("video_start") is not None:
            start = math.ceil(max(0.0, min(ele["video_start"], duration)) * video_fps)
        if ele.get("video_end") is not None:
            end = min(math.floor(max(0.0, min(ele["video_end"], duration)) * video_fps), total - 1)
        if start >= end:
            raise ValueError(f"invalid time range for {path}: frames {start}..{end}")
        total = end - start + 1
    nframes = smart_nframes(ele, total, video_fps)
    idx = torch.linspace(start, end, nframes).round().long().tolist()
    frames = read_video_frames(path, idx)
    sample_fps = nframes / max(total, 1e-6) * video_fps

    factor = image_patch_size * SPATIAL_MERGE_SIZE
    min_pixels = ele.get("min_pixels", VIDEO_MIN_TOKEN_NUM * factor * factor)
    total_pixels = ele.get("total_pixels", float(os.environ.get("MODEL_SEQ_LEN", 128000)) * factor * factor * 0.9)
    max_pixels = max(min(VIDEO_MAX_TOKEN_NUM * factor * factor, total_pixels / nframes * FRAME_FACTOR),
                     int(min_pixels * 1.05))
    max_pixels = min(ele.get("max_pixels", max_pixels), max_pixels)
    if "resized_height" in ele and "resized_width" in ele:
        height, width = qwen_smart_resize(ele["resized_height"], ele["resized_width"], factor, 0, float("inf"))
    else:
        height, width = qwen_smart_resize(frames.shape[1], frames.shape[2], factor, min_pixels, max_pixels)
    frames = _resize_frames(frames, height, width)
    video = torch.from_numpy(np.ascontiguousarray(frames.transpose(0, 3, 1, 2))).float()
    metadata = {"fps": video_fps, "frames_indices": idx, "total_num_frames": total, "video_backend": "convis-cpu"}
    return video, metadata, sample_fps


def _fetch_image(ele: dict, image_patch_size: int = 14):
    from PIL import Image

    image = ele.get("image", ele.get("image_url"))
    if isinstance(image, dict):
        image = image.get("url")
    if isinstance(image, str):
        if image.startswith("data:image"):
            import base64
            import io

            image = Image.open(io.BytesIO(base64.b64decode(image.split("base64,", 1)[1])))
        else:
            image = Image.open(image[len("file://"):] if image.startswith("file://") else image)
    image = image.convert("RGB")
    factor = image_patch_size * SPATIAL_MERGE_SIZE
    min_pixels = ele.get("min_pixels", IMAGE_MIN_TOKEN_NUM * factor * factor)
    max_pixels = ele.get("max_pixels", IMAGE_MAX_TOKEN_NUM * factor * factor)
    height, width = qwen_smart_resize(image.height, image.width, factor, min_pixels, max_pixels)
    return image.resize((width, height))


def _vision_infos(conversations) -> list[dict]:
    if isinstance(conversations[0], dict):
        conversations = [conversations]
    infos = []
    for conversation in conversations:
        for message in conversation:
            if isinstance(message["content"], list):
                for ele in message["content"]:
                    if "image" in ele or "image_url" in ele or "video" in ele or \
                            ele.get("type", "text") in ("image", "image_url", "video"):
                        infos.append(ele)
    return infos


def process_vision_info(conversations, return_video_kwargs: bool = False, return_video_metadata: bool = False,
                        image_patch_size: int = 14):
    """qwen-vl-utils' ``process_vision_info`` (0.0.14 interface) for local files, without torchvision.

    Returns ``(images, videos)`` or, with ``return_video_kwargs``, ``(images, videos, video_kwargs)``. Videos are
    float ``(T, C, H, W)`` tensors, or ``(tensor, metadata)`` pairs with ``return_video_metadata``.
    """
    images, videos, sample_fps = [], [], []
    for info in _vision_infos(conversations):
        if "image" in info or "image_url" in info:
            images.append(_fetch_image(info, image_patch_size))
        elif "video" in info:
            video, metadata, fps = _fetch_video(info, image_patch_size)
            videos.append((video, metadata) if return_video_metadata else video)
            sample_fps.append(fps)
        else:
            raise ValueError("image, image_url or video should in content.")
    video_kwargs = {"do_sample_frames": False}
    if not return_video_metadata:
        video_kwargs["fps"] = sample_fps
    images = images or None
    videos = videos or None
    if return_video_kwargs:
        return images, videos, video_kwargs
    return images, videos


# --------------------------------------------------------------------------------------------
# binding into an lmms-eval model module
# --------------------------------------------------------------------------------------------


@contextlib.contextmanager
def harness_module_patched(*modules):
    """While active, lmms-eval model ``modules`` use the torchvision-free pieces of this module.

    Rebinds, in each module that has them, ``AutoProcessor`` (to :func:`load_processor`) and a missing
    ``process_vision_info`` (lmms-eval sets it to ``None`` when qwen-vl-utils cannot be imported). Restores them
    on exit. With torchvision available it changes nothing. Not thread-safe (lmms-eval builds and runs a model
    in one thread per process).
    """
    if torchvision_available():
        yield
        return
    saved = []
    try:
        for module in modules:
            if hasattr(module, "AutoProcessor"):
                saved.append((module, "AutoProcessor", module.AutoProcessor))
                module.AutoProcessor = _AutoProcessorShim
            if hasattr(module, "process_vision_info") and module.process_vision_info is None:
                saved.append((module, "process_vision_info", None))
                module.process_vision_info = process_vision_info
        yield
    finally:
        for module, name, value in reversed(saved):
            setattr(module, name, value)
