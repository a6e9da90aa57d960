"""Deterministic tiny synthetic ConViS-style videos whose concepts differ in controlled ways.

A video is described by five attributes, one per ConViS concept:

* ``location`` -- the background (colour and pattern), e.g. ``"meadow"``;
* ``subject``  -- the moving sprite (shape and colour), e.g. ``"red_square"``;
* ``object``   -- a small static marker (shape and colour), e.g. ``"yellow_box"``;
* ``action``   -- the two motions the sprite performs, e.g. ``("left_to_right", "circle")``;
* ``order``    -- ``"ab"`` (motions in the listed order) or ``"ba"`` (reversed).

Frames are rendered with numpy only (64x64 RGB, 16 frames at 8 fps: motion phase one in frames
0-7, phase two in frames 8-15) and written with :func:`convis_tasks.video.encode.write_clip`.
Ground-truth similarities (1-5, like the benchmark) follow fixed rules per concept -- see
:func:`concept_scores`.  ``python -m convis_tasks.video.synthetic OUT_DIR`` regenerates the demo set.
"""

from __future__ import annotations

import json
import math
import os
import sys
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from convis_tasks.video.encode import write_clip

__all__ = [
    "FPS",
    "N_FRAMES",
    "SIZE",
    "LOCATIONS",
    "SUBJECTS",
    "OBJECTS",
    "ACTIONS",
    "DEMO_VIDEOS",
    "DEMO_PAIRS",
    "GT_KEYS",
    "phases",
    "render_video",
    "concept_scores",
    "make_demo_set",
    "DEMO_RETRIEVAL",
    "RETRIEVAL_KEYS",
    "human_ranks",
    "make_retrieval_set",
    "main",
]

FPS = 8
N_FRAMES = 16
SIZE = 64

#: Ground-truth keys of ``ConVIS.jsonl`` in the order written.
GT_KEYS = ("MainAction", "MainSubjects", "Location", "OrderOfActions", "MainObjects")

# name -> (RGB colour, pattern, family).  Same family = "similar place" (score 3).
LOCATIONS: dict[str, tuple[tuple[int, int, int], str, str]] = {
    "meadow": ((70, 160, 70), "plain", "green"),
    "forest": ((35, 105, 45), "stripes", "green"),
    "desert": ((215, 185, 115), "plain", "sand"),
    "beach": ((235, 215, 160), "waves", "sand"),
    "night": ((25, 25, 70), "dots", "dark"),
}

_COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (220, 40, 40),
    "orange": (245, 140, 20),
    "blue": (40, 80, 230),
    "white": (245, 245, 245),
    "yellow": (250, 230, 30),
    "purple": (150, 50, 190),
    "black": (10, 10, 10),
}

# name -> (shape, colour name)
SUBJECTS: dict[str, tuple[str, str]] = {
    "red_square": ("square", "red"),
    "orange_square": ("square", "orange"),
    "red_disc": ("disc", "red"),
    "blue_disc": ("disc", "blue"),
    "blue_triangle": ("triangle", "blue"),
}

OBJECTS: dict[str, tuple[str, str]] = {
    "yellow_box": ("box", "yellow"),
    "white_box": ("box", "white"),
    "yellow_bar": ("bar", "yellow"),
    "purple_dot": ("dot", "purple"),
}

# motion name -> family.  Same family = "similar motion".
ACTIONS: dict[str, str] = {
    "left_to_right": "linear",
    "top_to_bottom": "linear",
    "circle": "curved",
    "bounce": "curved",
}

#: The demo videos: id -> attributes.
DEMO_VIDEOS: dict[str, dict[str, Any]] = {
    "v01": {"location": "meadow", "subject": "red_square", "object": "yellow_box",
            "action": ("left_to_right", "circle"), "order": "ab"},
    "v02": {"location": "meadow", "subject": "red_square", "object": "yellow_box",
            "action": ("left_to_right", "circle"), "order": "ba"},
    "v03": {"location": "forest", "subject": "orange_square", "object": "white_box",
            "action": ("left_to_right", "bounce"), "order": "ab"},
    "v04": {"location": "desert", "subject": "red_disc", "object": "yellow_bar",
            "action": ("top_to_bottom", "circle"), "order": "ab"},
    "v05": {"location": "beach", "subject": "blue_disc", "object": "purple_dot",
            "action": ("top_to_bottom", "bounce"), "order": "ab"},
    "v06": {"location": "night", "subject": "blue_triangle", "object": "yellow_box",
            "action": ("left_to_right", "circle"), "order": "ab"},
    "v07": {"location": "meadow", "subject": "blue_disc", "object": "white_box",
            "action": ("bounce", "top_to_bottom"), "order": "ab"},
    "v08": {"location": "desert", "subject": "red_square", "object": "purple_dot",
            "action": ("circle", "left_to_right"), "order": "ba"},
}

#: The demo pairs (video 1 id, video 2 id), in file order.
DEMO_PAIRS: tuple[tuple[str, str], ...] = (
    ("v01", "v02"),  # only the order differs
    ("v01", "v03"),  # similar everything
    ("v01", "v04"),
    ("v01", "v05"),  # nothing in common
    ("v01", "v06"),  # same actions and object, other place and subject
    ("v01", "v08"),  # same actions written the other way round, same final order
    ("v03", "v07"),
    ("v04", "v08"),
    ("v05", "v07"),  # same subject, same actions in reversed order
    ("v02", "v06"),
    ("v06", "v07"),
)

#: The demo retrieval sets: anchor id -> its four candidate ids (like the release's to_be_ranked.json).
DEMO_RETRIEVAL: dict[str, tuple[str, ...]] = {
    "v01": ("v03", "v05", "v06", "v08"),
    "v04": ("v02", "v05", "v07", "v08"),
    "v06": ("v01", "v03", "v05", "v07"),
    "v07": ("v02", "v03", "v04", "v06"),
}

#: The concepts humans ranked for retrieval (no order of actions), as keys of the release's ranking file.
RETRIEVAL_KEYS = ("MainAction", "MainSubjects", "MainObjects", "Location")


# --------------------------------------------------------------------------------------------
# rendering
# --------------------------------------------------------------------------------------------


def phases(attrs: Mapping[str, Any]) -> tuple[str, str]:
    """The two motions in temporal order (``action`` as listed for ``"ab"``, reversed for ``"ba"``)."""
    action = tuple(attrs["action"])
    if len(action) != 2 or any(a not in ACTIONS for a in action):
        raise ValueError(f"action must be two of {sorted(ACTIONS)}, got {action!r}")
    order = attrs.get("order", "ab")
    if order == "ab":
        return action[0], action[1]
    if order == "ba":
        return action[1], action[0]
    raise ValueError(f"order must be 'ab' or 'ba', got {order!r}")


def _background(name: str, size: int) -> np.ndarray:
    colour, pattern, _ = LOCATIONS[name]
    base = np.array(colour, dtype=np.float64)
    yy, xx = np.mgrid[0:size, 0:size]
    shade = np.ones((size, size))
    if pattern == "stripes":
        shade = np.where((yy // 8) % 2 == 0, 1.0, 0.75)
    elif pattern == "waves":
        shade = 0.85 + 0.15 * np.sin(2 * np.pi * (yy + 3 * np.sin(2 * np.pi * xx / size)) / 12)
    elif pattern == "dots":
        shade = np.where(((yy % 12) - 6) ** 2 + ((xx % 12) - 6) ** 2 <= 2, 6.0, 1.0)
    img = np.clip(base[None, None, :] * shade[..., None], 0, 255)
    return img.astype(np.uint8)


def _shape_mask(shape: str, cx: float, cy: float, r: float, size: int) -> np.ndarray:
    yy, xx = np.mgrid[0:size, 0:size]
    dx = xx + 0.5 - cx
    dy = yy + 0.5 - cy
    if shape in ("square", "box"):
        return (np.abs(dx) <= r) & (np.abs(dy) <= r)
    if shape in ("disc", "dot"):
        return dx * dx + dy * dy <= r * r
    if shape == "triangle":  # apex up
        return (dy >= -r) & (dy <= r) & (np.abs(dx) <= (dy + r) / 2)
    if shape == "bar":
        return (np.abs(dx) <= r) & (np.abs(dy) <= r / 3)
    raise ValueError(f"unknown shape {shape!r}")


def _position(motion: str, t: float, size: int) -> tuple[float, float]:
    """Sprite centre for ``motion`` at phase time ``t`` in [0, 1]."""
    lo, hi, mid = 0.2 * size, 0.8 * size, 0.5 * size
    if motion == "left_to_right":
        return lo + (hi - lo) * t, mid
    if motion == "top_to_bottom":
        return mid, lo + (hi - lo) * t
    if motion == "circle":
        angle = 2 * math.pi * t
        return mid + 0.25 * size * math.cos(angle), mid + 0.25 * size * math.sin(angle)
    if motion == "bounce":  # two hops from left to right along the floor
        return lo + (hi - lo) * t, 0.75 * size - 0.45 * size * abs(math.sin(2 * math.pi * t))
    raise ValueError(f"unknown motion {motion!r}")


def render_video(attrs: Mapping[str, Any], n_frames: int = N_FRAMES, size: int = SIZE) -> np.ndarray:
    """Render a video as ``(n_frames, size, size, 3)`` uint8 RGB from its attributes.

    The first half of the frames performs the first motion of :func:`phases`, the second half the
    second motion.  The static object sits in the top-left corner; the sprite is drawn over it.
    """
    if n_frames < 2:
        raise ValueError("n_frames must be at least 2 (two motion phases)")
    background = _background(attrs["location"], size)
    obj_shape, obj_colour = OBJECTS[attrs["object"]]
    sub_shape, sub_colour = SUBJECTS[attrs["subject"]]
    scale = size / 64.0
    static = background.copy()
    static[_shape_mask(obj_shape, 9 * scale, 9 * scale, 5 * scale, size)] = _COLOURS[obj_colour]

    first, second = phases(attrs)
    half = n_frames // 2
    out = np.empty((n_frames, size, size, 3), dtype=np.uint8)
    for k in range(n_frames):
        motion, i, length = (first, k, half) if k < half else (second, k - half, n_frames - half)
        t = i / max(length - 1, 1)
        cx, cy = _position(motion, t, size)
        frame = static.copy()
        frame[_shape_mask(sub_shape, cx, cy, 6 * scale, size)] = _COLOURS[sub_colour]
        out[k] = frame
    return out


# --------------------------------------------------------------------------------------------
# ground truth
# --------------------------------------------------------------------------------------------


def _location_score(a: str, b: str) -> float:
    if a == b:
        return 5.0
    return 3.0 if LOCATIONS[a][2] == LOCATIONS[b][2] else 1.0


_SIMILAR_COLOURS = {frozenset(("red", "orange")), frozenset(("yellow", "white"))}


def _item_score(a: tuple[str, str], b: tuple[str, str]) -> float:
    """Shape-and-colour items: equal 5; same shape, similar colour 4; same shape 3; same colour 2."""
    if a == b:
        return 5.0
    if a[0] == b[0]:
        return 4.0 if frozenset((a[1], b[1])) in _SIMILAR_COLOURS else 3.0
    return 2.0 if a[1] == b[1] else 1.0


def _action_score(a: tuple[str, str], b: tuple[str, str]) -> float:
    """Which motions are performed, ignoring order: same set 5; one shared 3; same families 2."""
    sa, sb = set(a), set(b)
    if sa == sb:
        return 5.0
    if sa & sb:
        return 3.0
    fa = sorted(ACTIONS[m] for m in a)
    fb = sorted(ACTIONS[m] for m in b)
    return 2.0 if fa == fb else 1.0


def _order_score(a: tuple[str, str], b: tuple[str, str]) -> float:
    """Temporal sequence of motions: identical 5; one motion in the same slot 3;
    same motion families in the same slots 2; anything else (including reversed) 1."""
    if a == b:
        return 5.0
    if a[0] == b[0] or a[1] == b[1]:
        return 3.0
    if all(ACTIONS[x] == ACTIONS[y] for x, y in zip(a, b)):
        return 2.0
    return 1.0


def concept_scores(attrs1: Mapping[str, Any], attrs2: Mapping[str, Any]) -> dict[str, float]:
    """Ground-truth similarity (1-5) of two attribute sets, keyed like ``ConVIS.jsonl``."""
    return {
        "MainAction": _action_score(tuple(attrs1["action"]), tuple(attrs2["action"])),
        "MainSubjects": _item_score(SUBJECTS[attrs1["subject"]], SUBJECTS[attrs2["subject"]]),
        "Location": _location_score(attrs1["location"], attrs2["location"]),
        "OrderOfActions": _order_score(phases(attrs1), phases(attrs2)),
        "MainObjects": _item_score(OBJECTS[attrs1["object"]], OBJECTS[attrs2["object"]]),
    }


# --------------------------------------------------------------------------------------------
# the demo set
# --------------------------------------------------------------------------------------------


def make_demo_set(out_dir: str | os.PathLike) -> list[dict]:
    """Write ``out_dir/videos/<id>.mp4`` for :data:`DEMO_VIDEOS` and ``out_dir/ConVIS.jsonl`` for
    :data:`DEMO_PAIRS`; return the JSONL records.  Output is byte-for-byte deterministic."""
    out = Path(out_dir)
    (out / "videos").mkdir(parents=True, exist_ok=True)
    for vid, attrs in DEMO_VIDEOS.items():
        write_clip(render_video(attrs), out / "videos" / f"{vid}.mp4", fps=FPS)
    records = []
    for v1, v2 in DEMO_PAIRS:
        rec: dict[str, Any] = {"video1": f"videos/{v1}.mp4", "video2": f"videos/{v2}.mp4"}
        rec.update(concept_scores(DEMO_VIDEOS[v1], DEMO_VIDEOS[v2]))
        records.append(rec)
    tmp = out / "ConVIS.jsonl.tmp"
    tmp.write_text("".join(json.dumps(r) + "\n" for r in records))
    os.replace(tmp, out / "ConVIS.jsonl")
    return records


def human_ranks(scores: Mapping[str, float]) -> dict[str, int]:
    """Competition ranks of candidates by descending similarity (1 = most similar; ties share a rank)."""
    return {c: 1 + sum(1 for other in scores.values() if other > value) for c, value in scores.items()}


def make_retrieval_set(out_dir: str | os.PathLike) -> list[dict]:
    """Write ``to_be_ranked.json`` and ``ranked.json`` (the release's ranking format: a list of
    ``{"anchor": ..., "MainAction": {candidate: rank}, ...}``) for :data:`DEMO_RETRIEVAL`, ranks derived from
    :func:`concept_scores`; return the ranking records."""
    out = Path(out_dir)
    to_rank = {f"{a}.mp4": [f"{c}.mp4" for c in cands] for a, cands in DEMO_RETRIEVAL.items()}
    records = []
    for anchor, cands in DEMO_RETRIEVAL.items():
        rec: dict[str, Any] = {"anchor": f"{anchor}.mp4"}
        scores = {c: concept_scores(DEMO_VIDEOS[anchor], DEMO_VIDEOS[c]) for c in cands}
        for key in RETRIEVAL_KEYS:
            rec[key] = human_ranks({f"{c}.mp4": scores[c][key] for c in cands})
        records.append(rec)
    for name, payload in (("to_be_ranked.json", to_rank), ("ranked.json", records)):
        tmp = out / (name + ".tmp")
        tmp.write_text(json.dumps(payload, indent=1) + "\n")
        os.replace(tmp, out / name)
    return records


def main(argv: list[str] | None = None) -> int:
    """``python -m convis_tasks.video.synthetic OUT_DIR``: regenerate the demo set."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1 or args[0] in ("-h", "--help"):
        print("usage: python -m convis_tasks.video.synthetic OUT_DIR", file=sys.stderr)
        return 2
    records = make_demo_set(args[0])
    rankings = make_retrieval_set(args[0])
    print(f"wrote {len(DEMO_VIDEOS)} videos, {len(records)} pairs and {len(rankings)} retrieval sets to {args[0]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
