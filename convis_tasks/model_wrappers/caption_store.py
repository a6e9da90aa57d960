"""Precomputed captions: one ``<video_id>.txt`` per video, found by the videos' name rule, read as strict UTF-8.

A video's caption file is found as a video file is (:class:`convis_tasks.reading.names.NameIndex`): first
``<folder>/<the video path as written, extension replaced by .txt>`` (when that path stays inside the folder), else
the one file named ``<video_id>.txt`` anywhere under the folder (the release's flat ``captions/<captioner>/``
layout). Two different files of that name are an error listing both (one file reached by two paths is one file).

Within one store (one run of one model), two *different* videos may not share a caption file: ``a/x.mp4`` and
``b/x.mp4``, or ``x.mp4`` and ``x.webm``, would otherwise silently get the same caption. Two names are the same
video when both come with their located files and those are one file, or, when a file is missing, when one name's
path components end the other's (``videos_trimmed/x.mp4`` and ``x.mp4``: the pair list and the rankings name the
same video so): :func:`same_video`.
"""

from __future__ import annotations

import os
from pathlib import Path
from convis_tasks.errors import InputError
from convis_tasks.reading.names import NameIndex, NameNotFoundError, escapes


class CaptionError(InputError):
    """A caption file that cannot be used (not UTF-8, empty) or an ambiguous caption; the message names the files."""


def resolve_caption_file(index: NameIndex, video: str) -> Path:
    """The caption file of ``video`` (its path as written): ``<path as written>.txt`` under the folder, else the one
    ``<video_id>.txt`` anywhere under it, by the package's one name rule
    (:class:`~convis_tasks.reading.names.NameIndex`: two files of that name are an error listing both).
    :class:`~convis_tasks.reading.names.NameNotFoundError` naming the video, the file name and the folder when
    there is none."""
    stem = Path(os.fspath(video)).stem
    written = os.path.splitext(os.fspath(video))[0] + ".txt"
    if escapes(written):
        written = f"{stem}.txt"  # a video file's own path (not a name as written): its caption id alone
    found = index.find(written, f"caption of video {video!r}")
    if found is None:
        raise NameNotFoundError(f"no caption for video {stem!r} ({video}): expected {stem}.txt in caption folder "
                                f"{index.root}")
    return Path(found)


def same_video(a: tuple[str, str | None], b: tuple[str, str | None]) -> bool:
    """Whether two (name as written, located file or None) are one video, by the rule of the module docstring."""
    (name_a, file_a), (name_b, file_b) = a, b
    if file_a and file_b:
        return os.path.realpath(file_a) == os.path.realpath(file_b)
    parts_a = [p for p in os.path.normpath(name_a).split(os.sep) if p not in ("", os.curdir)]
    parts_b = [p for p in os.path.normpath(name_b).split(os.sep) if p not in ("", os.curdir)]
    short, long = sorted((parts_a, parts_b), key=len)
    return bool(short) and long[len(long) - len(short):] == short


def read_caption_file(path: Path, video: str, folder: Path) -> str:
    """The stripped text of a caption file; not UTF-8 or empty: :class:`CaptionError` naming the file."""
    data = Path(path).read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CaptionError(f"caption file {path} (video {video!r}) is not UTF-8 text: byte {exc.start} is "
                           f"{data[exc.start:exc.start + 1]!r} ({exc.reason}); re-save it as UTF-8") from None
    text = text.strip()
    if not text:
        raise CaptionError(f"empty caption for video {Path(os.fspath(video)).stem!r}: {path} "
                           f"(caption folder {folder})")
    return text


class CaptionStore:
    """Precomputed captions, one ``<video_id>.txt`` per video (the release's ``captions/<captioner>/`` layout)."""

    def __init__(self, folder: str | os.PathLike) -> None:
        if folder in (None, ""):
            raise InputError("captions=FOLDER is required: a folder of <video_id>.txt caption files")
        self.folder = Path(os.fspath(folder)).expanduser()
        if not self.folder.is_dir():
            raise FileNotFoundError(f"caption folder not found: {self.folder}")
        self._index = NameIndex(self.folder, what="caption")
        self._resolved: dict[str, Path] = {}  # video name as written -> its caption file
        self._claims: dict[Path, list[tuple[str, str | None]]] = {}  # caption file -> the videos it serves

    def path(self, video: str, file: str | None = None) -> Path:
        """The caption file of ``video`` (name as written; ``file``: its located video file, when known).

        Fails when the caption is missing or ambiguous, or when another video of this store has the same file."""
        video = os.fspath(video)
        path = self._resolved.get(video)
        if path is None:
            path = self._resolved[video] = resolve_caption_file(self._index, video)
        claim = (video, os.fspath(file) if file else None)
        owners = self._claims.setdefault(path, [])
        if claim not in owners:
            for other in owners:
                if not same_video(other, claim):
                    raise CaptionError(f"two different videos share the caption file {path}: {other[0]!r}"
                                       + (f" ({other[1]})" if other[1] else "") + f" and {video!r}"
                                       + (f" ({claim[1]})" if claim[1] else "")
                                       + "; give each its own caption (distinct video ids)")
            owners.append(claim)
        return path

    def get(self, video: str, file: str | None = None) -> str:
        """The caption text of ``video`` (see :meth:`path`)."""
        return read_caption_file(self.path(video, file), video, self.folder)
