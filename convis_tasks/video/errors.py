"""The errors of the video pipeline: a video that cannot be decoded or a clip that cannot be encoded, named with
its pair. Pure library code (no torch, no lmms_eval, no PyAV)."""

from __future__ import annotations

from typing import Any

from convis_tasks.errors import ConvisError

def _pair_text(pair_id: Any = None, video1: Any = None, video2: Any = None) -> str:
    parts = []
    if pair_id is not None:
        parts.append(f"pair {pair_id}")
    if video1 is not None or video2 is not None:
        parts.append(f"video1={str(video1)!r}, video2={str(video2)!r}")
    return "; ".join(parts)


class VideoDecodeError(ConvisError, RuntimeError):
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


def _short(exc: BaseException, limit: int = 300) -> str:
    text = f"{type(exc).__name__}: {exc}".strip()
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."
