"""Background preparation of pair clips (convis_tasks.video.prefetch): same clips, each video decoded once,
the rank's shard only, errors naming the pair.  Videos are made here (solid colours, frame k = colour k)."""

from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from convis_tasks import hooks
from convis_tasks.harness import clips
from convis_tasks.video import prefetch as P
from convis_tasks.video import decode as V
from convis_tasks.video.cache import PairClipCache
from convis_tasks.video.decode import VideoDecodeError

COLOURS = np.array([(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0), (255, 0, 255), (0, 255, 255),
                    (128, 128, 128), (255, 128, 0), (0, 0, 0), (255, 255, 255)], dtype=np.uint8)


def make_video(path: Path, shift: int, n: int = 10) -> Path:
    with av.open(str(path), "w", format="mp4") as c:
        s = c.add_stream("mpeg4", rate=Fraction(10))
        s.width, s.height, s.pix_fmt = 32, 32, "yuv420p"
        s.options = {"qscale": "2"}
        for i in range(n):
            frame = np.empty((32, 32, 3), np.uint8)
            frame[:] = COLOURS[(i + shift) % 10]
            vf = av.VideoFrame.from_ndarray(frame, format="rgb24")
            vf.pts = i
            c.mux(s.encode(vf))
        c.mux(s.encode(None))
    return path


@pytest.fixture
def videos(tmp_path):
    return [str(make_video(tmp_path / f"v{i}.mp4", i)) for i in range(5)]


# pairs in request order: v0 is in three pairs, v1 and v2 in two each, v3 and v4 in one
PAIRS = [(0, 1), (0, 2), (1, 2), (3, 0), (4, 3)]


@pytest.fixture
def counted(monkeypatch):
    calls = []
    for name in ("read_frames", "read_native"):  # RGB or the sources' own YUV planes (same-format pairs)
        real = getattr(V, name)

        def counting(path, n, _real=real, **kw):
            calls.append(str(path))
            return _real(path, n, **kw)

        monkeypatch.setattr(V, name, counting)
    return calls


@pytest.fixture(autouse=True)
def _fresh_registry():
    clips.close()
    yield
    clips.close()


def _reference(tmp_path, videos, pairs=PAIRS, n=4) -> dict:
    cache = PairClipCache(tmp_path / "reference")
    return {(a, b): Path(cache.get(videos[a], videos[b], n_frames=n)).read_bytes() for a, b in pairs}


@pytest.mark.parametrize("workers", [1, 2])
def test_prefetched_clips_equal_direct_builds_and_decode_each_video_once(tmp_path, videos, counted, workers):
    want = _reference(tmp_path, videos)
    counted.clear()
    pf = P.Prefetcher(tmp_path / "cache", n_frames=4, workers=workers)
    assert pf.plan([(f"p{a}{b}", videos[a], videos[b]) for a, b in PAIRS]) == len(PAIRS)
    pf.wait()
    tmp = pf._tmp
    got = {(a, b): Path(pf.get(videos[a], videos[b], f"p{a}{b}")).read_bytes() for a, b in PAIRS}
    assert got == want
    # the workers decoded (forked processes: their read_frames calls are not seen here)
    assert pf.stats["decodes"] == 5 and pf.stats["built"] == 5 and pf.stats["inline"] == 0
    assert counted == []
    assert tmp is None or os.listdir(tmp) == []  # every saved frames file deleted after its last pair
    assert pf._saved_bytes == 0 and pf.stats["frames_bytes_peak"] > 0  # v0, v1, v2 were kept for later pairs
    pf.close()
    assert tmp is None or not os.path.exists(tmp)


def test_without_workers_clips_are_built_when_asked_and_identical(tmp_path, videos, counted):
    want = _reference(tmp_path, videos)
    counted.clear()
    pf = P.Prefetcher(tmp_path / "cache", n_frames=4, workers=0)
    assert pf.plan([(f"p{a}{b}", videos[a], videos[b]) for a, b in PAIRS]) == 0  # no pool, no plan
    got = {(a, b): Path(pf.get(videos[a], videos[b])).read_bytes() for a, b in PAIRS}
    assert got == want and len(counted) == 2 * len(PAIRS) and pf.stats["inline"] == len(PAIRS)


def test_a_failing_clip_fails_naming_the_pair_and_the_others_are_built(tmp_path, videos):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"\x00garbage" * 500)
    pf = P.Prefetcher(tmp_path / "cache", n_frames=4, workers=2)
    pf.plan([("good-1", videos[0], videos[1]), ("bad-pair", videos[2], str(bad)), ("good-2", videos[3], videos[4])])
    with pytest.raises(VideoDecodeError) as info:
        pf.get(videos[2], str(bad), "bad-pair")
    assert info.value.path == str(bad) and "pair bad-pair" in str(info.value) and videos[2] in str(info.value)
    for pid, a, b in (("good-1", 0, 1), ("good-2", 3, 4)):
        assert V.count_frames(pf.get(videos[a], videos[b], pid)) == 8
    pf.close()


def test_missing_video_fails_when_its_clip_is_asked_for(tmp_path, videos):
    pf = P.Prefetcher(tmp_path / "cache", n_frames=4, workers=1)
    pf.plan([("p-missing", videos[0], str(tmp_path / "gone.mp4"))])
    with pytest.raises(FileNotFoundError, match="pair p-missing"):
        pf.get(videos[0], str(tmp_path / "gone.mp4"), "p-missing")
    pf.close()


def test_ahead_bounds_the_work_beyond_the_latest_request(tmp_path, videos):
    pf = P.Prefetcher(tmp_path / "cache", n_frames=4, workers=1, ahead=2)
    pairs = [(f"p{a}{b}", videos[a], videos[b]) for a, b in PAIRS]
    pf.plan(pairs)
    pf.get(*pairs[0][1:], pairs[0][0])  # consumed 1: the window is plan entries 0..2
    import time

    deadline = time.time() + 60
    while time.time() < deadline and pf.stats["built"] < 3:
        time.sleep(0.05)
    time.sleep(0.5)
    assert pf.stats["built"] == 3  # never the 4th or 5th before they come within the window
    pf.close()


def _docs(videos, pairs=PAIRS, concept="location"):
    return [{"pair_id": f"p{a}{b}", "video1_path": videos[a], "video2_path": videos[b], "concept": concept}
            for a, b in pairs]


@pytest.mark.parametrize("world, rank", [(1, 0), (2, 0), (2, 1)])
def test_a_rank_plans_only_its_shard(tmp_path, videos, monkeypatch, world, rank):
    monkeypatch.setenv("WORLD_SIZE", str(world))
    docs = _docs(videos)
    clips.session().register_documents(docs)
    first = docs[rank]  # lmms-eval 0.7.3: rank r of W gets documents r, r + W, ...
    clip = clips.session().clip_for(first, 4, cache_dir=tmp_path / "cache", workers=2)
    (pf,) = clips.session().prefetchers.values()
    assert pf.stats["planned"] == len(docs[rank::world])
    assert {e.req.pair_id for e in pf._entries.values()} == {d["pair_id"] for d in docs[rank::world]}
    assert Path(clip).read_bytes() == _reference(tmp_path, videos, [PAIRS[rank]])[PAIRS[rank]]


def test_five_concepts_share_one_plan(tmp_path, videos, monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "1")
    lists = [_docs(videos, concept=c) for c in ("main_action", "location")]
    for docs in lists:
        clips.session().register_documents(docs)
    paths = [[clips.session().clip_for(d, 4, cache_dir=tmp_path / "cache", workers=2) for d in docs] for docs in lists]
    assert paths[0] == paths[1]
    (pf,) = clips.session().prefetchers.values()
    assert pf.stats["planned"] == len(PAIRS) and pf.stats["decodes"] == 5


@pytest.mark.parametrize("workers", ["0", "2"])
def test_doc_to_visual_with_and_without_workers_gives_the_same_clips(tmp_path, videos, monkeypatch, workers):
    monkeypatch.setenv(P.WORKERS_ENV, workers)
    docs = _docs(videos)
    clips.session().register_documents(docs)
    kw = {"frames_per_video": 4, "cache_dir": str(tmp_path / "cache")}
    got = [Path(hooks.doc_to_visual(d, kw)[0]).read_bytes() for d in docs]
    want = _reference(tmp_path, videos)
    assert got == [want[p] for p in PAIRS]


def test_doc_to_visual_with_a_missing_path_names_the_pair(tmp_path, videos):
    doc = {"pair_id": "a|b", "video1_path": videos[0], "video2_path": None, "concept": "location"}
    clips.session().register_documents([doc])
    for kw in ({"frames_per_video": 4, "cache_dir": str(tmp_path / "c")}, {"input": "two_videos"}):
        # the first request for frames refuses the run (exit status 1, one line), as process_docs does
        with pytest.raises(SystemExit, match=r"^convis: error: pair a / b: video 2 not found"):
            hooks.doc_to_visual(doc, kw)


def test_process_docs_registers_its_documents_once_and_the_first_request_plans_from_them(tmp_path, monkeypatch):
    import warnings

    from convis_tasks.reading.datafolder import DATA_ENV, DEMO_DIR

    monkeypatch.setenv(DATA_ENV, str(DEMO_DIR))
    monkeypatch.setenv("WORLD_SIZE", "1")
    rows = hooks.docs_location(None).to_list()
    assert hooks.docs_location(None).to_list() == rows  # lmms-eval calls process_docs more than once
    assert len(clips.session().doc_lists) == 1

    def reload(doc):
        raise AssertionError("the task's documents were read again")

    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # a failed reload would be a warning
        clip = clips.session().clip_for(rows[0], 4, cache_dir=tmp_path / "cache", workers=2, loader=reload)
    (pf,) = clips.session().prefetchers.values()
    assert pf.stats["planned"] == len({(r["video1_path"], r["video2_path"]) for r in rows}) > 1
    direct = PairClipCache(tmp_path / "direct").get(rows[0]["video1_path"], rows[0]["video2_path"], n_frames=4)
    assert Path(clip).read_bytes() == Path(direct).read_bytes()


def test_workers_setting_is_checked(monkeypatch):
    monkeypatch.setenv(P.WORKERS_ENV, "many")
    with pytest.raises(ValueError, match=P.WORKERS_ENV):
        P.default_workers()
    monkeypatch.setenv(P.WORKERS_ENV, "3")
    assert P.default_workers() == 3
    monkeypatch.delenv(P.WORKERS_ENV)
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")
    assert P.default_workers() == max(1, len(os.sched_getaffinity(0)) // 2)


def test_a_killed_worker_does_not_lose_the_clip(tmp_path, videos):
    import signal

    want = _reference(tmp_path, videos, [PAIRS[0]])[PAIRS[0]]
    pf = P.Prefetcher(tmp_path / "cache", n_frames=4, workers=1)
    pool = pf._ensure_pool()
    pool.submit(os.getpid).result()  # start the worker
    for pid in list(pool._processes):
        os.kill(pid, signal.SIGKILL)
    pf.plan([("p01", videos[0], videos[1])])
    assert Path(pf.get(videos[0], videos[1], "p01")).read_bytes() == want  # built here instead
    pf.close()


def _plan_then_hang(cache_dir: str, video1: str, video2: str, ready: str) -> None:
    pf = P.Prefetcher(cache_dir, n_frames=4, workers=2)
    pf._ensure_pool().submit(os.getpid).result()  # the workers exist
    Path(ready).write_text(" ".join(str(p) for p in pf._pool._processes))
    import time

    time.sleep(600)


def test_workers_die_with_a_killed_parent(tmp_path, videos):
    """A run killed with SIGKILL must not leave workers behind holding its output pipe open."""
    import multiprocessing
    import signal
    import time

    ready = tmp_path / "ready"
    proc = multiprocessing.get_context("spawn").Process(
        target=_plan_then_hang, args=(str(tmp_path / "cache"), videos[0], videos[1], str(ready)))
    proc.start()
    deadline = time.time() + 120
    while not ready.exists() or not ready.read_text():
        assert time.time() < deadline and proc.is_alive()
        time.sleep(0.1)
    workers = [int(p) for p in ready.read_text().split()]
    assert len(workers) == 2
    os.kill(proc.pid, signal.SIGKILL)
    proc.join(30)

    def alive(pid: int) -> bool:
        try:
            with open(f"/proc/{pid}/stat") as fh:
                return fh.read().split(")")[-1].split()[0] != "Z"
        except FileNotFoundError:
            return False

    deadline = time.time() + 30
    while time.time() < deadline and any(alive(w) for w in workers):
        time.sleep(0.1)
    assert not any(alive(w) for w in workers)


def test_frames_folders_of_dead_runs_are_swept_and_no_others(tmp_path):
    import subprocess
    import sys

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()  # exited and reaped: its pid names no process (pids are not reused this soon)
    host = P._host()
    names = {
        "dead": f"convis-frames-{host}-{dead.pid}-abc",
        "mine": f"convis-frames-{host}-{os.getpid()}-abc",
        "alive": f"convis-frames-{host}-{os.getppid()}-abc",
        "other host": f"convis-frames-elsewhere-{dead.pid}-abc",
        "not ours": f"convis-other-{host}-{dead.pid}-abc",
    }
    for name in names.values():
        (tmp_path / name).mkdir()
        (tmp_path / name / "frames.pkl").write_bytes(b"x")
    (tmp_path / f"convis-frames-{host}-{dead.pid}-file").write_text("a file, not a folder")
    assert P.sweep_dead_frames_folders(str(tmp_path)) == [str(tmp_path / names["dead"])]
    left = {p.name for p in tmp_path.iterdir()}
    assert left == {n for k, n in names.items() if k != "dead"} | {f"convis-frames-{host}-{dead.pid}-file"}


def test_a_prefetcher_names_its_frames_folder_by_host_and_pid_and_removes_it_on_close(tmp_path, videos, monkeypatch):
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    pf = P.Prefetcher(tmp_path / "cache", n_frames=4, workers=1)
    folder = pf._tmpdir()
    assert os.path.basename(folder).startswith(f"convis-frames-{P._host()}-{os.getpid()}-")
    pf.close()
    assert not os.path.exists(folder)
