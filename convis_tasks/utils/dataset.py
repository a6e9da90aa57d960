"""Find the ConViS-Bench data on disk and turn it into lmms-eval documents (``datasets``-style loader)."""

from __future__ import annotations

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


OUTSIDE_ENV = "CONVIS_ALLOW_OUTSIDE_PATHS"
_videos_required = True


class VideoPathError(ValueError):
    """A video path in an annotation file escapes the data folder (absolute, or ``..`` leading out of it), or a
    base name matches several files; the message names the pair, the path and the candidates."""


def set_videos_required(required: bool) -> None:
    """Whether every video must exist (default ``True``: a missing video is an error naming pair and path).

    A model that reads no video (a caption-only judge) sets ``False`` in its ``__init__``, before the tasks build
    their documents; missing videos then get ``None`` in ``video1_path``/``video2_path``. Escaping and ambiguous
    paths stay errors either way.
    """
    global _videos_required
    _videos_required = bool(required)


def videos_required() -> bool:
    """The current :func:`set_videos_required` setting."""
    return _videos_required


def outside_paths_allowed() -> bool:
    """``$CONVIS_ALLOW_OUTSIDE_PATHS=1``: the user allows video paths outside the data folder."""
    return os.environ.get(OUTSIDE_ENV, "").strip() == "1"


def walk_files(root: Path, allow_outside: bool | None = None) -> list[str]:
    """Every file under ``root``, sorted, without hanging: each real folder is visited once (a symlink loop ends
    the walk), and a symlinked folder whose real path lies outside ``root`` is not entered (a link to ``/`` would
    walk the whole machine and offer files from outside the data folder) unless ``allow_outside`` (default:
    ``$CONVIS_ALLOW_OUTSIDE_PATHS=1``). Symlinked *files* are listed (the Hugging Face cache is made of them)."""
    if allow_outside is None:
        allow_outside = outside_paths_allowed()
    top = os.path.realpath(root)
    found = []
    visited = set()
    for folder, dirs, files in os.walk(root, followlinks=True):
        real = os.path.realpath(folder)
        if real in visited:
            dirs[:] = []
            continue
        visited.add(real)
        keep = []
        for name in sorted(dirs):
            target = os.path.realpath(os.path.join(folder, name))
            inside = target == top or target.startswith(top.rstrip(os.sep) + os.sep)
            if target not in visited and (inside or allow_outside):
                keep.append(name)
        dirs[:] = keep
        found += [os.path.join(folder, f) for f in files if os.path.isfile(os.path.join(folder, f))]
    return sorted(found)


class VideoLocator:
    """Resolve a video path as written in an annotation file to a file under the data folder.

    Tries ``data_dir/<path>`` first, then the one file with the same base name under ``data_dir`` (the released
    files use different prefixes: ``videos/``, ``videos_trimmed/<domain>/``). A path that is absolute or whose
    ``..`` leads out of ``data_dir`` is refused unless ``$CONVIS_ALLOW_OUTSIDE_PATHS=1`` (checked on the path as
    written, so the Hugging Face cache's symlinked files still count as inside); the base-name search does not
    enter symlinked folders that lead outside either (:func:`walk_files`). Two different files with the searched
    base name are an error listing both.
    """

    def __init__(self, data_dir: Path):
        self.data_dir = Path(data_dir)
        self._by_name: dict[str, list[str]] | None = None

    def _index(self) -> dict[str, list[str]]:
        if self._by_name is None:
            index: dict[str, list[str]] = {}
            reals: dict[str, set[str]] = {}
            for path in walk_files(self.data_dir):
                name = os.path.basename(path)
                real = os.path.realpath(path)
                if real not in reals.setdefault(name, set()):  # one file reached by two paths is one file
                    reals[name].add(real)
                    index.setdefault(name, []).append(path)
            self._by_name = index
        return self._by_name

    def _check_contained(self, video: str, pair: str) -> None:
        if outside_paths_allowed():
            return
        if os.path.isabs(video) or os.path.splitdrive(video)[0]:
            raise VideoPathError(f"pair {pair}: video path {video!r} is absolute; paths are relative to the data "
                                 f"folder {self.data_dir} (set {OUTSIDE_ENV}=1 to allow paths outside it)")
        if os.path.normpath(video).split(os.sep)[0] == os.pardir or os.path.normpath(video) == os.pardir:
            raise VideoPathError(f"pair {pair}: video path {video!r} leads out of the data folder {self.data_dir} "
                                 f"(set {OUTSIDE_ENV}=1 to allow paths outside it)")

    def locate(self, video: str, pair: str) -> str | None:
        """The file of ``video``; ``None`` only when it is missing and videos are not required."""
        if not isinstance(video, str) or not video:
            raise VideoPathError(f"pair {pair}: video path {video!r} is not a file name")
        self._check_contained(video, pair)
        direct = self.data_dir / video
        if direct.is_file():
            return str(direct)
        found = self._index().get(os.path.basename(video), [])
        if len(found) > 1:
            raise VideoPathError(f"pair {pair}: video {video!r} is ambiguous: {len(found)} files under "
                                 f"{self.data_dir} are named {os.path.basename(video)}: " + ", ".join(found))
        if not found:
            if not _videos_required:
                return None
            raise FileNotFoundError(f"pair {pair}: video {video!r} not found (looked for {direct} and for "
                                    f"{os.path.basename(video)} anywhere under {self.data_dir})")
        return found[0]


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
            "video1_path": locator.locate(record.video1, pair),
            "video2_path": locator.locate(record.video2, pair),
            "concept": concept or "",
            "concept_name": get_concept(concept).prompt_name if concept else "",
            "gt": {k: record.scores[k] for k in keys},
        })
    return docs


def check_videos(data_dir: str | os.PathLike | None = None) -> list[str]:
    """Every problem with the videos of a data folder, without building datasets (for a preflight check).

    Reads ``ConVIS.jsonl`` (and the retrieval rankings when present: ``$CONVIS_RANKINGS`` or ``ranked.json``) and
    returns one line per missing, ambiguous or escaping video (per path as written), naming the pair and the path,
    plus a line when ``$CONVIS_RANKINGS`` names no file; an empty list means every video is in place.
    Unreadable or malformed annotation files raise as the loaders do (``AnnotationError``, ``DataNotFoundError``).
    """
    root = resolve_data_dir(data_dir)
    locator = VideoLocator(root)
    wanted: dict[str, str] = {}  # video as written -> first pair that names it
    for record in load_ground_truth(root / PAIR_FILE).pairs:
        for video in (record.video1, record.video2):
            wanted.setdefault(video, f"{record.key[0]} / {record.key[1]}")
    problems = []
    rankings_path = os.environ.get(RANKINGS_ENV) or root / RANKING_FILE
    if os.environ.get(RANKINGS_ENV) and not Path(rankings_path).is_file():
        problems.append(f"${RANKINGS_ENV} points at {rankings_path}, which is not a file")
    if Path(rankings_path).is_file():
        from .rankings import load_rankings

        for concept, by_anchor in load_rankings(rankings_path).items():
            for anchor, ranks in by_anchor.items():
                for video in (anchor, *ranks):
                    wanted.setdefault(video, f"{anchor} (retrieval, {concept})")
    for video, pair in wanted.items():
        try:
            if locator.locate(video, pair) is None:
                problems.append(f"pair {pair}: video {video!r} not found under {root}")
        except (FileNotFoundError, VideoPathError) as exc:
            problems.append(str(exc))
    return problems


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
                "video1_path": locator.locate(anchor, pair),
                "video2_path": locator.locate(candidate, pair),
                "concept": concept,
                "concept_name": get_concept(concept).prompt_name,
                "human_rank": rankings[anchor][candidate],
            })
    return docs
