"""Frame pipeline for ConViS pairs: sample, decode, concatenate, encode and cache pair clips.

The benchmark feeds a model ``N`` uniformly sampled frames of video 1 followed by ``N`` frames of
video 2.  Models that only accept a single video get a *pair clip*: those ``2N`` frames written as
one near-lossless ``.mp4`` (see :func:`write_clip`), cached on disk by :class:`PairClipCache`.

Cost model (measured with ``benchmarks/input_pipeline.py``; see ``benchmarks/README.md``): decoding the 8
protocol frames of a 28 s web video is the expensive step (decord seeks GOP by GOP but still decodes
most of the file), encoding a 16-frame lossless clip is next.  So every video is decoded at most once
per process and frame setting (:func:`shared_frame_memo`: a process-wide memo, bounded in memory and
backed by an on-disk spill of exact frames), every pair clip is encoded once and then served from disk,
and a cache hit costs a few ``stat`` calls.

This module is pure library code: it must not import torch or lmms_eval.
"""

from __future__ import annotations

import atexit
import hashlib
import json
import os
import re
import shutil
import socket
import stat as _stat
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
    "shared_frame_memo",
    "PairClipCache",
]

#: Bump whenever sampling, resizing or encoding changes: it is part of every cache key.
PIPELINE_VERSION = "2"  # 2: preset ultrafast (same decoded frames as 1, other bytes)

#: libx264 settings of :func:`write_clip`.  ``qp=0`` is mathematically lossless in YUV;
#: ``yuv444p`` keeps full chroma (4:2:0 smears colour edges, max error ~100 on textured frames),
#: so the only loss is RGB<->YUV rounding (max error ~2).  ``threads=1`` keeps the bitstream
#: independent of the machine's core count (deterministic output); no B-frames keeps decode order
#: simple for every reader.  ``preset=ultrafast``: with ``qp=0`` every preset decodes to the very same
#: frames (lossless), so the preset only trades encoding time for file size.  Measured on a 16-frame
#: 640x360 pair clip (2-core Xeon): veryfast 0.80 s, ultrafast 0.13 s, and ultrafast's file was even
#: ~9% smaller (CAVLC bypass coding vs veryfast's motion search on noisy lossless residuals).
ENCODER_OPTIONS: dict[str, str] = {
    "qp": "0",
    "preset": "ultrafast",
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

    # One decoder thread: decord's own threading does not speed up get_batch here (measured 0.29 s vs
    # 0.33 s per 28 s 640x360 clip), and PairClipCache decodes the two videos of a pair in parallel.
    # The decoded frames do not depend on the thread count.
    vr = VideoReader(str(path), ctx=cpu(0), num_threads=1)
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


_SPILL_ENV = "CONVIS_FRAME_SPILL_DIR"
_SPILL_PREFIX = ".frames-"
_SPILL_NAME = re.compile(r"^\.frames-(?P<host>[A-Za-z0-9_.-]*)-(?P<pid>\d+)-[0-9a-f]{8}$")


def _host_tag() -> str:
    return re.sub(r"[^A-Za-z0-9_.]", "_", socket.gethostname())[:40]


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # EPERM: it exists
        return True
    return True


def _remove_spill_dir(path: str, owner_pid: int) -> None:
    if os.getpid() == owner_pid:  # never from a forked child: the folder is its parent's
        shutil.rmtree(path, ignore_errors=True)


class FrameMemo:
    """Thread-safe LRU of decoded frames keyed by ``(path, size, mtime_ns, n)``, bounded in memory.

    Memory is bounded by entry count and by total bytes (an array larger than ``max_bytes`` is not
    kept in memory).  With a ``spill_dir`` (a parent folder), entries pushed out of memory are written
    to a private sub-folder ``.frames-<host>-<pid>-<random>`` of it as raw ``.npy`` (atomically) and a
    later :meth:`get` reads them back (about 2 ms for 5.5 MB, against 300-700 ms to decode a 28 s
    640x360 video): the very same bytes, so frames are still decoded only once.  The spill is bounded by
    ``spill_max_bytes`` (oldest entries dropped first) and never fills the disk beyond
    ``spill_reserve_bytes`` of free space; a spill file that cannot be written or read back (disk
    full, deleted, truncated) is simply a miss.  The folder is created on first use, belongs to this
    process (a forked child starts its own) and is deleted at exit; folders of dead processes on this
    host are swept when a new one is made.  Without ``spill_dir`` nothing touches the disk.

    ``hits`` / ``misses`` count :meth:`get` results (a spill read is a hit, also counted in
    ``spill_hits``); ``spill_writes`` counts entries written out.
    """

    def __init__(self, max_items: int = 64, max_bytes: int = 512 * 1024 * 1024, *,
                 spill_dir: str | os.PathLike | None = None, spill_max_bytes: int = 16 * 1024 ** 3,
                 spill_reserve_bytes: int = 2 * 1024 ** 3) -> None:
        self.max_items = int(max_items)
        self.max_bytes = int(max_bytes)
        self.spill_dir = None if spill_dir is None else Path(os.fspath(spill_dir)).expanduser()
        self.spill_max_bytes = int(spill_max_bytes)
        self.spill_reserve_bytes = int(spill_reserve_bytes)
        self._data: OrderedDict[tuple, np.ndarray] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0
        self.spill_hits = 0
        self.spill_writes = 0
        # key -> (file, shape, dtype str, nbytes), oldest first; valid for process _spill_pid only
        self._spilled: OrderedDict[tuple, tuple[Path, tuple, str, int]] = OrderedDict()
        self._spill_bytes = 0
        self._spill_path: Path | None = None
        self._spill_pid = os.getpid()

    def __len__(self) -> int:
        return len(self._data)

    @property
    def nbytes(self) -> int:
        """Bytes of frames held in memory."""
        return self._bytes

    @property
    def spilled(self) -> int:
        """Number of entries currently in the spill folder."""
        self._check_fork()
        return len(self._spilled)

    @property
    def spill_bytes(self) -> int:
        self._check_fork()
        return self._spill_bytes

    def get(self, key: tuple) -> np.ndarray | None:
        self._check_fork()
        with self._lock:
            arr = self._data.get(key)
            if arr is not None:
                self._data.move_to_end(key)
                self.hits += 1
                return arr
            entry = self._spilled.get(key)
            if entry is None:
                self.misses += 1
                return None
            self._spilled.move_to_end(key)
        arr = self._spill_read(entry)
        with self._lock:
            if arr is None:
                if self._spilled.get(key) == entry:
                    del self._spilled[key]
                    self._spill_bytes -= entry[3]
                    _unlink_quietly(entry[0])
                self.misses += 1
                return None
            self.hits += 1
            self.spill_hits += 1
        arr.setflags(write=False)
        self.put(key, arr)
        return arr

    def put(self, key: tuple, arr: np.ndarray) -> None:
        if self.max_items <= 0:
            return
        self._check_fork()
        arr.setflags(write=False)  # shared between callers: keep it immutable
        evicted: list[tuple[tuple, np.ndarray]] = []
        with self._lock:
            if arr.nbytes > self.max_bytes:
                if self.spill_dir is not None and key not in self._spilled:
                    evicted.append((key, arr))  # too big for memory: straight to the spill
            else:
                old = self._data.pop(key, None)
                if old is not None:
                    self._bytes -= old.nbytes
                self._data[key] = arr
                self._bytes += arr.nbytes
                while self._data and (len(self._data) > self.max_items or self._bytes > self.max_bytes):
                    old_key, dropped = self._data.popitem(last=False)
                    self._bytes -= dropped.nbytes
                    if self.spill_dir is not None and old_key not in self._spilled:
                        evicted.append((old_key, dropped))
        for old_key, dropped in evicted:  # file I/O outside the lock
            self._spill_write(old_key, dropped)

    def clear(self) -> None:
        """Forget everything, in memory and in the spill."""
        self._check_fork()
        with self._lock:
            self._data.clear()
            self._bytes = 0
            files = [entry[0] for entry in self._spilled.values()]
            self._spilled.clear()
            self._spill_bytes = 0
        for path in files:
            _unlink_quietly(path)

    # -- spill -----------------------------------------------------------------------------------

    def _check_fork(self) -> None:
        if self._spill_pid != os.getpid():  # forked child: the spill folder belongs to the parent
            with self._lock:
                if self._spill_pid != os.getpid():
                    self._spilled = OrderedDict()
                    self._spill_bytes = 0
                    self._spill_path = None
                    self._spill_pid = os.getpid()

    def _spill_folder(self) -> Path | None:
        with self._lock:
            if self._spill_path is not None:
                return self._spill_path
            parent = self.spill_dir
            if parent is None:
                return None
            try:
                parent.mkdir(parents=True, exist_ok=True)
                self._sweep_dead(parent)
                path = parent / f"{_SPILL_PREFIX}{_host_tag()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
                path.mkdir()
            except OSError:
                return None
            self._spill_path = path
            atexit.register(_remove_spill_dir, str(path), os.getpid())
            return path

    @staticmethod
    def _sweep_dead(parent: Path) -> None:
        host = _host_tag()
        try:
            names = os.listdir(parent)
        except OSError:
            return
        for name in names:
            m = _SPILL_NAME.match(name)
            if m and m.group("host") == host and not _pid_alive(int(m.group("pid"))):
                shutil.rmtree(parent / name, ignore_errors=True)

    def _spill_write(self, key: tuple, arr: np.ndarray) -> None:
        folder = self._spill_folder()
        if folder is None:
            return
        nbytes = int(arr.nbytes)
        if nbytes > self.spill_max_bytes:
            return
        drop = []
        with self._lock:
            while self._spilled and self._spill_bytes + nbytes > self.spill_max_bytes:
                _, old = self._spilled.popitem(last=False)
                self._spill_bytes -= old[3]
                drop.append(old[0])
        for path in drop:
            _unlink_quietly(path)
        name = hashlib.sha256(repr(key).encode()).hexdigest()[:40] + ".npy"
        path = folder / name
        tmp = folder / f".{name}.{uuid.uuid4().hex[:8]}.part"
        try:
            folder.mkdir(parents=True, exist_ok=True)  # recreated if someone removed it
            if shutil.disk_usage(folder).free < nbytes + self.spill_reserve_bytes:
                return
            with open(tmp, "wb") as fh:
                np.save(fh, arr, allow_pickle=False)
            os.replace(tmp, path)
        except OSError:
            _unlink_quietly(tmp)
            return
        with self._lock:
            if key in self._spilled or self._spill_path != folder:
                return
            self._spilled[key] = (path, tuple(arr.shape), arr.dtype.str, nbytes)
            self._spill_bytes += nbytes
            self.spill_writes += 1

    @staticmethod
    def _spill_read(entry: tuple[Path, tuple, str, int]) -> np.ndarray | None:
        path, shape, dtype, _ = entry
        try:
            arr = np.load(path, allow_pickle=False)
        except Exception:  # missing, truncated or garbled: decode again
            return None
        if tuple(arr.shape) != shape or arr.dtype.str != dtype:
            return None
        return arr


def _unlink_quietly(path: Path) -> None:
    try:
        path.unlink()
    except OSError:
        pass


_SHARED_MEMO: FrameMemo | None = None
_SHARED_SPILL_OFF = False
_SHARED_LOCK = threading.Lock()


def shared_frame_memo(spill_dir: str | os.PathLike | None = None) -> FrameMemo:
    """The process-wide :class:`FrameMemo` that :class:`PairClipCache` uses unless given another.

    ``hooks.doc_to_visual`` makes a new cache object per request; sharing the memo is what lets a
    video used by several pairs be decoded once.  In memory it holds at most 64 entries and 256 MiB
    (46 entries of 8 frames at 640x360), whatever the size of the data set; older entries spill to
    disk (see :class:`FrameMemo`) under ``$CONVIS_FRAME_SPILL_DIR`` if set (``off`` turns the spill
    off), else under the first ``spill_dir`` passed here (PairClipCache passes its cache folder).
    """
    global _SHARED_MEMO, _SHARED_SPILL_OFF
    with _SHARED_LOCK:
        if _SHARED_MEMO is None:
            _SHARED_MEMO = FrameMemo(max_items=64, max_bytes=256 * 1024 * 1024)
            env = os.environ.get(_SPILL_ENV, "")
            if env.lower() == "off":
                _SHARED_SPILL_OFF = True
            elif env:
                _SHARED_MEMO.spill_dir = Path(env).expanduser()
        if spill_dir is not None and _SHARED_MEMO.spill_dir is None and not _SHARED_SPILL_OFF:
            _SHARED_MEMO.spill_dir = Path(os.fspath(spill_dir)).expanduser()
        return _SHARED_MEMO


#: cache key -> stat signature of an entry this process has fully validated (see PairClipCache.is_valid)
_VALIDATED: dict[str, tuple] = {}
_VALIDATED_MAX = 200_000


def _stat_video(path: str | Path, pair_id: Any, video1: Any, video2: Any) -> os.stat_result:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise _not_found(path, pair_id, video1, video2) from None
    if not _stat.S_ISREG(st.st_mode):
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

    Decoded frames come from ``memo``; by default the process-wide :func:`shared_frame_memo` (or a
    private :class:`FrameMemo` when a custom ``reader`` is given), so that cache objects made per
    request still decode each video once.  When neither video of a pair is in the memo, the two are
    decoded in parallel (default reader only; ``parallel_decode=False`` turns it off).  A hit costs
    path resolution, four ``stat`` calls and a hash (~100 us): an entry already validated by this
    process is re-checked against the files' identity, size and mtime instead of re-reading its sidecar.
    """

    def __init__(self, cache_dir: str | os.PathLike | None = None, *, memo: FrameMemo | None = None,
                 fps: float | int = 1, reader: Callable[[Path, int], np.ndarray] | None = None,
                 parallel_decode: bool = True) -> None:
        self.cache_dir = Path(os.fspath(cache_dir)).expanduser() if cache_dir is not None else default_cache_dir()
        if memo is None:
            memo = shared_frame_memo(self.cache_dir) if reader is None else FrameMemo()
        self.memo = memo
        self.fps = fps
        self._reader = reader
        self.parallel_decode = bool(parallel_decode)
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
        # os.path.realpath is what Path.resolve() does, without the Path objects (this is the hit path)
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
        }
        blob = json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()
        return hashlib.sha256(blob).hexdigest(), p1, st1, p2, st2, n_frames, size

    def clip_path(self, key: str) -> Path:
        return self.cache_dir / f"{key}.mp4"

    def sidecar_path(self, key: str) -> Path:
        return self.cache_dir / f"{key}.json"

    def is_valid(self, key: str, n_frames: int) -> bool:
        """Cheap validity check: sidecar present and consistent with the mp4 on disk.

        The full check reads the sidecar.  Once an entry passed it in this process, later checks
        compare ``stat`` of both files (device, inode, size, mtime) with what was seen then: any
        rewrite, truncation or replacement of either file changes them and triggers the full check.
        """
        folder = os.fspath(self.cache_dir)
        clip, side = os.path.join(folder, key + ".mp4"), os.path.join(folder, key + ".json")
        try:
            cst = os.stat(clip)
            sst = os.stat(side)
        except OSError:
            return False
        sig = (cst.st_dev, cst.st_ino, cst.st_size, cst.st_mtime_ns,
               sst.st_dev, sst.st_ino, sst.st_size, sst.st_mtime_ns, int(n_frames))
        if _VALIDATED.get(key) == sig:
            return True
        size = cst.st_size
        try:
            with open(side, encoding="utf-8") as fh:
                meta = json.loads(fh.read())
        except (OSError, ValueError):
            return False
        ok = (
            size > 0
            and isinstance(meta, dict)
            and meta.get("key") == key
            and meta.get("pipeline_version") == PIPELINE_VERSION
            and meta.get("bytes") == size
            and meta.get("frames") == 2 * int(n_frames)
        )
        if ok:
            if len(_VALIDATED) >= _VALIDATED_MAX:
                _VALIDATED.clear()
            _VALIDATED[key] = sig
        return ok

    # -- building ------------------------------------------------------------------------------

    @staticmethod
    def _memo_key(path: Path, st: os.stat_result, n: int) -> tuple:
        return (str(path), st.st_size, st.st_mtime_ns, n)

    def _decode(self, path: Path, n: int, mkey: tuple) -> np.ndarray:
        reader = self._reader if self._reader is not None else read_frames
        arr = reader(path, n)
        with self._lock:
            self.stats["decodes"] += 1
        self.memo.put(mkey, arr)
        return arr

    def _frames(self, path: Path, st: os.stat_result, n: int) -> np.ndarray:
        mkey = self._memo_key(path, st, n)
        arr = self.memo.get(mkey)
        return arr if arr is not None else self._decode(path, n, mkey)

    def _pair_frames(self, p1: Path, st1: os.stat_result, p2: Path, st2: os.stat_result,
                     n: int) -> tuple[np.ndarray, np.ndarray]:
        """Frames of both videos: from the memo, else decoded (in parallel when both are missing).

        Errors are raised as a sequential decode would: video 1's first.
        """
        k1, k2 = self._memo_key(p1, st1, n), self._memo_key(p2, st2, n)
        a1 = self.memo.get(k1)
        a2 = a1 if k2 == k1 else self.memo.get(k2)
        if a1 is None and a2 is None and k1 != k2 and self.parallel_decode and self._reader is None:
            box: dict[str, Any] = {}

            def decode_first() -> None:
                try:
                    box["frames"] = self._decode(p1, n, k1)
                except BaseException as exc:  # re-raised in the calling thread
                    box["error"] = exc

            worker = threading.Thread(target=decode_first, name="convis-decode", daemon=True)
            worker.start()
            error2 = None
            try:
                a2 = self._decode(p2, n, k2)
            except BaseException as exc:
                error2 = exc
            worker.join()
            if "error" in box:
                raise box["error"]
            if error2 is not None:
                raise error2
            return box["frames"], a2
        if a1 is None:
            a1 = self._decode(p1, n, k1)
        if a2 is None:
            a2 = a1 if k2 == k1 else self._decode(p2, n, k2)
        return a1, a2

    def _tmp_path(self, key: str, suffix: str) -> Path:
        return self.cache_dir / f".{key}.{os.getpid()}.{uuid.uuid4().hex[:12]}.tmp{suffix}"

    def get(self, video1: str | os.PathLike, video2: str | os.PathLike, n_frames: int = 8,
            size: tuple[int, int] | None = None, pair_id: Any = None) -> str:
        """Path of the cached pair clip (``n_frames`` of video 1 then of video 2), built if absent.

        Raises ``FileNotFoundError`` / :class:`VideoDecodeError` / :class:`VideoEncodeError` whose
        message names the failing path and the pair.
        """
        key, p1, st1, p2, st2, n_frames, size = self._key_and_inputs(video1, video2, n_frames, size, pair_id)
        if self.is_valid(key, n_frames):
            with self._lock:
                self.stats["hits"] += 1
            return os.path.join(os.fspath(self.cache_dir), key + ".mp4")
        clip = self.clip_path(key)
        p1, p2 = Path(p1), Path(p2)

        ctx = {"pair_id": pair_id, "video1": video1, "video2": video2}
        try:
            frames1, frames2 = self._pair_frames(p1, st1, p2, st2, n_frames)
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
