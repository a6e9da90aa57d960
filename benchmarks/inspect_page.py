#!/usr/bin/env python
"""Size and time of ``convis inspect``'s page at the benchmark's scale: 610 pairs x 5 concepts (+ concept-free).

1. Fabricates, once, a run folder of that size in a work folder: 543 synthetic videos (``convis_tasks.video.
   synthetic.render_video``, random attributes, ``--video-size`` px square, 16 frames), ``ConVIS.jsonl`` with their
   rule-based human scores, and lmms-eval samples files of the five concept tasks and ``convis_global`` whose
   answers are noisy copies of the truth (about 3% unparsed, some with reasoning), with the real prompts, plus a
   results file (8 frames per video). No clip cache: every frame is decoded from the source videos, the slower path.
2. Runs the command's three steps in this process and prints their times: gathering (answers, metrics, 1000
   bootstrap resamples), frames (2 x 610 decodes, thumbnails) and rendering; the page's size and its thumbnails'.
3. Because flat synthetic frames compress far better than camera video, it also measures the JPEG thumbnail of
   web-like frames (the textured, grainy 640x360 videos of ``benchmarks/input_pipeline.py``) and extrapolates the
   page size to 610 x 16 such thumbnails.

Usage::

    python benchmarks/inspect_page.py                        # full scale (work folder reused)
    python benchmarks/inspect_page.py --pairs 67 --videos 60 # smaller

Nothing here is imported by the package.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
for folder in (REPO, REPO / "benchmarks"):
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))

from convis_tasks.video import synthetic  # noqa: E402
from convis_tasks.concepts import CONCEPTS  # noqa: E402

STAMP = "20260101_000000"
UNPARSED = ("I cannot tell from these frames.", "Both videos show a moving shape", "<think>the colours differ")


def _attrs(rng: np.random.Generator) -> dict:
    actions = list(synthetic.ACTIONS)
    first, second = rng.choice(len(actions), 2, replace=False)
    return {"location": str(rng.choice(list(synthetic.LOCATIONS))),
            "subject": str(rng.choice(list(synthetic.SUBJECTS))), "object": str(rng.choice(list(synthetic.OBJECTS))),
            "action": (actions[first], actions[second]), "order": str(rng.choice(["ab", "ba"]))}


def _answer(rng: np.random.Generator, truth: float) -> str:
    roll = rng.random()
    if roll < 0.03:
        return str(rng.choice(UNPARSED))
    value = int(np.clip(round(truth + rng.normal(0, 1.2)), 1, 5))
    return f"<think>comparing the frames</think>Score: {value}" if roll < 0.08 else str(value)


def fabricate(work: Path, n_videos: int, n_pairs: int, size: int, seed: int = 0) -> Path:
    """The data folder (videos + ConVIS.jsonl) and one run folder under ``work``; reused when complete."""
    from input_pipeline import draw_pairs

    from convis_tasks.hooks import process_results
    from convis_tasks.prompting import render_prompt
    from convis_tasks.video.encode import write_clip

    done = work / "done.json"
    if done.is_file() and json.loads(done.read_text()) == [n_videos, n_pairs, size, seed]:
        return work
    rng = np.random.default_rng(seed)
    data, run = work / f"data_{size}px", work / "run"
    (data / "videos").mkdir(parents=True, exist_ok=True)
    run.mkdir(parents=True, exist_ok=True)
    attrs = [_attrs(rng) for _ in range(n_videos)]
    start = time.perf_counter()
    for i, a in enumerate(attrs):
        if not (data / "videos" / f"s{i:04d}.mp4").is_file():  # same seed, same attributes: kept from a former run
            write_clip(synthetic.render_video(a, synthetic.N_FRAMES, size), data / "videos" / f"s{i:04d}.mp4",
                       fps=synthetic.FPS)
    print(f"rendered {n_videos} videos in {time.perf_counter() - start:.1f} s", flush=True)
    pairs = draw_pairs(n_videos, n_pairs, seed)
    rows = []
    for a, b in pairs:
        rows.append({"video1": f"videos/s{a:04d}.mp4", "video2": f"videos/s{b:04d}.mp4",
                     **synthetic.concept_scores(attrs[a], attrs[b])})
    (data / "ConVIS.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    tasks = [(f"convis_{c.key}", c.key, c.prompt_name) for c in CONCEPTS] + [("convis_global", None, "")]
    for task, concept, name in tasks:
        with open(run / f"{STAMP}_samples_{task}.jsonl", "w") as handle:
            for i, row in enumerate(rows):
                gt = {c.key: float(row[c.gt_key]) for c in CONCEPTS}
                doc = {"video1": row["video1"], "video2": row["video2"], "concept": concept or "",
                       "gt": gt if concept is None else {concept: gt[concept]}}
                truth = gt[concept] if concept else float(np.mean(list(gt.values())))
                record = process_results(doc, [_answer(rng, truth)])
                record["input"] = render_prompt("benchmark" if concept else "global", name or None)
                record["doc_id"] = i
                handle.write(json.dumps(record) + "\n")
    configs = {t: {"task": t, "lmms_eval_specific_kwargs": {"default": {"frames_per_video": 8, "input": "concat",
                                                                         "prompt": "benchmark"}}} for t, _, _ in tasks}
    (run / f"{STAMP}_results.json").write_text(json.dumps({"results": {}, "configs": configs, "date": "20260101",
                                                           "config": {"model": "synthetic_answers"}}))
    done.write_text(json.dumps([n_videos, n_pairs, size, seed]))
    return work


def web_thumbnail_bytes(work: Path, thumb_px: int, n_frames: int = 8) -> float:
    """Mean bytes of one thumbnail's data URI, from two web-like 640x360 videos (input_pipeline's generator)."""
    from input_pipeline import render_video

    from convis_tasks.report.inspect_frames import thumbnail_uri
    from convis_tasks.video.decode import read_frames

    sizes = []
    for index in (0, 1):
        path = work / f"web_{index}.mp4"
        if not path.is_file():
            render_video(index, 0, path)
        sizes += [len(thumbnail_uri(f, thumb_px)) for f in read_frames(path, n_frames)]
    return float(np.mean(sizes))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--videos", type=int, default=543)
    parser.add_argument("--pairs", type=int, default=610)
    parser.add_argument("--video-size", type=int, default=160, help="synthetic frame side in px (default 160)")
    parser.add_argument("--thumb-size", type=int, default=96)
    parser.add_argument("--work-dir", default=os.path.join(tempfile.gettempdir(), "convis-inspect-bench"))
    args = parser.parse_args(argv)

    from convis_tasks.report.inspect_data import gather
    from convis_tasks.report.inspect_frames import FrameFinder, collect_strips
    from convis_tasks.report.inspect_page import render_page

    work = fabricate(Path(args.work_dir), args.videos, args.pairs, args.video_size)
    t0 = time.perf_counter()
    data_dir = work / f"data_{args.video_size}px"
    data = gather([str(work / "run")], ground_truth=str(data_dir / "ConVIS.jsonl"))
    t1 = time.perf_counter()
    strips = collect_strips(data, FrameFinder(str(data_dir), [], args.thumb_size))
    t2 = time.perf_counter()
    page = render_page(data, strips, args.thumb_size, [str(work / "run")])
    t3 = time.perf_counter()
    out = work / "page.html"
    out.write_text(page, encoding="utf-8")
    unique = {id(s): s for s in strips.values()}.values()
    thumbs = sum(s.bytes for s in unique)
    n_thumbs = sum(len(s.frames1) + len(s.frames2) for s in unique)
    size = out.stat().st_size
    answers = sum(len(p.answers) for p in data.pairs)
    print(f"{len(data.pairs)} pairs, {answers} answers, {n_thumbs} thumbnails ({args.video_size} px synthetic "
          f"frames -> {args.thumb_size} px)")
    print(f"time: gather {t1 - t0:.2f} s (bootstrap 1000 included), frames {t2 - t1:.2f} s (decoded from the source "
          f"videos), render {t3 - t2:.2f} s, total {t3 - t0:.2f} s")
    print(f"page: {size / 1e6:.2f} MB, of which thumbnails {thumbs / 1e6:.2f} MB ({thumbs / max(n_thumbs, 1):.0f} B "
          f"each) and the rest {(size - thumbs) / 1e6:.2f} MB")
    web = web_thumbnail_bytes(work, args.thumb_size)
    estimate = size - thumbs + web * n_thumbs
    print(f"web-like frames (640x360, textured, grain): {web:.0f} B per thumbnail; the same page with such frames: "
          f"about {estimate / 1e6:.1f} MB (extrapolated)")
    print(f"written: {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
