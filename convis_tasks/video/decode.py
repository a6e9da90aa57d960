"""Sampling and decoding: the protocol's frames of one video, as RGB arrays or in the source's own pixel format.

The benchmark feeds a model ``N`` uniformly sampled frames of video 1 followed by ``N`` frames of video 2. This
module reads the ``N`` frames of one source (decord for containers it reads at the frames asked for, else PyAV),
from a frame count it can vouch for; :mod:`convis_tasks.video.encode` writes pair clips and
:mod:`convis_tasks.video.cache` keeps them. Pure library code: it must not import torch or lmms_eval.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from convis_tasks.video.errors import VideoDecodeError, _not_found, _short

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


def header_problem(path: str | os.PathLike) -> str | None:
    """None when the file opens as a container with a sized video stream (:func:`probe`), else why not: the one
    header check of ``convis run``'s preflight."""
    try:
        fmt = probe(path)
    except VideoDecodeError as exc:
        if exc.reason == "no video stream":
            return "has no video stream"
        return f"header not readable ({exc.reason[:160]})"
    if not fmt.width:
        return "video stream has no frame size"
    return None


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
