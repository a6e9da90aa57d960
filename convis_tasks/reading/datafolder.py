"""Where the ConViS-Bench data is, and what a data folder must hold: the one check every surface calls.

A data folder holds ``ConVIS.jsonl`` and the videos it names (found by :mod:`convis_tasks.reading.names`), and,
for the retrieval tasks, the human rankings (``ranked.json`` or ``$CONVIS_RANKINGS``). :func:`resolve_data_dir`
finds the folder; :func:`scan_videos` locates a set of named videos and lists every missing, ambiguous or escaping
one. The loader (:mod:`convis_tasks.reading.documents`), ``convis doctor`` and ``convis run``'s preflight all call
these, and all print :data:`DOWNLOAD_HINT` when the data is absent.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from convis_tasks.errors import InputError
from convis_tasks.reading.names import NameIndex

DATA_ENV = "CONVIS_DATA_DIR"
HF_REPO_ID = "bliberatori/ConViS-Bench"
PAIR_FILE = "ConVIS.jsonl"
RANKINGS_ENV = "CONVIS_RANKINGS"
RANKING_FILE = "ranked.json"
DEMO_DIR = Path(__file__).resolve().parent.parent / "demo_data"
DOWNLOAD_HINT = (f"huggingface-cli download {HF_REPO_ID} --repo-type dataset --local-dir ConViS-Bench && "
                 f"export {DATA_ENV}=$PWD/ConViS-Bench")


class DataNotFoundError(InputError, FileNotFoundError):
    """No ConViS-Bench data folder (or rankings file) could be found; the message says where it looked."""


@dataclass(frozen=True)
class Problem:
    """One finding that blocks a run, with what to do about it."""

    what: str
    fix: str = ""

    def line(self) -> str:
        return self.what + (f" (fix: {self.fix})" if self.fix else "")


def hf_hub_cache() -> Path:
    """The Hugging Face hub cache: ``$HF_HUB_CACHE``, else ``$HF_HOME/hub``."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    return Path(os.environ.get("HF_HOME", "~/.cache/huggingface")).expanduser() / "hub"


def hf_cache_snapshot(repo_id: str = HF_REPO_ID) -> Path | None:
    """The snapshot folder of a dataset downloaded with ``huggingface-cli download`` (standard HF cache layout)."""
    root = hf_hub_cache() / ("datasets--" + repo_id.replace("/", "--"))
    ref = root / "refs" / "main"
    if ref.is_file():
        snapshot = root / "snapshots" / ref.read_text().strip()
        if snapshot.is_dir():
            return snapshot
    snapshots = sorted((root / "snapshots").glob("*"), key=lambda p: p.stat().st_mtime) if root.is_dir() else []
    return snapshots[-1] if snapshots else None


def resolve_data_dir(explicit: str | os.PathLike | None = None) -> Path:
    """The data folder: ``explicit``, else ``$CONVIS_DATA_DIR``, else the Hugging Face cache snapshot."""
    for candidate, label in ((explicit, "argument"), (os.environ.get(DATA_ENV), f"${DATA_ENV}")):
        if candidate:
            path = Path(candidate).expanduser()
            if not (path / PAIR_FILE).is_file():
                raise DataNotFoundError(f"{label} points at {path}, which has no {PAIR_FILE}")
            return path
    snapshot = hf_cache_snapshot()
    if snapshot is not None and (snapshot / PAIR_FILE).is_file():
        return snapshot
    raise DataNotFoundError(
        f"ConViS-Bench data not found: set {DATA_ENV} to the folder holding {PAIR_FILE} and the videos "
        f"(e.g. `{DOWNLOAD_HINT.replace(' && ', '` then `')}`); looked in the Hugging Face cache at {hf_hub_cache()}. "
        f"The bundled demo set is at {DEMO_DIR}."
    )


def resolve_rankings(data_dir: Path) -> Path:
    """The retrieval rankings file: ``$CONVIS_RANKINGS``, else ``ranked.json`` in the data folder."""
    explicit = os.environ.get(RANKINGS_ENV)
    path = Path(explicit).expanduser() if explicit else data_dir / RANKING_FILE
    if not path.is_file():
        raise DataNotFoundError(f"retrieval rankings not found at {path}: put the human rankings (a JSON list of "
                                f"{{anchor, <Concept>: {{candidate: rank}}}}) there or set {RANKINGS_ENV}")
    return path


@dataclass
class VideoScan:
    """Where each named video is: ``found`` (name as written -> file), and one line per problem (missing, ambiguous,
    escaping), naming the first pair that names the video."""

    found: dict[str, str] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def scan_videos(root: Path, wanted: dict[str, str], *, stop: bool = False, missing_ok: bool = False) -> VideoScan:
    """Locate every video of ``wanted`` (name as written -> where it is named, e.g. ``pair a / b``) under ``root``.

    Every missing, ambiguous or escaping video is a line of ``problems``; with ``stop`` the first one raises
    instead (the loader). ``missing_ok`` lets a missing file pass (listed in ``missing`` only): models that read
    no video."""
    index = NameIndex(root)
    scan = VideoScan()
    for video, where in wanted.items():
        try:
            path = index.find(video, where)
            if path is None and not missing_ok:
                index.locate(video, where)  # raises NameNotFoundError with the one wording
        except InputError as exc:
            if stop:
                raise
            scan.problems.append(str(exc))
            path = None
        if path is None:
            scan.missing.append(video)
        else:
            scan.found[video] = path
    return scan
