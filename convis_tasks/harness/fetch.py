"""Fetch ConViS-Bench from the Hugging Face hub the lmms-eval way, and make sure a run has its data.

:func:`ensure_data` is what ``convis run``'s preflight and the tasks' ``process_docs`` hooks call: when neither an
argument, ``$CONVIS_DATA_DIR`` nor the cache gives a data folder (the rule is
:mod:`convis_tasks.reading.datafolder`'s), it fetches, then resolves again by the same rule. :func:`fetch_data` is
``convis data fetch``:

1. ``huggingface_hub.snapshot_download(repo_id, repo_type="dataset", revision=...)`` into the hub cache (or into
   ``--local-dir``), with huggingface_hub's own progress bars; a file cut off by an interruption resumes from its
   ``.incomplete`` part, finished files are not downloaded again.
2. Every archive of the snapshot is unpacked (:mod:`convis_tasks.harness.archives`, lmms-eval's semantics, safely)
   into the data folder: for the cache, ``$HF_HOME/convis_data/datasets--bliberatori--ConViS-Bench/<commit>``,
   which also links the snapshot's other files; for ``--local-dir``, that folder itself.
3. The completion marker is written last; a folder without it is rebuilt, never trusted.

One process fetches at a time (a file lock beside the fetched folders); the others wait for it, then find the data.
``convis run`` fetches once in its preflight, before any rank starts. Offline (``HF_HUB_OFFLINE=1``, or the hub
unreachable within :data:`HUB_TIMEOUT_S`) the cache is used as it is, and an empty or interrupted cache is one
error naming the dataset and ``convis data fetch``, at once.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import filelock
from huggingface_hub import HfApi, snapshot_download
from huggingface_hub.errors import (GatedRepoError, LocalEntryNotFoundError, RepositoryNotFoundError,
                                    RevisionNotFoundError)

from convis_tasks.console import say
from convis_tasks.errors import ConvisError, InputError
from convis_tasks.harness.archives import TEMP_SUFFIX, archive_groups, unpack_all
from convis_tasks.reading.datafolder import (COMMIT, COMPLETE_MARKER, DATA_ENV, FETCH_COMMAND, HF_REPO_ID, IN_PROGRESS,
                                             PAIR_FILE, DataLocation, cached_location, data_revision,
                                             fetch_state_dir, fetched_dir, hf_hub_cache, hub_offline, is_archive,
                                             locate_data_dir, resolve_data_dir)
from convis_tasks.reading.jsonio import dumps, strict_load_file

HUB_TIMEOUT_S = 10.0  # the first request to the hub; an unreachable hub is offline after this, not after retries
DEFAULT_ENDPOINT = "https://huggingface.co"
LOCAL_METADATA = Path(".cache") / "huggingface" / "download"  # huggingface_hub's record of a --local-dir download


class DataFetchError(ConvisError):
    """The data could not be fetched (offline with an empty cache, an interrupted fetch, an unknown revision, a
    failed download); the message names the dataset and ``convis data fetch``."""


@dataclass(frozen=True)
class Fetched:
    """What :func:`fetch_data` made: the data folder, the commit, and how many files it unpacked."""

    folder: Path
    commit: str
    unpacked: int
    archives: int
    online: bool


def hub_endpoint() -> str:
    """The hub asked: ``$HF_ENDPOINT``, else huggingface.co."""
    return (os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT).rstrip("/")


def _hub_info(revision: str):
    """The dataset's info at ``revision`` (commit and files), or ``(None, why)`` when the hub is off or does not
    answer within :data:`HUB_TIMEOUT_S`. A revision or repository the hub does not have is an error."""
    if hub_offline():
        return None, "is off (HF_HUB_OFFLINE=1)"
    try:
        return HfApi(endpoint=hub_endpoint()).dataset_info(HF_REPO_ID, revision=revision, timeout=HUB_TIMEOUT_S), ""
    except RevisionNotFoundError:
        raise DataFetchError(f"{HF_REPO_ID} has no revision {revision!r} on {hub_endpoint()}: pass an existing "
                             f"branch, tag or commit to `{FETCH_COMMAND} --revision`") from None
    except (RepositoryNotFoundError, GatedRepoError) as exc:
        raise DataFetchError(f"{HF_REPO_ID} is not accessible on {hub_endpoint()} "
                             f"({str(exc).splitlines()[0]})") from None
    except OSError as exc:  # connection refused, DNS, timeout, proxy, 5xx (requests' errors are OSErrors)
        return None, f"cannot be reached at {hub_endpoint()} ({type(exc).__name__})"


def _offline_error(revision: str, why: str) -> DataFetchError:
    return DataFetchError(f"ConViS-Bench data ({HF_REPO_ID}, revision {revision}) is not in the Hugging Face cache "
                          f"at {hf_hub_cache()} and the hub {why}: run `{FETCH_COMMAND}` where the hub is reachable "
                          f"(same HF_HOME), or set {DATA_ENV} to a folder holding {PAIR_FILE} and the videos")


def _repo_files(folder: Path, local: bool) -> list[str]:
    """The dataset's own files in ``folder`` (relative paths): in the cache, everything in the snapshot; in a
    local folder, the files huggingface_hub recorded downloading there (not what earlier unpacking added)."""
    if local:
        meta = folder / LOCAL_METADATA
        return sorted(str(p.relative_to(meta))[:-len(".metadata")] for p in meta.rglob("*.metadata")
                      if (folder / str(p.relative_to(meta))[:-len(".metadata")]).is_file())
    return sorted(str(Path(root, name).relative_to(folder)) for root, _, names in os.walk(folder) for name in names)


def _check_offline_snapshot(folder: Path, record: Path, local: bool, revision: str) -> None:
    """Offline, a cached snapshot cannot be checked against the hub: refuse one an interrupted fetch left (its
    record lists files that are not there) or one without the pair file."""
    missing: list[str] = []
    if record.is_file():
        state = strict_load_file(str(record))
        state = state if isinstance(state, dict) else {}
        if local or state.get("commit") == folder.name:
            missing = [f for f in state.get("files", []) if not (folder / f).is_file()]
    if not missing and not (folder / PAIR_FILE).is_file():
        missing = [PAIR_FILE]
    if missing:
        raise DataFetchError(f"an interrupted fetch of {HF_REPO_ID} (revision {revision}) left {folder} incomplete "
                             f"({len(missing)} files missing, e.g. {missing[0]}) and the hub cannot be asked: run "
                             f"`{FETCH_COMMAND}` where the hub is reachable; finished files are kept")


def _completed(folder: Path) -> dict | None:
    """The completion marker of a data folder ``convis data fetch`` built, or None (absent or unreadable)."""
    try:
        marker = strict_load_file(str(folder / COMPLETE_MARKER))
    except InputError:
        return None
    return marker if isinstance(marker, dict) else None


def _local_commit(folder: Path) -> str | None:
    """The commit a ``--local-dir`` download came from, as huggingface_hub recorded it (first line of a file's
    metadata); None when it recorded none."""
    for meta in sorted((folder / LOCAL_METADATA).rglob("*.metadata")):
        lines = meta.read_text(errors="replace").splitlines()
        if lines and COMMIT.match(lines[0].strip()):
            return lines[0].strip()
    return None


def build_data_folder(snapshot: Path, dest: Path, commit: str | None, local: bool,
                      progress: Callable[[str], None] = say) -> tuple[int, int]:
    """Make ``dest`` the data folder of ``snapshot``: link the snapshot's files (cache; a local folder holds them
    already), unpack its archives, write the completion marker last. Returns (archives, files unpacked)."""
    if local:
        (dest / COMPLETE_MARKER).unlink(missing_ok=True)
    elif dest.exists():
        shutil.rmtree(dest)  # ours entirely: a folder without the marker is redone from the start
    files = [f for f in _repo_files(snapshot, local) if not f.endswith(TEMP_SUFFIX) and f != COMPLETE_MARKER]
    own = [f for f in files if not is_archive(f)]
    dest.mkdir(parents=True, exist_ok=True)
    if not local:
        for name in own:
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            os.symlink(os.path.abspath(snapshot / name), dest / name)
    groups = archive_groups(snapshot / f for f in files if is_archive(f))
    unpacked = unpack_all(groups, dest, protected=own, progress=progress)
    marker = {"repo_id": HF_REPO_ID, "commit": commit, "files": own,
              "archives": [[p.name for p in g] for g in groups], "unpacked": unpacked}
    (dest / COMPLETE_MARKER).write_text(dumps(marker, indent=1) + "\n")
    return len(groups), unpacked


def fetch_data(revision: str | None = None, local_dir: str | os.PathLike | None = None, reuse: bool = False,
               progress: Callable[[str], None] = say) -> Fetched:
    """Download ConViS-Bench (module doc) and build its data folder; ``reuse``: when the cache already gives a
    data folder once the lock is held (another process fetched it meanwhile), return that without asking the hub.
    """
    rev = data_revision(revision) or "main"
    local = Path(local_dir).expanduser().resolve() if local_dir else None
    state = local / ".cache" if local else fetch_state_dir()
    state.mkdir(parents=True, exist_ok=True)
    lock = filelock.FileLock(str(state / "convis-fetch.lock"))
    try:
        lock.acquire(timeout=0)
    except filelock.Timeout:
        progress(f"another process is fetching {HF_REPO_ID}; waiting for it (lock {lock.lock_file})")
        lock.acquire()
    try:
        if reuse and local is None and (found := cached_location(revision)) is not None:
            return Fetched(found.path, found.path.name, 0, 0, False)
        info, why = _hub_info(rev)
        record = state / IN_PROGRESS
        if info is not None:
            files = [s.rfilename for s in info.siblings or []]
            record.write_text(dumps({"repo_id": HF_REPO_ID, "revision": rev, "commit": info.sha, "files": files}))
            progress(f"fetching {HF_REPO_ID} (revision {rev}, commit {info.sha}, {len(files)} files) from "
                     f"{hub_endpoint()}")
        try:
            folder = Path(snapshot_download(HF_REPO_ID, repo_type="dataset", revision=rev,
                                            cache_dir=str(hf_hub_cache()), local_dir=str(local) if local else None,
                                            endpoint=hub_endpoint(), local_files_only=info is None,
                                            etag_timeout=HUB_TIMEOUT_S))
        except LocalEntryNotFoundError:
            raise _offline_error(rev, why or f"stopped answering at {hub_endpoint()}") from None
        except (RevisionNotFoundError, RepositoryNotFoundError) as exc:
            raise DataFetchError(f"{HF_REPO_ID}: {str(exc).splitlines()[0]}") from None
        except OSError as exc:
            raise DataFetchError(f"downloading {HF_REPO_ID} failed ({type(exc).__name__}: {exc}); run "
                                 f"`{FETCH_COMMAND}` again: finished files are kept and a cut-off file resumes") \
                from None
        if info is None:
            progress(f"the hub {why}: using the cached {HF_REPO_ID} at {folder}")
            _check_offline_snapshot(folder, record, local is not None, rev)
        dest = local or fetched_dir(folder.name)
        commit = info.sha if info is not None else _local_commit(folder) if local else folder.name
        done = _completed(dest)
        if done is not None and done.get("commit") == commit:  # built already: nothing changed since
            archives, unpacked = len(done.get("archives", [])), int(done.get("unpacked", 0))
        else:
            archives, unpacked = build_data_folder(folder, dest, commit, local is not None, progress)
        record.unlink(missing_ok=True)
        return Fetched(dest, commit, unpacked, archives, info is not None)
    finally:
        lock.release()


def check_data_reachable(revision: str | None = None) -> None:
    """At once, without the network: a data folder is found, or the hub may give one. Raises the offline error
    when neither (``HF_HUB_OFFLINE=1`` and nothing in the cache), and the not-found error for a ``$CONVIS_DATA_DIR``
    without ``ConVIS.jsonl``; ``convis run`` calls it before anything slow."""
    if locate_data_dir(None, revision) is None and hub_offline():
        raise _offline_error(data_revision(revision) or "main", "is off (HF_HUB_OFFLINE=1)")


def ensure_data(explicit: str | os.PathLike | None = None, revision: str | None = None,
                progress: Callable[[str], None] = say) -> Path:
    """The data folder (``explicit``, ``$CONVIS_DATA_DIR`` or the cache); when there is none, fetch it into the
    cache first. A folder given explicitly or by the variable is never replaced by a fetch."""
    location: DataLocation | None = locate_data_dir(explicit, revision)
    if location is not None:
        return location.path
    progress(f"no ConViS-Bench data folder ({DATA_ENV} unset, nothing in the Hugging Face cache at {hf_hub_cache()})"
             f": fetching {HF_REPO_ID}")
    fetch_data(revision, reuse=True, progress=progress)
    return resolve_data_dir(None, revision)
