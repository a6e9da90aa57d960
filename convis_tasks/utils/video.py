"""Frame pipeline for ConViS pairs: sample, decode, concatenate, encode and cache pair clips.

The benchmark feeds a model ``N`` uniformly sampled frames of video 1 followed by ``N`` frames of
video 2.  Models that only accept a single video get a *pair clip*: those ``2N`` frames written as
one near-lossless ``.mp4`` (see :func:`write_clip`), cached on disk by :class:`PairClipCache`.

This module is pure library code: it must not import torch or lmms_eval.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import uuid
from collections import OrderedDict
from fractions import Fraction
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np

__all__ = [
    "PIPELINE_VERSION",
    "ENCODER_OPTIONS",
    "VideoDecodeError",
    "VideoEncodeError",
    "sample_indices",
    "read_frames",
    "concat_pair_frames",
    "write_clip",
    "count_frames",
    "default_cache_dir",
    "FrameMemo",
    "PairClipCache",
]

#: Bump whenever sampling, resizing or encoding changes: it is part of every cache key.
PIPELINE_VERSION = "1"

#: libx264 settings of :func:`write_clip`.  ``qp=0`` is mathematically lossless in YUV;
#: ``yuv444p`` keeps full chroma (4:2:0 smears colour edges, max error ~100 on textured frames),
#: so the only loss is RGB<->YUV rounding (max error ~2).  ``threads=1`` keeps the bitstream
#: independent of the machine's core count (deterministic output); no B-frames keeps decode order
#: simple for every reader.
ENCODER_OPTIONS: dict[str, str] = {
    "qp": "0",
    "preset": "veryfast",
    "threads": "1",
    "bframes": "0",
}
PIX_FMT = "yuv444p"

_CACHE_ENV = "CONVIS_CACHE_DIR"


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


def _rebuild_error(cls, path, reason, pair_id, video1, video2):
    return cls(path, reason, pair_id=pair_id, video1=video1, video2=video2)


def _not_found(path: Any, pair_id: Any = None, video1: Any = None, video2: Any = None):
    msg = "video file not found"
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


def _gather(unique_frames: np.ndarray, inverse: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(unique_frames[inverse])


def _read_decord(path: Path, n: int) -> np.ndarray:
    from decord import VideoReader, cpu  # noqa: WPS433 (optional dependency)

    vr = VideoReader(str(path), ctx=cpu(0))
    total = len(vr)
    if total <= 0:
        raise VideoDecodeError(path, "video has no frames")
    idx = np.asarray(sample_indices(total, n))
    uniq, inverse = np.unique(idx, return_inverse=True)
    batch = vr.get_batch([int(i) for i in uniq]).asnumpy()
    if batch.ndim != 4 or batch.shape[0] != len(uniq) or batch.shape[-1] != 3:
        raise VideoDecodeError(path, f"decord returned an unexpected batch of shape {batch.shape}")
    return _gather(batch.astype(np.uint8, copy=False), inverse)


def _pyav_count(path: Path) -> int:
    """Frame count from the container header, else by demuxing (no decoding)."""
    import av

    with av.open(str(path)) as container:
        if not container.streams.video:
            raise VideoDecodeError(path, "no video stream")
        stream = container.streams.video[0]
        if stream.frames and stream.frames > 0:
            return int(stream.frames)
        return sum(1 for pkt in container.demux(stream) if pkt.size)


def _pyav_decode(path: Path, wanted: Sequence[int]) -> tuple[dict[int, np.ndarray], int]:
    """Decode sequentially, keeping only the frames in ``wanted``; stop after the last one.

    Returns the kept frames and the number of frames decoded (== the true length when the stream
    ended before the last wanted index).
    """
    import av

    wanted_set = set(int(i) for i in wanted)
    last = max(wanted_set)
    kept: dict[int, np.ndarray] = {}
    decoded = 0
    with av.open(str(path)) as container:
        if not container.streams.video:
            raise VideoDecodeError(path, "no video stream")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        for i, frame in enumerate(container.decode(stream)):
            decoded = i + 1
            if i in wanted_set:
                kept[i] = frame.to_ndarray(format="rgb24")
            if i >= last:
                break
    return kept, decoded


def _read_pyav(path: Path, n: int) -> np.ndarray:
    total = _pyav_count(path)
    for _attempt in range(2):
        if total <= 0:
            raise VideoDecodeError(path, "video has no frames")
        idx = sample_indices(total, n)
        kept, decoded = _pyav_decode(path, idx)
        if all(i in kept for i in idx):
            return np.stack([kept[i] for i in idx]).astype(np.uint8, copy=False)
        # The header over-counted: resample against the number of frames that really decode.
        total = decoded
    raise VideoDecodeError(path, "frame count is inconsistent between passes")


def read_frames(path: str | os.PathLike, n: int, *, backend: str = "auto") -> np.ndarray:
    """Decode the ``n`` protocol frames (:func:`sample_indices`) of a video as ``(n, H, W, 3)`` uint8 RGB.

    ``backend``: ``"auto"`` (decord, falling back to PyAV when decord is missing or fails),
    ``"decord"`` or ``"pyav"``.  A missing file raises ``FileNotFoundError``; an unreadable, corrupt
    or frameless one raises :class:`VideoDecodeError`; both name the path.
    """
    if backend not in ("auto", "decord", "pyav"):
        raise ValueError(f"unknown backend {backend!r}; use 'auto', 'decord' or 'pyav'")
    if int(n) <= 0:
        raise ValueError(f"number of frames to sample must be positive, got n={n}")
    path = Path(os.fspath(path)).expanduser()
    _check_file(path)

    errors: list[str] = []
    if backend in ("auto", "decord"):
        try:
            return _read_decord(path, n)
        except ImportError as exc:
            if backend == "decord":
                raise
            errors.append(f"decord unavailable ({exc})")
        except VideoDecodeError as exc:
            if backend == "decord":
                raise
            errors.append(f"decord: {exc.reason}")
        except Exception as exc:  # decord raises its own DECORDError (a RuntimeError) and others
            if backend == "decord":
                raise VideoDecodeError(path, f"decord: {_short(exc)}") from exc
            errors.append(f"decord: {_short(exc)}")
    try:
        return _read_pyav(path, n)
    except VideoDecodeError as exc:
        errors.append(f"pyav: {exc.reason}")
        raise VideoDecodeError(path, "; ".join(errors)) from exc
    except Exception as exc:  # av.error.* (InvalidDataError, ...), ValueError from PyAV
        errors.append(f"pyav: {_short(exc)}")
        raise VideoDecodeError(path, "; ".join(errors)) from exc


def _short(exc: BaseException, limit: int = 300) -> str:
    text = f"{type(exc).__name__}: {exc}".strip()
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def count_frames(path: str | os.PathLike) -> int:
    """Number of frames in a video as decord reports it (PyAV fallback); used to verify clips."""
    path = Path(os.fspath(path))
    _check_file(path)
    try:
        from decord import VideoReader, cpu

        return len(VideoReader(str(path), ctx=cpu(0)))
    except Exception:
        try:
            return _pyav_count(path)
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
               fps: float | int | Fraction = 1) -> None:
    """Write RGB uint8 frames as an H.264 ``.mp4`` (see :data:`ENCODER_OPTIONS`).

    The file reads back through decord and PyAV with exactly ``len(frames)`` frames in order, near
    lossless (max abs error ~2 from RGB<->YUV rounding), and the same frames always give a
    byte-identical file (with the same PyAV/FFmpeg/x264 build).  Writes ``path`` directly; atomic
    placement is the caller's business (:class:`PairClipCache` does it).
    """
    import av

    arr = _as_frames(frames, "frames")
    path = Path(os.fspath(path))
    rate = Fraction(fps).limit_denominator(100000) if not isinstance(fps, Fraction) else fps
    if rate <= 0:
        raise ValueError(f"fps must be positive, got {fps!r}")
    try:
        with av.open(str(path), mode="w", format="mp4") as container:
            stream = container.add_stream("libx264", rate=rate)
            stream.width = int(arr.shape[2])
            stream.height = int(arr.shape[1])
            stream.pix_fmt = PIX_FMT
            stream.options = dict(ENCODER_OPTIONS)
            for i, frame in enumerate(arr):
                vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
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
# caching
# --------------------------------------------------------------------------------------------


def default_cache_dir() -> Path:
    """``$CONVIS_CACHE_DIR`` if set, else ``~/.cache/convis/clips``."""
    env = os.environ.get(_CACHE_ENV)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "convis" / "clips"


class FrameMemo:
    """Small thread-safe LRU of decoded frames keyed by ``(path, size, mtime_ns, n)``.

    Bounded by entry count and by total bytes (an array larger than ``max_bytes`` is not kept).
    """

    def __init__(self, max_items: int = 64, max_bytes: int = 512 * 1024 * 1024) -> None:
        self.max_items = int(max_items)
        self.max_bytes = int(max_bytes)
        self._data: OrderedDict[tuple, np.ndarray] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._data)

    def get(self, key: tuple) -> np.ndarray | None:
        with self._lock:
            arr = self._data.get(key)
            if arr is None:
                self.misses += 1
                return None
            self._data.move_to_end(key)
            self.hits += 1
            return arr

    def put(self, key: tuple, arr: np.ndarray) -> None:
        if self.max_items <= 0 or arr.nbytes > self.max_bytes:
            return
        arr.setflags(write=False)  # shared between callers: keep it immutable
        with self._lock:
            old = self._data.pop(key, None)
            if old is not None:
                self._bytes -= old.nbytes
            self._data[key] = arr
            self._bytes += arr.nbytes
            while self._data and (len(self._data) > self.max_items or self._bytes > self.max_bytes):
                _, dropped = self._data.popitem(last=False)
                self._bytes -= dropped.nbytes

    def clear(self) -> None:
        with self._lock:
            self._data.clear()
            self._bytes = 0


def _stat_video(path: Path, pair_id: Any, video1: Any, video2: Any) -> os.stat_result:
    try:
        st = path.stat()
    except FileNotFoundError:
        raise _not_found(path, pair_id, video1, video2) from None
    if not path.is_file():
        raise VideoDecodeError(path, "not a regular file", pair_id=pair_id, video1=video1, video2=video2)
    return st


class PairClipCache:
    """On-disk cache of concatenated pair clips (``2N`` frames, video 1 first).

    Entries are ``<key>.mp4`` plus a ``<key>.json`` sidecar written *after* the mp4 is in place.
    The key is the sha256 of both videos' resolved paths, byte sizes and ``mtime_ns``, ``n_frames``,
    ``size`` and :data:`PIPELINE_VERSION`.  An entry counts as valid only when the sidecar exists,
    matches the key and records the mp4's current byte size and ``2N`` frames; otherwise it is
    rebuilt.  Files are written to a unique temporary name in the cache folder and moved into place
    with ``os.replace``, so concurrent builders (threads or processes) never expose a partial file.

    ``stats`` counts ``hits``, ``builds`` and ``decodes`` (calls of :func:`read_frames`).
    """

    def __init__(self, cache_dir: str | os.PathLike | None = None, *, memo: FrameMemo | None = None,
                 fps: float | int = 1, reader: Callable[[Path, int], np.ndarray] | None = None) -> None:
        self.cache_dir = Path(os.fspath(cache_dir)).expanduser() if cache_dir is not None else default_cache_dir()
        self.memo = memo if memo is not None else FrameMemo()
        self.fps = fps
        self._reader = reader
        self.stats = {"hits": 0, "builds": 0, "decodes": 0}
        self._lock = threading.Lock()

    # -- keys and paths ------------------------------------------------------------------------

    def key(self, video1: str | os.PathLike, video2: str | os.PathLike, n_frames: int = 8,
            size: tuple[int, int] | None = None, pair_id: Any = None) -> str:
        """The cache key of a pair (raises ``FileNotFoundError`` naming the pair for a missing video)."""
        return self._key_and_inputs(video1, video2, n_frames, size, pair_id)[0]

    def _key_and_inputs(self, video1, video2, n_frames, size, pair_id):
        n_frames = int(n_frames)
        if n_frames <= 0:
            raise ValueError(f"n_frames must be positive, got {n_frames}")
        if size is not None:
            if len(size) != 2:
                raise ValueError(f"size must be (W, H) or None, got {size!r}")
            size = (int(size[0]), int(size[1]))
        p1 = Path(os.fspath(video1)).expanduser().resolve()
        p2 = Path(os.fspath(video2)).expanduser().resolve()
        st1 = _stat_video(p1, pair_id, video1, video2)
        st2 = _stat_video(p2, pair_id, video1, video2)
        payload = {
            "pipeline_version": PIPELINE_VERSION,
            "video1": [str(p1), st1.st_size, st1.st_mtime_ns],
            "video2": [str(p2), st2.st_size, st2.st_mtime_ns],
            "n_frames": n_frames,
            "size": list(size) if size is not None else None,
            "fps": str(Fraction(self.fps).limit_denominator(100000)),
        }
        blob = json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()
        return hashlib.sha256(blob).hexdigest(), p1, st1, p2, st2, n_frames, size

    def clip_path(self, key: str) -> Path:
        return self.cache_dir / f"{key}.mp4"

    def sidecar_path(self, key: str) -> Path:
        return self.cache_dir / f"{key}.json"

    def is_valid(self, key: str, n_frames: int) -> bool:
        """Cheap validity check: sidecar present and consistent with the mp4 on disk."""
        clip, side = self.clip_path(key), self.sidecar_path(key)
        try:
            size = clip.stat().st_size
            meta = json.loads(side.read_text())
        except (OSError, ValueError):
            return False
        return (
            size > 0
            and isinstance(meta, dict)
            and meta.get("key") == key
            and meta.get("pipeline_version") == PIPELINE_VERSION
            and meta.get("bytes") == size
            and meta.get("frames") == 2 * int(n_frames)
        )

    # -- building ------------------------------------------------------------------------------

    def _frames(self, path: Path, st: os.stat_result, n: int) -> np.ndarray:
        mkey = (str(path), st.st_size, st.st_mtime_ns, n)
        arr = self.memo.get(mkey)
        if arr is None:
            reader = self._reader if self._reader is not None else read_frames
            arr = reader(path, n)
            with self._lock:
                self.stats["decodes"] += 1
            self.memo.put(mkey, arr)
        return arr

    def _tmp_path(self, key: str, suffix: str) -> Path:
        return self.cache_dir / f".{key}.{os.getpid()}.{uuid.uuid4().hex[:12]}.tmp{suffix}"

    def get(self, video1: str | os.PathLike, video2: str | os.PathLike, n_frames: int = 8,
            size: tuple[int, int] | None = None, pair_id: Any = None) -> str:
        """Path of the cached pair clip (``n_frames`` of video 1 then of video 2), built if absent.

        Raises ``FileNotFoundError`` / :class:`VideoDecodeError` / :class:`VideoEncodeError` whose
        message names the failing path and the pair.
        """
        key, p1, st1, p2, st2, n_frames, size = self._key_and_inputs(video1, video2, n_frames, size, pair_id)
        clip = self.clip_path(key)
        if self.is_valid(key, n_frames):
            with self._lock:
                self.stats["hits"] += 1
            return str(clip)

        ctx = {"pair_id": pair_id, "video1": video1, "video2": video2}
        try:
            frames1 = self._frames(p1, st1, n_frames)
            frames2 = self._frames(p2, st2, n_frames)
        except FileNotFoundError as exc:
            raise _not_found(exc.filename or p1, **ctx) from exc
        except VideoDecodeError as exc:
            raise exc.with_pair(**ctx) from exc
        pair = concat_pair_frames(frames1, frames2, size)

        self.cache_dir.mkdir(parents=True, exist_ok=True)
        tmp = self._tmp_path(key, ".mp4")
        tmp_side = self._tmp_path(key, ".json")
        try:
            try:
                write_clip(pair, tmp, fps=self.fps)
            except VideoEncodeError as exc:
                raise VideoEncodeError(clip, exc.reason, **ctx) from exc
            frames_written = count_frames(tmp)
            if frames_written != 2 * n_frames:
                raise VideoEncodeError(clip, f"clip reads back with {frames_written} frames, expected "
                                             f"{2 * n_frames}", **ctx)
            nbytes = tmp.stat().st_size
            os.replace(tmp, clip)
            meta = {
                "key": key,
                "pipeline_version": PIPELINE_VERSION,
                "frames": 2 * n_frames,
                "bytes": nbytes,
                "width": int(pair.shape[2]),
                "height": int(pair.shape[1]),
                "video1": str(p1),
                "video2": str(p2),
                "n_frames": n_frames,
                "size": list(size) if size is not None else None,
            }
            tmp_side.write_text(json.dumps(meta, sort_keys=True, indent=1))
            os.replace(tmp_side, self.sidecar_path(key))
        except OSError as exc:
            exc.add_note(f"while building pair clip {str(clip)!r} ({_pair_text(**ctx)})")
            raise
        finally:
            for leftover in (tmp, tmp_side):
                try:
                    leftover.unlink()
                except FileNotFoundError:
                    pass
                except OSError:
                    pass
        with self._lock:
            self.stats["builds"] += 1
        return str(clip)

    def remove_stale_temps(self, max_age_s: float = 3600.0) -> int:
        """Delete temporary files left by crashed builders older than ``max_age_s``; return the count."""
        import time

        removed = 0
        now = time.time()
        for tmp in self._iter_temps():
            try:
                if now - tmp.stat().st_mtime > max_age_s:
                    tmp.unlink()
                    removed += 1
            except OSError:
                pass
        return removed

    def _iter_temps(self) -> Iterable[Path]:
        if not self.cache_dir.is_dir():
            return []
        return [p for p in self.cache_dir.iterdir() if p.name.startswith(".") and ".tmp" in p.name]
