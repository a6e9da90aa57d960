"""Tests of the synthetic ConViS-style generator and of the bundled demo set."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from convis_tasks.video import synthetic as S
from convis_tasks.video.decode import count_frames, read_frames

DEMO_DIR = Path(__file__).resolve().parents[1] / "convis_tasks" / "demo_data"
GT_KEYS = ["MainAction", "MainSubjects", "Location", "OrderOfActions", "MainObjects"]


def load_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@pytest.fixture(scope="module")
def demo_records() -> list[dict]:
    return load_jsonl(DEMO_DIR / "ConVIS.jsonl")


# ------------------------------------------------------------------------------------------
# the bundled demo set
# ------------------------------------------------------------------------------------------


def test_demo_jsonl_parses_with_expected_keys(demo_records):
    assert 8 <= len(demo_records) <= 20
    for rec in demo_records:
        assert set(rec) == {"video1", "video2", *GT_KEYS}
        for key in GT_KEYS:
            assert isinstance(rec[key], float) and 1.0 <= rec[key] <= 5.0
        assert rec["video1"] != rec["video2"]


def test_demo_videos_exist_and_decode(demo_records):
    paths = sorted({rec[k] for rec in demo_records for k in ("video1", "video2")})
    assert len(paths) >= 6
    for rel in paths:
        path = DEMO_DIR / rel
        assert path.is_file(), path
        assert count_frames(path) == 16
        frames = read_frames(path, 8)
        assert frames.shape == (8, 64, 64, 3) and frames.dtype == np.uint8


def test_demo_set_is_small():
    total = sum(p.stat().st_size for p in DEMO_DIR.rglob("*") if p.is_file())
    assert total < 300 * 1024


def test_every_concept_column_varies_and_columns_differ(demo_records):
    cols = {k: [rec[k] for rec in demo_records] for k in GT_KEYS}
    for key, values in cols.items():
        assert len(set(values)) >= 3, f"{key} has values {sorted(set(values))}"
    for i, a in enumerate(GT_KEYS):
        for b in GT_KEYS[i + 1:]:
            assert cols[a] != cols[b], f"{a} and {b} are identical"
            # different concepts must rank pairs differently (not perfectly rank-correlated)
            ra = np.argsort(np.argsort(cols[a], kind="stable"), kind="stable")
            rb = np.argsort(np.argsort(cols[b], kind="stable"), kind="stable")
            assert abs(np.corrcoef(ra, rb)[0, 1]) < 0.95


def test_demo_ground_truth_by_hand(demo_records):
    by_pair = {(r["video1"], r["video2"]): r for r in demo_records}
    # v01 vs v02: identical except the motions are performed in reversed order
    r = by_pair[("videos/v01.mp4", "videos/v02.mp4")]
    assert (r["MainAction"], r["OrderOfActions"]) == (5.0, 1.0)
    assert (r["MainSubjects"], r["Location"], r["MainObjects"]) == (5.0, 5.0, 5.0)
    # v01 (meadow, red square, yellow box, left_to_right then circle) vs
    # v05 (beach, blue disc, purple dot, top_to_bottom then bounce):
    # no motion shared but the same motion families (linear + curved) in the same slots -> 2, 2;
    # subject, place and object share nothing -> 1
    r = by_pair[("videos/v01.mp4", "videos/v05.mp4")]
    assert [r[k] for k in GT_KEYS] == [2.0, 1.0, 1.0, 2.0, 1.0]
    # v01 vs v03 (forest, orange square, white box, left_to_right then bounce):
    # one motion shared (3), in the same slot (3); same shape, similar colour (4);
    # meadow/forest both green (3); box/box yellow/white (4)
    r = by_pair[("videos/v01.mp4", "videos/v03.mp4")]
    assert [r[k] for k in GT_KEYS] == [3.0, 4.0, 3.0, 3.0, 4.0]


def test_demo_videos_match_rendering():
    for vid in ("v01", "v05", "v06"):
        decoded = read_frames(DEMO_DIR / "videos" / f"{vid}.mp4", 16).astype(int)
        rendered = S.render_video(S.DEMO_VIDEOS[vid]).astype(int)
        assert np.abs(decoded - rendered).max() <= 4


# ------------------------------------------------------------------------------------------
# the generator
# ------------------------------------------------------------------------------------------


def test_generator_reproduces_bundled_jsonl(tmp_path, demo_records):
    records = S.make_demo_set(tmp_path)
    assert (tmp_path / "ConVIS.jsonl").read_bytes() == (DEMO_DIR / "ConVIS.jsonl").read_bytes()
    assert records == demo_records
    for vid in S.DEMO_VIDEOS:
        assert (tmp_path / "videos" / f"{vid}.mp4").is_file()


def test_cli_is_deterministic(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    S.make_demo_set(a)
    S.make_retrieval_set(a)
    root = Path(__file__).resolve().parents[1]
    proc = subprocess.run([sys.executable, "-m", "convis_tasks.video.synthetic", str(b)], cwd=root,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    files_a = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    files_b = sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    assert files_a == files_b and len(files_a) == len(S.DEMO_VIDEOS) + 3  # + ConVIS.jsonl, ranked, to_be_ranked
    for rel in files_a:
        assert (a / rel).read_bytes() == (b / rel).read_bytes(), rel


def test_render_shape_and_static_parts():
    attrs = {"location": "meadow", "subject": "red_square", "object": "yellow_box",
             "action": ("left_to_right", "circle"), "order": "ab"}
    frames = S.render_video(attrs)
    assert frames.shape == (16, 64, 64, 3) and frames.dtype == np.uint8
    assert tuple(frames[0, 63, 63]) == (70, 160, 70)  # meadow background, plain
    assert tuple(frames[5, 9, 9]) == (250, 230, 30)  # yellow box centred at (9, 9)
    assert np.array_equal(S.render_video(attrs), frames)  # deterministic


def sprite_centre(frame: np.ndarray, colour) -> tuple[float, float]:
    ys, xs = np.nonzero(np.all(frame == np.array(colour, np.uint8), axis=-1))
    assert len(xs) > 0
    return float(xs.mean()), float(ys.mean())


def test_motions_move_the_sprite_as_named():
    red = (220, 40, 40)
    base = {"location": "desert", "subject": "red_disc", "object": "purple_dot", "order": "ab"}
    frames = S.render_video({**base, "action": ("left_to_right", "top_to_bottom")})
    x0, y0 = sprite_centre(frames[0], red)
    x7, y7 = sprite_centre(frames[7], red)
    assert x7 - x0 > 30 and abs(y7 - y0) < 1  # phase 1: rightwards
    x8, y8 = sprite_centre(frames[8], red)
    x15, y15 = sprite_centre(frames[15], red)
    assert y15 - y8 > 30 and abs(x15 - x8) < 1  # phase 2: downwards


def test_order_ba_reverses_the_phases():
    base = {"location": "night", "subject": "blue_triangle", "object": "white_box"}
    ab = S.render_video({**base, "action": ("circle", "bounce"), "order": "ba"})
    ba = S.render_video({**base, "action": ("bounce", "circle"), "order": "ab"})
    assert np.array_equal(ab, ba)
    fwd = S.render_video({**base, "action": ("circle", "bounce"), "order": "ab"})
    assert not np.array_equal(fwd, ab)


def test_concept_scores_rules():
    v = S.DEMO_VIDEOS
    assert S.concept_scores(v["v03"], v["v03"]) == dict.fromkeys(GT_KEYS, 5.0)
    # v04 vs v08: desert/desert 5; red disc vs red square: same colour only 2;
    # yellow bar vs purple dot 1; actions {top_to_bottom, circle} vs {circle, left_to_right}: one shared 3;
    # phases (top_to_bottom, circle) vs (left_to_right, circle): circle in slot 2 -> 3
    assert S.concept_scores(v["v04"], v["v08"]) == {
        "MainAction": 3.0, "MainSubjects": 2.0, "Location": 5.0, "OrderOfActions": 3.0, "MainObjects": 1.0,
    }


def test_bad_attributes_are_rejected():
    with pytest.raises(ValueError):
        S.render_video({"location": "meadow", "subject": "red_square", "object": "yellow_box",
                        "action": ("left_to_right", "fly"), "order": "ab"})
    with pytest.raises(ValueError):
        S.phases({"action": ("circle", "bounce"), "order": "sideways"})


def test_bundled_retrieval_sets_match_the_generator_and_the_pair_rules(tmp_path):
    records = S.make_retrieval_set(tmp_path)
    for name in ("ranked.json", "to_be_ranked.json"):
        assert (tmp_path / name).read_bytes() == (DEMO_DIR / name).read_bytes(), name
    assert len(records) == len(S.DEMO_RETRIEVAL)
    for rec in records:
        anchor = rec["anchor"][:-4]
        for key in S.RETRIEVAL_KEYS:
            ranks = rec[key]
            assert sorted(ranks) == sorted(f"{c}.mp4" for c in S.DEMO_RETRIEVAL[anchor])
            # a candidate ranked better has a strictly higher concept score, tied ranks have equal scores
            score = {c: S.concept_scores(S.DEMO_VIDEOS[anchor], S.DEMO_VIDEOS[c[:-4]])[key] for c in ranks}
            for c1 in ranks:
                for c2 in ranks:
                    if ranks[c1] < ranks[c2]:
                        assert score[c1] > score[c2]
                    elif ranks[c1] == ranks[c2]:
                        assert score[c1] == score[c2]
    assert S.human_ranks({"a": 5.0, "b": 5.0, "c": 3.0, "d": 1.0}) == {"a": 1, "b": 1, "c": 3, "d": 4}
