"""Find the ConViS-Bench data on disk and turn it into lmms-eval documents (``datasets``-style loader)."""

from __future__ import annotations

import glob
import os
from pathlib import Path

from .annotations import AnnotationError, GroundTruth, load_ground_truth
from .concepts import CONCEPTS, get_concept

DATA_ENV = "CONVIS_DATA_DIR"
HF_REPO_ID = "bliberatori/ConViS-Bench"
PAIR_FILE = "ConVIS.jsonl"
DEMO_DIR = Path(__file__).resolve().parent.parent / "demo_data"


class DataNotFoundError(FileNotFoundError):
    """No ConViS-Bench data folder could be found; the message says where it looked and what to do."""


def _hf_hub_cache() -> Path:
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    return Path(os.environ.get("HF_HOME", "~/.cache/huggingface")).expanduser() / "hub"


def hf_cache_snapshot(repo_id: str = HF_REPO_ID) -> Path | None:
    """The snapshot folder of a dataset downloaded with ``huggingface-cli download`` (standard HF cache layout)."""
    root = _hf_hub_cache() / ("datasets--" + repo_id.replace("/", "--"))
    ref = root / "refs" / "main"
    if ref.is_file():
        snapshot = root / "snapshots" / ref.read_text().strip()
        if snapshot.is_dir():
            return snapshot
    snapshots = sorted((root / "snapshots").glob("*"), key=lambda p: p.stat().st_mtime) if root.is_dir() else []
    return snapshots[-1] if snapshots else None


def resolve_data_dir(explicit: str | os.PathLike | None = None) -> Path:
    """The data folder: ``explicit``, else ``$CONVIS_DATA_DIR``, else the Hugging Face cache snapshot."""
    tried = []
    for candidate, label in ((explicit, "argument"), (os.environ.get(DATA_ENV), f"${DATA_ENV}")):
        if candidate:
            path = Path(candidate).expanduser()
            if not (path / PAIR_FILE).is_file():
                raise DataNotFoundError(f"{label} points at {path}, which has no {PAIR_FILE}")
            return path
    snapshot = hf_cache_snapshot()
    tried.append(str(_hf_hub_cache()))
    if snapshot is not None and (snapshot / PAIR_FILE).is_file():
        return snapshot
    raise DataNotFoundError(
        f"ConViS-Bench data not found: set {DATA_ENV} to the folder holding {PAIR_FILE} and the videos "
        f"(e.g. `huggingface-cli download {HF_REPO_ID} --repo-type dataset --local-dir ConViS-Bench` then "
        f"`export {DATA_ENV}=$PWD/ConViS-Bench`); looked in the Hugging Face cache at {', '.join(tried)}. "
        f"The bundled demo set is at {DEMO_DIR}."
    )


_videos_required = True


def set_videos_required(required: bool) -> None:
    """Whether every video must exist (default True). A model that reads no video (the caption judge) sets False
    before the tasks build their documents; missing videos then get None in ``video1_path``/``video2_path``."""
    global _videos_required
    _videos_required = bool(required)


def _locate(locator: "VideoLocator", video: str, pair: str) -> str | None:
    try:
        return locator.locate(video, pair)
    except FileNotFoundError:
        if _videos_required:
            raise
        return None


class VideoLocator:
    """Resolve a video path as written in an annotation file to a file under the data folder.

    Tries ``data_dir/<path>`` first, then any file with the same base name under ``data_dir``
    (the released files use different prefixes: ``videos/``, ``videos_trimmed/<domain>/``).
    """

    def __init__(self, data_dir: Path):
        self.data_dir = Path(data_dir)
        self._by_name: dict[str, str] | None = None

    def _index(self) -> dict[str, str]:
        if self._by_name is None:
            self._by_name = {}
            for path in sorted(glob.glob(str(self.data_dir / "**" / "*"), recursive=True)):
                if os.path.isfile(path):
                    self._by_name.setdefault(os.path.basename(path), path)
        return self._by_name

    def locate(self, video: str, pair: str) -> str:
        direct = self.data_dir / video
        if direct.is_file():
            return str(direct)
        found = self._index().get(os.path.basename(video))
        if found is None:
            raise FileNotFoundError(f"pair {pair}: video {video!r} not found (looked for {direct} and for "
                                    f"{os.path.basename(video)} anywhere under {self.data_dir})")
        return found


def build_documents(truth: GroundTruth, data_dir: Path, concept: str | None) -> list[dict]:
    """One document per pair for a concept key (``None``: the concept-free task, all concepts' truth kept).

    Every video is located up front, so a missing file fails before any model runs.
    """
    locator = VideoLocator(data_dir)
    keys = [c.key for c in CONCEPTS] if concept is None else [concept]
    docs = []
    for record in truth.pairs:
        pair = f"{record.key[0]} / {record.key[1]}"
        missing = [k for k in keys if k not in record.scores]
        if missing:
            raise AnnotationError(f"{truth.path}, {record.source}: pair {pair} has no score for {missing}")
        docs.append({
            "pair_id": f"{record.key[0]}|{record.key[1]}",
            "video1": record.video1,
            "video2": record.video2,
            "video1_path": _locate(locator, record.video1, pair),
            "video2_path": _locate(locator, record.video2, pair),
            "concept": concept or "",
            "concept_name": get_concept(concept).prompt_name if concept else "",
            "gt": {k: record.scores[k] for k in keys},
        })
    return docs


def load_documents(concept: str | None, data_dir: str | os.PathLike | None = None) -> list[dict]:
    """Documents of one task: locate the data, read ``ConVIS.jsonl``, check every video is there."""
    root = resolve_data_dir(data_dir)
    return build_documents(load_ground_truth(root / PAIR_FILE), root, concept)


RANKINGS_ENV = "CONVIS_RANKINGS"
RANKING_FILE = "ranked.json"


def resolve_rankings(data_dir: Path) -> Path:
    """The retrieval rankings file: ``$CONVIS_RANKINGS``, else ``ranked.json`` in the data folder."""
    explicit = os.environ.get(RANKINGS_ENV)
    path = Path(explicit).expanduser() if explicit else data_dir / RANKING_FILE
    if not path.is_file():
        raise DataNotFoundError(f"retrieval rankings not found at {path}: put the human rankings (a JSON list of "
                                f"{{anchor, <Concept>: {{candidate: rank}}}}) there or set {RANKINGS_ENV}")
    return path


def load_retrieval_documents(concept: str, data_dir: str | os.PathLike | None = None) -> list[dict]:
    """One document per (anchor, candidate) of the anchors that humans ranked for ``concept``.

    Video 1 is the anchor, video 2 the candidate; the human rank travels with the document so that the
    aggregation needs no other file. Documents are sorted by anchor, then candidate.
    """
    from .rankings import load_rankings

    root = resolve_data_dir(data_dir)
    rankings_path = resolve_rankings(root)
    rankings = load_rankings(rankings_path)[concept]
    locator = VideoLocator(root)
    docs = []
    for anchor in sorted(rankings):
        for candidate in sorted(rankings[anchor]):
            pair = f"{anchor} / {candidate} (retrieval, {rankings_path})"
            docs.append({
                "pair_id": f"{anchor}|{candidate}",
                "anchor": anchor,
                "candidate": candidate,
                "video1_path": _locate(locator, anchor, pair),
                "video2_path": _locate(locator, candidate, pair),
                "concept": concept,
                "concept_name": get_concept(concept).prompt_name,
                "human_rank": rankings[anchor][candidate],
            })
    return docs
