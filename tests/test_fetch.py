"""ConViS-Bench arrives the lmms-eval way: fetched from the hub (a stand-in on 127.0.0.1, tests/stub_hub.py) into the
Hugging Face cache, its archives unpacked, by ``convis data fetch``, by ``convis run``'s preflight and by the tasks'
own hooks; offline, from the cache or one error at once. Everything goes through the real command line, in child
processes, with ``HF_HOME`` in a temporary folder and ``CONVIS_DATA_DIR`` unset."""

from __future__ import annotations

import glob
import importlib.util
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from convis_tasks.reading.datafolder import COMPLETE_MARKER, DEMO_DIR, HF_REPO_ID
from stub_hub import StubHub, demo_repo, zip_bytes

REPO = Path(__file__).resolve().parent.parent
DEMO_PAIR_COUNT = sum(1 for line in (DEMO_DIR / "ConVIS.jsonl").read_text().splitlines() if line.strip())
COMMIT = "c0" * 20
OLD = "0d" * 20
needs_lmms_eval = pytest.mark.skipif(importlib.util.find_spec("lmms_eval") is None,
                                     reason="lmms-eval is not installed (pip install -e '.[harness]')")


def _old_commit() -> dict[str, bytes]:
    """An earlier revision of the repository: the first three pairs only."""
    files = demo_repo(DEMO_DIR)
    files["ConVIS.jsonl"] = b"".join(files["ConVIS.jsonl"].splitlines(keepends=True)[:3])
    return files


@pytest.fixture
def hub():
    stub = StubHub({COMMIT: demo_repo(DEMO_DIR), OLD: _old_commit()}, main=COMMIT).start()
    yield stub
    stub.stop()


def _env(tmp_path: Path, hub: StubHub | None, **extra) -> dict:
    env = dict(os.environ, HF_HOME=str(tmp_path / "hf"), CONVIS_CACHE_DIR=str(tmp_path / "clips"),
               HF_DATASETS_CACHE=str(tmp_path / "hf_datasets"), HF_DATASETS_OFFLINE="1",
               HF_ENDPOINT=hub.endpoint if hub else "http://127.0.0.1:9",  # port 9: nothing listens
               PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    for name in ("CONVIS_DATA_DIR", "HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "HF_HUB_OFFLINE", "CONVIS_DATA_REVISION",
                 "CONVIS_RANKINGS"):
        env.pop(name, None)
    env.update(extra)
    return env


def _convis(args, env, timeout=600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "convis_tasks", *map(str, args)], env=env, capture_output=True,
                          text=True, timeout=timeout)


def _last_line(text: str) -> str:
    return [line for line in text.splitlines() if line.strip()][-1]


def _fetched(tmp_path: Path, commit: str = COMMIT) -> Path:
    return tmp_path / "hf" / "convis_data" / "datasets--bliberatori--ConViS-Bench" / commit


# --- convis data fetch / where / verify -------------------------------------------------------------------------

def test_fetch_where_and_verify_through_the_cli(tmp_path, hub):
    env = _env(tmp_path, hub)
    where = _convis(["data", "where"], env)
    assert where.returncode == 1 and where.stdout.strip() == "data folder: none"
    assert "convis data fetch" in where.stderr and HF_REPO_ID in where.stderr

    started = time.monotonic()
    fetch = _convis(["data", "fetch"], env)
    print(f"\ncold fetch of the demo set from the stub hub: {time.monotonic() - started:.2f} s")
    assert fetch.returncode == 0, fetch.stderr
    folder = _fetched(tmp_path)
    assert fetch.stdout.splitlines() == [str(folder)]
    assert "Fetching 5 files" in fetch.stderr  # huggingface_hub's own progress bar
    assert (folder / "videos" / "v01.mp4").read_bytes() == (DEMO_DIR / "videos" / "v01.mp4").read_bytes()
    assert not (folder / "videos.zip").exists() and (folder / COMPLETE_MARKER).is_file()

    where = _convis(["data", "where"], env)
    assert where.returncode == 0
    assert where.stdout.splitlines() == [f"data folder: {folder}",
                                         f"found by: Hugging Face cache: fetched by convis data fetch, commit {COMMIT}",
                                         f"rankings: {folder / 'ranked.json'}"]
    verify = _convis(["data", "verify"], env)  # the demo set is not the published ConViS-Bench
    assert verify.returncode == 1
    assert (f"FAIL  data: other data ({DEMO_PAIR_COUNT} pairs, differs from the published set: 610 missing, "
            f"0 changed, {DEMO_PAIR_COUNT} extra)") in verify.stdout
    assert "`convis validate` refuses its leaderboard submissions" in verify.stdout
    assert _last_line(verify.stderr) == f"convis: 1 problem(s) in {folder}"
    verify = _convis(["data", "verify", "--any-data"], env)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert f"ok    ConVIS.jsonl: {DEMO_PAIR_COUNT} pairs" in verify.stdout
    assert "ok    videos: 16 of 16 names found (8 files, 8 with a readable header)" in verify.stdout
    assert "ok    data: other data (" in verify.stdout and "ok    retrieval: " in verify.stdout

    (folder / "videos" / "v03.mp4").unlink()
    (folder / "videos" / "v05.mp4").write_bytes(b"not a video")
    verify = _convis(["data", "verify", "--any-data"], env)
    assert verify.returncode == 1
    assert "FAIL  videos: 14 of 16 names found (7 files, 6 with a readable header)" in verify.stdout
    assert "      pair v01.mp4 / v03.mp4: video 'videos/v03.mp4' not found" in verify.stdout
    assert f"      v05.mp4: {folder / 'videos' / 'v05.mp4'} header not readable" in verify.stdout
    assert _last_line(verify.stderr) == f"convis: 3 problem(s) in {folder}"  # v03 by the pairs and the rankings


def test_fetch_into_a_local_folder_prints_the_export_line(tmp_path, hub):
    local = tmp_path / "ConViS-Bench"
    fetch = _convis(["data", "fetch", "--local-dir", local], _env(tmp_path, hub))
    assert fetch.returncode == 0, fetch.stderr
    assert fetch.stdout.splitlines() == [str(local), f"export CONVIS_DATA_DIR={local}"]
    verify = _convis(["data", "verify", local, "--any-data"], _env(tmp_path, hub))
    assert verify.returncode == 0 and f"data folder: {local} (argument)" in verify.stdout
    where = _convis(["data", "where"], _env(tmp_path, hub, CONVIS_DATA_DIR=str(local)))
    assert where.stdout.splitlines()[:2] == [f"data folder: {local}", "found by: $CONVIS_DATA_DIR"]
    n = len(hub.requests)
    again = _convis(["data", "fetch", "--local-dir", local], _env(tmp_path, hub))
    assert again.returncode == 0 and hub.gets("videos.zip") == [None]  # nothing downloaded twice
    assert all(p.startswith("/api/") for _, p, _ in hub.requests[n:])  # the revision asked; no file, not even HEAD


def test_a_pinned_revision_by_option_or_variable(tmp_path, hub):
    fetch = _convis(["data", "fetch", "--revision", OLD], _env(tmp_path, hub))
    assert fetch.returncode == 0, fetch.stderr
    assert fetch.stdout.strip() == str(_fetched(tmp_path, OLD))
    assert _convis(["data", "fetch"], _env(tmp_path, hub)).returncode == 0  # main too
    pinned = _env(tmp_path, hub, CONVIS_DATA_REVISION=OLD)
    verify = _convis(["data", "verify", "--any-data"], pinned)
    assert verify.returncode == 0 and "ok    ConVIS.jsonl: 3 pairs" in verify.stdout
    assert f"commit {OLD}" in _convis(["data", "where"], pinned).stdout
    assert f"commit {COMMIT}" in _convis(["data", "where"], _env(tmp_path, hub)).stdout
    assert f"commit {OLD}" in _convis(["data", "where", "--revision", OLD], _env(tmp_path, hub)).stdout
    unknown = _convis(["data", "fetch", "--revision", "v9"], _env(tmp_path, hub))
    assert unknown.returncode == 2
    assert _last_line(unknown.stderr) == (f"convis: error: {HF_REPO_ID} has no revision 'v9' on {hub.endpoint}: "
                                          "pass an existing branch, tag or commit to `convis data fetch --revision`")


def test_an_archive_member_leading_out_is_refused_and_nothing_is_trusted(tmp_path, hub):
    files = demo_repo(DEMO_DIR)
    files["videos.zip"] = zip_bytes({"videos/v01.mp4": b"x", "../../escaped.txt": b"pwned"})
    hub.commits[COMMIT] = files
    fetch = _convis(["data", "fetch"], _env(tmp_path, hub))
    assert fetch.returncode == 2
    assert _last_line(fetch.stderr) == (f"convis: error: videos.zip: member '../../escaped.txt' leads out of "
                                        f"{_fetched(tmp_path)}; refusing to unpack it")
    assert not list(tmp_path.rglob("escaped.txt"))
    assert not (_fetched(tmp_path) / COMPLETE_MARKER).exists()
    assert _convis(["data", "where"], _env(tmp_path, hub, HF_HUB_OFFLINE="1")).returncode == 1


# --- offline ------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("how", ["HF_HUB_OFFLINE=1", "hub unreachable"])
def test_offline_with_an_empty_cache_fails_at_once_naming_the_dataset_and_the_command(tmp_path, how):
    env = _env(tmp_path, None, **({"HF_HUB_OFFLINE": "1"} if how.startswith("HF") else {}))
    out = tmp_path / "out"
    started = time.monotonic()
    proc = _convis(["run", "--model", "convis_colour_histogram", "--tasks", "convis_location", "--output_path", out],
                   env)
    print(f"\nconvis run, offline ({how}), empty cache: failed in {time.monotonic() - started:.2f} s")
    assert proc.returncode == 2, proc.stderr[-2000:]
    last = _last_line(proc.stderr)
    assert last.startswith(f"convis: error: ConViS-Bench data ({HF_REPO_ID}, revision main) is not in the Hugging "
                           f"Face cache at {tmp_path / 'hf' / 'hub'} and the hub ")
    assert "run `convis data fetch` where the hub is reachable" in last
    assert ("is off (HF_HUB_OFFLINE=1)" if how.startswith("HF") else "cannot be reached at http://127.0.0.1:9") in last
    assert not out.exists() or not any(out.iterdir())


def test_the_tasks_own_hook_fetches_and_offline_exits_1_with_the_one_message(tmp_path, hub):
    """What plain ``lmms-eval --include_path ...`` calls: the ``process_docs`` hook fetches when there is no data."""
    code = "from convis_tasks import hooks; print(len(hooks.docs_location(None)))"
    offline = subprocess.run([sys.executable, "-c", code], env=_env(tmp_path, hub, HF_HUB_OFFLINE="1"),
                             capture_output=True, text=True, timeout=300)
    assert offline.returncode == 1 and not hub.requests
    assert _last_line(offline.stderr).startswith(f"convis: error: docs_location: ConViS-Bench data ({HF_REPO_ID}")
    online = subprocess.run([sys.executable, "-c", code], env=_env(tmp_path, hub), capture_output=True, text=True,
                            timeout=300)
    assert online.returncode == 0, online.stderr
    assert online.stdout.strip() == str(DEMO_PAIR_COUNT) and hub.gets("videos.zip") == [None]


def test_two_processes_fetch_once_the_second_waits_for_the_first(tmp_path, hub):
    hub.stall["videos.zip"] = 1000
    code = "from convis_tasks import hooks; print(len(hooks.docs_location(None)))"
    logs = [tmp_path / "first.err", tmp_path / "second.err"]
    procs = []
    for log in logs:
        with open(log, "w") as err:
            procs.append(subprocess.Popen([sys.executable, "-c", code], env=_env(tmp_path, hub),
                                          stdout=subprocess.PIPE, stderr=err, text=True))
        deadline = time.monotonic() + 120
        while not (hub.gets("videos.zip") if log == logs[0] else "another process is fetching" in log.read_text()):
            assert time.monotonic() < deadline and procs[-1].poll() is None, log.read_text()
            time.sleep(0.1)
    hub.release()
    outs = [p.communicate(timeout=300)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [log.read_text()[-2000:] for log in logs]
    assert outs == [f"{DEMO_PAIR_COUNT}\n"] * 2
    assert hub.gets("videos.zip") == [None]  # one download
    assert sum(1 for m, p, _ in hub.requests if p.startswith("/api/")) == 2  # the second never asked the hub


# --- interrupted ----------------------------------------------------------------------------------------------

def test_an_interrupted_download_resumes_and_keeps_the_finished_files(tmp_path, hub):
    """huggingface_hub writes a download in 10 MiB chunks: the archive is padded past one chunk, and the stub holds
    the rest of it until the fetch has been killed."""
    chunk = 10 * 1024 * 1024
    members = {f"videos/{p.name}": p.read_bytes() for p in sorted((DEMO_DIR / "videos").iterdir())}
    hub.commits[COMMIT]["videos.zip"] = zip_bytes({**members, "padding/zeros.bin": bytes(chunk + 4096)})
    hub.stall["videos.zip"] = chunk + 1024
    env = _env(tmp_path, hub)
    blobs = tmp_path / "hf" / "hub" / "datasets--bliberatori--ConViS-Bench" / "blobs"
    proc = subprocess.Popen([sys.executable, "-m", "convis_tasks", "data", "fetch"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not (len(list(blobs.glob("*"))) == 5 and any(p.name.endswith(".incomplete") and p.stat().st_size == chunk
                                                       for p in blobs.glob("*"))):
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.05)
    proc.kill()
    proc.wait()
    hub.release()
    assert _convis(["data", "where"], _env(tmp_path, hub, HF_HUB_OFFLINE="1")).returncode == 1  # not trusted
    offline = _convis(["data", "fetch"], _env(tmp_path, hub, HF_HUB_OFFLINE="1"))
    assert offline.returncode == 2 and "an interrupted fetch of" in offline.stderr and "videos.zip" in offline.stderr
    resumed = _convis(["data", "fetch"], env)
    assert resumed.returncode == 0, resumed.stderr
    assert hub.gets("videos.zip") == [None, f"bytes={chunk}-"]  # resumed where the kept part ends
    assert all(len(hub.gets(name)) == 1 for name in ("ConVIS.jsonl", "ranked.json", "to_be_ranked.json", "README.md"))
    assert _convis(["data", "verify", "--any-data"], env).returncode == 0


def test_an_interrupted_unpacking_is_redone_not_trusted(tmp_path, hub):
    env = _env(tmp_path, hub)
    assert _convis(["data", "fetch"], env).returncode == 0
    folder = _fetched(tmp_path)
    # what an unpacking cut off half-way leaves: no marker, a file missing, a temporary, a stale file
    (folder / COMPLETE_MARKER).unlink()
    (folder / "videos" / "v08.mp4").unlink()
    (folder / "videos" / "v08.mp4.convis-unpacking").write_bytes(b"half")
    (folder / "videos" / "v07.mp4").write_bytes(b"stale")
    offline = _env(tmp_path, hub, HF_HUB_OFFLINE="1")
    assert _convis(["data", "where"], offline).returncode == 1
    n = len(hub.requests)
    redo = _convis(["data", "fetch"], offline)
    assert redo.returncode == 0, redo.stderr
    assert len(hub.requests) == n  # from the cache, offline
    assert sorted(p.name for p in (folder / "videos").iterdir()) == [f"v0{i}.mp4" for i in range(1, 9)]
    assert (folder / "videos" / "v07.mp4").read_bytes() == (DEMO_DIR / "videos" / "v07.mp4").read_bytes()
    assert _convis(["data", "verify", "--any-data"], offline).returncode == 0


# --- whole runs ------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def fetched_run(tmp_path_factory):
    """``convis run`` with no data folder and an empty cache (fetches from the stub), then the same run offline."""
    tmp = tmp_path_factory.mktemp("fetched_run")
    stub = StubHub({COMMIT: demo_repo(DEMO_DIR)}, main=COMMIT).start()
    args = ["run", "--model", "convis_colour_histogram", "--tasks", "convis_location", "--quiet"]
    try:
        started = time.monotonic()
        first = _convis(args + ["--output_path", tmp / "online"], _env(tmp, stub))
        online_s = time.monotonic() - started
        before = len(stub.requests)
        started = time.monotonic()
        second = _convis(args + ["--output_path", tmp / "offline"], _env(tmp, stub, HF_HUB_OFFLINE="1"))
        offline_s = time.monotonic() - started
        after = len(stub.requests)
    finally:
        stub.stop()
    print(f"\nconvis run with a fetch: {online_s:.1f} s; the same run offline from the cache: {offline_s:.1f} s")
    return tmp, first, second, stub, before, after


def _n(root: Path) -> int:
    (path,) = glob.glob(str(root / "**" / "*_results.json"), recursive=True)
    return json.loads(Path(path).read_text())["results"]["convis_location"]["n,none"]


@needs_lmms_eval
@pytest.mark.slow
def test_a_run_without_data_fetches_it_and_scores_every_demo_pair(fetched_run):
    tmp, first, _, stub, _, _ = fetched_run
    assert first.returncode == 0, first.stderr[-3000:]
    assert "fetching bliberatori/ConViS-Bench" in first.stderr
    assert _n(tmp / "online") == DEMO_PAIR_COUNT
    assert stub.gets("videos.zip") == [None]  # fetched once, by the preflight; the ranks found it


@needs_lmms_eval
@pytest.mark.slow
def test_the_same_run_offline_reads_the_cache(fetched_run):
    tmp, _, second, _, before, after = fetched_run
    assert second.returncode == 0, second.stderr[-3000:]
    assert _n(tmp / "offline") == DEMO_PAIR_COUNT
    assert after == before and "fetching" not in second.stderr  # the hub, still up, was not asked
    assert f"on {_fetched(tmp)}" in second.stderr  # preflight names the data folder it found
