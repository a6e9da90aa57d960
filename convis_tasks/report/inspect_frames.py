"""The frames a model saw, as thumbnails for ``convis inspect``: from the run's pair clip, else the source videos.

The samples files do not log ``doc_to_visual``'s output, so the clip is found again the way the run made it: the
videos located in the data folder (:class:`~convis_tasks.reading.names.NameIndex`), and the clip's cache key
from :meth:`~convis_tasks.video.cache.PairClipCache.request` with the task's frames per video and frame size
(:class:`.inspect_data.ClipSpec`). A clip found in a cache folder, and passing the cache's own check (sidecar and
sha256 of its bytes), is decoded whole: its 2N frames are what the model received. Otherwise the two source videos
are decoded with :func:`~convis_tasks.video.decode.read_frames`, the run's own sampling. Each :class:`Strip` says
which source it came from, or why there are no frames (data folder or video missing, no settings logged); a
missing frame is never made up.

Thumbnails: Pillow, longest side at most ``thumb_px``, JPEG, as ``data:`` URIs, so the page fetches nothing.
Nothing here imports torch or lmms-eval (PyAV, and decord when installed, decode).
"""

from __future__ import annotations

import base64
import io
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from convis_tasks.reading.datafolder import resolve_data_dir
from convis_tasks.reading.names import NameIndex
from convis_tasks.video.cache import PairClipCache, default_cache_dir
from convis_tasks.video.decode import VideoDecodeError, read_frames
from convis_tasks.report.inspect_data import ClipSpec, InspectData

SOURCE_CACHE = "clip cache"
SOURCE_VIDEOS = "source videos"
SOURCE_NONE = "unavailable"
JPEG_QUALITY = 70  # 96 px thumbnails of web-like frames: 3.0 kB (80: 3.6 kB; benchmarks/inspect_page.py)


@dataclass
class Strip:
    """The thumbnails of one pair as one task showed it: video 1's, then video 2's (``data:`` URIs)."""

    frames1: list[str]
    frames2: list[str]
    source: str  # SOURCE_CACHE, SOURCE_VIDEOS or SOURCE_NONE
    detail: str  # the clip's path, the two videos' paths, or why there are no frames

    @property
    def bytes(self) -> int:
        return sum(len(u) for u in self.frames1 + self.frames2)


def thumbnail_uri(frame: np.ndarray, thumb_px: int, quality: int = JPEG_QUALITY) -> str:
    """One RGB frame as a JPEG ``data:`` URI, its longest side at most ``thumb_px`` (never enlarged)."""
    from PIL import Image

    image = Image.fromarray(np.ascontiguousarray(frame, dtype=np.uint8), "RGB")
    image.thumbnail((thumb_px, thumb_px), Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=quality, optimize=True)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def cache_folders(explicit: str | None, inputs: list[str]) -> list[Path]:
    """Where pair clips are looked for, in order: ``--cache-dir``, ``$CONVIS_CACHE_DIR``, a ``clip_cache`` folder
    beside or above each input (``convis demo --output DIR`` keeps its runs' clips in ``DIR/clip_cache``), and the
    default cache (``~/.cache/convis/clips``). A clip is used only under its own key and after the cache's check,
    so looking in several folders cannot pick a wrong one."""
    found: list[Path] = []
    candidates = [explicit] if explicit else []
    candidates.append(os.environ.get("CONVIS_CACHE_DIR"))
    for path in inputs:
        here = Path(path).resolve()
        here = here if here.is_dir() else here.parent
        candidates += [str(folder / "clip_cache") for folder in (here, here.parent, here.parent.parent)]
    candidates.append(str(default_cache_dir()))
    for candidate in candidates:
        if candidate and Path(candidate).expanduser().is_dir() and Path(candidate).expanduser() not in found:
            found.append(Path(candidate).expanduser())
    return found


class FrameFinder:
    """Finds and caches the :class:`Strip` of each (pair, settings); see the module docstring."""

    def __init__(self, data_dir: str | None, caches: list[Path], thumb_px: int = 96) -> None:
        self.thumb_px = int(thumb_px)
        self.caches = [PairClipCache(folder) for folder in caches]
        self.data_problem: str | None = None
        self.locator = None
        try:
            self.data_dir = resolve_data_dir(data_dir)
            self.locator = NameIndex(self.data_dir)
        except (OSError, ValueError) as exc:  # DataNotFoundError is a FileNotFoundError
            self.data_dir = None
            self.data_problem = f"no data folder: {exc}"
        self._strips: dict[tuple, Strip] = {}

    def strip(self, video1: str, video2: str, spec: ClipSpec) -> Strip:
        """The strip of ``video1`` / ``video2`` (as the run logged them) under ``spec``; computed once."""
        memo = (video1, video2, spec.n_frames, spec.size, spec.input, spec.cache_dir)
        if memo not in self._strips:
            self._strips[memo] = self._find(video1, video2, spec)
        return self._strips[memo]

    def _thumbs(self, frames: np.ndarray) -> list[str]:
        return [thumbnail_uri(f, self.thumb_px) for f in frames]

    def _find(self, video1: str, video2: str, spec: ClipSpec) -> Strip:
        if spec.n_frames is None:
            return Strip([], [], SOURCE_NONE, spec.unknown or "frames per video not known")
        if self.locator is None:
            return Strip([], [], SOURCE_NONE, self.data_problem or "no data folder")
        pair = f"{video1} / {video2}"
        try:
            path1, path2 = (self.locator.locate(v, f"pair {pair}") for v in (video1, video2))
        except (OSError, ValueError) as exc:
            return Strip([], [], SOURCE_NONE, str(exc))
        if path1 is None or path2 is None:
            return Strip([], [], SOURCE_NONE, f"pair {pair}: a video is missing under {self.data_dir}")
        n = spec.n_frames
        notes: list[str] = []
        caches = list(self.caches)
        if spec.cache_dir and Path(spec.cache_dir).expanduser().is_dir():
            caches.insert(0, PairClipCache(spec.cache_dir))
        if spec.input == "concat":
            for cache in caches:
                try:
                    req = cache.request(path1, path2, n, spec.size, pair)
                except (OSError, ValueError) as exc:
                    return Strip([], [], SOURCE_NONE, str(exc))
                problem = cache.check(req.key, n)
                if problem is None:
                    clip = cache.clip_path(req.key)
                    try:
                        frames = read_frames(clip, 2 * n)
                    except (OSError, VideoDecodeError) as exc:
                        notes.append(f"clip {clip} unreadable ({exc})")
                        continue
                    return Strip(self._thumbs(frames[:n]), self._thumbs(frames[n:]), SOURCE_CACHE, str(clip))
                if problem != "missing":
                    notes.append(f"clip {cache.clip_path(req.key)} not used: {problem}")
        else:
            notes.append(f"input: {spec.input}: the model read the two files; shown: the protocol's {n} frames of "
                         "each")
        try:
            frames1 = read_frames(path1, n)
            frames2 = frames1 if os.path.realpath(path1) == os.path.realpath(path2) else read_frames(path2, n)
        except (OSError, VideoDecodeError) as exc:
            return Strip([], [], SOURCE_NONE, "; ".join(notes + [str(exc)]))
        if spec.size is not None and spec.input == "concat":
            notes.append(f"the clip was {spec.size[0]}x{spec.size[1]}; thumbnails are of the source frames")
        detail = "; ".join([f"{path1} and {path2}, {n} frames each (no cached clip found)"] + notes)
        return Strip(self._thumbs(frames1), self._thumbs(frames2), SOURCE_VIDEOS, detail)


def collect_strips(data: InspectData, finder: FrameFinder) -> dict[tuple, Strip]:
    """``(model, task, video1, video2) -> Strip`` for every answer of ``data`` (retrieval: anchor, candidate)."""
    strips: dict[tuple, Strip] = {}
    for pv in data.pairs:
        for a in pv.answers:
            strips[(a.model, a.task, pv.video1, pv.video2)] = finder.strip(pv.video1, pv.video2, a.clip)
    for av in data.anchors:
        for a in av.answers:
            strips[(a.model, a.task, av.anchor, a.candidate)] = finder.strip(av.anchor, a.candidate, a.clip)
    return strips
