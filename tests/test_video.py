"""Tests of the frame pipeline (convis_tasks.video.decode).

Test videos are made here, in tmp_path, mostly with an encoder independent of ``write_clip``
(PyAV's MPEG-4 Part 2 encoder): frame k is a solid, known colour, so which frame was sampled can be
read off the pixels.  Expected values are worked out by hand in the comments.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import sys
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from convis_tasks.video import cache as C
from convis_tasks.video import decode as V
from convis_tasks.video import encode as E
from convis_tasks.video.errors import CacheEntryRebuilt
from convis_tasks.video.cache import PairClipCache
from convis_tasks.video.decode import VideoDecodeError, count_frames, read_frames, sample_indices
from convis_tasks.video.encode import concat_pair_frames, write_clip

# Ten colours far apart from each other (min pairwise L-inf distance 127).
PALETTE = np.array(
    [
        (255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0), (255, 0, 255),
        (0, 255, 255), (128, 128, 128), (255, 128, 0), (0, 0, 0), (255, 255, 255),
    ],
    dtype=np.uint8,
)
TOL = 12  # codec noise allowed on a solid colour (MPEG-4 / 4:2:0); colours differ by >= 127

BACKENDS = ["pyav"]
try:  # decord is an optional extra
    import decord  # noqa: F401

    HAVE_DECORD = True
    BACKENDS.append("decord")
except ImportError:  # pragma: no cover - depends on the environment
    HAVE_DECORD = False

needs_decord = pytest.mark.skipif(not HAVE_DECORD, reason="decord not installed")


def solid_frames(colours: np.ndarray, h: int = 32, w: int = 32) -> np.ndarray:
    out = np.empty((len(colours), h, w, 3), dtype=np.uint8)
    out[:] = colours[:, None, None, :]
    return out


def write_mpeg4(frames: np.ndarray, path: Path, fps: int = 10) -> Path:
    """An independent writer (MPEG-4 Part 2, high quality), not write_clip."""
    with av.open(str(path), "w", format="mp4") as c:
        s = c.add_stream("mpeg4", rate=Fraction(fps))
        s.width, s.height = frames.shape[2], frames.shape[1]
        s.pix_fmt = "yuv420p"
        s.options = {"qscale": "2"}
        for i, f in enumerate(frames):
            vf = av.VideoFrame.from_ndarray(f, format="rgb24")
            vf.pts = i
            c.mux(s.encode(vf))
        c.mux(s.encode(None))
    return path


def centre_colours(frames: np.ndarray) -> np.ndarray:
    """Mean colour of the central 8x8 block of each frame."""
    h, w = frames.shape[1:3]
    block = frames[:, h // 2 - 4: h // 2 + 4, w // 2 - 4: w // 2 + 4].astype(float)
    return block.mean(axis=(1, 2))


def assert_colours(frames: np.ndarray, expected_idx: list[int], tol: float = TOL) -> None:
    got = centre_colours(frames)
    want = PALETTE[expected_idx].astype(float)
    assert got.shape == want.shape
    err = np.abs(got - want).max(axis=1)
    assert (err <= tol).all(), f"colour error per frame {err} (expected frames {expected_idx})"


@pytest.fixture
def ten_frame_video(tmp_path: Path) -> Path:
    return write_mpeg4(solid_frames(PALETTE), tmp_path / "ten.mp4")


# ------------------------------------------------------------------------------------------
# sample_indices
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "total, n, expected",
    [
        (10, 4, [0, 3, 6, 9]),  # linspace 0, 3, 6, 9 exactly
        (16, 8, [0, 2, 4, 6, 8, 10, 12, 15]),  # 0, 2.14, 4.29, 6.43, 8.57, 10.71, 12.86, 15 floored
        (100, 3, [0, 49, 99]),  # 0, 49.5, 99 floored
        (7, 1, [0]),  # linspace with one point is the start
        (16, 16, list(range(16))),  # identity
        (3, 5, [0, 1, 2, 2, 2]),  # last-frame padding
        (1, 3, [0, 0, 0]),
    ],
)
def test_sample_indices_protocol(total, n, expected):
    assert sample_indices(total, n) == expected
    assert all(type(i) is int for i in sample_indices(total, n))


def test_sample_indices_matches_lmms_eval_formula_when_enough_frames():
    for total in (8, 9, 31, 250, 1001):
        for n in (1, 4, 8, 16, 32):
            if total >= n:
                assert sample_indices(total, n) == np.linspace(0, total - 1, n, dtype=int).tolist()


@pytest.mark.parametrize("total, n", [(0, 4), (-1, 4), (10, 0), (10, -2)])
def test_sample_indices_rejects_nonpositive(total, n):
    with pytest.raises(ValueError):
        sample_indices(total, n)


# ------------------------------------------------------------------------------------------
# read_frames
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS + ["auto"])
def test_read_frames_picks_protocol_frames(ten_frame_video, backend):
    frames = read_frames(ten_frame_video, 4, backend=backend)
    assert frames.shape == (4, 32, 32, 3) and frames.dtype == np.uint8
    assert_colours(frames, [0, 3, 6, 9])

    frames = read_frames(ten_frame_video, 3, backend=backend)  # 0, 4.5, 9 -> 0, 4, 9
    assert_colours(frames, [0, 4, 9])


@pytest.mark.parametrize("backend", BACKENDS)
def test_read_frames_pads_short_video_with_last_frame(tmp_path, backend):
    path = write_mpeg4(solid_frames(PALETTE[:3]), tmp_path / "three.mp4")
    frames = read_frames(path, 8, backend=backend)
    assert frames.shape == (8, 32, 32, 3)
    assert_colours(frames, [0, 1, 2, 2, 2, 2, 2, 2])


@needs_decord
def test_backends_agree(ten_frame_video):
    a = read_frames(ten_frame_video, 5, backend="decord").astype(int)
    b = read_frames(ten_frame_video, 5, backend="pyav").astype(int)
    assert np.abs(a - b).max() <= 2


def test_read_frames_falls_back_to_pyav_without_decord(ten_frame_video, monkeypatch):
    monkeypatch.setitem(sys.modules, "decord", None)  # makes `import decord` raise ImportError
    frames = read_frames(ten_frame_video, 4)
    assert_colours(frames, [0, 3, 6, 9])


@needs_decord
def test_read_frames_falls_back_when_decord_cannot_decode(tmp_path):
    # decord 0.6 fails on a few frame widths (e.g. 48); the auto backend must still deliver.
    path = write_mpeg4(solid_frames(PALETTE[:4], h=32, w=48), tmp_path / "w48.mp4")
    frames = read_frames(path, 2)  # linspace(0, 3, 2) -> 0, 3
    assert frames.shape == (2, 32, 48, 3)
    assert_colours(frames, [0, 3])


def test_missing_file_raises_file_not_found_naming_path(tmp_path):
    missing = tmp_path / "nope" / "missing.mp4"
    with pytest.raises(FileNotFoundError) as info:
        read_frames(missing, 4)
    assert str(missing) in str(info.value)


def test_corrupt_file_raises_decode_error_naming_path(tmp_path):
    bad = tmp_path / "random.mp4"
    bad.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    with pytest.raises(VideoDecodeError) as info:
        read_frames(bad, 4)
    assert str(bad) in str(info.value)
    assert info.value.path == str(bad)


def test_empty_file_raises_decode_error(tmp_path):
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    with pytest.raises(VideoDecodeError, match="empty.mp4"):
        read_frames(empty, 4)


def test_file_without_video_stream_raises_decode_error(tmp_path):
    path = tmp_path / "audio_only.mp4"
    with av.open(str(path), "w", format="mp4") as c:
        s = c.add_stream("aac", rate=8000)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), dtype=np.float32), format="fltp",
                                           layout="mono")
        frame.sample_rate = 8000
        frame.pts = 0
        c.mux(s.encode(frame))
        c.mux(s.encode(None))
    with pytest.raises(VideoDecodeError, match="audio_only.mp4"):
        read_frames(path, 4)


def test_decode_error_survives_pickling():
    import pickle

    err = VideoDecodeError("/x/a.mp4", "broken", pair_id=3, video1="/x/a.mp4", video2="/x/b.mp4")
    back = pickle.loads(pickle.dumps(err))
    assert str(back) == str(err) and back.pair_id == 3 and back.path == "/x/a.mp4"


# ------------------------------------------------------------------------------------------
# concat_pair_frames
# ------------------------------------------------------------------------------------------


def test_concat_order_video1_first():
    f1 = solid_frames(PALETTE[[0, 1, 2]])
    f2 = solid_frames(PALETTE[[7, 8, 9]])
    out = concat_pair_frames(f1, f2)
    assert out.shape == (6, 32, 32, 3)
    assert np.array_equal(out[:3], f1) and np.array_equal(out[3:], f2)


def test_concat_resizes_video2_to_video1_size_and_keeps_colours():
    f1 = solid_frames(PALETTE[[0, 1]], h=32, w=64)
    f2 = solid_frames(PALETTE[[2, 3]], h=50, w=30)
    out = concat_pair_frames(f1, f2)
    assert out.shape == (4, 32, 64, 3)
    # bicubic resize of a solid frame stays that colour
    assert np.array_equal(out[2], np.broadcast_to(PALETTE[2], (32, 64, 3)))
    assert np.array_equal(out[3], np.broadcast_to(PALETTE[3], (32, 64, 3)))


def test_concat_rounds_odd_size_down_to_even():
    f1 = np.random.default_rng(1).integers(0, 256, (2, 31, 33, 3), dtype=np.uint8)
    f2 = solid_frames(PALETTE[[4, 5]], h=20, w=20)
    out = concat_pair_frames(f1, f2)
    assert out.shape == (4, 30, 32, 3)
    # video 1 only loses its last odd row/column: its pixels are kept as they are
    assert np.array_equal(out[:2], f1[:, :30, :32])


def test_concat_explicit_size_is_width_height():
    f1 = solid_frames(PALETTE[[0]], h=32, w=32)
    f2 = solid_frames(PALETTE[[1]], h=64, w=48)
    out = concat_pair_frames(f1, f2, size=(25, 17))  # (W, H) -> rounded down to 24 x 16
    assert out.shape == (2, 16, 24, 3)
    assert np.array_equal(out[1], np.broadcast_to(PALETTE[1], (16, 24, 3)))


def test_concat_rejects_bad_input():
    with pytest.raises(ValueError):
        concat_pair_frames(np.zeros((2, 8, 8), np.uint8), np.zeros((2, 8, 8, 3), np.uint8))
    with pytest.raises(ValueError):
        concat_pair_frames(np.zeros((2, 8, 8, 3), np.float32), np.zeros((2, 8, 8, 3), np.uint8))


# ------------------------------------------------------------------------------------------
# write_clip
# ------------------------------------------------------------------------------------------


def pyav_frame_count(path: Path) -> int:
    with av.open(str(path)) as c:
        return sum(1 for _ in c.decode(video=0))


@pytest.mark.parametrize("backend", BACKENDS)
def test_write_clip_reads_back_all_frames_in_order(tmp_path, backend):
    f1 = solid_frames(PALETTE[[0, 1, 2, 3]])
    f2 = solid_frames(PALETTE[[6, 7, 8, 9]])
    pair = concat_pair_frames(f1, f2)
    path = tmp_path / "clip.mp4"
    write_clip(pair, path, fps=1)
    assert pyav_frame_count(path) == 8
    if HAVE_DECORD:
        assert len(decord.VideoReader(str(path), ctx=decord.cpu(0))) == 8
    back = read_frames(path, 8, backend=backend)
    assert_colours(back, [0, 1, 2, 3, 6, 7, 8, 9], tol=3)  # 4:4:4 lossless: only YUV rounding


def test_write_clip_is_near_lossless_on_texture(tmp_path):
    frames = np.random.default_rng(7).integers(0, 256, (5, 32, 64, 3), dtype=np.uint8)
    path = tmp_path / "noise.mp4"
    write_clip(frames, path, fps=8)
    back = read_frames(path, 5)
    err = np.abs(back.astype(int) - frames.astype(int))
    assert err.max() <= 4 and err.mean() < 1.0


@needs_decord
def test_write_clip_sets_fps(tmp_path):
    path = tmp_path / "fps.mp4"
    write_clip(solid_frames(PALETTE[:4]), path, fps=8)
    vr = decord.VideoReader(str(path), ctx=decord.cpu(0))
    assert len(vr) == 4 and vr.get_avg_fps() == pytest.approx(8.0)


def test_write_clip_is_deterministic(tmp_path):
    frames = np.random.default_rng(3).integers(0, 256, (6, 32, 32, 3), dtype=np.uint8)
    write_clip(frames, tmp_path / "a.mp4")
    write_clip(frames, tmp_path / "b.mp4")
    assert (tmp_path / "a.mp4").read_bytes() == (tmp_path / "b.mp4").read_bytes()


def test_write_clip_rejects_empty(tmp_path):
    with pytest.raises(ValueError):
        write_clip(np.zeros((0, 8, 8, 3), np.uint8), tmp_path / "x.mp4")


# ------------------------------------------------------------------------------------------
# PairClipCache
# ------------------------------------------------------------------------------------------


@pytest.fixture
def pair_videos(tmp_path: Path) -> tuple[Path, Path, Path]:
    a = write_mpeg4(solid_frames(PALETTE), tmp_path / "a.mp4")  # frame k = colour k
    b = write_mpeg4(solid_frames(PALETTE[::-1].copy(), h=48, w=64), tmp_path / "b.mp4")  # frame k = 9-k
    c = write_mpeg4(solid_frames(PALETTE[:3]), tmp_path / "c.mp4")  # 3 frames
    return a, b, c


@pytest.fixture
def counted_reads(monkeypatch):
    calls: list[tuple[str, int]] = []
    real = V.read_frames

    def counting(path, n, **kw):
        calls.append((str(path), n))
        return real(path, n, **kw)

    monkeypatch.setattr(V, "read_frames", counting)
    return calls


def test_cache_builds_clip_with_expected_frames(tmp_path, pair_videos):
    a, b, _ = pair_videos
    cache = PairClipCache(tmp_path / "cache")
    clip = Path(cache.get(a, b, n_frames=4, pair_id="p1"))
    assert clip.parent == tmp_path / "cache" and clip.suffix == ".mp4"
    assert count_frames(clip) == 8 and pyav_frame_count(clip) == 8
    frames = read_frames(clip, 8)
    assert frames.shape == (8, 32, 32, 3)  # video 2 (48x64) resized to video 1's 32x32
    # video 1 frames 0,3,6,9 then video 2 frames 0,3,6,9 = colours 9,6,3,0
    assert_colours(frames, [0, 3, 6, 9, 9, 6, 3, 0])
    meta = json.loads(clip.with_suffix(".json").read_text())
    assert meta["frames"] == 8 and meta["bytes"] == clip.stat().st_size


def test_cache_hit_does_not_decode_again(tmp_path, pair_videos, counted_reads):
    a, b, _ = pair_videos
    cache = PairClipCache(tmp_path / "cache")
    first = cache.get(a, b, n_frames=4)
    assert len(counted_reads) == 2
    second = cache.get(a, b, n_frames=4)
    assert second == first
    assert len(counted_reads) == 2  # nothing decoded on a hit
    # a fresh cache object (new process, empty memo) also hits the disk entry
    third = PairClipCache(tmp_path / "cache").get(str(a), str(b), n_frames=4)
    assert third == first and len(counted_reads) == 2
    assert cache.stats == {"hits": 1, "builds": 1, "decodes": 2}


def test_cache_key_depends_on_settings_and_mtime(tmp_path, pair_videos):
    a, b, _ = pair_videos
    cache = PairClipCache(tmp_path / "cache")
    k = cache.key(a, b, 4)
    assert cache.key(a, b, 4) == k
    assert cache.key(b, a, 4) != k
    assert cache.key(a, b, 8) != k
    assert cache.key(a, b, 4, size=(32, 32)) != k
    st = a.stat()
    os.utime(a, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    assert cache.key(a, b, 4) != k


def test_cache_respects_size(tmp_path, pair_videos):
    a, b, _ = pair_videos
    clip = PairClipCache(tmp_path / "cache").get(a, b, n_frames=2, size=(16, 12))
    assert read_frames(clip, 4).shape == (4, 12, 16, 3)


def test_truncated_entry_without_sidecar_is_rebuilt(tmp_path, pair_videos, counted_reads):
    a, b, _ = pair_videos
    cache = PairClipCache(tmp_path / "cache")
    clip = Path(cache.get(a, b, n_frames=4))
    good = clip.read_bytes()
    clip.write_bytes(good[: len(good) // 2])
    clip.with_suffix(".json").unlink()
    again = Path(cache.get(a, b, n_frames=4))
    assert again == clip and clip.read_bytes() == good
    assert len(counted_reads) == 4  # decoded again for the rebuild
    assert count_frames(clip) == 8


def test_truncated_entry_with_stale_sidecar_is_rebuilt(tmp_path, pair_videos):
    a, b, _ = pair_videos
    cache = PairClipCache(tmp_path / "cache")
    clip = Path(cache.get(a, b, n_frames=4))
    good = clip.read_bytes()
    clip.write_bytes(good[:100])  # sidecar still says the full size
    with pytest.warns(CacheEntryRebuilt, match="bytes"):
        assert Path(cache.get(a, b, n_frames=4)).read_bytes() == good
    assert cache.stats["builds"] == 2


def test_garbage_sidecar_is_rebuilt(tmp_path, pair_videos):
    a, b, _ = pair_videos
    cache = PairClipCache(tmp_path / "cache")
    clip = Path(cache.get(a, b, n_frames=4))
    clip.with_suffix(".json").write_text("{not json")
    with pytest.warns(CacheEntryRebuilt, match="sidecar"):
        cache.get(a, b, n_frames=4)
    assert cache.stats["builds"] == 2
    assert json.loads(clip.with_suffix(".json").read_text())["frames"] == 8


def test_cache_pads_short_video(tmp_path, pair_videos):
    a, _, c = pair_videos
    clip = PairClipCache(tmp_path / "cache").get(a, c, n_frames=5)
    # video 1: linspace(0, 9, 5) = 0, 2.25, 4.5, 6.75, 9 -> 0, 2, 4, 6, 9; video 2 (3 frames): 0, 1, 2, 2, 2
    assert_colours(read_frames(clip, 10), [0, 2, 4, 6, 9, 0, 1, 2, 2, 2])


def test_cache_errors_name_pair_and_path(tmp_path, pair_videos):
    a, _, _ = pair_videos
    cache = PairClipCache(tmp_path / "cache")
    missing = tmp_path / "missing.mp4"
    with pytest.raises(FileNotFoundError) as info:
        cache.get(a, missing, n_frames=4, pair_id="pair-17")
    text = str(info.value)
    assert str(missing) in text and str(a) in text and "pair-17" in text

    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"\x00\x01garbage" * 300)
    with pytest.raises(VideoDecodeError) as info:
        cache.get(bad, a, n_frames=4, pair_id=42)
    err = info.value
    assert err.path == str(bad) and err.pair_id == 42
    assert str(bad) in str(err) and str(a) in str(err) and "pair 42" in str(err)
    leftovers = list((tmp_path / "cache").glob(".*")) if (tmp_path / "cache").exists() else []
    assert leftovers == []


def test_default_cache_dir_from_env(tmp_path, monkeypatch):
    monkeypatch.setenv("CONVIS_CACHE_DIR", str(tmp_path / "envcache"))
    assert PairClipCache().cache_dir == tmp_path / "envcache"
    monkeypatch.delenv("CONVIS_CACHE_DIR")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert PairClipCache().cache_dir == tmp_path / "home" / ".cache" / "convis" / "clips"


def _concurrent_worker(cache_dir: str, v1: str, v2: str, barrier, out_file: str) -> None:
    barrier.wait(timeout=60)
    path = PairClipCache(cache_dir).get(v1, v2, n_frames=4)
    Path(out_file).write_text(path)


def test_concurrent_builds_from_processes(tmp_path, pair_videos):
    a, b, _ = pair_videos
    cache_dir = tmp_path / "cache"
    ctx = multiprocessing.get_context("spawn")
    n = 3
    barrier = ctx.Barrier(n)
    procs = [
        ctx.Process(target=_concurrent_worker,
                    args=(str(cache_dir), str(a), str(b), barrier, str(tmp_path / f"out{i}.txt")))
        for i in range(n)
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
    assert [p.exitcode for p in procs] == [0] * n
    paths = {(tmp_path / f"out{i}.txt").read_text() for i in range(n)}
    assert len(paths) == 1
    clip = Path(paths.pop())
    assert_colours(read_frames(clip, 8), [0, 3, 6, 9, 9, 6, 3, 0], tol=TOL)
    assert count_frames(clip) == 8
    assert sorted(p.name for p in cache_dir.iterdir()) == sorted([clip.name, clip.with_suffix(".json").name])
    assert PairClipCache(cache_dir).is_valid(clip.stem, 4)


# ------------------------------------------------------------------------------------------
# exact frames, cheap hits, integrity, truncated inputs
# ------------------------------------------------------------------------------------------


def write_h264_gop(path: Path, n_frames: int = 45, w: int = 96, h: int = 64) -> Path:
    """A lossy web-like H.264 file (crf 23, 3 B-frames, keyframe every 12 frames) with moving texture, so
    that frames depend on references: a wrong seek or a skipped reference frame would change pixels."""
    rng = np.random.default_rng(11)
    texture = rng.integers(0, 256, (h + 64, w + 64, 3), dtype=np.uint8)
    with av.open(str(path), "w", format="mp4") as c:
        s = c.add_stream("libx264", rate=Fraction(25))
        s.width, s.height, s.pix_fmt = w, h, "yuv420p"
        s.options = {"crf": "23", "preset": "veryfast", "bframes": "3", "g": "12", "threads": "1"}
        for i in range(n_frames):
            f = texture[i % 64: i % 64 + h, (2 * i) % 64: (2 * i) % 64 + w].copy()
            f[10:20, i % w: i % w + 8] = PALETTE[i % 10]
            vf = av.VideoFrame.from_ndarray(f, format="rgb24")
            vf.pts = i
            c.mux(s.encode(vf))
        c.mux(s.encode(None))
    return path


def reference_decode(path: Path, backend: str) -> np.ndarray:
    """Every frame, decoded sequentially from the first packet, no seeking."""
    if backend == "pyav":
        with av.open(str(path)) as c:
            return np.stack([f.to_ndarray(format="rgb24") for f in c.decode(video=0)])
    vr = decord.VideoReader(str(path), ctx=decord.cpu(0))
    return np.stack([vr.next().asnumpy() for _ in range(len(vr))])


@pytest.mark.parametrize("backend", BACKENDS)
def test_read_frames_equals_full_sequential_decode(tmp_path, backend):
    path = write_h264_gop(tmp_path / "gop.mp4")
    ref = reference_decode(path, backend)
    assert len(ref) == 45
    for n in (1, 3, 8, 16, 45, 60):  # 60 > 45: last-frame padding
        got = read_frames(path, n, backend=backend)
        want = ref[sample_indices(len(ref), n)]
        assert got.dtype == np.uint8 and np.array_equal(got, want), n


def test_fast_validity_check_still_catches_replaced_files(tmp_path, pair_videos):
    a, b, _ = pair_videos
    cache = PairClipCache(tmp_path / "cache")
    clip = Path(cache.get(a, b, n_frames=4))
    side = clip.with_suffix(".json")
    assert cache.get(a, b, n_frames=4) == str(clip) and cache.stats["hits"] == 1  # now validated by stat
    meta = json.loads(side.read_text())
    meta["frames"] = 99
    tmp = side.with_name("x.json")
    tmp.write_text(json.dumps(meta, sort_keys=True, indent=1))
    os.replace(tmp, side)  # another sidecar, same clip
    assert not cache.is_valid(clip.stem, 4)
    with pytest.warns(CacheEntryRebuilt, match="99"):
        assert cache.get(a, b, n_frames=4) == str(clip) and cache.stats["builds"] == 2


def test_encoder_presets_decode_to_identical_frames(tmp_path, monkeypatch):
    # qp=0 is lossless in YUV: the preset changes bytes and speed, never the frames a model sees
    frames = np.random.default_rng(9).integers(0, 256, (4, 32, 48, 3), dtype=np.uint8)
    write_clip(frames, tmp_path / "now.mp4")
    monkeypatch.setitem(E.ENCODER_OPTIONS, "preset", "veryfast")
    write_clip(frames, tmp_path / "before.mp4")
    assert np.array_equal(read_frames(tmp_path / "now.mp4", 4), read_frames(tmp_path / "before.mp4", 4))


# ------------------------------------------------------------------------------------------
# integrity of cache entries (issue 11, class 1): a content digest in the sidecar
# ------------------------------------------------------------------------------------------


def _flip_in_place(path: Path) -> None:
    """Change bytes in the middle of a file, keeping its size and restoring its mtime."""
    st = path.stat()
    data = bytearray(path.read_bytes())
    mid = len(data) // 2
    data[mid: mid + 16] = bytes(255 - x for x in data[mid: mid + 16])
    with open(path, "r+b") as fh:  # in place: same inode
        fh.write(data)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert path.stat().st_size == st.st_size and path.stat().st_mtime_ns == st.st_mtime_ns


@pytest.mark.parametrize("same_process", [True, False])
def test_in_place_edit_keeping_size_is_detected_and_rebuilt(tmp_path, pair_videos, monkeypatch, same_process):
    a, b, _ = pair_videos
    cache = PairClipCache(tmp_path / "cache")
    clip = Path(cache.get(a, b, n_frames=4, pair_id="p-9"))
    assert cache.get(a, b, n_frames=4) == str(clip)  # validated once: later hits compare stat
    good = clip.read_bytes()
    assert json.loads(clip.with_suffix(".json").read_text())["digest"] == "sha256:" + __import__(
        "hashlib").sha256(good).hexdigest()
    _flip_in_place(clip)
    if not same_process:
        monkeypatch.setattr(C, "_CHECKED", {})  # a new process has checked nothing yet
    with pytest.warns(CacheEntryRebuilt) as record:
        again = PairClipCache(tmp_path / "cache").get(a, b, n_frames=4, pair_id="p-9")
    message = str(record[0].message)
    assert "digest" in message and str(clip) in message and "p-9" in message
    assert again == str(clip) and clip.read_bytes() == good  # identical to a fresh build
    fresh = PairClipCache(tmp_path / "fresh").get(a, b, n_frames=4)
    assert Path(fresh).read_bytes() == good


def test_video_path_none_is_a_missing_file_naming_the_pair(tmp_path, pair_videos):
    a, _, _ = pair_videos
    with pytest.raises(FileNotFoundError, match=r"missing.*pair p-3"):
        PairClipCache(tmp_path / "cache").get(a, None, n_frames=4, pair_id="p-3")


# ------------------------------------------------------------------------------------------
# decoded frame counts (issue 11, class 3): a short decode is an error, never a resample
# ------------------------------------------------------------------------------------------


def write_container(path: Path, fmt: str, n_frames: int = 45) -> Path:
    """H.264 in Matroska or VP9 in WebM: these containers state a duration, not a frame count."""
    if fmt == "webm":
        return write_stream(path, fmt, "libvpx-vp9", n_frames,
                            {"crf": "10", "b": "0", "g": "12", "threads": "1", "cpu-used": "8"})
    return write_stream(path, fmt, "libx264", n_frames, {"crf": "18", "g": "12", "bframes": "2", "threads": "1"})


def write_stream(path: Path, fmt: str, codec: str, n_frames: int = 60, options: dict | None = None) -> Path:
    """``codec`` (with ``options``) in container ``fmt`` at 25 fps, 64x48, frame k = colour k % 10."""
    with av.open(str(path), "w", format=fmt) as c:
        s = c.add_stream(codec, rate=Fraction(25))
        if options:
            s.options = options
        s.width, s.height, s.pix_fmt = 64, 48, "yuv420p"
        for i in range(n_frames):
            vf = av.VideoFrame.from_ndarray(solid_frames(PALETTE[[i % 10]], h=48, w=64)[0], format="rgb24")
            vf.pts = i
            c.mux(s.encode(vf))
        c.mux(s.encode(None))
    return path


@pytest.mark.parametrize("fmt, ext", [("matroska", "mkv"), ("webm", "webm")])
@pytest.mark.parametrize("backend", BACKENDS + ["auto"])
def test_truncated_video_is_an_error_naming_the_file(tmp_path, fmt, ext, backend):
    full = write_container(tmp_path / f"full.{ext}", fmt)
    cut = tmp_path / f"cut.{ext}"
    data = full.read_bytes()
    cut.write_bytes(data[: len(data) // 2])  # the header still promises 45 frames (1.8 s at 25 fps)
    assert V.promised_frames(cut)[0] in (44, 45, 46)
    with pytest.raises(VideoDecodeError, match="truncated") as info:
        read_frames(cut, 8, backend=backend)
    assert info.value.path == str(cut) and str(cut) in str(info.value)


@pytest.mark.parametrize("fmt, ext", [("matroska", "mkv"), ("webm", "webm")])
@pytest.mark.parametrize("backend", BACKENDS)
def test_complete_video_without_frame_count_reads_its_protocol_frames(tmp_path, fmt, ext, backend):
    path = write_container(tmp_path / f"full.{ext}", fmt)
    # 45 frames, colour k % 10: linspace(0, 44, 4) = 0, 14.67, 29.33, 44 -> 0, 14, 29, 44 -> colours 0, 4, 9, 4
    assert_colours(read_frames(path, 4, backend=backend), [0, 4, 9, 4])


STREAMS = [("mpegts", "ts", "libx264"), ("mpegts", "ts", "mpeg2video"), ("mpeg", "mpg", "mpeg2video")]


@pytest.mark.parametrize("fmt, ext, codec", STREAMS)
@pytest.mark.parametrize("backend", ["auto", "pyav"])
def test_streams_without_a_frame_index_read_their_protocol_frames(tmp_path, fmt, ext, codec, backend):
    # decord returned other frames from these files without an error (colours 0 0 0 0 1 1 for a .mpg);
    # PyAV's duration estimate of the .mpg was 105 frames for 120. 60 frames: linspace(0, 59, 6) floored is
    # 0, 11, 23, 35, 47, 59 -> colours 0, 1, 3, 5, 7, 9
    path = write_stream(tmp_path / f"v.{ext}", fmt, codec)
    assert V.frame_total(path) == (60, False)
    assert_colours(read_frames(path, 6, backend=backend), [0, 1, 3, 5, 7, 9])


@needs_decord
@pytest.mark.parametrize("fmt, ext, codec", STREAMS[::2])
def test_decord_is_refused_for_streams_it_misreads(tmp_path, fmt, ext, codec):
    path = write_stream(tmp_path / f"v.{ext}", fmt, codec)
    with pytest.raises(VideoDecodeError, match="use the pyav backend") as info:
        read_frames(path, 6, backend="decord")
    assert info.value.path == str(path)


def test_two_videos_input_refuses_a_stream_the_models_reader_misreads(tmp_path):
    from convis_tasks import hooks

    good = write_container(tmp_path / "a.mkv", "matroska")
    ts = write_stream(tmp_path / "b.ts", "mpegts", "libx264")
    doc = {"pair_id": "p-7", "video1_path": str(good), "video2_path": str(good)}
    assert hooks.doc_to_visual(doc, {"input": "two_videos"}) == [str(good), str(good)]
    with pytest.raises(VideoDecodeError, match=r"mpegts file.*remux.*pair p-7") as info:
        hooks.doc_to_visual(dict(doc, video2_path=str(ts)), {"input": "two_videos"})
    assert info.value.path == str(ts)
    with pytest.raises(FileNotFoundError, match="pair p-7"):
        hooks.doc_to_visual(dict(doc, video2_path=str(tmp_path / "gone.mp4")), {"input": "two_videos"})


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_decode_with_more_frames_than_counted_is_an_error(tmp_path, monkeypatch, backend):
    path = write_container(tmp_path / "v.mkv", "matroska")  # 45 frames
    monkeypatch.setattr(V, "frame_total", lambda p: (44, False))  # a count that misses the last frame
    with pytest.raises(VideoDecodeError, match="44 frame(s| packets)|holds 44") as info:
        read_frames(path, 4, backend=backend)
    assert info.value.path == str(path)


def test_truncated_source_fails_the_pair_build_naming_pair_and_file(tmp_path, pair_videos):
    a, _, _ = pair_videos
    full = write_container(tmp_path / "full.mkv", "matroska")
    cut = tmp_path / "cut.mkv"
    cut.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    with pytest.raises(VideoDecodeError, match="truncated") as info:
        PairClipCache(tmp_path / "cache").get(a, cut, n_frames=4, pair_id="p-5")
    assert info.value.path == str(cut) and "pair p-5" in str(info.value)


# ------------------------------------------------------------------------------------------
# native clips: a pair of videos in one YUV format keeps the sources' own planes (exact)
# ------------------------------------------------------------------------------------------


def write_tagged_h264(path: Path, pix_fmt: str, colour: tuple, seed: int, n_frames: int = 30) -> Path:
    """Lossy H.264 (B-frames, GOP 12) with moving texture, in ``pix_fmt`` with colour tags ``colour``
    (colorspace, range, primaries, trc)."""
    rng = np.random.default_rng(seed)
    texture = rng.integers(0, 256, (112, 160, 3), dtype=np.uint8)
    with av.open(str(path), "w", format="mp4") as c:
        s = c.add_stream("libx264", rate=Fraction(25))
        s.width, s.height, s.pix_fmt = 96, 48, pix_fmt
        cc = s.codec_context
        cc.colorspace, cc.color_range, cc.color_primaries, cc.color_trc = colour
        s.options = {"crf": "23", "bframes": "3", "g": "12", "threads": "1"}
        for i in range(n_frames):
            vf = av.VideoFrame.from_ndarray(texture[i: i + 48, 2 * i: 2 * i + 96].copy(), format="rgb24")
            vf = vf.reformat(format=pix_fmt)
            vf.pts = i
            c.mux(s.encode(vf))
        c.mux(s.encode(None))
    return path


@pytest.mark.parametrize("pix_fmt, colour", [
    ("yuv420p", (2, 0, 2, 2)),  # untagged, limited range: the common web video
    ("yuv420p", (1, 1, 1, 1)),  # BT.709, limited range
    ("yuvj420p", (1, 2, 1, 1)),  # BT.709, full range (phones)
    ("yuv444p", (2, 0, 2, 2)),
])
def test_same_format_pair_clip_gives_every_reader_exactly_the_source_frames(tmp_path, pix_fmt, colour):
    v1 = write_tagged_h264(tmp_path / "a.mp4", pix_fmt, colour, 1)
    v2 = write_tagged_h264(tmp_path / "b.mp4", pix_fmt, colour, 2, n_frames=23)
    clip = Path(PairClipCache(tmp_path / "cache").get(v1, v2, n_frames=6))
    assert json.loads(clip.with_suffix(".json").read_text())["mode"] == f"native {pix_fmt}"
    for backend in BACKENDS:
        want = np.concatenate([read_frames(v1, 6, backend=backend), read_frames(v2, 6, backend=backend)])
        got = read_frames(clip, 12, backend=backend)
        assert np.array_equal(got, want), (backend, int(np.abs(got.astype(int) - want.astype(int)).max()))


def test_pairs_of_different_sizes_or_formats_are_written_from_rgb(tmp_path, pair_videos):
    a, b, _ = pair_videos  # 32x32 and 64x48
    clip = Path(PairClipCache(tmp_path / "cache").get(a, b, n_frames=4))
    assert json.loads(clip.with_suffix(".json").read_text())["mode"] == "rgb via yuv444p"
    v1 = write_tagged_h264(tmp_path / "c.mp4", "yuv420p", (2, 0, 2, 2), 1)
    v2 = write_tagged_h264(tmp_path / "d.mp4", "yuvj420p", (1, 2, 1, 1), 2)
    clip = Path(PairClipCache(tmp_path / "cache").get(v1, v2, n_frames=4))
    assert json.loads(clip.with_suffix(".json").read_text())["mode"] == "rgb via yuv444p"
    clip = Path(PairClipCache(tmp_path / "cache").get(v1, v1, n_frames=4, size=(48, 24)))  # another size asked
    assert json.loads(clip.with_suffix(".json").read_text())["mode"] == "rgb via yuv444p"


def _x264_settings(path: Path) -> dict[str, str]:
    """The settings x264 wrote into the clip's SEI ("x264 - core ... options: cabac=0 ref=8 ...")."""
    data = path.read_bytes()
    start = data.index(b"x264 - core")
    text = data[start: data.index(b"\x00", start)].decode("ascii").split(" options: ", 1)[1]
    return dict(item.split("=", 1) for item in text.split())


def test_clips_are_lossless_cavlc_single_threaded_without_b_frames(tmp_path):
    # CAVLC keeps every read of a clip as fast as ultrafast's (CABAC made reads 5-6x slower,
    # benchmarks/README.md); qp 0 is what makes the clip exact; threads=1 makes it deterministic.
    v1 = write_tagged_h264(tmp_path / "a.mp4", "yuv420p", (2, 0, 2, 2), 1)
    v2 = write_tagged_h264(tmp_path / "b.mp4", "yuv420p", (2, 0, 2, 2), 2)
    native = Path(PairClipCache(tmp_path / "cache").get(v1, v2, n_frames=4))
    rgb = tmp_path / "rgb.mp4"
    write_clip(np.random.default_rng(3).integers(0, 256, (4, 32, 48, 3), dtype=np.uint8), rgb)
    for clip in (native, rgb):
        got = _x264_settings(clip)
        assert (got["cabac"], got["rc"], got["qp"], got["threads"], got["bframes"]) == ("0", "cqp", "0", "1", "0"), clip


def test_native_clips_take_the_cache_formats_encoder_options(tmp_path):
    v1 = write_tagged_h264(tmp_path / "a.mp4", "yuv420p", (2, 0, 2, 2), 1)
    v2 = write_tagged_h264(tmp_path / "b.mp4", "yuv420p", (2, 0, 2, 2), 2)
    default = PairClipCache(tmp_path / "cache")
    cabac = dict(E.ENCODER_OPTIONS, preset="ultrafast", **{"x264-params": "cabac=1"})
    other = PairClipCache(tmp_path / "cache", fmt=E.ClipFormat(options=cabac))
    assert default.request(v1, v2, 4).key != other.request(v1, v2, 4).key  # the options are part of the key
    clip_default, clip_other = Path(default.get(v1, v2, n_frames=4)), Path(other.get(v1, v2, n_frames=4))
    assert json.loads(clip_other.with_suffix(".json").read_text())["mode"] == "native yuv420p"
    assert _x264_settings(clip_default)["cabac"] == "0" and _x264_settings(clip_other)["cabac"] == "1"
    for backend in BACKENDS:  # lossless either way: the options change the bytes, never the frames
        assert np.array_equal(read_frames(clip_default, 8, backend=backend),
                              read_frames(clip_other, 8, backend=backend))
    ffv1 = PairClipCache(tmp_path / "ffv1", fmt=E.ClipFormat(codec="ffv1", pix_fmt="bgr0", options={}, container="avi"))
    assert ffv1.native_format(ffv1.request(v1, v2, 4)) is None  # not x264 in mp4: written from RGB, in its own format


def test_native_read_refuses_a_truncated_video(tmp_path):
    full = write_container(tmp_path / "full.mkv", "matroska")
    cut = tmp_path / "cut.mkv"
    cut.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    with pytest.raises(VideoDecodeError, match="truncated") as info:
        V.read_native(cut, 8)
    assert info.value.path == str(cut)
