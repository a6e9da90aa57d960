"""How a name written in a file resolves to a file on disk: the one rule, for videos and captions alike.

* :func:`walk_files` lists a folder without hanging: each real folder once (a symlink loop ends there), a file
  reached by two paths once, and symlinked folders that lead outside the root are not entered unless allowed.
* :class:`NameIndex` resolves a name as written (``videos_trimmed/sport/1005_001.mp4``) under a root: the path
  itself when it is a file there, else the one file with its base name anywhere under the root. Two different
  files with that base name are an error listing both; a path that is absolute or whose ``..`` leads out of the
  root is refused unless ``$CONVIS_ALLOW_OUTSIDE_PATHS=1``.
"""

from __future__ import annotations

import os
from pathlib import Path

from convis_tasks.errors import InputError

OUTSIDE_ENV = "CONVIS_ALLOW_OUTSIDE_PATHS"


class VideoPathError(InputError):
    """A path in an annotation file escapes the data folder (absolute, or ``..`` leading out of it), or a base name
    matches several files; the message names the pair, the path and the candidates."""


class NameNotFoundError(InputError, FileNotFoundError):
    """No file answers to a name; the message names the pair (or what asked) and where it looked."""


def outside_paths_allowed() -> bool:
    """``$CONVIS_ALLOW_OUTSIDE_PATHS=1``: the user allows paths outside the data folder."""
    return os.environ.get(OUTSIDE_ENV, "").strip() == "1"


def escapes(name: str) -> str | None:
    """How a path as written leaves the folder it is relative to: ``"absolute"``, ``"parent"`` (its ``..`` leads
    out), or None when it stays inside."""
    if os.path.isabs(name) or os.path.splitdrive(name)[0]:
        return "absolute"
    norm = os.path.normpath(name)
    return "parent" if norm == os.pardir or norm.split(os.sep)[0] == os.pardir else None


def walk_files(root: str | os.PathLike, allow_outside: bool | None = None) -> list[str]:
    """Every file under ``root``, sorted, each real file once, without hanging.

    Each real folder is visited once (a symlink loop ends the walk); a symlinked folder whose real path lies
    outside ``root`` is not entered (a link to ``/`` would walk the whole machine) unless ``allow_outside``
    (default: ``$CONVIS_ALLOW_OUTSIDE_PATHS=1``). Symlinked *files* are listed (the Hugging Face cache is made of
    them); a file reached by two paths is listed once, under its first path in sorted order."""
    if allow_outside is None:
        allow_outside = outside_paths_allowed()
    top = os.path.realpath(root)
    found: dict[str, str] = {}
    visited: set[str] = set()
    for folder, dirs, files in os.walk(root, followlinks=True):
        real = os.path.realpath(folder)
        if real in visited:
            dirs[:] = []
            continue
        visited.add(real)
        keep = []
        for name in sorted(dirs):
            target = os.path.realpath(os.path.join(folder, name))
            inside = target == top or target.startswith(top.rstrip(os.sep) + os.sep)
            if target not in visited and (inside or allow_outside):
                keep.append(name)
        dirs[:] = keep
        for name in files:
            path = os.path.join(folder, name)
            if os.path.isfile(path):
                found.setdefault(path, os.path.realpath(path))
    out: list[str] = []
    seen: set[str] = set()
    for path in sorted(found):
        if found[path] not in seen:
            seen.add(found[path])
            out.append(path)
    return out


class NameIndex:
    """Resolve names as written in a file to files under ``root`` (module doc: the rule)."""

    def __init__(self, root: str | os.PathLike, what: str = "video"):
        self.root = Path(root)
        self.what = what
        self._by_name: dict[str, list[str]] | None = None

    def _index(self) -> dict[str, list[str]]:
        if self._by_name is None:
            index: dict[str, list[str]] = {}
            for path in walk_files(self.root):
                index.setdefault(os.path.basename(path), []).append(path)
            self._by_name = index
        return self._by_name

    def _check_contained(self, name: str, where: str) -> None:
        if outside_paths_allowed():
            return
        how = escapes(name)
        if how == "absolute":
            raise VideoPathError(f"{where}: {self.what} path {name!r} is absolute; paths are relative to the data "
                                 f"folder {self.root} (set {OUTSIDE_ENV}=1 to allow paths outside it)")
        if how:
            raise VideoPathError(f"{where}: {self.what} path {name!r} leads out of the data folder {self.root} "
                                 f"(set {OUTSIDE_ENV}=1 to allow paths outside it)")

    def find(self, name: str, where: str) -> str | None:
        """The file of ``name``, or None when there is none; ambiguous or escaping names raise."""
        if not isinstance(name, str) or not name:
            raise VideoPathError(f"{where}: {self.what} path {name!r} is not a file name")
        self._check_contained(name, where)
        direct = self.root / name
        if direct.is_file():
            return str(direct)
        found = self._index().get(os.path.basename(name), [])
        if len(found) > 1:
            raise VideoPathError(f"{where}: {self.what} {name!r} is ambiguous: {len(found)} files under "
                                 f"{self.root} are named {os.path.basename(name)}: " + ", ".join(found))
        return found[0] if found else None

    def locate(self, name: str, where: str) -> str:
        """The file of ``name``; :class:`NameNotFoundError` naming ``where`` and both places looked at."""
        path = self.find(name, where)
        if path is None:
            raise NameNotFoundError(f"{where}: {self.what} {name!r} not found (looked for {self.root / name} and "
                                    f"for {os.path.basename(name)} anywhere under {self.root})")
        return path
