"""Encoding pair clips: the ``2N`` frames of a pair as one lossless H.264 ``.mp4``.

When both videos share one YUV pixel format, frame size and colour description, the clip holds their decoded
planes unchanged (:func:`write_native_clip`), so every reader gets exactly the frames it decodes from the sources;
other pairs are decoded to RGB, fitted to one size and written from RGB (:func:`write_clip`, max abs error ~2).
Pure library code: it must not import torch or lmms_eval.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np

from convis_tasks.video.decode import NativeFrames
from convis_tasks.video.errors import VideoEncodeError, _short

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
