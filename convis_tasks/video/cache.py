"""The pair-clip cache: one clip per (pair, frame setting, format), checked by a content digest before use.

Which clips a run needs, in which order, and how each video is decoded only once per frame setting while the model
computes, is :mod:`convis_tasks.video.prefetch`'s business; this module builds one clip and checks cache entries
(:meth:`PairClipCache.check`). Pure library code: it must not import torch or lmms_eval.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat as _stat
import threading
import uuid
import warnings
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from convis_tasks.reading.jsonio import strict_load_file
from convis_tasks.video import decode  # decode.read_*: one place to observe decoding
from convis_tasks.video.decode import (DECORD_CONTAINERS, count_frames, NATIVE_PIX_FMTS, NativeFrames, VideoFormat,
                                       container_format, probe)
from convis_tasks.video.encode import (CLIP_FORMAT, PIPELINE_VERSION, ClipFormat, concat_pair_frames, write_clip,
                                       write_native_clip)
from convis_tasks.video.errors import (CacheEntryRebuilt, VideoDecodeError, VideoEncodeError, _not_found, _pair_text,
                                       _short)

_CACHE_ENV = "CONVIS_CACHE_DIR"
#: Digest of a clip's bytes written into its sidecar and checked before the clip is used.
DIGEST = "sha256"

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
            meta = strict_load_file(str(side))
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
            frames = decode.read_native(path, req.n_frames) if native else decode.read_frames(path, req.n_frames)
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
        in the background: :mod:`convis_tasks.video.prefetch`.)
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
