"""Frame pipeline for ConViS pairs: sample, decode, concatenate, encode and cache pair clips.

The benchmark feeds a model ``N`` uniformly sampled frames of video 1 followed by ``N`` frames of
video 2.  Models that only accept a single video get a *pair clip*: those ``2N`` frames as one lossless
H.264 ``.mp4``, cached on disk by :class:`PairClipCache`.  When both videos share one YUV pixel format,
frame size and colour description, the clip holds their decoded planes unchanged (:func:`read_native`,
:func:`write_native_clip`), so every reader gets exactly the frames it decodes from the sources; other
pairs are decoded to RGB, fitted to one size and written from RGB (:func:`write_clip`, max abs error ~2).

Decoding a source video is the expensive step, encoding a clip the next.  Which clips a run needs,
in which order, and how each video is decoded only once per frame setting while the model computes,
is :mod:`convis_tasks.utils.prefetch`'s business (a pool of worker processes); this module builds
one clip and checks cache entries (a content digest, see :meth:`PairClipCache.check`).

This module is pure library code: it must not import torch or lmms_eval.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat as _stat
import threading
import uuid
import warnings
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np

__all__ = [
    "PIPELINE_VERSION",
    "ENCODER_OPTIONS",
    "ClipFormat",
    "CLIP_FORMAT",
    "VideoDecodeError",
    "VideoEncodeError",
    "CacheEntryRebuilt",
    "sample_indices",
    "promised_frames",
    "frame_total",
    "container_format",
    "DECORD_CONTAINERS",
    "read_frames",
    "concat_pair_frames",
    "write_clip",
    "count_frames",
    "VideoFormat",
    "NativeFrames",
    "probe",
    "read_native",
    "write_native_clip",
    "file_digest",
    "require_paths",
    "require_model_readable",
    "default_cache_dir",
    "PairClipCache",
]

#: Bump whenever sampling, resizing, encoding or the sidecar changes: it is part of every cache key.
PIPELINE_VERSION = "4"  # 4: smaller x264 settings (CAVLC, umh, 8 refs; same frames); 3: native clips, digest

#: libx264 settings of :func:`write_clip` and :func:`write_native_clip`.  ``qp=0`` is mathematically
#: lossless in YUV, so the other settings change bytes and encoding time, never the decoded frames.
#: ``yuv444p`` (RGB clips) keeps full chroma (4:2:0 smears colour edges, max error ~100 on textured frames),
#: so the only loss of an RGB clip is RGB<->YUV rounding (max error ~2); native clips keep the sources' own
#: planes (error 0).  ``threads=1`` keeps the bitstream independent of the machine's core count
#: (deterministic output); no B-frames keeps decode order simple for every reader.  Size: ``preset=medium``
#: with an uneven-multi-hexagon motion search over 8 reference frames (``me=umh:ref=8``; the frames of one
#: video share content) and ``subme=5`` gives 11% fewer bytes than ``ultrafast`` for 0.27 s of
#: encoding per pair, in the background workers; ``cabac=0`` (CAVLC) keeps each read as fast as
#: ``ultrafast``'s, where CABAC would save 8% more but make every read 5x slower, and a model's reader
#: decodes the clip on every request.  Options measured: benchmarks/README.md.
ENCODER_OPTIONS: dict[str, str] = {
    "qp": "0",
    "preset": "medium",
    "x264-params": "cabac=0:me=umh:ref=8:subme=5",
    "threads": "1",
    "bframes": "0",
}
PIX_FMT = "yuv444p"


@dataclass(frozen=True)
class ClipFormat:
    """How :func:`write_clip` encodes: an FFmpeg encoder, its pixel format and options, and the container."""

    codec: str = "libx264"
    pix_fmt: str = PIX_FMT
    options: dict = field(default_factory=lambda: dict(ENCODER_OPTIONS))
    container: str = "mp4"


#: The pair clips' format (chosen from the table in benchmarks/README.md).
CLIP_FORMAT = ClipFormat()

_CACHE_ENV = "CONVIS_CACHE_DIR"
#: Digest of a clip's bytes written into its sidecar and checked before the clip is used.
DIGEST = "sha256"


# --------------------------------------------------------------------------------------------
# errors
# --------------------------------------------------------------------------------------------


def _pair_text(pair_id: Any = None, video1: Any = None, video2: Any = None) -> str:
    parts = []
    if pair_id is not None:
        parts.append(f"pair {pair_id}")
    if video1 is not None or video2 is not None:
        parts.append(f"video1={str(video1)!r}, video2={str(video2)!r}")
    return "; ".join(parts)


class VideoDecodeError(RuntimeError):
    """A video could not be opened or decoded.  The message always names the offending path."""

    def __init__(self, path: Any, reason: str = "", *, pair_id: Any = None, video1: Any = None,
                 video2: Any = None) -> None:
        self.path = str(path)
        self.reason = reason
        self.pair_id = pair_id
        self.video1 = None if video1 is None else str(video1)
        self.video2 = None if video2 is None else str(video2)
        msg = f"{self._verb()} {self.path!r}"
        if reason:
            msg += f": {reason}"
        pair = _pair_text(pair_id, video1, video2)
        if pair:
            msg += f" ({pair})"
        super().__init__(msg)

    def _verb(self) -> str:
        return "cannot decode video"

    def with_pair(self, *, pair_id: Any = None, video1: Any = None, video2: Any = None):
        """Return a copy of this error that also names the pair."""
        return type(self)(self.path, self.reason, pair_id=pair_id, video1=video1, video2=video2)

    def __reduce__(self):  # keep the keyword arguments across pickling (multiprocessing)
        return (_rebuild_error, (type(self), self.path, self.reason, self.pair_id, self.video1,
                                 self.video2))


class VideoEncodeError(VideoDecodeError):
    """A clip could not be written.  The message names the output path."""

    def _verb(self) -> str:
        return "cannot write video"


class CacheEntryRebuilt(UserWarning):
    """A cached pair clip failed its check (digest, size, frame count) and is being rebuilt."""


def _rebuild_error(cls, path, reason, pair_id, video1, video2):
    return cls(path, reason, pair_id=pair_id, video1=video1, video2=video2)


def _not_found(path: Any, pair_id: Any = None, video1: Any = None, video2: Any = None):
    msg = "video file not found" if path is not None else "video file is missing (the document has no path)"
    pair = _pair_text(pair_id, video1, video2)
    if pair:
        msg += f" ({pair})"
    return FileNotFoundError(2, msg, str(path))


# --------------------------------------------------------------------------------------------
# sampling and decoding
# --------------------------------------------------------------------------------------------


def sample_indices(total_frames: int, n: int) -> list[int]:
    """Indices of the ``n`` frames the benchmark protocol takes from a ``total_frames`` video.

    ``total_frames >= n``: ``np.linspace(0, total_frames - 1, n, dtype=int)`` (floored, exactly as
    lmms-eval's llava_onevision ``load_video``).  ``0 < total_frames < n``: every frame, then the last
    index repeated up to length ``n``.  Raises ``ValueError`` when either argument is ``<= 0``.
    """
    total_frames, n = int(total_frames), int(n)
    if n <= 0:
        raise ValueError(f"number of frames to sample must be positive, got n={n}")
    if total_frames <= 0:
        raise ValueError(f"video has no frames (total_frames={total_frames})")
    if total_frames >= n:
        return [int(i) for i in np.linspace(0, total_frames - 1, n, dtype=int)]
    return list(range(total_frames)) + [total_frames - 1] * (n - total_frames)


def _check_file(path: Path) -> None:
    if not path.exists():
        raise _not_found(path)
    if not path.is_file():
        raise VideoDecodeError(path, "not a regular file")
    if path.stat().st_size == 0:
        raise VideoDecodeError(path, "file is empty")


#: A container without a frame count promises ``duration x average frame rate`` frames; a decode may
#: fall short of that estimate by this many frames (rounding of the last frame's duration, variable
#: frame rate) plus ``SHORT_FRACTION`` of it, and no more.  A container that states its frame count
#: (MP4, MOV: the sample table) must deliver exactly that many.
SHORT_FRAMES, SHORT_FRACTION = 2, 0.02


def promised_frames(path: str | os.PathLike) -> tuple[int | None, bool]:
    """The frame count a video's container promises: ``(count, exact)``.

    ``exact`` is True when the container states the count (MP4/MOV sample tables), False when it is
    estimated from the duration and the average frame rate (Matroska, WebM, MPEG-TS, ...);
    ``(None, False)`` when the container says neither.
    """
    import av

    with av.open(str(path)) as container:
        if not container.streams.video:
            raise VideoDecodeError(path, "no video stream")
        stream = container.streams.video[0]
        if stream.frames and stream.frames > 0:
            return int(stream.frames), True
        rate = stream.average_rate or stream.guessed_rate
        seconds = None
        if stream.duration and stream.time_base:
            seconds = float(stream.duration * stream.time_base)
        elif container.duration:
            seconds = container.duration / 1_000_000
        if rate and seconds:
            return int(round(seconds * float(rate))), False
        return None, False


def _check_count(path: Path, available: int, promised: int | None, exact: bool, what: str) -> None:
    """Raise :class:`VideoDecodeError` when ``available`` frames fall short of the container's promise."""
    if promised is None:
        return
    slack = 0 if exact else SHORT_FRAMES + int(SHORT_FRACTION * promised)
    if available < promised - slack:
        kind = "states" if exact else f"promises (duration x frame rate, tolerance {slack})"
        raise VideoDecodeError(path, f"truncated: the container {kind} {promised} frames but {what} "
                                     f"only {available}; refusing to sample from a short decode")


#: Container formats (PyAV's names) whose files decord reads at the frames asked for.  decord returns other
#: frames than the ones asked for, without an error, from MPEG-TS and MPEG-PS files (it seeks them by
#: timestamp); files in any container not listed here are read with PyAV.
DECORD_CONTAINERS = frozenset({"mov,mp4,m4a,3gp,3g2,mj2", "matroska,webm", "avi"})


def container_format(path: str | os.PathLike) -> str:
    """PyAV's name of a video's container format (``"mov,mp4,m4a,3gp,3g2,mj2"``, ``"mpegts"``, ...)."""
    import av

    try:
        with av.open(str(path)) as container:
            return str(container.format.name)
    except Exception as exc:  # av.error.*
        raise VideoDecodeError(path, _short(exc)) from exc


def frame_total(path: str | os.PathLike) -> tuple[int, bool]:
    """The number of frames to sample from: ``(total, stated)``.

    MP4/MOV state it (``stated`` True).  Other containers state at most a duration, so the total is the
    number of non-empty packets of the video stream (demuxed, not decoded); it must reach the duration's
    estimate (a shorter file is truncated, :class:`VideoDecodeError`), and readers check that decoding
    yields exactly this many frames.
    """
    import av

    promised, exact = promised_frames(path)
    if exact:
        return int(promised), True
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        total = sum(1 for pkt in container.demux(stream) if pkt.size)
    _check_count(Path(os.fspath(path)), total, promised, exact, "it holds")
    return total, False


def _check_decoded(path: Path, decoded: int, total: int, stated: bool) -> None:
    """After decoding to the end: a stream with another number of frames than counted is an error."""
    if decoded < total:
        kind = "states" if stated else "holds"
        raise VideoDecodeError(path, f"truncated: the container {kind} {total} frames but decoding yields only "
                                     f"{decoded}; refusing to sample from a short decode")
    if not stated and decoded != total:
        raise VideoDecodeError(path, f"the container holds {total} frame packets but decoding yields {decoded} "
                                     "frames; refusing to guess which frames to sample")


def _gather(unique_frames: np.ndarray, inverse: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(unique_frames[inverse])


def _read_decord(path: Path, n: int) -> np.ndarray:
    from decord import VideoReader, cpu  # noqa: WPS433 (optional dependency)

    # One decoder thread: decord's own threading does not speed up get_batch here, and the prefetch
    # pool decodes several videos at once.  The decoded frames do not depend on the thread count.
    vr = VideoReader(str(path), ctx=cpu(0), num_threads=1)
    total = len(vr)
    if total <= 0:
        raise VideoDecodeError(path, "video has no frames")
    expected, stated = frame_total(path)
    _check_count(path, total, expected, True, "decord indexes")
    if not stated and total != expected:
        raise VideoDecodeError(path, f"decord indexes {total} frames, the container holds {expected}")
    idx = np.asarray(sample_indices(total, n))
    uniq, inverse = np.unique(idx, return_inverse=True)
    batch = vr.get_batch([int(i) for i in uniq]).asnumpy()
    if batch.ndim != 4 or batch.shape[0] != len(uniq) or batch.shape[-1] != 3:
        raise VideoDecodeError(path, f"decord returned an unexpected batch of shape {batch.shape}")
    return _gather(batch.astype(np.uint8, copy=False), inverse)


def _decode_sampled(path: Path, n: int, take: Callable[[int, Any], np.ndarray],
                    threaded: bool = False) -> np.ndarray:
    """The ``n`` protocol frames of one sequential PyAV decode, sampled from :func:`frame_total`'s count;
    ``take(i, frame)`` turns sampled frame ``i`` into an array.  A decode that yields another number of frames
    than counted raises :class:`VideoDecodeError` (:func:`_check_decoded`)."""
    import av

    total, stated = frame_total(path)
    if total <= 0:
        raise VideoDecodeError(path, "video has no frames")
    wanted = sample_indices(total, n)
    wanted_set = set(wanted)
    kept: dict[int, np.ndarray] = {}
    decoded = 0
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        if threaded:
            stream.thread_type = "AUTO"
        for i, frame in enumerate(container.decode(stream)):
            decoded = i + 1
            if i in wanted_set:
                kept[i] = take(i, frame)
            if stated and i == total - 1:  # the last sampled frame: a stated count needs no more
                break
    _check_decoded(path, decoded, total, stated)
    return np.stack([kept[i] for i in wanted])


def _read_pyav(path: Path, n: int) -> np.ndarray:
    rgb = _decode_sampled(path, n, lambda i, frame: frame.to_ndarray(format="rgb24"), threaded=True)
    return rgb.astype(np.uint8, copy=False)


def read_frames(path: str | os.PathLike, n: int, *, backend: str = "auto") -> np.ndarray:
    """Decode the ``n`` protocol frames (:func:`sample_indices`) of a video as ``(n, H, W, 3)`` uint8 RGB.

    ``backend``: ``"auto"`` (decord for the containers of :data:`DECORD_CONTAINERS`, falling back to PyAV
    when decord is missing or fails; PyAV for the others), ``"decord"`` or ``"pyav"``.  A missing file
    raises ``FileNotFoundError``; an unreadable, corrupt, frameless or truncated one (fewer frames than
    :func:`frame_total` counts) raises :class:`VideoDecodeError`; both name the path.
    """
    if backend not in ("auto", "decord", "pyav"):
        raise ValueError(f"unknown backend {backend!r}; use 'auto', 'decord' or 'pyav'")
    if int(n) <= 0:
        raise ValueError(f"number of frames to sample must be positive, got n={n}")
    path = Path(os.fspath(path)).expanduser()
    _check_file(path)

    errors: list[str] = []
    if backend in ("auto", "decord"):
        container = container_format(path)
        if container not in DECORD_CONTAINERS:
            if backend == "decord":
                raise VideoDecodeError(path, f"decord does not read {container} files at the frames asked for; "
                                             "use the pyav backend")
            backend = "pyav"
    if backend in ("auto", "decord"):
        try:
            return _read_decord(path, n)
        except ImportError as exc:
            if backend == "decord":
                raise
            errors.append(f"decord unavailable ({exc})")
        except VideoDecodeError as exc:
            if backend == "decord" or exc.reason.startswith("truncated"):
                raise
            errors.append(f"decord: {exc.reason}")
        except Exception as exc:  # decord raises its own DECORDError (a RuntimeError) and others
            if backend == "decord":
                raise VideoDecodeError(path, f"decord: {_short(exc)}") from exc
            errors.append(f"decord: {_short(exc)}")
    try:
        return _read_pyav(path, n)
    except VideoDecodeError as exc:
        if exc.reason.startswith("truncated"):
            raise
        errors.append(f"pyav: {exc.reason}")
        raise VideoDecodeError(path, "; ".join(errors)) from exc
    except Exception as exc:  # av.error.* (InvalidDataError, ...), ValueError from PyAV
        errors.append(f"pyav: {_short(exc)}")
        raise VideoDecodeError(path, "; ".join(errors)) from exc


def _short(exc: BaseException, limit: int = 300) -> str:
    text = f"{type(exc).__name__}: {exc}".strip()
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


# --------------------------------------------------------------------------------------------
# native frames: the source's own YUV planes, for clips that are exact copies of the sampled frames
# --------------------------------------------------------------------------------------------

#: Pixel formats a pair clip can carry unchanged (8-bit planar YUV that PyAV converts to and from numpy).
NATIVE_PIX_FMTS = ("yuv420p", "yuvj420p", "yuv444p", "yuvj444p")


@dataclass(frozen=True)
class VideoFormat:
    """A video stream's frame size, pixel format and colour description (as its decoder reports them)."""

    width: int
    height: int
    pix_fmt: str
    colour: tuple  # (colorspace, color_range, color_primaries, color_trc)


def probe(path: str | os.PathLike) -> VideoFormat:
    """The :class:`VideoFormat` of a video's first video stream (header only, no decoding)."""
    import av

    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise VideoDecodeError(path, "no video stream")
            cc = container.streams.video[0].codec_context
            return VideoFormat(int(cc.width), int(cc.height), str(cc.pix_fmt),
                               (int(cc.colorspace), int(cc.color_range), int(cc.color_primaries), int(cc.color_trc)))
    except VideoDecodeError:
        raise
    except Exception as exc:  # av.error.*
        raise VideoDecodeError(path, _short(exc)) from exc


@dataclass
class NativeFrames:
    """Sampled frames in the source's own pixel format: ``planes[i]`` is PyAV's ``to_ndarray()`` of frame i."""

    planes: np.ndarray
    fmt: VideoFormat


def read_native(path: str | os.PathLike, n: int) -> NativeFrames:
    """The ``n`` protocol frames (:func:`sample_indices`) of a video, undecoded to RGB: its own YUV planes.

    One sequential PyAV decode up to the last sampled frame, sampled from :func:`frame_total`'s count; a
    stream that ends early, that yields another number of frames than its packets, or whose frames change
    size or pixel format, raises :class:`VideoDecodeError` naming the file.
    """
    path = Path(os.fspath(path)).expanduser()
    _check_file(path)
    fmt = probe(path)
    if fmt.pix_fmt not in NATIVE_PIX_FMTS:
        raise VideoDecodeError(path, f"pixel format {fmt.pix_fmt} cannot be carried natively")

    def take(i: int, frame) -> np.ndarray:
        if (frame.width, frame.height, frame.format.name) != (fmt.width, fmt.height, fmt.pix_fmt):
            raise VideoDecodeError(path, f"frame {i} is {frame.width}x{frame.height} {frame.format.name}, "
                                         f"the stream {fmt.width}x{fmt.height} {fmt.pix_fmt}")
        return frame.to_ndarray()

    try:
        planes = _decode_sampled(path, n, take)
    except VideoDecodeError:
        raise
    except Exception as exc:  # av.error.* (InvalidDataError, ...)
        raise VideoDecodeError(path, f"pyav: {_short(exc)}") from exc
    return NativeFrames(planes, fmt)


def write_native_clip(frames1: NativeFrames, frames2: NativeFrames, path: str | os.PathLike,
                      fps: float | int | Fraction = 1, options: dict | None = None) -> None:
    """Write both videos' native frames, video 1's first, losslessly in their own pixel format and colour
    description (x264 ``qp 0``, :data:`ENCODER_OPTIONS` unless ``options``), so that any reader converts
    them to exactly the RGB it gives for the sources."""
    import av

    if frames1.fmt != frames2.fmt:
        raise ValueError(f"native frames differ in format: {frames1.fmt} vs {frames2.fmt}")
    fmt = frames1.fmt

    def setup(stream) -> None:
        stream.width, stream.height, stream.pix_fmt = fmt.width, fmt.height, fmt.pix_fmt
        cc = stream.codec_context
        cc.colorspace, cc.color_range, cc.color_primaries, cc.color_trc = fmt.colour
        stream.options = dict(ENCODER_OPTIONS if options is None else options)

    def frame(plane: np.ndarray):
        vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(plane), format=fmt.pix_fmt)
        vf.colorspace, vf.color_range = fmt.colour[0], fmt.colour[1]
        return vf

    _encode(path, "mp4", "libx264", fps, setup, map(frame, np.concatenate([frames1.planes, frames2.planes])))


def _encode(path: str | os.PathLike, container_format: str, codec: str, fps: float | int | Fraction,
            setup: Callable[[Any], None], frames: Iterable[Any]) -> None:
    """Encode ``frames`` (PyAV video frames, in order, numbered 0, 1, ...) into ``path`` with ``codec`` at ``fps``;
    ``setup(stream)`` sets size, pixel format and options first. On any failure the partial file is removed and a
    :class:`VideoEncodeError` names the path."""
    import av

    path = Path(os.fspath(path))
    rate = Fraction(fps).limit_denominator(100000) if not isinstance(fps, Fraction) else fps
    if rate <= 0:
        raise ValueError(f"fps must be positive, got {fps!r}")
    try:
        with av.open(str(path), mode="w", format=container_format) as container:
            stream = container.add_stream(codec, rate=rate)
            setup(stream)
            for i, vf in enumerate(frames):
                vf.pts = i
                container.mux(stream.encode(vf))
            container.mux(stream.encode(None))
    except Exception as exc:
        try:
            path.unlink()
        except OSError:
            pass
        raise VideoEncodeError(path, _short(exc)) from exc


def count_frames(path: str | os.PathLike) -> int:
    """Number of frames in a video as decord reports it (PyAV fallback); used to verify clips."""
    path = Path(os.fspath(path))
    _check_file(path)
    try:
        from decord import VideoReader, cpu

        return len(VideoReader(str(path), ctx=cpu(0)))
    except Exception:
        try:
            return frame_total(path)[0]
        except VideoDecodeError:
            raise
        except Exception as exc:
            raise VideoDecodeError(path, _short(exc)) from exc


# --------------------------------------------------------------------------------------------
# concatenation and encoding
# --------------------------------------------------------------------------------------------


def _as_frames(frames: Any, name: str) -> np.ndarray:
    arr = np.asarray(frames)
    if arr.ndim != 4 or arr.shape[-1] != 3 or arr.shape[0] == 0:
        raise ValueError(f"{name} must have shape (N>0, H, W, 3), got {arr.shape}")
    if arr.dtype != np.uint8:
        raise ValueError(f"{name} must be uint8, got {arr.dtype}")
    return arr


def _fit(frames: np.ndarray, width: int, height: int) -> np.ndarray:
    """Bring frames to ``(height, width)``: crop when only the odd trailing row/column is extra,
    else bicubic resize (Pillow)."""
    h, w = frames.shape[1:3]
    if (h, w) == (height, width):
        return frames
    if h - height in (0, 1) and w - width in (0, 1):
        return np.ascontiguousarray(frames[:, :height, :width])
    from PIL import Image

    bicubic = getattr(Image, "Resampling", Image).BICUBIC
    return np.stack([np.asarray(Image.fromarray(f).resize((width, height), bicubic)) for f in frames])


def concat_pair_frames(frames1: np.ndarray, frames2: np.ndarray,
                       size: tuple[int, int] | None = None) -> np.ndarray:
    """Frames of video 1 followed by frames of video 2, all at one even frame size.

    ``size`` is ``(W, H)``; by default video 1's frame size.  Width and height are rounded down to
    even numbers (H.264 friendly).  Frames that differ from the target are resized with Pillow's
    bicubic filter (a frame that is only one odd row/column too large is cropped instead).
    """
    f1 = _as_frames(frames1, "frames1")
    f2 = _as_frames(frames2, "frames2")
    if size is None:
        width, height = int(f1.shape[2]), int(f1.shape[1])
    else:
        if len(size) != 2:
            raise ValueError(f"size must be (W, H), got {size!r}")
        width, height = int(size[0]), int(size[1])
    width -= width % 2
    height -= height % 2
    if width < 2 or height < 2:
        raise ValueError(f"target frame size too small: {width}x{height}")
    return np.concatenate([_fit(f1, width, height), _fit(f2, width, height)], axis=0)


def write_clip(frames: np.ndarray | Sequence[np.ndarray], path: str | os.PathLike,
               fps: float | int | Fraction = 1, fmt: ClipFormat | None = None) -> None:
    """Write RGB uint8 frames as a video file in format ``fmt`` (default :data:`CLIP_FORMAT`).

    With the default format the file reads back through decord and PyAV with exactly ``len(frames)``
    frames in order, near lossless (max abs error ~2 from RGB<->YUV rounding), and the same frames
    always give a byte-identical file (with the same PyAV/FFmpeg/x264 build).  Writes ``path``
    directly; atomic placement is the caller's business (:class:`PairClipCache` does it).
    """
    import av

    fmt = CLIP_FORMAT if fmt is None else fmt
    arr = _as_frames(frames, "frames")

    def setup(stream) -> None:
        stream.width, stream.height, stream.pix_fmt = int(arr.shape[2]), int(arr.shape[1]), fmt.pix_fmt
        stream.options = dict(fmt.options)

    _encode(path, fmt.container, fmt.codec, fps, setup,
            (av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24") for frame in arr))


# --------------------------------------------------------------------------------------------
# caching
# --------------------------------------------------------------------------------------------


def default_cache_dir() -> Path:
    """``$CONVIS_CACHE_DIR`` if set, else ``~/.cache/convis/clips``."""
    env = os.environ.get(_CACHE_ENV)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "convis" / "clips"


def file_digest(path: str | os.PathLike) -> str:
    """``sha256:<hex>`` of a file's bytes (the integrity check of cache entries)."""
    digest = hashlib.new(DIGEST)
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return f"{DIGEST}:{digest.hexdigest()}"


#: cache key -> stat signature of an entry whose digest this process has checked (see PairClipCache.check)
_CHECKED: dict[str, tuple] = {}
_CHECKED_MAX = 200_000
_CHECKED_LOCK = threading.Lock()


def checked_signature(key: str) -> tuple | None:
    """The stat signature under which this process last found entry ``key``'s digest right (or None)."""
    return _CHECKED.get(key)


def trust_checked(key: str, signature: tuple | None) -> None:
    """Adopt another process's digest check of ``key`` (a prefetch worker's): it holds only while both
    files still have that exact stat signature (ctime included), as :meth:`PairClipCache.check` compares."""
    if signature is not None:
        with _CHECKED_LOCK:
            if len(_CHECKED) >= _CHECKED_MAX:
                _CHECKED.clear()
            _CHECKED[key] = tuple(signature)


def _signature(st: os.stat_result) -> tuple:
    # ctime cannot be set from user space: any write, truncation, rename onto or utime of the file moves it.
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def require_paths(pair_id: Any, video1: Any, video2: Any) -> list[str]:
    """Both video paths of a pair, or ``FileNotFoundError`` naming the pair when either is missing."""
    for given in (video1, video2):
        if given is None:
            raise _not_found(None, pair_id, video1, video2)
    return [os.fspath(video1), os.fspath(video2)]


def require_model_readable(pair_id: Any, video1: Any, video2: Any) -> list[str]:
    """Both video paths of a pair, for a model that reads the original files itself (``input: two_videos``):
    each must exist and be in a container of :data:`DECORD_CONTAINERS`, since the harness's video models
    read with decord; otherwise ``FileNotFoundError`` or :class:`VideoDecodeError`, naming the pair."""
    paths = require_paths(pair_id, video1, video2)
    for path in paths:
        _stat_video(os.path.expanduser(path), pair_id, video1, video2)
        try:
            name = container_format(os.path.expanduser(path))
        except VideoDecodeError as exc:
            raise exc.with_pair(pair_id=pair_id, video1=video1, video2=video2) from exc
        if name not in DECORD_CONTAINERS:
            raise VideoDecodeError(path, f"a {name} file: decord, the reader of the harness's video models, "
                                         "returns other frames than the ones asked for from it; remux it to MP4 "
                                         "(ffmpeg -i IN -c copy OUT.mp4) or use the default pair-clip input",
                                   pair_id=pair_id, video1=video1, video2=video2)
    return paths


def _stat_video(path: str, pair_id: Any, video1: Any, video2: Any) -> os.stat_result:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise _not_found(path, pair_id, video1, video2) from None
    if not _stat.S_ISREG(st.st_mode):
        raise VideoDecodeError(path, "not a regular file", pair_id=pair_id, video1=video1, video2=video2)
    return st


@dataclass(frozen=True)
class PairRequest:
    """One pair clip to build: its cache key and the resolved inputs (see :meth:`PairClipCache.request`)."""

    key: str
    video1: str  # resolved paths
    video2: str
    id1: tuple  # (path, size, mtime_ns): the identity of each video, for sharing decoded frames
    id2: tuple
    n_frames: int
    size: tuple[int, int] | None
    pair_id: Any = None
    given1: Any = None  # the paths as the caller wrote them, for messages
    given2: Any = None

    def context(self) -> dict:
        return {"pair_id": self.pair_id, "video1": self.given1, "video2": self.given2}


class PairClipCache:
    """On-disk cache of concatenated pair clips (``2N`` frames, video 1 first).

    Entries are ``<key>.mp4`` plus a ``<key>.json`` sidecar written *after* the mp4 is in place.
    The key is the sha256 of both videos' resolved paths, byte sizes and ``mtime_ns``, ``n_frames``,
    ``size``, the fps and :data:`PIPELINE_VERSION`.  An entry is used only when the sidecar exists,
    matches the key, and records the mp4's byte size, ``2N`` frames and the sha256 of the mp4's bytes,
    which is recomputed before first use in each process (later uses in that process compare the
    files' ``stat``, ctime included, with what was seen when the digest matched).  An entry that fails
    is rebuilt, with a :class:`CacheEntryRebuilt` warning naming the pair and the file.  Files are
    written to a unique temporary name in the cache folder and moved into place with ``os.replace``, so
    concurrent builders (threads or processes) never expose a partial file.

    ``stats`` counts ``hits``, ``builds`` and ``decodes`` (calls of :func:`read_frames`).
    """

    def __init__(self, cache_dir: str | os.PathLike | None = None, *, fps: float | int = 1,
                 fmt: ClipFormat | None = None) -> None:
        self.cache_dir = Path(os.fspath(cache_dir)).expanduser() if cache_dir is not None else default_cache_dir()
        self.fps = fps
        self.fmt = CLIP_FORMAT if fmt is None else fmt
        self.stats = {"hits": 0, "builds": 0, "decodes": 0}
        self._lock = threading.Lock()

    # -- keys and paths ------------------------------------------------------------------------

    def request(self, video1: str | os.PathLike | None, video2: str | os.PathLike | None, n_frames: int = 8,
                size: tuple[int, int] | None = None, pair_id: Any = None) -> PairRequest:
        """Resolve a pair: its key and inputs (``FileNotFoundError`` naming the pair for a missing video)."""
        n_frames = int(n_frames)
        if n_frames <= 0:
            raise ValueError(f"n_frames must be positive, got {n_frames}")
        if size is not None:
            if len(size) != 2:
                raise ValueError(f"size must be (W, H) or None, got {size!r}")
            size = (int(size[0]), int(size[1]))
        require_paths(pair_id, video1, video2)
        p1 = os.path.realpath(os.path.expanduser(os.fspath(video1)))
        p2 = os.path.realpath(os.path.expanduser(os.fspath(video2)))
        st1 = _stat_video(p1, pair_id, video1, video2)
        st2 = _stat_video(p2, pair_id, video1, video2)
        payload = {
            "pipeline_version": PIPELINE_VERSION,
            "video1": [p1, st1.st_size, st1.st_mtime_ns],
            "video2": [p2, st2.st_size, st2.st_mtime_ns],
            "n_frames": n_frames,
            "size": list(size) if size is not None else None,
            "fps": str(Fraction(self.fps).limit_denominator(100000)),
            "format": [self.fmt.codec, self.fmt.pix_fmt, sorted(self.fmt.options.items()), self.fmt.container],
        }
        blob = json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()
        return PairRequest(hashlib.sha256(blob).hexdigest(), p1, p2, (p1, st1.st_size, st1.st_mtime_ns),
                           (p2, st2.st_size, st2.st_mtime_ns), n_frames, size, pair_id, video1, video2)

    def key(self, video1: str | os.PathLike, video2: str | os.PathLike, n_frames: int = 8,
            size: tuple[int, int] | None = None, pair_id: Any = None) -> str:
        """The cache key of a pair (raises ``FileNotFoundError`` naming the pair for a missing video)."""
        return self.request(video1, video2, n_frames, size, pair_id).key

    @property
    def suffix(self) -> str:
        return "." + self.fmt.container.split(",")[0].replace("matroska", "mkv")

    def clip_path(self, key: str) -> Path:
        return self.cache_dir / f"{key}{self.suffix}"

    def sidecar_path(self, key: str) -> Path:
        return self.cache_dir / f"{key}.json"

    # -- checking ------------------------------------------------------------------------------

    def check(self, key: str, n_frames: int) -> str | None:
        """Why the entry ``key`` cannot be used, or None when it can.

        ``"missing"`` when there is no complete entry (no warning is due); any other text describes
        damage (a sidecar that does not parse or match, a size or digest that differs from the clip).
        """
        folder = os.fspath(self.cache_dir)
        clip, side = os.path.join(folder, key + self.suffix), os.path.join(folder, key + ".json")
        try:
            cst = os.stat(clip)
            sst = os.stat(side)
        except OSError:
            return "missing"
        sig = _signature(cst) + _signature(sst) + (int(n_frames),)
        if _CHECKED.get(key) == sig:
            return None
        try:
            with open(side, encoding="utf-8") as fh:
                meta = json.loads(fh.read())
        except (OSError, ValueError) as exc:
            return f"unreadable sidecar ({_short(exc)})"
        if not isinstance(meta, dict) or meta.get("key") != key or meta.get("pipeline_version") != PIPELINE_VERSION:
            return "sidecar does not match the entry"
        if meta.get("frames") != 2 * int(n_frames):
            return f"sidecar records {meta.get('frames')!r} frames, expected {2 * int(n_frames)}"
        if meta.get("bytes") != cst.st_size:
            return f"clip has {cst.st_size} bytes, its sidecar records {meta.get('bytes')!r}"
        try:
            digest = file_digest(clip)
        except OSError as exc:
            return f"clip unreadable ({_short(exc)})"
        if meta.get("digest") != digest:
            return "content digest mismatch (the clip's bytes changed after it was written)"
        with _CHECKED_LOCK:
            if len(_CHECKED) >= _CHECKED_MAX:
                _CHECKED.clear()
            _CHECKED[key] = sig
        return None

    def is_valid(self, key: str, n_frames: int) -> bool:
        """True when the entry exists and passes :meth:`check`."""
        return self.check(key, n_frames) is None

    def lookup(self, req: PairRequest) -> str | None:
        """The clip's path when a valid entry exists; else None, after warning if the entry was damaged."""
        problem = self.check(req.key, req.n_frames)
        if problem is None:
            with self._lock:
                self.stats["hits"] += 1
            return os.path.join(os.fspath(self.cache_dir), req.key + self.suffix)
        if problem != "missing":
            warnings.warn(f"rebuilding cached pair clip {str(self.clip_path(req.key))!r} "
                          f"({_pair_text(**req.context())}): {problem}", CacheEntryRebuilt, stacklevel=3)
        return None

    # -- building ------------------------------------------------------------------------------

    def native_format(self, req: PairRequest) -> VideoFormat | None:
        """The common format when the pair clip can carry both videos' own frames unchanged, else None.

        That needs both videos in one :data:`NATIVE_PIX_FMTS` format, size (even) and colour description,
        and no other ``size`` asked for.  Otherwise frames are decoded to RGB, video 2 is fitted to the
        clip's size, and the clip is written from RGB (max abs error ~2, see :func:`write_clip`).  A cache whose
        format is not x264 in mp4 (a benchmark's option) always takes the RGB path.
        """
        if (self.fmt.codec, self.fmt.container) != ("libx264", "mp4"):
            return None  # native clips are x264 in mp4, encoded with this cache's options
        try:
            f1, f2 = probe(req.video1), probe(req.video2)
        except VideoDecodeError:
            return None  # the RGB path decodes it and reports the error, naming the pair
        size = (f1.width - f1.width % 2, f1.height - f1.height % 2) if req.size is None else \
            (req.size[0] - req.size[0] % 2, req.size[1] - req.size[1] % 2)
        if f1 == f2 and f1.pix_fmt in NATIVE_PIX_FMTS and size == (f1.width, f1.height):
            return f1
        return None

    def decode(self, req: PairRequest, which: int, native: bool = False) -> np.ndarray | NativeFrames:
        """The ``n_frames`` protocol frames of video ``which`` (1 or 2), RGB or native; errors name the pair."""
        path = req.video1 if which == 1 else req.video2
        try:
            frames = read_native(path, req.n_frames) if native else read_frames(path, req.n_frames)
        except FileNotFoundError as exc:
            raise _not_found(exc.filename or path, **req.context()) from exc
        except VideoDecodeError as exc:
            raise exc.with_pair(**req.context()) from exc
        with self._lock:
            self.stats["decodes"] += 1
        return frames

    def _tmp_path(self, key: str, suffix: str) -> Path:
        return self.cache_dir / f".{key}.{os.getpid()}.{uuid.uuid4().hex[:12]}.tmp{suffix}"

    def build(self, req: PairRequest, frames1: np.ndarray | NativeFrames, frames2: np.ndarray | NativeFrames) -> str:
        """Encode the pair clip from both videos' frames (both RGB, or both native), check it, and move it
        and its sidecar into place."""
        ctx = req.context()
        clip = self.clip_path(req.key)
        native = isinstance(frames1, NativeFrames)
        if native:
            width, height, mode = frames1.fmt.width, frames1.fmt.height, f"native {frames1.fmt.pix_fmt}"
        else:
            pair = concat_pair_frames(frames1, frames2, req.size)
            width, height, mode = int(pair.shape[2]), int(pair.shape[1]), f"rgb via {self.fmt.pix_fmt}"
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        tmp = self._tmp_path(req.key, self.suffix)
        tmp_side = self._tmp_path(req.key, ".json")
        try:
            try:
                if native:
                    write_native_clip(frames1, frames2, tmp, fps=self.fps, options=self.fmt.options)
                else:
                    write_clip(pair, tmp, fps=self.fps, fmt=self.fmt)
            except VideoEncodeError as exc:
                raise VideoEncodeError(clip, exc.reason, **ctx) from exc
            frames_written = count_frames(tmp)
            if frames_written != 2 * req.n_frames:
                raise VideoEncodeError(clip, f"clip reads back with {frames_written} frames, expected "
                                             f"{2 * req.n_frames}", **ctx)
            meta = {
                "key": req.key,
                "pipeline_version": PIPELINE_VERSION,
                "frames": 2 * req.n_frames,
                "bytes": tmp.stat().st_size,
                "digest": file_digest(tmp),
                "width": width,
                "height": height,
                "mode": mode,
                "video1": req.video1,
                "video2": req.video2,
                "n_frames": req.n_frames,
                "size": list(req.size) if req.size is not None else None,
            }
            os.replace(tmp, clip)
            tmp_side.write_text(json.dumps(meta, sort_keys=True, indent=1))
            os.replace(tmp_side, self.sidecar_path(req.key))
            # the digest was just computed from these bytes: this process need not read them again
            trust_checked(req.key, _signature(os.stat(clip)) + _signature(os.stat(self.sidecar_path(req.key)))
                          + (req.n_frames,))
        except OSError as exc:
            exc.add_note(f"while building pair clip {str(clip)!r} ({_pair_text(**ctx)})")
            raise
        finally:
            for leftover in (tmp, tmp_side):
                try:
                    leftover.unlink()
                except OSError:
                    pass
        with self._lock:
            self.stats["builds"] += 1
        return str(clip)

    def get(self, video1: str | os.PathLike, video2: str | os.PathLike, n_frames: int = 8,
            size: tuple[int, int] | None = None, pair_id: Any = None) -> str:
        """Path of the cached pair clip (``n_frames`` of video 1 then of video 2), built here if absent.

        Raises ``FileNotFoundError`` / :class:`VideoDecodeError` / :class:`VideoEncodeError` whose
        message names the failing path and the pair.  (Building many clips, each video decoded once,
        in the background: :mod:`convis_tasks.utils.prefetch`.)
        """
        req = self.request(video1, video2, n_frames, size, pair_id)
        found = self.lookup(req)
        return found if found is not None else self.make(req)

    def make(self, req: PairRequest) -> str:
        """Decode both videos of ``req`` (one when they are the same file) and build its clip."""
        native = self.native_format(req) is not None
        frames1 = self.decode(req, 1, native)
        frames2 = frames1 if req.id2 == req.id1 else self.decode(req, 2, native)
        return self.build(req, frames1, frames2)

    def remove_stale_temps(self, max_age_s: float = 3600.0) -> int:
        """Delete temporary files left by crashed builders older than ``max_age_s``; return the count."""
        import time

        removed = 0
        now = time.time()
        if not self.cache_dir.is_dir():
            return 0
        for tmp in self.cache_dir.iterdir():
            if not (tmp.name.startswith(".") and ".tmp" in tmp.name):
                continue
            try:
                if now - tmp.stat().st_mtime > max_age_s:
                    tmp.unlink()
                    removed += 1
            except OSError:
                pass
        return removed
