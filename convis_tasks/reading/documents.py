"""Turn the ConViS-Bench data into lmms-eval documents (a ``datasets``-style loader) and read them back.

Reading a file (:mod:`~convis_tasks.reading.annotations`, :mod:`~convis_tasks.reading.rankings`) is separate from
finding the videos (:func:`~convis_tasks.reading.datafolder.scan_videos`) and from building documents (here). A
document names its videos as written (``video1``/``video2`` or ``anchor``/``candidate``) and carries their files
(``video1_path``/``video2_path``); with ``videos_required=False`` (models that read no video) a missing file is
``None`` and :func:`missing_videos` lists it, so the first request that needs the frames can refuse it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping

from convis_tasks.concepts import CONCEPTS, get_concept
from convis_tasks.reading.annotations import AnnotationError, GroundTruth, load_ground_truth
from convis_tasks.reading.datafolder import (PAIR_FILE, RANKING_FILE, RANKINGS_ENV, VideoScan, resolve_data_dir,
                                             resolve_rankings, scan_videos)
from convis_tasks.reading.rankings import load_rankings


def _scan(root: Path, wanted: dict[str, str], videos_required: bool) -> VideoScan:
    """The videos' files; the first problem raises, except a missing file when videos are not required."""
    return scan_videos(root, wanted, stop=True, missing_ok=not videos_required)


def pair_videos(truth: GroundTruth) -> dict[str, str]:
    """Every video the pair file names (as written) -> the first pair that names it (``pair a / b``)."""
    wanted: dict[str, str] = {}
    for record in truth.pairs:
        for video in (record.video1, record.video2):
            wanted.setdefault(video, f"pair {record.key[0]} / {record.key[1]}")
    return wanted


def build_documents(truth: GroundTruth, data_dir: Path, concept: str | None,
                    videos_required: bool = True) -> list[dict]:
    """One document per pair for a concept key (``None``: the concept-free task, all concepts' truth kept).

    Every video is located up front, so a missing file fails before any model runs (or, with
    ``videos_required=False``, is ``None``).
    """
    keys = [c.key for c in CONCEPTS if c.required or any(c.key in r.scores for r in truth.pairs)] \
        if concept is None else [concept]
    for record in truth.pairs:
        missing = [k for k in keys if k not in record.scores]
        if missing:
            raise AnnotationError(f"{truth.path}, {record.source}: pair {record.key[0]} / {record.key[1]} has no "
                                  f"score for {missing}")
    found = _scan(Path(data_dir), pair_videos(truth), videos_required).found
    return [{
        "pair_id": f"{record.key[0]}|{record.key[1]}",
        "video1": record.video1,
        "video2": record.video2,
        "video1_path": found.get(record.video1),
        "video2_path": found.get(record.video2),
        "concept": concept or "",
        "concept_name": get_concept(concept).prompt_name if concept else "",
        "gt": {k: record.scores[k] for k in keys},
    } for record in truth.pairs]


def load_documents(concept: str | None, data_dir: str | os.PathLike | None = None,
                   videos_required: bool = True) -> list[dict]:
    """Documents of one pair-scoring task: locate the data, read ``ConVIS.jsonl``, locate every video."""
    root = resolve_data_dir(data_dir)
    return build_documents(load_ground_truth(root / PAIR_FILE), root, concept, videos_required)


def load_retrieval_documents(concept: str, data_dir: str | os.PathLike | None = None,
                             videos_required: bool = True) -> list[dict]:
    """One document per (anchor, candidate) of the anchors that humans ranked for ``concept``.

    Video 1 is the anchor, video 2 the candidate; the human rank travels with the document so that the
    aggregation needs no other file. Documents are sorted by anchor, then candidate.
    """
    root = resolve_data_dir(data_dir)
    rankings_path = resolve_rankings(root)
    rankings = load_rankings(rankings_path)[concept]
    wanted: dict[str, str] = {}
    for anchor in sorted(rankings):
        for candidate in sorted(rankings[anchor]):
            where = f"pair {anchor} / {candidate} (retrieval, {rankings_path})"
            wanted.setdefault(anchor, where)
            wanted.setdefault(candidate, where)
    found = _scan(root, wanted, videos_required).found
    return [{
        "pair_id": f"{anchor}|{candidate}",
        "anchor": anchor,
        "candidate": candidate,
        "video1_path": found.get(anchor),
        "video2_path": found.get(candidate),
        "concept": concept,
        "concept_name": get_concept(concept).prompt_name,
        "human_rank": rankings[anchor][candidate],
    } for anchor in sorted(rankings) for candidate in sorted(rankings[anchor])]


def scan_data_folder(data_dir: str | os.PathLike | None = None) -> VideoScan:
    """Every video a data folder's files name, located: ``ConVIS.jsonl`` and the retrieval rankings when present
    (``$CONVIS_RANKINGS`` or ``ranked.json``). ``problems`` has one line per missing, ambiguous or escaping video
    (per path as written), naming the pair and the path, after a line when ``$CONVIS_RANKINGS`` names no file;
    ``found`` maps each located video to its file. Unreadable or malformed annotation files raise as the loaders do.
    """
    root = resolve_data_dir(data_dir)
    wanted = pair_videos(load_ground_truth(root / PAIR_FILE))
    problems = []
    explicit = os.environ.get(RANKINGS_ENV)
    rankings_path = Path(explicit) if explicit else root / RANKING_FILE
    if explicit and not rankings_path.is_file():
        problems.append(f"${RANKINGS_ENV} points at {rankings_path}, which is not a file")
    if rankings_path.is_file():
        for concept, by_anchor in load_rankings(rankings_path).items():
            for anchor, ranks in by_anchor.items():
                for video in (anchor, *ranks):
                    wanted.setdefault(video, f"pair {anchor} (retrieval, {concept})")
    scan = scan_videos(root, wanted)
    scan.problems[:0] = problems
    return scan


def check_videos(data_dir: str | os.PathLike | None = None) -> list[str]:
    """Every problem with the videos of a data folder, without building datasets (for a preflight check): the
    ``problems`` of :func:`scan_data_folder`; an empty list means every video is in place."""
    return scan_data_folder(data_dir).problems


def missing_videos(docs: list[dict]) -> list[str]:
    """``pair a / b: video 'x' not found`` for each document whose video file is ``None`` (built without
    ``videos_required``); empty when every document can give its frames."""
    out = []
    for doc in docs:
        paths = (doc.get("video1_path"), doc.get("video2_path"))
        if None not in paths:
            continue
        pair = str(doc.get("pair_id", "?")).replace("|", " / ")
        names = (doc.get("video1") or doc.get("anchor"), doc.get("video2") or doc.get("candidate"))
        for i, (name, path) in enumerate(zip(names, paths), 1):
            if path is None:
                out.append(f"pair {pair}: video {name or i!r} not found in the data folder")
    return out


def doc_videos(doc: Mapping) -> tuple[str, str]:
    """The two videos of a task document as named in the annotation file: (video1, video2) of a pair, or
    (anchor, candidate) of a retrieval document. Paths on disk are not needed (they may be None without videos)."""
    if doc.get("video1") and doc.get("video2"):
        return str(doc["video1"]), str(doc["video2"])
    if doc.get("anchor") and doc.get("candidate"):
        return str(doc["anchor"]), str(doc["candidate"])
    raise KeyError(f"document {doc.get('pair_id', '?')} names no videos (expected video1/video2 or anchor/candidate)")


def doc_concept_name(doc: Mapping, task_kwargs: Mapping | None = None) -> str | None:
    """The concept named in the prompt: the task's ``concept_name`` option (free text, user-defined concepts) else
    the document's; None for the concept-free task."""
    kw = dict(task_kwargs or {})
    return kw.get("concept_name") or doc.get("concept_name") or None


def caption_id(video: str) -> str:
    """A video's caption id: its file name without the extension (``videos_trimmed/1005_001.mp4`` -> ``1005_001``)."""
    return os.path.splitext(os.path.basename(str(video)))[0]
