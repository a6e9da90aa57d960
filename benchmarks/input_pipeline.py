#!/usr/bin/env python
"""Input-preparation benchmark of the ``convis`` group: naive per-request decoding vs the plugin's pair cache.

What it does (see benchmarks/README.md for the figures and how to read them):

1. Generates, once, a pool of synthetic web-like videos in a work folder and reuses them on later runs:
   640x360, 30 fps, 26-30 s, libx264 ``crf 23``, preset ``veryfast`` (CABAC, 3 B-frames, deblocking),
   ``keyint 250``, yuv420p; a textured background panning under three moving blocks, with light
   luma grain, so that files have a realistic size (2.2 MB mean, ~640 kbit/s).
2. Builds the ``V`` videos of a scale (the pool files; beyond the pool, hard links to pool files: other
   paths, so other cache keys, and the same decoding work) and draws ``P`` pairs deterministically like the
   benchmark (every video in at least one pair, the rest of the slots uniform, no repeated or self pairs,
   shuffled file order; 610 pairs over 543 videos in the release).
3. Prepares the inputs of every request of the group, 5 concepts x P pairs, concept after concept as
   lmms-eval issues them, each run in its own child process so that peak RSS values are separable:

   * ``naive``: per request, decode both videos with decord, N uniformly sampled frames each
     (``VideoReader``, ``np.linspace(0, total - 1, N, dtype=int)``, ``get_batch``), which is what a model's
     video loader does per request when it gets the two original files;
   * ``prep, W workers`` (the ``--workers`` sweep): ``convis_tasks.hooks.doc_to_visual`` per request on an
     empty clip cache with ``$CONVIS_PREFETCH_WORKERS=W`` and no model: the preparation time;
   * ``model L ms``: the same with a simulated model that takes ``--model-latency-ms`` per request after
     receiving its clip, so that preparation (in the worker pool) overlaps the model; then three warm
     passes in the same process (the fastest is reported);
   * ``warm, new process``: a new process on the cache left on disk (its first pass checks every clip's
     digest once);
   * the same cold run again at a second scale (``--rss-scale``), to show that peak RSS does not grow with V.

   Decodes are counted where they happen: each naive ``get_batch``; on the plugin side, the prefetcher's
   count of source videos decoded by its jobs plus any decode in the calling process.
4. The cache options table (``--options-pairs``): bytes per pair, max abs error and PSNR against the source
   sampled frames, encode and read time, for encoder settings and lossless codecs the harness's readers accept.
5. The integrity check's cost: the sha256 of every clip of the cold cache.

Usage::

    python benchmarks/input_pipeline.py                  # V=60, P=67, second scale 120
    python benchmarks/input_pipeline.py --videos 12 --rss-scale 0 --skip-naive    # quick (a few minutes)
    python benchmarks/input_pipeline.py --full --skip-naive    # V=543, P=610

Nothing here is imported by the package.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

# --- the synthetic videos --------------------------------------------------------------------------

WIDTH, HEIGHT, FPS = 640, 360, 30
MIN_SECONDS, MAX_SECONDS = 26.0, 30.0
X264 = {"crf": "23", "preset": "veryfast", "g": "250", "threads": "1"}
GENERATOR_VERSION = "2"
N_CONCEPTS = 5
WARM_PASSES = 3  # warm passes after the cold one, same process; the fastest is reported
FULL_VIDEOS, FULL_PAIRS = 543, 610


def video_seconds(index: int, seed: int) -> float:
    rng = np.random.default_rng([seed, index, 1])
    return float(rng.uniform(MIN_SECONDS, MAX_SECONDS))


def render_video(index: int, seed: int, path: Path) -> int:
    """Write pool video ``index``; returns its byte size.  Deterministic for (index, seed)."""
    import av

    rng = np.random.default_rng([seed, index])
    n_frames = int(round(video_seconds(index, seed) * FPS))
    bw, bh = WIDTH + 400, HEIGHT + 200  # background larger than the frame: it pans
    yy, xx = np.mgrid[0:bh, 0:bw].astype(np.float32)
    planes = []
    for lo, hi, amp in ((50, 200, 60), (90, 160, 25), (90, 160, 25)):  # Y, U, V
        plane = np.full((bh, bw), rng.uniform(lo, hi), np.float32)
        for scale in (7, 19, 53, 131):
            fx, fy = rng.uniform(0.5, 1.5, 2) / scale
            plane += amp * (scale / 131) ** 0.4 * np.sin(2 * np.pi * (fx * xx + fy * yy) + rng.uniform(0, 6.3))
        planes.append(np.clip(plane, 4, 251).astype(np.uint8))
    big_y, big_u, big_v = planes[0], planes[1][::2, ::2].copy(), planes[2][::2, ::2].copy()
    grain = rng.integers(0, 3, (16, HEIGHT, WIDTH), dtype=np.uint8)  # +-1 luma grain
    vx, vy = rng.uniform(0.3, 1.0, 2) * rng.choice([-1, 1], 2)
    phase = rng.uniform(0, 6.3, 3)
    colours = rng.integers(30, 226, (3, 3))
    buf = np.empty((HEIGHT * 3 // 2, WIDTH), np.uint8)
    h2, w2 = HEIGHT // 2, WIDTH // 2
    tmp = path.with_name(path.name + ".part")
    with av.open(str(tmp), "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        stream.options = dict(X264)
        for i in range(n_frames):
            ox, oy = int((200 + i * vx) % 400), int((100 + i * vy) % 200)
            y = buf[:HEIGHT]
            np.add(big_y[oy:oy + HEIGHT, ox:ox + WIDTH], grain[(i * 7) % 16], out=y)
            y -= 1
            u = buf[HEIGHT:HEIGHT + HEIGHT // 4].reshape(h2, w2)
            v = buf[HEIGHT + HEIGHT // 4:].reshape(h2, w2)
            u[:] = big_u[oy // 2:oy // 2 + h2, ox // 2:ox // 2 + w2]
            v[:] = big_v[oy // 2:oy // 2 + h2, ox // 2:ox // 2 + w2]
            for j in range(3):
                cx = int(WIDTH / 2 + WIDTH / 3 * np.sin(i / 40 + phase[j])) // 2 * 2
                cy = int(HEIGHT / 2 + HEIGHT / 3 * np.cos(i / 55 + 2 * phase[j])) // 2 * 2
                x0, y0 = max(cx - 24, 0), max(cy - 24, 0)
                y[y0:cy + 24, x0:cx + 24] = colours[j, 0]
                u[y0 // 2:cy // 2 + 12, x0 // 2:cx // 2 + 12] = colours[j, 1]
                v[y0 // 2:cy // 2 + 12, x0 // 2:cx // 2 + 12] = colours[j, 2]
            frame = av.VideoFrame.from_ndarray(buf, format="yuv420p")
            frame.pts = i
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    os.replace(tmp, path)
    return path.stat().st_size


def _render_job(args: tuple[int, int, str]) -> tuple[int, int]:
    index, seed, path = args
    return index, render_video(index, seed, Path(path))


def ensure_pool(work: Path, size: int, seed: int, jobs: int) -> tuple[list[Path], float, int]:
    """The pool videos, generated only when missing; returns (paths, seconds spent, number generated)."""
    pool = work / "pool"
    pool.mkdir(parents=True, exist_ok=True)
    manifest_path = pool / "manifest.json"
    params = {"version": GENERATOR_VERSION, "seed": seed, "size": [WIDTH, HEIGHT], "fps": FPS, "x264": X264}
    manifest = {}
    if manifest_path.is_file():
        try:
            manifest = json.loads(manifest_path.read_text())
        except ValueError:
            manifest = {}
    if manifest.get("params") != params:
        manifest = {"params": params, "files": {}}
    paths = [pool / f"clip_{i:04d}.mp4" for i in range(size)]
    todo = [i for i, p in enumerate(paths)
            if not (p.is_file() and manifest["files"].get(p.name) == p.stat().st_size)]
    start = time.perf_counter()
    if todo:
        print(f"generating {len(todo)} pool videos ({WIDTH}x{HEIGHT}, {FPS} fps, {MIN_SECONDS:g}-{MAX_SECONDS:g} s, "
              f"x264 {X264}) in {work} ...", flush=True)
        import multiprocessing

        with multiprocessing.get_context("spawn").Pool(jobs) as workers:
            for done, (index, nbytes) in enumerate(
                    workers.imap_unordered(_render_job, [(i, seed, str(paths[i])) for i in todo]), 1):
                manifest["files"][paths[index].name] = nbytes
                if done % 10 == 0 or done == len(todo):
                    print(f"  {done}/{len(todo)} ({time.perf_counter() - start:.0f} s)", flush=True)
        manifest_path.write_text(json.dumps(manifest, indent=1, sort_keys=True))
    return paths, time.perf_counter() - start, len(todo)


def scale_videos(work: Path, pool: list[Path], n_videos: int) -> list[str]:
    """``n_videos`` distinct paths: the pool files, then hard links to them (copies if links fail)."""
    folder = work / "videos"
    folder.mkdir(exist_ok=True)
    out = []
    for i in range(n_videos):
        src = pool[i % len(pool)]
        if i < len(pool):
            out.append(str(src))
            continue
        dst = folder / f"video_{i:04d}.mp4"
        if not (dst.is_file() and dst.stat().st_size == src.stat().st_size):
            dst.unlink(missing_ok=True)
            try:
                os.link(src, dst)
            except OSError:
                shutil.copy2(src, dst)
        out.append(str(dst))
    return out


def draw_pairs(n_videos: int, n_pairs: int, seed: int) -> list[tuple[int, int]]:
    """Deterministic pairs like the benchmark's: every video at least once, no self or repeated pair, random order."""
    if n_pairs * 2 < n_videos:
        raise SystemExit(f"--pairs {n_pairs} cannot cover {n_videos} videos (needs >= {(n_videos + 1) // 2})")
    if n_pairs > n_videos * (n_videos - 1) // 2:
        raise SystemExit(f"--pairs {n_pairs} is more than the {n_videos * (n_videos - 1) // 2} possible pairs")
    rng = np.random.default_rng([seed, n_videos, n_pairs])
    stubs = np.concatenate([np.arange(n_videos), rng.integers(0, n_videos, 2 * n_pairs - n_videos)])
    rng.shuffle(stubs)
    pairs = [(int(a), int(b)) for a, b in zip(stubs[0::2], stubs[1::2])]
    for _ in range(1000 * n_pairs):  # repair self pairs and repeats by swapping stubs between pairs
        seen: set[frozenset] = set()
        bad = None
        for k, (a, b) in enumerate(pairs):
            key = frozenset((a, b))
            if a == b or key in seen:
                bad = k
                break
            seen.add(key)
        if bad is None:
            break
        other = int(rng.integers(0, len(pairs)))
        (a, b), (c, d) = pairs[bad], pairs[other]
        pairs[bad], pairs[other] = (a, d), (c, b)
    else:  # pragma: no cover
        raise SystemExit("could not draw distinct pairs")
    order = rng.permutation(len(pairs))
    return [pairs[k] for k in order]


def make_requests(videos: list[str], pairs: list[tuple[int, int]], concepts: int) -> list[dict]:
    names = ["main_action", "main_subjects", "main_objects", "location", "order_of_actions"]
    return [{"concept": names[c % len(names)], "pair_id": f"{a}|{b}", "video1_path": videos[a],
             "video2_path": videos[b]} for c in range(concepts) for a, b in pairs]


# --- child processes ----------------------------------------------------------------------------------

def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux


def _current_rss_mb() -> float:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return float("nan")


def child_naive(spec: dict) -> dict:
    from decord import VideoReader, cpu

    n = spec["frames"]
    decodes = 0
    checksum = 0
    base = _peak_rss_mb()
    start, cpu0 = time.perf_counter(), time.process_time()
    for req in spec["requests"]:
        frames = []
        for path in (req["video1_path"], req["video2_path"]):
            vr = VideoReader(path, ctx=cpu(0))
            idx = np.linspace(0, len(vr) - 1, n, dtype=int).tolist()
            frames.append(vr.get_batch(idx).asnumpy())
            decodes += 1
        checksum += int(frames[0][0, 0, 0, 0]) + int(frames[1][-1, -1, -1, -1])
    wall = time.perf_counter() - start
    return {"wall_s": wall, "cpu_s": time.process_time() - cpu0, "decodes": decodes, "builds": 0,
            "requests": len(spec["requests"]), "peak_rss_mb": _peak_rss_mb(), "rss_after_imports_mb": base,
            "checksum": checksum}



def _decodes() -> int:
    from convis_tasks.video import prefetch

    return sum(pf.stats["decodes"] + pf.cache.stats["decodes"] for pf in prefetch._PREFETCHERS.values())


def _builds() -> int:
    from convis_tasks.video import prefetch

    return sum(pf.stats["built"] + pf.cache.stats["builds"] for pf in prefetch._PREFETCHERS.values())


def child_plugin(spec: dict) -> dict:
    """Cold pass (optionally with a simulated model), warm passes; figures of the main process and its workers."""
    os.environ["CONVIS_PREFETCH_WORKERS"] = str(spec["workers"])
    from convis_tasks import hooks
    from convis_tasks.video import prefetch

    kw = {"cache_dir": spec["cache_dir"], "frames_per_video": spec["frames"]}
    requests = spec["requests"]
    latency = spec.get("latency_ms", 0) / 1000.0
    base = _peak_rss_mb()
    out = {"requests": len(requests), "rss_after_imports_mb": base, "passes": [], "workers": spec["workers"]}
    prefetch.register_documents(requests)  # what the task's documents are (lmms-eval: the task's docs)
    clips = set()
    for number in range(spec["passes"]):
        d0, b0 = _decodes(), _builds()
        start, cpu0 = time.perf_counter(), time.process_time()
        waited = 0.0
        for req in requests:
            t = time.perf_counter()
            clips.add(hooks.doc_to_visual(req, kw)[0])
            waited += time.perf_counter() - t
            if latency and number == 0:
                time.sleep(latency)  # the model computes; the pool keeps preparing
        out["passes"].append({"wall_s": time.perf_counter() - start, "cpu_s": time.process_time() - cpu0,
                              "waited_s": waited, "decodes": _decodes() - d0, "builds": _builds() - b0})
    out["jobs_in_flight"] = sum(pf.stats["job_s"] for pf in prefetch._PREFETCHERS.values()) / max(
        1e-9, out["passes"][0]["wall_s"])
    out["frames_bytes_peak"] = max([pf.stats["frames_bytes_peak"] for pf in prefetch._PREFETCHERS.values()] or [0])
    out["clips"] = len(clips)
    out["clip_bytes"] = sum(os.path.getsize(c) + os.path.getsize(os.path.splitext(c)[0] + ".json") for c in clips)
    out["peak_rss_mb"] = _peak_rss_mb()
    out["rss_end_mb"] = _current_rss_mb()
    prefetch.close_all()
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    out["worker_peak_rss_mb"] = children.ru_maxrss / 1024.0
    out["worker_cpu_s"] = children.ru_utime + children.ru_stime
    return out


def run_child(kind: str, spec: dict, work: Path) -> dict:
    spec_path = work / f"spec_{kind}.json"
    out_path = work / f"result_{kind}.json"
    spec_path.write_text(json.dumps(spec))
    out_path.unlink(missing_ok=True)
    load0 = os.getloadavg()[0]
    proc = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--child", kind, "--spec", str(spec_path),
                           "--child-out", str(out_path)], cwd=str(REPO))
    if proc.returncode != 0:
        raise SystemExit(f"child {kind} failed with exit code {proc.returncode}")
    result = json.loads(out_path.read_text())
    result["load_before"], result["load_after"] = load0, os.getloadavg()[0]
    return result


# --- cache options and integrity cost ------------------------------------------------------------------

def clip_formats() -> dict:
    """The options measured for the clip cache (name -> ClipFormat); the first is the current one."""
    from convis_tasks.video.encode import CLIP_FORMAT, ClipFormat

    x = {"threads": "1", "bframes": "0"}
    f = {"threads": "1", "level": "3", "slicecrc": "0"}
    return {
        "RGB: x264 yuv444p qp0 medium CAVLC umh ref8 subme5 .mp4 (current, other pairs)": CLIP_FORMAT,
        "x264 yuv444p qp0 ultrafast .mp4 (before: all pairs)": ClipFormat(options=dict(x, qp="0", preset="ultrafast")),
        "x264 yuv444p qp0 medium .mp4": ClipFormat(options=dict(x, qp="0", preset="medium")),
        "x264rgb bgr0 qp0 ultrafast .mp4": ClipFormat(codec="libx264rgb", pix_fmt="bgr0",
                                                      options=dict(x, qp="0", preset="ultrafast")),
        "ffv1 bgr0 range coder .avi": ClipFormat(codec="ffv1", pix_fmt="bgr0", options=dict(f, coder="1"),
                                                 container="avi"),
        "ffv1 yuv444p range coder .avi": ClipFormat(codec="ffv1", pix_fmt="yuv444p", options=dict(f, coder="1"),
                                                    container="avi"),
        "ffv1 bgr0 golomb .avi": ClipFormat(codec="ffv1", pix_fmt="bgr0", options=f, container="avi"),
        "x264 yuv420p qp0 ultrafast .mp4": ClipFormat(pix_fmt="yuv420p", options=dict(x, qp="0", preset="ultrafast")),
        "x264 yuv444p qp4 medium .mp4": ClipFormat(options=dict(x, qp="4", preset="medium")),
    }


def cache_options(pool: list[Path], frames: int, work: Path, n_pairs: int) -> list[dict]:
    """Bytes per pair, max abs error and PSNR against the source sampled frames (as the same reader decodes
    the sources), encode and read time, for each option of :func:`clip_formats` and the native clip."""
    from convis_tasks.video import decode as V

    backends = ("decord", "pyav")
    pairs = [(pool[(2 * i) % len(pool)], pool[(2 * i + 1) % len(pool)]) for i in range(n_pairs)]
    refs = [{b: np.concatenate([V.read_frames(x, frames, backend=b), V.read_frames(y, frames, backend=b)])
             for b in backends} for x, y in pairs]
    native = "native: the sources' own YUV planes, x264 qp0"
    base = dict(V.ENCODER_OPTIONS)
    base.pop("x264-params", None)
    options = {f"{native} medium CAVLC umh ref8 subme5 .mp4 (current, same-format pairs)": V.ENCODER_OPTIONS,
               f"{native} ultrafast .mp4 (before)": dict(base, preset="ultrafast"),
               f"{native} ultrafast + CABAC .mp4": dict(base, preset="ultrafast", **{"x264-params": "cabac=1"}),
               f"{native} medium CAVLC .mp4": dict(base, preset="medium", **{"x264-params": "cabac=0"}),
               f"{native} medium .mp4 (CABAC)": dict(base, preset="medium"),
               f"{native} slower CAVLC .mp4": dict(base, preset="slower", **{"x264-params": "cabac=0"}),
               f"{native} veryslow CAVLC .mp4": dict(base, preset="veryslow", **{"x264-params": "cabac=0"}),
               f"{native} slower .mp4 (CABAC)": dict(base, preset="slower")}
    options.update(clip_formats())
    rows = []
    for name, fmt in options.items():
        row = {"option": name, "bytes_per_pair": 0.0, "max_abs_err": 0, "min_psnr_db": float("inf"),
               "encode_s": 0.0, "read_s": 0.0, "readers": list(backends)}
        for i, ((x, y), ref) in enumerate(zip(pairs, refs)):
            native = isinstance(fmt, dict)
            ext = "mp4" if native else ("mkv" if fmt.container == "matroska" else fmt.container)
            path = work / f"option_{i}.{ext}"
            if native:
                n1, n2 = V.read_native(x, frames), V.read_native(y, frames)
                start = time.perf_counter()
                V.write_native_clip(n1, n2, path, options=fmt)
            else:
                start = time.perf_counter()
                V.write_clip(ref["decord"], path, fmt=fmt)
            row["encode_s"] += (time.perf_counter() - start) / len(refs)
            row["bytes_per_pair"] += path.stat().st_size / len(refs)
            for backend in backends:
                try:
                    start = time.perf_counter()
                    back = V.read_frames(path, 2 * frames, backend=backend)
                    if backend == "decord":
                        row["read_s"] += (time.perf_counter() - start) / len(refs)
                except Exception:  # noqa: BLE001 - a reader that cannot read it is the figure
                    row["readers"] = [r for r in row["readers"] if r != backend]
                    continue
                err = np.abs(back.astype(np.int16) - ref[backend].astype(np.int16))
                mse = float(np.mean(err.astype(np.float64) ** 2))
                row["max_abs_err"] = max(row["max_abs_err"], int(err.max()))
                row["min_psnr_db"] = min(row["min_psnr_db"], float("inf") if mse == 0 else 10 * np.log10(255 ** 2 / mse))
            path.unlink()
        rows.append(row)
    return rows


def integrity_cost(cache: Path) -> dict:
    from convis_tasks.video.cache import DIGEST, file_digest

    clips = [p for p in cache.iterdir() if p.suffix in (".mp4", ".avi", ".mkv")]
    total = sum(p.stat().st_size for p in clips)
    start = time.perf_counter()
    for p in clips:
        file_digest(p)
    seconds = time.perf_counter() - start
    return {"digest": DIGEST, "clips": len(clips), "ms_per_clip": 1e3 * seconds / max(1, len(clips)),
            "mb_per_s": total / 1e6 / seconds if seconds else float("inf")}


# --- main -------------------------------------------------------------------------------------------------

def _fmt_rate(requests: int, seconds: float) -> str:
    return f"{requests / seconds:9.2f}" if seconds > 0 else "      inf"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--videos", "-V", type=int, default=60, help="videos V (default 60)")
    ap.add_argument("--pairs", "-P", type=int, default=None, help="pairs P (default round(1.12 V), as 610/543)")
    ap.add_argument("--full", action="store_true", help=f"the benchmark's scale: V={FULL_VIDEOS}, P={FULL_PAIRS}")
    ap.add_argument("--pool", type=int, default=None,
                    help="distinct generated videos (default min(max(V, rss-scale), 60)); the others are hard links to them")
    ap.add_argument("--frames", type=int, default=8, help="frames per video N (default 8, the protocol's)")
    ap.add_argument("--concepts", type=int, default=N_CONCEPTS, help="concepts (tasks) of the group (default 5)")
    ap.add_argument("--rss-scale", type=int, default=None,
                    help="V of the second cold run for peak RSS (default 2V; 0 skips; off with --full)")
    ap.add_argument("--workers", default=None,
                    help="comma-separated worker counts for the preparation sweep (default: 1 and the cores "
                         "available); the largest runs the simulated model")
    ap.add_argument("--model-latency-ms", type=float, default=300.0,
                    help="simulated model time per request for the overlap run (default 300; 0 skips it)")
    ap.add_argument("--options-pairs", type=int, default=3,
                    help="pairs encoded per cache option in the options table (default 3; 0 skips it)")
    ap.add_argument("--work-dir", default=os.environ.get("CONVIS_BENCH_DIR",
                                                         str(Path(tempfile.gettempdir()) / "convis-input-bench")),
                    help="where videos and caches go (default $CONVIS_BENCH_DIR or <tmp>/convis-input-bench)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--jobs", type=int, default=2, help="processes generating videos (default 2)")
    ap.add_argument("--skip-naive", action="store_true", help="do not run the naive baseline")
    ap.add_argument("--keep-cache", action="store_true",
                    help="keep the pair-clip cache of scale V in the work dir (default: delete it at the end)")
    ap.add_argument("--json", default=None, help="also write every figure to this JSON file")
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--spec", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--child-out", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    if args.child:
        spec = json.loads(Path(args.spec).read_text())
        result = child_naive(spec) if args.child == "naive" else child_plugin(spec)
        Path(args.child_out).write_text(json.dumps(result))
        return 0

    if args.full:
        args.videos, args.pairs = FULL_VIDEOS, args.pairs or FULL_PAIRS
    n_videos = args.videos
    n_pairs = args.pairs if args.pairs is not None else round(n_videos * FULL_PAIRS / FULL_VIDEOS)
    rss_scale = args.rss_scale if args.rss_scale is not None else (0 if args.full else 2 * n_videos)
    pool_size = args.pool if args.pool is not None else min(max(n_videos, rss_scale if rss_scale else 0), 60)
    pool_size = max(2, min(pool_size, max(n_videos, rss_scale or 0)))
    from convis_tasks.video.prefetch import default_workers

    cores = default_workers() if not os.environ.get("CONVIS_PREFETCH_WORKERS") else len(os.sched_getaffinity(0))
    sweep = sorted({int(w) for w in args.workers.split(",")}) if args.workers else sorted({1, max(1, cores)})
    top = max(sweep)
    work = Path(args.work_dir).expanduser().resolve()
    work.mkdir(parents=True, exist_ok=True)
    t_total = time.perf_counter()

    pool, gen_s, generated = ensure_pool(work, pool_size, args.seed, args.jobs)
    pool_bytes = [p.stat().st_size for p in pool]
    videos = scale_videos(work, pool, max(n_videos, rss_scale or 0))
    pairs = draw_pairs(n_videos, n_pairs, args.seed)
    requests = make_requests(videos[:n_videos], pairs, args.concepts)
    source_bytes = sum(os.path.getsize(v) for v in videos[:n_videos])
    import av

    with av.open(str(pool[0])) as c:
        st = c.streams.video[0]
        probe = f"{st.codec_context.width}x{st.codec_context.height} {st.codec_context.name} " \
                f"{st.codec_context.profile}, {float(st.average_rate):g} fps, {st.frames} frames"

    print(f"ConViS input pipeline benchmark: V={n_videos} videos, P={n_pairs} pairs, {args.concepts} concepts "
          f"-> {len(requests)} requests, N={args.frames} frames/video")
    print(f"videos: pool of {len(pool)} generated ({probe}; {np.mean(pool_bytes) / 1e6:.2f} MB mean, "
          f"{np.mean(pool_bytes) * 8 / ((MIN_SECONDS + MAX_SECONDS) / 2) / 1e3:.0f} kbit/s); "
          f"{'generated ' + str(generated) + ' in ' + format(gen_s, '.0f') + ' s' if generated else 'reused'}"
          f"{'; videos beyond the pool are hard links' if len(videos) > len(pool) else ''}")
    print(f"work dir: {work}; cpus: {os.cpu_count()} (available: {len(os.sched_getaffinity(0))}); workers sweep "
          f"{sweep}; load average at start: {os.getloadavg()[0]:.2f}", flush=True)

    results: dict = {"videos": n_videos, "pairs": n_pairs, "requests": len(requests), "frames": args.frames,
                     "pool": len(pool), "pool_mean_bytes": float(np.mean(pool_bytes)), "source_bytes": source_bytes,
                     "workers_sweep": sweep}
    base_spec = {"frames": args.frames}

    if not args.skip_naive:
        print("naive: decoding both videos per request ...", flush=True)
        results["naive"] = run_child("naive", dict(base_spec, requests=requests), work)

    cache = work / f"cache_V{n_videos}"
    results["prep"] = {}
    for w in sweep:
        shutil.rmtree(cache, ignore_errors=True)
        print(f"prep: cold cache, {w} worker(s), no model ...", flush=True)
        results["prep"][str(w)] = run_child(f"prep{w}", dict(base_spec, requests=requests, cache_dir=str(cache),
                                                              passes=1, workers=w), work)
    if args.model_latency_ms > 0:
        shutil.rmtree(cache, ignore_errors=True)
        print(f"model: cold cache, {top} worker(s), simulated model {args.model_latency_ms:g} ms/request, then "
              f"{WARM_PASSES} warm passes ...", flush=True)
        results["cold"] = run_child("model", dict(base_spec, requests=requests, cache_dir=str(cache), workers=top,
                                                  passes=1 + WARM_PASSES, latency_ms=args.model_latency_ms), work)
    else:
        results["cold"] = results["prep"][str(top)]
    print("warm cache in a new process ...", flush=True)
    results["warm_process"] = run_child("warm", dict(base_spec, requests=requests, cache_dir=str(cache), passes=1,
                                                     workers=top), work)
    results["integrity"] = integrity_cost(cache)
    if rss_scale:
        pairs2 = draw_pairs(rss_scale, round(rss_scale * FULL_PAIRS / FULL_VIDEOS), args.seed)
        requests2 = make_requests(videos[:rss_scale], pairs2, args.concepts)
        cache2 = work / f"cache_V{rss_scale}"
        shutil.rmtree(cache2, ignore_errors=True)
        print(f"prep: cold cache at V={rss_scale} (second scale, for peak RSS) ...", flush=True)
        results["cold_scale2"] = run_child("scale2", dict(base_spec, requests=requests2, cache_dir=str(cache2),
                                                          passes=1, workers=top), work)
        results["cold_scale2"]["videos"] = rss_scale
        results["cold_scale2"]["pairs"] = len(pairs2)
        shutil.rmtree(cache2, ignore_errors=True)
    if args.options_pairs:
        print(f"cache options: {args.options_pairs} pairs each ...", flush=True)
        results["cache_options"] = cache_options(pool, args.frames, work, args.options_pairs)

    # --- report -------------------------------------------------------------------------------------------
    n_req = len(requests)
    cold = results["cold"]
    p1 = cold["passes"][0]
    prep = {w: results["prep"][str(w)]["passes"][0] for w in sweep}
    print()
    print(f"{'run':40s} {'wall s':>8s} {'cpu s':>8s} {'req/s':>9s} {'us/req':>10s} {'decodes':>8s} {'builds':>7s} "
          f"{'RSS MB':>7s} {'worker':>7s} {'load':>5s}")
    rows = []
    if "naive" in results:
        nv = results["naive"]
        rows.append(("naive (decord, 2 videos/request)", nv["wall_s"], nv["cpu_s"], n_req, nv["decodes"], 0,
                     nv["peak_rss_mb"], 0, nv))
    for w in sweep:
        r = results["prep"][str(w)]
        rows.append((f"prep, cold, {w} worker(s), no model", prep[w]["wall_s"], prep[w]["cpu_s"], n_req,
                     prep[w]["decodes"], prep[w]["builds"], r["peak_rss_mb"], r["worker_peak_rss_mb"], r))
    if args.model_latency_ms > 0:
        rows.append((f"model {args.model_latency_ms:g} ms/req, cold, {top} workers", p1["wall_s"], p1["cpu_s"], n_req,
                     p1["decodes"], p1["builds"], cold["peak_rss_mb"], cold["worker_peak_rss_mb"], cold))
        p2 = min(cold["passes"][1:], key=lambda p: p["wall_s"])
        rows.append(("warm (later pass, same process)", p2["wall_s"], p2["cpu_s"], n_req, p2["decodes"], p2["builds"],
                     cold["peak_rss_mb"], 0, cold))
    warm = results["warm_process"]["passes"][0]
    rows.append(("warm (new process: digest once per clip)", warm["wall_s"], warm["cpu_s"], n_req, warm["decodes"],
                 warm["builds"], results["warm_process"]["peak_rss_mb"], 0, results["warm_process"]))
    if "cold_scale2" in results:
        s2 = results["cold_scale2"]
        q = s2["passes"][0]
        rows.append((f"prep, cold, V={s2['videos']} (P={s2['pairs']}), {top} workers", q["wall_s"], q["cpu_s"],
                     s2["requests"], q["decodes"], q["builds"], s2["peak_rss_mb"], s2["worker_peak_rss_mb"], s2))
    for name, wall, cpu, reqs, dec, enc, rss, wrss, res in rows:
        print(f"{name:40s} {wall:8.2f} {cpu:8.2f} {_fmt_rate(reqs, wall)} {wall / reqs * 1e6:10.0f} {dec:8d} "
              f"{enc:7d} {rss:7.0f} {wrss:7.0f} {res['load_before']:5.1f}")
    print()
    prep_top = prep[top]["wall_s"]
    results["decodes"] = prep[top]["decodes"]
    results["cache_bytes"] = results["prep"][str(top)]["clip_bytes"]
    results["peak_rss_mb"] = max(results["prep"][str(top)]["peak_rss_mb"], results["prep"][str(top)]["worker_peak_rss_mb"])
    print(f"decodes: {results['decodes']} for {n_videos} videos (each video once when equal); "
          f"peak RSS: main {results['prep'][str(top)]['peak_rss_mb']:.0f} MB, largest worker "
          f"{results['prep'][str(top)]['worker_peak_rss_mb']:.0f} MB (forked: shares the main process's pages); "
          f"decoded frames kept on disk for later pairs: at most {results['prep'][str(top)]['frames_bytes_peak'] / 1e6:.0f} MB")
    if len(sweep) > 1:
        lo = min(sweep)
        results["prep_speedup"] = {f"{w}_vs_{lo}": prep[lo]["wall_s"] / prep[w]["wall_s"] for w in sweep if w != lo}
        print("preparation: " + ", ".join(f"{w} worker(s) {prep[w]['wall_s']:.1f} s "
                                          f"({results['prep'][str(w)]['worker_cpu_s']:.1f} s CPU in workers, "
                                          f"{results['prep'][str(w)]['jobs_in_flight']:.2f} jobs in flight)"
                                          for w in sweep) + "; speed-up "
              + ", ".join(f"{w} vs {lo}: {v:.2f}x" for w, v in
                          ((k.split('_')[0], x) for k, x in results['prep_speedup'].items())))
    if args.model_latency_ms > 0:
        model_s = args.model_latency_ms / 1000.0 * n_req
        # Every clip is needed within the first concept's requests (the others reuse them), so no pipeline
        # can beat max(prep, first concept's model time) + the other concepts' model time.
        bound = max(prep_top, model_s / args.concepts) + model_s * (args.concepts - 1) / args.concepts
        results["overlap"] = {"wall_s": p1["wall_s"], "model_s": model_s, "prep_s": prep_top,
                              "sum_s": model_s + prep_top, "max_s": max(model_s, prep_top),
                              "first_concept_bound_s": bound,
                              "wall_over_max": p1["wall_s"] / max(model_s, prep_top),
                              "waited_s": p1["waited_s"], "workers": top,
                              "latency_ms": args.model_latency_ms}
        o = results["overlap"]
        print(f"overlap ({top} workers, model {args.model_latency_ms:g} ms/request): first pass {o['wall_s']:.1f} s; "
              f"model {o['model_s']:.1f} s, preparation {o['prep_s']:.1f} s; sum {o['sum_s']:.1f} s, max "
              f"{o['max_s']:.1f} s; wall / max = {o['wall_over_max']:.3f}; the model waited {o['waited_s']:.1f} s; "
              f"bound (all clips needed by the first concept's requests) {o['first_concept_bound_s']:.1f} s")
        p2 = min(cold["passes"][1:], key=lambda p: p["wall_s"])
        print(f"warm: {p2['wall_s'] / n_req * 1e6:.0f} us/request in the same process, "
              f"{warm['wall_s'] / n_req * 1e6:.0f} us/request in a new process")
    ig = results["integrity"]
    print(f"integrity: {ig['digest']} of {ig['clips']} clips, {ig['ms_per_clip']:.1f} ms per clip "
          f"({ig['mb_per_s']:.0f} MB/s), paid once per clip and process")
    results["cache_over_source"] = results["cache_bytes"] / source_bytes
    results["cache_over_source_at_release_proportions"] = (results["cache_bytes"] / n_pairs * FULL_PAIRS
                                                           / (source_bytes / n_videos * FULL_VIDEOS))
    print(f"cache: {results['cache_bytes'] / 1e6:.0f} MB for {n_pairs} pairs ({results['cache_bytes'] / n_pairs / 1e6:.2f} "
          f"MB per pair, sidecar included); source videos {source_bytes / 1e6:.0f} MB; cache / source = "
          f"{results['cache_over_source']:.2f} ({results['cache_over_source_at_release_proportions']:.2f} at the "
          f"release's {FULL_PAIRS} pairs per {FULL_VIDEOS} videos)")
    if "cache_options" in results:
        print()
        print(f"{'cache option':72s} {'MB/pair':>8s} {'x source':>8s} {'max err':>7s} {'PSNR dB':>8s} {'enc s':>6s} "
              f"{'read s':>6s}  readers")
        per_video = source_bytes / n_videos
        for row in results["cache_options"]:
            row["cache_over_source"] = row["bytes_per_pair"] * FULL_PAIRS / (FULL_VIDEOS * per_video)
            psnr = "inf" if row["min_psnr_db"] == float("inf") else f"{row['min_psnr_db']:.1f}"
            print(f"{row['option']:72s} {row['bytes_per_pair'] / 1e6:8.2f} {row['cache_over_source']:8.2f} "
                  f"{row['max_abs_err']:7d} {psnr:>8s} {row['encode_s']:6.2f} {row['read_s']:6.2f}  "
                  f"{','.join(row['readers'])}")
            if row["min_psnr_db"] == float("inf"):
                row["min_psnr_db"] = None  # JSON has no infinity
        print(f"(x source: the option's bytes for {FULL_PAIRS} pairs over {FULL_VIDEOS} source videos of "
              f"{per_video / 1e6:.2f} MB, this run's mean: the release's proportions)")
    print(f"\nload average at end: {os.getloadavg()[0]:.2f} (column 'load': 1-min load average when the run started); "
          f"total {time.perf_counter() - t_total:.0f} s")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    if not args.keep_cache:
        shutil.rmtree(cache, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
