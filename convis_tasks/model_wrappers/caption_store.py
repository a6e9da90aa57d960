"""Precomputed captions: one ``<video_id>.txt`` per video, found by the one name rule of
:mod:`convis_tasks.reading.names` (a caption id that matches two files is an error naming both)."""

from __future__ import annotations

import os
from pathlib import Path

from ..reading.documents import caption_id as video_id

class CaptionStore:
    """Precomputed captions, one ``<video_id>.txt`` per video (the release's ``captions/<captioner>/`` layout)."""

    def __init__(self, folder: str | os.PathLike) -> None:
        if folder in (None, ""):
            raise ValueError("captions=FOLDER is required: a folder of <video_id>.txt caption files")
        self.folder = Path(os.fspath(folder)).expanduser()
        if not self.folder.is_dir():
            raise FileNotFoundError(f"caption folder not found: {self.folder}")

    def path(self, video: str) -> Path:
        return self.folder / f"{video_id(video)}.txt"

    def get(self, video: str) -> str:
        path = self.path(video)
        try:
            text = path.read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            raise FileNotFoundError(f"no caption for video {video_id(video)!r} ({video}): expected {path.name} in "
                                    f"caption folder {self.folder}") from None
        if not text:
            raise ValueError(f"empty caption for video {video_id(video)!r}: {path} (caption folder {self.folder})")
        return text
