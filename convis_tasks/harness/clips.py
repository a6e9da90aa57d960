"""The run's clip session: what ``doc_to_visual`` returns, prepared in the background.

lmms-eval calls the task hooks as free functions, so the state that connects them lives in ONE object per process,
:class:`ClipSession` (made on first use by :func:`session`, closed at exit): the registered document lists of the
tasks (``process_docs`` registers them), the shards already planned, the videos the documents could not find, and
one :class:`~convis_tasks.video.prefetch.Prefetcher` per frame setting. A test or a caller can make its own
session; :func:`close` forgets the process's one.
"""

from __future__ import annotations

import atexit
import os
import threading
import warnings
from typing import Any, Callable, Sequence

from convis_tasks.reading.documents import load_documents, load_retrieval_documents, missing_videos
from convis_tasks.harness.fetch import ensure_data
from convis_tasks.reading.datafolder import resolve_data_dir
from convis_tasks.video.prefetch import Prefetcher


def _pair(doc: dict) -> tuple[Any, Any, Any]:
    return doc.get("pair_id"), doc.get("video1_path"), doc.get("video2_path")


def _identity(doc: dict) -> tuple:
    """Which task list a document belongs to: its pair, concept and kind (pair scoring or retrieval)."""
    return doc.get("pair_id"), doc.get("concept"), "anchor" in doc


def task_documents(kind: str, concept: str | None, fetch: bool = True) -> list[dict]:
    """The documents of a task, as its ``process_docs`` hook loads them (and ``convis complete``, the option checks
    and the prefetcher's plan): ``kind`` "pair" (``concept`` None: the concept-free task) or "retrieval", from the
    data folder :func:`~convis_tasks.harness.fetch.ensure_data` gives (``fetch=False``: only a folder already
    there, :func:`~convis_tasks.reading.datafolder.resolve_data_dir`); missing videos are None (the session
    refuses them when asked for frames)."""
    root = ensure_data() if fetch else resolve_data_dir()
    if kind == "retrieval":
        return load_retrieval_documents(concept, root, videos_required=False)
    return load_documents(concept, root, videos_required=False)


def load_task_documents(doc: dict) -> list[dict]:
    """The task documents ``doc`` comes from (:func:`task_documents`), for the prefetcher's plan: never a fetch in
    the middle of a run."""
    return task_documents("retrieval" if "anchor" in doc else "pair", doc.get("concept") or None, fetch=False)


def _shard(pairs: list, pos: int, world: int) -> list:
    """Rank's shard starting at ``pos`` (every ``world``-th document), then the earlier ones of the residue."""
    return pairs[pos::world] + pairs[pos % world:pos:world]


class ClipSession:
    """The registered task documents and the prefetchers of one process (module doc)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.prefetchers: dict[tuple, Prefetcher] = {}
        self.doc_lists: list[list[tuple[Any, Any, Any]]] = []
        self.doc_index: dict[tuple, list[tuple[int, int]]] = {}  # document identity -> [(list number, position)]
        self.planned: set[tuple] = set()  # (prefetcher key, list number, residue) already planned
        self.signatures: set[tuple] = set()  # the registered lists, by their documents' identities
        self.missing: list[str] = []  # videos the registered documents could not find

    def register_documents(self, docs: Sequence[dict]) -> None:
        """Make a task's documents (in lmms-eval's order) known, so that the first request plans its shard.
        Registering the same list again (lmms-eval calls ``process_docs`` more than once) changes nothing."""
        pairs = [_pair(d) for d in docs]
        signature = tuple(_identity(d) for d in docs)
        with self.lock:
            if signature in self.signatures:
                return
            self.signatures.add(signature)
            number = len(self.doc_lists)
            self.doc_lists.append(pairs)
            for pos, doc in enumerate(docs):
                self.doc_index.setdefault(_identity(doc), []).append((number, pos))
            self.missing += [m for m in missing_videos(list(docs)) if m not in self.missing]

    def require_videos(self) -> None:
        """Refuse, before the first frame is read, a run whose registered documents miss a video: a model that
        reads videos needs every one (models that read none never ask for frames)."""
        if self.missing:
            more = f" (and {len(self.missing) - 1} more)" if len(self.missing) > 1 else ""
            raise FileNotFoundError(f"{self.missing[0]}{more}")

    def clip_for(self, doc: dict, n_frames: int, size: tuple[int, int] | None = None,
                 cache_dir: str | os.PathLike | None = None, workers: int | None = None,
                 loader: Callable[[dict], list[dict]] | None = load_task_documents) -> str:
        """The pair clip of ``doc`` via the prefetcher for these settings (what ``doc_to_visual`` returns)."""
        pair_id, v1, v2 = _pair(doc)
        settings = (os.fspath(cache_dir) if cache_dir else None, int(n_frames), None if size is None else tuple(size))
        with self.lock:
            pf = self.prefetchers.get(settings)
            if pf is None:
                pf = self.prefetchers[settings] = Prefetcher(cache_dir, n_frames=n_frames, size=size,
                                                             workers=workers)
            known = _identity(doc) in self.doc_index
        if not known and loader is not None and pf.workers > 0:
            try:
                self.register_documents(loader(doc))
            except Exception as exc:  # no plan: every clip is then built when asked for, as without prefetching
                warnings.warn(f"prefetch: cannot list the documents of pair {pair_id} ({type(exc).__name__}: "
                              f"{exc}); its task's clips are built when asked for, without background preparation",
                              RuntimeWarning, stacklevel=2)
        world = max(1, int(os.environ.get("WORLD_SIZE", "1") or 1))
        todo = []
        with self.lock:
            for number, pos in self.doc_index.get(_identity(doc), []):
                mark = (settings, number, pos % world)
                if mark not in self.planned:
                    self.planned.add(mark)
                    todo.append(_shard(self.doc_lists[number], pos, world))
        for shard in todo:
            pf.plan(shard)
        return pf.get(v1, v2, pair_id)

    def close(self) -> None:
        """Shut every prefetcher down and forget the registered documents."""
        with self.lock:
            pfs = list(self.prefetchers.values())
            self.prefetchers.clear()
            self.doc_lists.clear()
            self.doc_index.clear()
            self.planned.clear()
            self.signatures.clear()
            self.missing.clear()
        for pf in pfs:
            pf.close()


_SESSION: list[ClipSession] = []  # the process's one session, made on first use


def session() -> ClipSession:
    """The process's clip session (made on first use, closed at exit)."""
    if not _SESSION:
        _SESSION.append(ClipSession())
        atexit.register(_SESSION[0].close)
    return _SESSION[0]


def close() -> None:
    """Close and forget the process's session (the next :func:`session` makes a new one)."""
    while _SESSION:
        _SESSION.pop().close()
