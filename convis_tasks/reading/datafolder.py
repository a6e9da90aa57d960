"""Where the ConViS-Bench data is, and what a data folder must hold: the one check every surface calls.

A data folder holds ``ConVIS.jsonl`` and the videos it names (found by :mod:`convis_tasks.reading.names`), and,
for the retrieval tasks, the human rankings (``ranked.json`` or ``$CONVIS_RANKINGS``). :func:`locate_data_dir` finds
the folder and says how (an argument, ``$CONVIS_DATA_DIR``, or the Hugging Face cache); :func:`resolve_data_dir`
is the same, raising when there is none; :func:`scan_videos` locates a set of named videos and lists every missing,
ambiguous or escaping one. The loader (:mod:`convis_tasks.reading.documents`), ``convis doctor``, ``convis data``
and ``convis run``'s preflight all call these, and all print :data:`DOWNLOAD_HINT` when the data is absent.

The Hugging Face cache, in this order: the folder ``convis data fetch`` built for the cached snapshot
(:func:`fetched_dir`: the snapshot's files plus its archives unpacked, complete when it holds
:data:`COMPLETE_MARKER`), else the snapshot itself when it holds ``ConVIS.jsonl`` and no archive (a
``huggingface-cli download``) and no fetch of it was interrupted (:data:`IN_PROGRESS` beside the fetched folders).
``$CONVIS_DATA_REVISION`` (a branch, tag or commit) picks the snapshot; default: ``main``. Nothing here touches the
network: fetching is :mod:`convis_tasks.harness.fetch`'s.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from convis_tasks.errors import InputError
from convis_tasks.reading.names import NameIndex

DATA_ENV = "CONVIS_DATA_DIR"
REVISION_ENV = "CONVIS_DATA_REVISION"
HF_REPO_ID = "bliberatori/ConViS-Bench"
PAIR_FILE = "ConVIS.jsonl"
RANKINGS_ENV = "CONVIS_RANKINGS"
RANKING_FILE = "ranked.json"
DEMO_DIR = Path(__file__).resolve().parent.parent / "demo_data"
FETCH_COMMAND = "convis data fetch"
DOWNLOAD_HINT = (f"run `{FETCH_COMMAND}` (downloads {HF_REPO_ID} into the Hugging Face cache), or set {DATA_ENV} "
                 f"to a folder holding {PAIR_FILE} and the videos")
FETCHED_FOLDER = "convis_data"  # under $HF_HOME: the data folders `convis data fetch` builds, one per commit
COMPLETE_MARKER = ".convis-complete.json"  # written last into a data folder that `convis data fetch` built
IN_PROGRESS = "fetch-in-progress.json"  # beside the fetched folders while a fetch runs; left by an interrupted one
ARCHIVE = re.compile(r"\.(zip|tar|tgz|tar\.gz|tar\.bz2|tbz2|tar\.xz|txz)$", re.IGNORECASE)
COMMIT = re.compile(r"^[0-9a-f]{40}$")


class DataNotFoundError(InputError, FileNotFoundError):
    """No ConViS-Bench data folder (or rankings file) could be found; the message says where it looked."""


@dataclass(frozen=True)
class Problem:
    """One finding that blocks a run, with what to do about it."""

    what: str
    fix: str = ""

    def line(self) -> str:
        return self.what + (f" (fix: {self.fix})" if self.fix else "")


def _truthy(value: str | None) -> bool:
    return (value or "").strip().upper() in {"1", "ON", "YES", "TRUE"}


def hf_home() -> Path:
    """The Hugging Face home: ``$HF_HOME``, else ``$XDG_CACHE_HOME/huggingface`` (``~/.cache/huggingface``)."""
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME") or "~/.cache").expanduser() / "huggingface"


def hf_hub_cache() -> Path:
    """The Hugging Face hub cache: ``$HF_HUB_CACHE`` (or ``$HUGGINGFACE_HUB_CACHE``), else ``$HF_HOME/hub``."""
    explicit = os.environ.get("HF_HUB_CACHE") or os.environ.get("HUGGINGFACE_HUB_CACHE")
    return Path(explicit).expanduser() if explicit else hf_home() / "hub"


def hub_offline() -> bool:
    """``$HF_HUB_OFFLINE`` is set (1/ON/YES/TRUE, as huggingface_hub reads it): no request leaves the machine."""
    return _truthy(os.environ.get("HF_HUB_OFFLINE"))


def data_revision(revision: str | None = None) -> str | None:
    """The revision asked for: ``revision``, else ``$CONVIS_DATA_REVISION``, else None (``main``)."""
    return revision or os.environ.get(REVISION_ENV) or None


def _repo_folder(repo_id: str) -> str:
    return "datasets--" + repo_id.replace("/", "--")


def is_archive(name: str) -> bool:
    """Whether a file of the dataset is an archive to unpack (``.zip``, ``.tar``, ``.tar.gz``/``.tgz``,
    ``.tar.bz2``, ``.tar.xz``)."""
    return bool(ARCHIVE.search(name))


def fetch_state_dir(repo_id: str = HF_REPO_ID) -> Path:
    """Where ``convis data fetch`` keeps the data folders it builds from the cache (one per commit), its lock and
    its in-progress record: ``$HF_HOME/convis_data/datasets--<org>--<name>`` (lmms-eval also unpacks a dataset's
    archives under ``$HF_HOME``)."""
    return hf_home() / FETCHED_FOLDER / _repo_folder(repo_id)


def fetched_dir(commit: str, repo_id: str = HF_REPO_ID) -> Path:
    """The data folder ``convis data fetch`` builds for one cached commit."""
    return fetch_state_dir(repo_id) / commit


def hf_cache_snapshot(repo_id: str = HF_REPO_ID, revision: str | None = None) -> Path | None:
    """The cached snapshot folder of the dataset (standard HF cache layout) for ``revision`` (default:
    ``$CONVIS_DATA_REVISION``, else ``main``, else the newest snapshot); None when it is not cached."""
    root = hf_hub_cache() / _repo_folder(repo_id)
    wanted = data_revision(revision)
    if wanted and COMMIT.match(wanted):
        snapshot = root / "snapshots" / wanted
        return snapshot if snapshot.is_dir() else None
    ref = root / "refs" / (wanted or "main")
    if ref.is_file():
        snapshot = root / "snapshots" / ref.read_text().strip()
        return snapshot if snapshot.is_dir() else None
    if wanted:  # a branch or tag that was never fetched: no other snapshot stands in for it
        return None
    snapshots = sorted((root / "snapshots").glob("*"), key=lambda p: p.stat().st_mtime) if root.is_dir() else []
    return snapshots[-1] if snapshots else None


def has_archives(folder: Path) -> bool:
    """Whether any file under ``folder`` is an archive (:func:`is_archive`)."""
    return any(is_archive(name) for _, _, files in os.walk(folder) for name in files)


@dataclass(frozen=True)
class DataLocation:
    """A data folder and how it was found: ``source`` is ``argument``, ``$CONVIS_DATA_DIR`` or ``Hugging Face
    cache``; ``detail`` says which cache entry."""

    path: Path
    source: str
    detail: str = ""


def cached_location(revision: str | None = None, repo_id: str = HF_REPO_ID) -> DataLocation | None:
    """The data folder in the Hugging Face cache (module doc: the order), or None."""
    snapshot = hf_cache_snapshot(repo_id, revision)
    if snapshot is None:
        return None
    fetched = fetched_dir(snapshot.name, repo_id)
    if (fetched / COMPLETE_MARKER).is_file() and (fetched / PAIR_FILE).is_file():
        return DataLocation(fetched, "Hugging Face cache", f"fetched by {FETCH_COMMAND}, commit {snapshot.name}")
    if (fetch_state_dir(repo_id) / IN_PROGRESS).is_file():
        return None
    if (snapshot / PAIR_FILE).is_file() and not has_archives(snapshot):
        return DataLocation(snapshot, "Hugging Face cache", f"snapshot {snapshot.name}")
    return None


def locate_data_dir(explicit: str | os.PathLike | None = None, revision: str | None = None) -> DataLocation | None:
    """The data folder and how it was found: ``explicit``, else ``$CONVIS_DATA_DIR``, else the Hugging Face cache;
    None when the cache has none. A folder given explicitly or by the variable that lacks ``ConVIS.jsonl`` raises."""
    for candidate, label in ((explicit, "argument"), (os.environ.get(DATA_ENV), f"${DATA_ENV}")):
        if candidate:
            path = Path(candidate).expanduser()
            if not (path / PAIR_FILE).is_file():
                raise DataNotFoundError(f"{label} points at {path}, which has no {PAIR_FILE}")
            return DataLocation(path, label)
    return cached_location(revision)


def not_found_message(revision: str | None = None, hint: bool = True) -> str:
    """What to say when neither an argument, ``$CONVIS_DATA_DIR`` nor the cache gives a data folder (``hint``: with
    :data:`DOWNLOAD_HINT`, for a message that has no separate fix)."""
    wanted = data_revision(revision)
    which = f"{HF_REPO_ID} at revision {wanted}" if wanted else HF_REPO_ID
    interrupted = (fetch_state_dir() / IN_PROGRESS).is_file()
    state = (f"an interrupted fetch of {which} left the Hugging Face cache at {hf_hub_cache()} incomplete"
             if interrupted else f"{which} is not in the Hugging Face cache at {hf_hub_cache()}")
    return (f"ConViS-Bench data not found: {state}" + (f"; {DOWNLOAD_HINT}" if hint else "")
            + f". The bundled demo set is at {DEMO_DIR}.")


def resolve_data_dir(explicit: str | os.PathLike | None = None, revision: str | None = None) -> Path:
    """The data folder: ``explicit``, else ``$CONVIS_DATA_DIR``, else the Hugging Face cache (module doc)."""
    location = locate_data_dir(explicit, revision)
    if location is None:
        raise DataNotFoundError(not_found_message(revision))
    return location.path


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
