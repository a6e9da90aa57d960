"""Unpack a dataset's archives into its data folder, as lmms-eval 0.7.3 does, safely and redo-able.

lmms-eval's ``ConfigurableTask.download`` (``dataset_kwargs: video: True``) unpacks, once, on the main process,
every ``*.zip`` and ``*.tar*`` of the downloaded snapshot (at any depth) into one folder, members at their paths
relative to that folder; tar files named ``<base>_<N>.tar...`` are parts of one archive, concatenated in order.
Here the same, with three differences: a member that would leave the folder (absolute, ``..``, through a symlinked
folder), a link or a device is refused, never written; a member that would replace a file of the repository itself,
or one written earlier in the same unpacking, is refused (two sources for one path is not a choice to make
silently); and each file is written to a temporary name and renamed into place, so an interrupted unpacking leaves
whole files or temporaries, never a truncated file under its real name. Whether the whole unpacking finished is
recorded by the caller (:mod:`convis_tasks.harness.fetch` writes its completion marker last), so an interrupted
one is redone from the start, not trusted.
"""

from __future__ import annotations

import io
import os
import re
import shutil
import stat
import tarfile
import zipfile
from pathlib import Path
from typing import BinaryIO, Callable, Iterable

from convis_tasks.errors import InputError
from convis_tasks.reading.datafolder import is_archive
from convis_tasks.reading.names import escapes

PART = re.compile(r"^(?P<base>.*?)(?:_(?P<part>\d+))?(?P<ext>\.(?:tar(?:\.\w+)?|tgz|tbz2|txz))$", re.IGNORECASE)
TEMP_SUFFIX = ".convis-unpacking"


class ArchiveError(InputError):
    """An archive member that cannot be unpacked safely (it escapes the folder, is a link or a device, or would
    replace another file); the message names the archive and the member."""


def archive_groups(paths: Iterable[Path]) -> list[list[Path]]:
    """The archives among ``paths``, each a list of its parts in order: a zip alone; tar files that differ only by
    a ``_<N>`` suffix before ``.tar`` as one archive, ordered by N (lmms-eval's grouping). Sorted by first part."""
    zips, tars = [], {}
    for path in sorted(Path(p) for p in paths):
        if not is_archive(path.name):
            continue
        match = PART.match(path.name) if not path.name.lower().endswith(".zip") else None
        if match is None:
            zips.append([path])
            continue
        key = (path.parent, match["base"], match["ext"].lower())
        tars.setdefault(key, []).append((int(match["part"] or -1), path))
    groups = zips + [[p for _, p in sorted(parts)] for parts in tars.values()]
    return sorted(groups, key=lambda g: g[0])


class _Chain(io.RawIOBase):
    """The parts of a split archive read as one stream."""

    def __init__(self, parts: list[Path]):
        super().__init__()
        self.parts = list(parts)
        self.current: BinaryIO | None = None

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        while True:
            if self.current is None:
                if not self.parts:
                    return 0
                self.current = open(self.parts.pop(0), "rb")  # noqa: SIM115 - closed when exhausted or on close()
            n = self.current.readinto(buffer)
            if n:
                return n
            self.current.close()
            self.current = None

    def close(self) -> None:
        if self.current is not None:
            self.current.close()
        super().close()


class Unpacker:
    """Writes the members of archives under ``dest`` (module doc: the rules). ``protected`` holds the paths
    (relative, ``/``-separated) of the repository's own files, which no member may replace."""

    def __init__(self, dest: Path, protected: Iterable[str] = ()):
        self.dest = Path(dest)
        self.real_dest = os.path.realpath(self.dest)
        self.protected = {os.path.normpath(p) for p in protected}
        self.written: dict[str, str] = {}  # member path -> the archive it came from

    def _target(self, archive: str, name: str) -> Path:
        clean = name.replace("\\", "/")  # a zip written on Windows may separate with backslashes
        norm = os.path.normpath(clean) if clean else ""
        if escapes(clean) or norm in ("", "."):
            raise ArchiveError(f"{archive}: member {name!r} leads out of {self.dest}; refusing to unpack it")
        target = self.dest / norm
        parent = os.path.realpath(target.parent)
        if parent != self.real_dest and not parent.startswith(self.real_dest.rstrip(os.sep) + os.sep):
            raise ArchiveError(f"{archive}: member {name!r} leads out of {self.dest} (through a symlinked folder); "
                               "refusing to unpack it")
        return target

    def _write(self, archive: str, name: str, source: BinaryIO) -> None:
        target = self._target(archive, name)
        key = os.path.relpath(target, self.dest)
        if key in self.protected:
            raise ArchiveError(f"{archive}: member {name!r} would replace the dataset's own file {key}")
        if key in self.written:
            raise ArchiveError(f"{archive}: member {name!r} was already unpacked from {self.written[key]}")
        if target.is_dir() and not target.is_symlink():
            raise ArchiveError(f"{archive}: member {name!r} would replace the folder {target}")
        target.parent.mkdir(parents=True, exist_ok=True)
        temp = target.with_name(target.name + TEMP_SUFFIX)
        with open(temp, "wb") as out:
            shutil.copyfileobj(source, out, 1024 * 1024)
        os.replace(temp, target)  # replaces a link, never writes through it
        self.written[key] = archive

    def _folder(self, archive: str, name: str) -> None:
        target = self._target(archive, name.rstrip("/"))
        target.mkdir(parents=True, exist_ok=True)

    def unpack_zip(self, path: Path) -> None:
        with zipfile.ZipFile(path) as archive:
            for info in archive.infolist():
                mode = info.external_attr >> 16
                if info.is_dir():
                    self._folder(path.name, info.filename)
                elif stat.S_IFMT(mode) and not stat.S_ISREG(mode):  # no type bits: a zip made elsewhere
                    raise ArchiveError(f"{path.name}: member {info.filename!r} is not a regular file (a link?); "
                                       "only files and folders are unpacked")
                else:
                    with archive.open(info) as source:
                        self._write(path.name, info.filename, source)

    def unpack_tar(self, parts: list[Path]) -> None:
        label = parts[0].name if len(parts) == 1 else f"{parts[0].name} (+{len(parts) - 1} parts)"
        with io.BufferedReader(_Chain(parts)) as stream, \
                tarfile.open(fileobj=stream, mode="r|*", ignore_zeros=True) as archive:
            for member in archive:
                if member.isdir():
                    if os.path.normpath(member.name) not in (".", ""):
                        self._folder(label, member.name)
                elif member.isreg():
                    source = archive.extractfile(member)
                    assert source is not None  # a regular member always has a body
                    self._write(label, member.name, source)
                else:
                    kind = "a link" if member.issym() or member.islnk() else "a device or other special file"
                    raise ArchiveError(f"{label}: member {member.name!r} is {kind}; only files and folders are "
                                       "unpacked")

    def unpack(self, group: list[Path]) -> None:
        """One archive (its parts in order)."""
        if group[0].name.lower().endswith(".zip"):
            self.unpack_zip(group[0])
        else:
            self.unpack_tar(group)


def unpack_all(groups: list[list[Path]], dest: Path, protected: Iterable[str] = (),
               progress: Callable[[str], None] | None = None) -> int:
    """Unpack every archive of ``groups`` into ``dest``; the number of files written. Temporaries an interrupted
    earlier unpacking left are removed first."""
    for leftover in Path(dest).rglob("*" + TEMP_SUFFIX) if Path(dest).is_dir() else []:
        leftover.unlink()
    unpacker = Unpacker(dest, protected)
    for group in groups:
        if progress is not None:
            progress(f"unpacking {', '.join(p.name for p in group)} into {dest}")
        try:
            unpacker.unpack(group)
        except (zipfile.BadZipFile, tarfile.TarError, EOFError) as exc:
            raise ArchiveError(f"{group[0]}: not a readable archive ({type(exc).__name__}: {exc})") from None
    return len(unpacker.written)
