"""Background preparation of pair clips: a pool of worker processes builds the clips a rank will need,
in request order, while the model computes.

Plan.  A task's ``process_docs`` hook registers its document list with the run's clip session
(:class:`convis_tasks.harness.clips.ClipSession`; a list nobody registered, as when the hooks are called outside
lmms-eval, is loaded as ``process_docs`` would). The first time ``doc_to_visual`` asks for a clip of a list (one
lmms-eval task), the rank's shard of that list is planned: lmms-eval 0.7.3 gives rank ``r`` of ``W`` the documents
``offset + r, offset + r + W, ...`` of each task (``utils.create_iterator``), and issues them in that
order within a task.  The shard is found from the first requested document's position and
``$WORLD_SIZE``, so it holds for any ``--offset``.  Clips are deduplicated by cache key, so the five
concept tasks of one pair share one build.  At most ``ahead`` clips are built beyond the latest one
requested, so a ``--limit`` run or a model that asks in another order wastes a bounded amount of work.

Decode once.  A video used by several planned pairs is decoded by the first job that needs it, which
also writes its frames (pickled arrays) to a private temporary folder (``$TMPDIR/convis-frames-<host>-<pid>-*``;
the folders of killed runs are swept when the next one is made);
later jobs load them (exact bytes) and the file is deleted when its last planned pair is built.  A job
never starts while another job is decoding one of its videos.  The parent holds no frames: memory is
the workers' (two videos' frames and one clip each), whatever the size of the data set; the temporary
folder holds the frames of videos with a planned pair still to build.  If the pool dies (a worker
killed), clips are built in the calling process.  Workers die with the process that made them.

Waiting.  :meth:`Prefetcher.get` returns at once when the clip is ready; otherwise it moves the clip to
the front of the queue and waits for it; a clip outside the plan is built in the calling process.  A
failing build raises the same error a direct build would (naming the pair) when its clip is asked for.

Workers: ``$CONVIS_PREFETCH_WORKERS`` (0: build in the calling process, no pool), else the cores
available to this process (``os.sched_getaffinity``) divided by the ranks on this node
(``$LOCAL_WORLD_SIZE``).  Workers are forked (as torch's DataLoader does on Linux) and never touch
torch or CUDA.
"""

from __future__ import annotations

import os
import pickle
import shutil
import tempfile
import threading
import time
import uuid
from concurrent.futures import CancelledError, Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Iterable

from convis_tasks.video.decode import NativeFrames
from convis_tasks.video.cache import PairClipCache, PairRequest, checked_signature, trust_checked

__all__ = ["WORKERS_ENV", "default_workers", "Prefetcher", "sweep_dead_frames_folders"]

WORKERS_ENV = "CONVIS_PREFETCH_WORKERS"


def default_workers() -> int:
    """``$CONVIS_PREFETCH_WORKERS``, else this process's cores divided by ``$LOCAL_WORLD_SIZE`` (at least 1)."""
    env = os.environ.get(WORKERS_ENV, "").strip()
    if env:
        try:
            value = int(env)
        except ValueError:
            raise ValueError(f"${WORKERS_ENV} must be a whole number >= 0, got {env!r}") from None
        if value < 0:
            raise ValueError(f"${WORKERS_ENV} must be a whole number >= 0, got {env!r}")
        return value
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    local = int(os.environ.get("LOCAL_WORLD_SIZE", "1") or 1)
    return max(1, cores // max(1, local))


# --- the job a worker runs ------------------------------------------------------------------------

def _worker_init(parent: int) -> None:
    """Tie a worker's life to the process that made the pool.

    A forked worker inherits its parent's file descriptors (its stdout pipe among them), so a worker
    outliving a killed parent would hold them open forever.  On Linux the kernel sends it SIGKILL when
    the parent's forking thread ends (``PR_SET_PDEATHSIG``); elsewhere it is left to the pool's own
    clean-up.  Ctrl-C is the parent's to handle.
    """
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG = 1
    except (OSError, AttributeError):
        pass
    if os.getppid() != parent:  # the parent died before the line above: nobody will collect our work
        os._exit(0)


def _frames(cache: PairClipCache, req: PairRequest, which: int, native: bool, load: str | None,
            save: str | None) -> tuple:
    """Frames of video ``which``: loaded from ``load`` if given, readable and of the right kind, else
    decoded (and saved to ``save``)."""
    if load is not None:
        try:
            with open(load, "rb") as fh:
                frames = pickle.load(fh)  # our own file, in our own private folder
            if isinstance(frames, NativeFrames) == native:
                return frames, 0
        except (OSError, pickle.UnpicklingError, EOFError):
            pass  # removed or damaged: decode again
    frames = cache.decode(req, which, native)
    if save is not None:
        tmp = f"{save}.{os.getpid()}.{uuid.uuid4().hex[:8]}.part"
        try:
            with open(tmp, "wb") as fh:
                pickle.dump(frames, fh, protocol=pickle.HIGHEST_PROTOCOL)
            os.replace(tmp, save)
        except OSError:
            _unlink(tmp)
    return frames, 1


def build_job(cache_dir: str, fps: Any, fmt: Any, req: PairRequest, load1: str | None, load2: str | None,
              save1: str | None, save2: str | None) -> dict:
    """Build one pair clip (or find it valid); returns its path, how many videos were decoded, and the stat
    signature under which its digest was checked (so that the caller need not read it again)."""
    cache = PairClipCache(cache_dir, fps=fps, fmt=fmt)
    found = cache.lookup(req)
    if found is None:
        native = cache.native_format(req) is not None
        f1, d1 = _frames(cache, req, 1, native, load1, save1)
        if req.id2 == req.id1:
            f2, d2 = f1, 0
        else:
            f2, d2 = _frames(cache, req, 2, native, load2, save2)
        found, decodes = cache.build(req, f1, f2), d1 + d2
    else:
        decodes = 0
    return {"clip": found, "decodes": decodes, "checked": checked_signature(req.key)}


# --- the scheduler --------------------------------------------------------------------------------

class _Entry:
    __slots__ = ("req", "index", "future", "dispatched")

    def __init__(self, req: PairRequest, index: int) -> None:
        self.req = req
        self.index = index
        self.future: Future = Future()
        self.dispatched = False


class Prefetcher:
    """Builds planned pair clips in a pool of ``workers`` processes; see the module docstring.

    ``stats``: ``planned`` (clips queued), ``built`` (jobs finished), ``decodes`` (source videos decoded
    by jobs), ``waits`` (``get`` calls that found their clip not ready), ``inline`` (clips built in the
    calling process), ``job_s`` (seconds from submitting each job to its end, summed: divided by the
    elapsed time, the mean number of jobs in flight), ``frames_bytes_peak`` (the most bytes of saved frames on
    disk at once).
    """

    def __init__(self, cache_dir: str | os.PathLike | None = None, *, n_frames: int = 8,
                 size: tuple[int, int] | None = None, fps: Any = 1, workers: int | None = None,
                 ahead: int | None = None) -> None:
        self.cache = PairClipCache(cache_dir, fps=fps)
        self.n_frames = int(n_frames)
        self.size = None if size is None else (int(size[0]), int(size[1]))
        self.workers = default_workers() if workers is None else int(workers)
        self.ahead = max(16, 4 * self.workers) if ahead is None else int(ahead)
        self._lock = threading.RLock()
        self._entries: dict[str, _Entry] = {}
        self._queue: list[_Entry] = []  # planned, not dispatched, in plan order
        self._next_index = 0
        self._consumed = 0  # plan index just past the latest requested clip
        self._running = 0
        self._pending_uses: dict[tuple, int] = {}  # video identity -> planned pairs not finished
        self._decoding: set[tuple] = set()  # videos a running job is decoding
        self._saved: dict[tuple, str] = {}  # video identity -> file holding its decoded frames
        self._saved_bytes = 0
        self._tmp: str | None = None
        self._pool: ProcessPoolExecutor | None = None
        self._closed = False
        self.stats = {"planned": 0, "built": 0, "decodes": 0, "waits": 0, "inline": 0, "job_s": 0.0,
                      "frames_bytes_peak": 0}

    # -- planning ------------------------------------------------------------------------------

    def plan(self, pairs: Iterable[tuple[Any, Any, Any]]) -> int:
        """Queue ``(pair_id, video1, video2)`` in request order; returns how many clips were queued.

        Pairs whose clip is already in the cache (clip and sidecar present) or already planned are skipped;
        a missing video is skipped here and fails, naming the pair, when its clip is asked for.
        """
        added = 0
        if self.workers <= 0:  # no pool: every clip is built when asked for
            return 0
        with self._lock:
            for pair_id, v1, v2 in pairs:
                try:
                    req = self.cache.request(v1, v2, self.n_frames, self.size, pair_id)
                except (OSError, ValueError):
                    continue
                if req.key in self._entries or self._present(req.key):
                    continue
                entry = _Entry(req, self._next_index)
                self._next_index += 1
                self._entries[req.key] = entry
                self._queue.append(entry)
                for vid in {req.id1, req.id2}:
                    self._pending_uses[vid] = self._pending_uses.get(vid, 0) + 1
                added += 1
            self.stats["planned"] += added
            self._dispatch()
        return added

    def _present(self, key: str) -> bool:
        return self.cache.clip_path(key).exists() and self.cache.sidecar_path(key).exists()

    # -- getting -------------------------------------------------------------------------------

    def get(self, video1: Any, video2: Any, pair_id: Any = None) -> str:
        """The clip's path: ready, waited for (moved to the front of the queue), or built here."""
        req = self.cache.request(video1, video2, self.n_frames, self.size, pair_id)
        with self._lock:
            entry = self._entries.get(req.key)
            if entry is not None:
                self._consumed = max(self._consumed, entry.index + 1)
                if not entry.future.done():
                    self.stats["waits"] += 1
                    if not entry.dispatched:
                        self._queue.remove(entry)
                        self._queue.insert(0, entry)
                    self._dispatch()
        if entry is not None:
            try:
                entry.future.result()  # re-raises the build's error, which names the pair
            except (BrokenProcessPool, CancelledError):
                pass  # the pool died (a worker was killed) or is shutting down: build it here
        found = self.cache.lookup(req)  # checks the digest (once per process); warns when damaged
        if found is not None:
            return found
        with self._lock:
            self.stats["inline"] += 1
        return self.cache.make(req)

    # -- dispatching ---------------------------------------------------------------------------

    def _dispatch(self) -> None:
        """Start queued jobs while workers are free (call with the lock held).

        A job is eligible when it lies within ``ahead`` of the latest requested clip (requested ones
        always are) and no running job is decoding one of its videos.
        """
        while not self._closed and self.workers > 0 and self._running < self.workers and self._queue:
            chosen = None
            for pos, entry in enumerate(self._queue):
                if entry.index >= self._consumed + self.ahead:  # the rest of the queue is later still
                    break
                if entry.req.id1 not in self._decoding and entry.req.id2 not in self._decoding:
                    chosen = pos
                    break
            if chosen is None:
                return
            if not self._start(self._queue.pop(chosen)):
                return

    def _job_args(self, entry: _Entry) -> tuple:
        req = entry.req
        loads: list[str | None] = [None, None]
        saves: list[str | None] = [None, None]
        videos = [req.id1] if req.id2 == req.id1 else [req.id1, req.id2]
        for i, vid in enumerate(videos):
            if vid in self._saved:
                loads[i] = self._saved[vid]
            elif self._pending_uses.get(vid, 0) > 1:  # another planned pair needs it: keep its frames
                saves[i] = os.path.join(self._tmpdir(), uuid.uuid4().hex + ".frames")
                self._decoding.add(vid)
        return (os.fspath(self.cache.cache_dir), self.cache.fps, self.cache.fmt, req, loads[0], loads[1],
                saves[0], saves[1])

    def _start(self, entry: _Entry) -> bool:
        entry.dispatched = True
        args = self._job_args(entry)
        try:
            fut = self._ensure_pool().submit(build_job, *args)
        except RuntimeError as exc:  # interpreter shutting down, or a broken pool
            self._finish(entry, args, None, exc)
            return False
        self._running += 1
        started = time.perf_counter()
        fut.add_done_callback(lambda f, e=entry, a=args, t=started: self._done(e, a, f, t))
        return True

    def _done(self, entry: _Entry, args: tuple, fut: Future, started: float) -> None:
        with self._lock:
            self._running -= 1
            self.stats["job_s"] += time.perf_counter() - started
            exc = CancelledError() if fut.cancelled() else fut.exception()
            self._finish(entry, args, None if exc else fut.result(), exc)
            self._dispatch()

    def _finish(self, entry: _Entry, args: tuple, result: dict | None, exc: BaseException | None) -> None:
        req = entry.req
        for vid, save in ((req.id1, args[6]), (req.id2, args[7])):
            if save is not None:
                self._decoding.discard(vid)
                if exc is None and os.path.exists(save):
                    self._saved[vid] = save
                    self._saved_bytes += os.path.getsize(save)
                    self.stats["frames_bytes_peak"] = max(self.stats["frames_bytes_peak"], self._saved_bytes)
                elif os.path.exists(save):
                    _unlink(save)
        for vid in {req.id1, req.id2}:
            left = self._pending_uses.get(vid, 0) - 1
            if left > 0:
                self._pending_uses[vid] = left
            else:
                self._pending_uses.pop(vid, None)
                path = self._saved.pop(vid, None)
                if path is not None:
                    self._saved_bytes -= os.path.getsize(path)
                    _unlink(path)
        if entry.future.done():
            return
        if exc is None:
            self.stats["built"] += 1
            self.stats["decodes"] += int(result.get("decodes", 0))
            trust_checked(req.key, result.get("checked"))
            entry.future.set_result(result["clip"])
        else:
            entry.future.set_exception(exc)

    def _tmpdir(self) -> str:
        if self._tmp is None:
            sweep_dead_frames_folders()
            self._tmp = tempfile.mkdtemp(prefix=f"{_FRAMES_PREFIX}{_host()}-{os.getpid()}-")
        return self._tmp

    def _ensure_pool(self) -> ProcessPoolExecutor:
        if self._pool is None:
            import multiprocessing

            method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
            self._pool = ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context(method),
                                             initializer=_worker_init, initargs=(os.getpid(),))
        return self._pool

    def wait(self) -> None:
        """Block until every planned clip has been built or has failed (errors stay with their clips)."""
        with self._lock:
            self._consumed = self._next_index
            self._dispatch()
            futures = [e.future for e in self._entries.values()]
        for fut in futures:
            try:
                fut.result()
            except BaseException:
                pass

    def close(self) -> None:
        """Cancel what has not started, wait for running jobs, delete the frames folder."""
        with self._lock:
            self._closed = True
            for entry in self._queue:
                entry.future.cancel()
            self._queue.clear()
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None


_FRAMES_PREFIX = "convis-frames-"


def _host() -> str:
    return "".join(c if c.isalnum() else "_" for c in os.uname().nodename)[:40] or "host"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def sweep_dead_frames_folders(tmp: str | None = None) -> list[str]:
    """Delete the frames folders that runs killed before their clean-up left in ``$TMPDIR``: only this user's,
    made on this host (the name holds the host and the process id), by a process that no longer exists."""
    tmp = tmp or tempfile.gettempdir()
    prefix = f"{_FRAMES_PREFIX}{_host()}-"
    removed = []
    try:
        names = os.listdir(tmp)
    except OSError:
        return removed
    for name in names:
        pid_text = name[len(prefix):].split("-", 1)[0] if name.startswith(prefix) else ""
        if not pid_text.isdigit() or int(pid_text) == os.getpid():
            continue
        path = os.path.join(tmp, name)
        try:
            st = os.lstat(path)
        except OSError:
            continue
        if st.st_uid == os.getuid() and os.path.isdir(path) and not os.path.islink(path) and not _alive(int(pid_text)):
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass
