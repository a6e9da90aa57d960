"""Is this the published ConViS-Bench? The published set's fingerprint, and what a data folder or a run is.

The fingerprint (``published_fingerprint.json`` beside this module) holds digests only, never the data: it is made
by :func:`make_fingerprint` from the authors' released ``gt_conditioned_similarities.json`` (the 610 pairs and their
mean ratings) and ``to_be_ranked.json`` (the retrieval candidate sets), and ``scripts/published_fingerprint.py``
regenerates it from those files. It compares exactly what is scored:

* **a pair** is its two video base names in order (:func:`~convis_tasks.reading.annotations.pair_key`): path
  prefixes and file order never matter;
* **a mean** is compared as the fraction k/n (n <= 32 ratings) it lies within 1e-6 of, else as written with 6
  decimals. The released means are such fractions (n <= 16), so a file that writes them with at least 6 decimals
  (``2.545455``, ``2.5454545``, ``2.5454545454545454``: the same 28/11) reads the same, while any other value, and
  any change of a rating (at least 1/16 on a mean), reads as a change. (Rounding the decimals instead would not
  do: 28/11 written with 7 decimals, ``2.5454545``, rounds to 6 as ``2.545454`` where the full value gives
  ``2.545455``.) A change smaller than 1e-6 is not seen. A mean written with 2 to 5 decimals matches the published
  fraction it rounds (:func:`rounded_fractions`: ``3.17`` for 19/6), a precision at which a change of one rating
  is still seen;
* **the concepts** are the released five (the registry's ``required`` concepts), by key; a concept added later is
  not part of the published set and is left out of the comparison;
* **digests**: SHA-256, hex, truncated to 16 digits per pair name and 8 per (pair, concept, mean), so that a pair
  can be counted as missing, changed or extra; one full digest of the whole canonical list identifies a data set.

**Retrieval.** The published retrieval set is 133 anchors x 4 candidates; the human rankings are not in the
authors' release, so only the candidate sets are fingerprinted: a ranking's order is never checked.

A :class:`DataIdentity` says what a set of pairs is: the published set, a subset of it with every mean unchanged
(pairs scored by a ``--limit`` run, or a partial pair file), or other data, with the counts. It is computed from a
data folder (:func:`data_identity`), from a pair file restricted to the pairs scored (:func:`truth_identity`), or from
the records a run logged (:func:`records_identity`: each carries ``video1``, ``video2`` and ``gt``, the human means
it was scored against).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import asdict, dataclass, replace
from fractions import Fraction
from pathlib import Path
from typing import Iterable, Mapping

from convis_tasks.concepts import CONCEPTS
from convis_tasks.errors import InputError
from convis_tasks.reading.annotations import GroundTruth, PairKey, load_ground_truth, pair_key
from convis_tasks.reading.datafolder import PAIR_FILE, RANKING_FILE
from convis_tasks.reading.jsonio import strict_load_file
from convis_tasks.reading.predictions import iter_log_records
from convis_tasks.reading.rankings import load_candidate_sets, load_rankings

FINGERPRINT_FILE = Path(__file__).resolve().with_name("published_fingerprint.json")
FINGERPRINT_FORMAT = "convis-published-fingerprint"
FINGERPRINT_VERSION = 1
CANDIDATES_FILE = "to_be_ranked.json"
MAX_RATINGS = 32  # a mean is k/n over at most this many ratings (the release has at most 16 per pair)
MEAN_TOLERANCE = 1e-6  # how far a written mean may lie from its fraction (6 decimals)
MEAN_DECIMALS = 6  # how a value that is no such fraction is compared
PUBLISHED_CONCEPTS: tuple[str, ...] = tuple(c.key for c in CONCEPTS if c.required)
PUBLISHED = "published"
SUBSET = "subset"
OTHER = "other"


class FingerprintError(InputError):
    """The package's fingerprint file is missing or malformed (a broken install): the message names it."""


# --- canonical form and digests -------------------------------------------------------------------------------------

def canonical_mean(value: float) -> str:
    """A mean as compared: ``k/n`` when it lies within :data:`MEAN_TOLERANCE` of a fraction with n <=
    :data:`MAX_RATINGS` (``2.4444444444444446``, ``2.444444`` -> ``22/9``), else its 6 decimals."""
    x = float(value)
    fraction = Fraction(x).limit_denominator(MAX_RATINGS)
    if abs(x - fraction.numerator / fraction.denominator) <= MEAN_TOLERANCE:
        return f"{fraction.numerator}/{fraction.denominator}"
    text = format(x, f".{MEAN_DECIMALS}f").rstrip("0")
    return text + "0" if text.endswith(".") else text


def rounded_fractions(mean: str) -> list[str]:
    """The fractions k/n (n <= :data:`MAX_RATINGS`) that a mean written with 2 to 5 decimals may have been rounded
    from, half a unit either way (``"3.17"`` -> ``19/6``): a file that rounds the published means still reads as
    published. Any change of one rating moves a mean by at least 1/32, more than a unit of the second decimal, so
    it is still seen. A canonical ``k/n`` is read as its shortest decimal (``51/20`` is 2.55, which 28/11 rounds
    to)."""
    if "/" in mean:  # 2.55 is within 1e-6 of 51/20: the canonical form of a rounded 28/11
        numerator, denominator = mean.split("/")
        mean = repr(int(numerator) / int(denominator))
    decimals = mean.partition(".")[2]
    if not 2 <= len(decimals) < MEAN_DECIMALS:
        return []
    x, half = Fraction(mean), Fraction(1, 2 * 10 ** len(decimals))
    return sorted({f"{f.numerator}/{f.denominator}" for n in range(1, MAX_RATINGS + 1)
                   for k in range(int((x - half) * n), int((x + half) * n) + 2)
                   if abs((f := Fraction(k, n)) - x) <= half})


def _sha(text: str, digits: int | None = None) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:digits]


def pair_digest(key: PairKey) -> str:
    """A pair's name digest (16 hex digits)."""
    return _sha(f"{key[0]}\t{key[1]}", 16)


def mean_digest(key: PairKey, concept: str, mean: str) -> str:
    """The digest (8 hex digits) of one canonical mean of one pair and concept."""
    return _sha(f"{key[0]}\t{key[1]}\t{concept}\t{mean}", 8)


def anchor_digest(anchor: str) -> str:
    return _sha(anchor, 16)


def candidate_digest(anchor: str, candidate: str) -> str:
    return _sha(f"{anchor}\t{candidate}", 8)


def _whole_digest(lines: Iterable[str]) -> str:
    return _sha("\n".join(sorted(lines)))


def _mean_lines(means: Mapping[PairKey, Mapping[str, str]]) -> list[str]:
    return [f"{k[0]}\t{k[1]}\t{c}\t{m}" for k, per in means.items() for c, m in per.items()]


def _candidate_lines(sets: Mapping[str, Iterable[str]]) -> list[str]:
    return [f"{a}\t{c}" for a, cands in sets.items() for c in cands]


# --- the fingerprint ------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Fingerprint:
    """The published set as digests: pair digest -> its means' digests (in ``concepts`` order); anchor digest ->
    its candidates' digests; and one digest of each whole canonical list."""

    concepts: tuple[str, ...]
    pairs: Mapping[str, tuple[str, ...]]
    digest: str
    anchors: Mapping[str, frozenset[str]]
    retrieval_digest: str
    candidates_per_anchor: int


def make_fingerprint(truth: GroundTruth, candidate_sets: Mapping[str, Iterable[str]]) -> dict:
    """The fingerprint document (JSON-able) of a pair file's means and a candidate-set file's anchors."""
    means = {p.key: {c: canonical_mean(p.scores[c]) for c in PUBLISHED_CONCEPTS} for p in truth.pairs}
    sets = {os.path.basename(a): sorted(os.path.basename(c) for c in cands) for a, cands in candidate_sets.items()}
    sizes = sorted({len(c) for c in sets.values()})
    return {
        "format": FINGERPRINT_FORMAT, "format_version": FINGERPRINT_VERSION,
        "made_from": "the authors' released gt_conditioned_similarities.json and to_be_ranked.json "
                     "(scripts/published_fingerprint.py)",
        "canonical_form": f"pairs by video base names in order; means of {', '.join(PUBLISHED_CONCEPTS)} as the "
                          f"fraction k/n (n <= {MAX_RATINGS}) within {MEAN_TOLERANCE:g}, else {MEAN_DECIMALS} "
                          "decimals; SHA-256 digests (pair 16, mean 8 hex digits)",
        "concepts": list(PUBLISHED_CONCEPTS),
        "digest": _whole_digest(_mean_lines(means)),
        "pairs": {pair_digest(k): " ".join(mean_digest(k, c, m) for c, m in per.items())
                  for k, per in sorted(means.items())},
        "retrieval": {
            "digest": _whole_digest(_candidate_lines(sets)),
            "candidates_per_anchor": sizes[0] if len(sizes) == 1 else None,
            "anchors": {anchor_digest(a): " ".join(sorted(candidate_digest(a, c) for c in cands))
                        for a, cands in sorted(sets.items())},
        },
    }


def parse_fingerprint(doc: object, where: str) -> Fingerprint:
    """A fingerprint document (:func:`make_fingerprint`'s form) as a :class:`Fingerprint`; ``where`` names it."""
    try:
        if doc["format"] != FINGERPRINT_FORMAT or doc["format_version"] != FINGERPRINT_VERSION:  # type: ignore[index]
            raise FingerprintError(f"{where}: not a version {FINGERPRINT_VERSION} {FINGERPRINT_FORMAT} document")
        concepts = tuple(doc["concepts"])  # type: ignore[index]
        pairs = {str(k): tuple(v.split()) for k, v in doc["pairs"].items()}  # type: ignore[index]
        if any(len(v) != len(concepts) for v in pairs.values()):
            raise FingerprintError(f"{where}: a pair's digests do not match the {len(concepts)} concepts")
        retrieval = doc["retrieval"]  # type: ignore[index]
        return Fingerprint(concepts, pairs, str(doc["digest"]),  # type: ignore[index]
                           {str(a): frozenset(c.split()) for a, c in retrieval["anchors"].items()},
                           str(retrieval["digest"]), int(retrieval["candidates_per_anchor"] or 0))
    except (KeyError, TypeError, AttributeError) as exc:
        raise FingerprintError(f"{where}: malformed fingerprint document ({type(exc).__name__}: {exc}); reinstall "
                               "convis-eval or regenerate it with scripts/published_fingerprint.py") from None


def load_fingerprint(path: str | os.PathLike = FINGERPRINT_FILE) -> Fingerprint:
    """Read a fingerprint file (default: the package's, the published ConViS-Bench)."""
    return parse_fingerprint(strict_load_file(str(path), FingerprintError), str(path))


# --- identities -----------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class RetrievalIdentity:
    """What a set of retrieval anchors and candidates is, compared with the published candidate sets.

    ``matched``: anchors whose candidates are all among the published ones (``complete``: exactly them);
    ``changed``: published anchors with a candidate that is not; ``extra``: anchors that are not published ones."""

    anchors: int
    matched: int
    complete: int
    changed: int
    missing: int
    extra: int
    published_anchors: int
    candidates_per_anchor: int
    whole: bool
    digest: str

    @property
    def kind(self) -> str:
        if self.complete == self.anchors == self.published_anchors and not (self.changed or self.extra):
            return PUBLISHED
        return SUBSET if not self.whole and self.matched == self.anchors > 0 else OTHER

    @property
    def published(self) -> bool:
        return self.kind == PUBLISHED

    def label(self) -> str:
        """One line: which retrieval sets these are (the human rankings are never checked: not released)."""
        if self.kind == PUBLISHED:
            return (f"published ConViS-Bench retrieval sets ({self.anchors} anchors x {self.candidates_per_anchor} "
                    "candidates; the human rankings are not in the authors' release, so they are not checked)")
        if self.kind == SUBSET:
            return (f"a subset of the published ConViS-Bench retrieval sets ({self.anchors} of "
                    f"{self.published_anchors} anchors, candidates unchanged; human rankings not checked)")
        return (f"other retrieval sets ({self.anchors} anchors, differ from the published candidate sets: "
                f"{self.missing} missing, {self.changed} changed, {self.extra} extra)")

    def to_dict(self) -> dict:
        return {"kind": self.kind, "published": self.published, **asdict(self), "label": self.label()}


@dataclass(frozen=True)
class DataIdentity:
    """What a set of pairs and human means is, compared with the published ConViS-Bench.

    ``matched``: published pairs with every mean unchanged; ``changed``: published pairs with a mean that differs
    (or two different means logged for one concept); ``missing``: published pairs absent; ``extra``: pairs that
    are not published ones. ``whole``: the data is meant as a whole benchmark (a data folder's pair file), so a
    missing pair makes it other data; otherwise (pairs scored, a run's records) it makes a subset.
    ``means_checked`` is False when only pair names were known (a submission's answers, the release's)."""

    pairs: int
    matched: int
    changed: int
    missing: int
    extra: int
    published_pairs: int
    whole: bool
    digest: str
    means_checked: bool = True
    retrieval: RetrievalIdentity | None = None

    @property
    def kind(self) -> str:
        """``published``, ``subset`` (published pairs only, every mean unchanged, some left out) or ``other``."""
        if self.matched == self.pairs == self.published_pairs and not (self.changed or self.extra or self.missing):
            return PUBLISHED
        return SUBSET if not self.whole and self.matched == self.pairs > 0 else OTHER

    @property
    def published(self) -> bool:
        return self.kind == PUBLISHED

    def label(self) -> str:
        """One line, e.g. ``published ConViS-Bench (610 pairs)`` or ``other data (11 pairs, differs from the
        published set: 610 missing, 0 changed, 11 extra)``."""
        names = "" if self.means_checked else "; pair names only, the human means were not recorded"
        if self.kind == PUBLISHED:
            return f"published ConViS-Bench ({self.pairs} pairs{names})"
        if self.kind == SUBSET:
            return (f"a subset of the published ConViS-Bench ({self.pairs} of {self.published_pairs} pairs, "
                    f"{'means unchanged' if self.means_checked else 'pair names only'}: a --limit run or a "
                    "partial pair file)")
        return (f"other data ({self.pairs} pairs, differs from the published set: {self.missing} missing, "
                f"{self.changed} changed, {self.extra} extra{names})")

    def to_dict(self) -> dict:
        """The JSON form a submission records (``metadata.data_identity``) and reports carry."""
        out = {"kind": self.kind, "published": self.published, "label": self.label(),
               **{k: v for k, v in asdict(self).items() if k != "retrieval"}}
        if self.retrieval is not None:
            out["retrieval"] = self.retrieval.to_dict()
        return out


def compare_means(means: Mapping[PairKey, Mapping[str, Iterable[str]]], whole: bool,
                  fingerprint: Fingerprint | None = None, means_checked: bool = True) -> DataIdentity:
    """The identity of pair -> concept -> canonical means (:func:`canonical_mean`; more than one value for a
    concept is a change). Concepts outside the published five are left out."""
    fp = fingerprint or load_fingerprint()
    position = {c: i for i, c in enumerate(fp.concepts)}
    matched = changed = extra = 0
    seen: set[str] = set()
    lines: list[str] = []
    for key, per in means.items():
        digest = pair_digest(key)
        seen.add(digest)
        values = {c: sorted(set(v)) for c, v in per.items() if c in position}
        lines += [f"{key[0]}\t{key[1]}\t{c}\t{m}" for c, ms in values.items() for m in ms]
        if digest not in fp.pairs:
            extra += 1
        elif all(len(ms) == 1 and fp.pairs[digest][position[c]] in
                 {mean_digest(key, c, m) for m in (ms[0], *rounded_fractions(ms[0]))}
                 for c, ms in values.items()):
            matched += 1
        else:
            changed += 1
    missing = len(set(fp.pairs) - seen)
    digest = _whole_digest(lines) if means_checked else _whole_digest(f"{a}\t{b}" for a, b in means)
    return DataIdentity(len(means), matched, changed, missing, extra, len(fp.pairs), whole, digest, means_checked)


def compare_candidates(sets: Mapping[str, Iterable[str]], whole: bool,
                       fingerprint: Fingerprint | None = None) -> RetrievalIdentity:
    """The identity of anchor -> candidates (base names), against the published candidate sets."""
    fp = fingerprint or load_fingerprint()
    matched = complete = changed = extra = 0
    seen: set[str] = set()
    names = {os.path.basename(a): {os.path.basename(c) for c in cands} for a, cands in sets.items()}
    for anchor, cands in names.items():
        digest = anchor_digest(anchor)
        seen.add(digest)
        published = fp.anchors.get(digest)
        mine = {candidate_digest(anchor, c) for c in cands}
        if published is None:
            extra += 1
        elif mine <= published:
            matched += 1
            complete += mine == published
        else:
            changed += 1
    return RetrievalIdentity(len(names), matched, complete, changed, len(set(fp.anchors) - seen), extra,
                             len(fp.anchors), fp.candidates_per_anchor, whole,
                             _whole_digest(_candidate_lines({a: sorted(c) for a, c in names.items()})))


def truth_identity(truth: GroundTruth, keys: Iterable[PairKey] | None = None,
                   fingerprint: Fingerprint | None = None) -> DataIdentity:
    """The identity of a pair file (``keys=None``: the whole file, as a data folder) or of its pairs ``keys`` only
    (the pairs a table scored: fewer than the published set is then a subset)."""
    wanted = None if keys is None else set(keys)
    means = {p.key: {c: [canonical_mean(v)] for c, v in p.scores.items()} for p in truth.pairs
             if wanted is None or p.key in wanted}
    return compare_means(means, keys is None, fingerprint)


def records_identity(records: Iterable[Mapping], fingerprint: Fingerprint | None = None) -> DataIdentity:
    """The identity of the pairs a run scored, from its logged records (``video1``, ``video2``, ``gt``: concept ->
    the human mean the record was scored against). Records without ``gt`` give pair names only."""
    means: dict[PairKey, dict[str, set[str]]] = {}
    checked = True
    for record in records:
        per = means.setdefault(pair_key(record["video1"], record["video2"]), {})
        gt = record.get("gt")
        if not isinstance(gt, Mapping):
            checked = False
            continue
        for concept, value in gt.items():
            if value is not None:
                per.setdefault(str(concept), set()).add(canonical_mean(value))
    return compare_means(means, False, fingerprint, means_checked=checked)


def pair_list_identity(keys: Iterable[PairKey], fingerprint: Fingerprint | None = None) -> DataIdentity:
    """The identity of a list of pair names without means (a submission's answers): names only."""
    return compare_means({k: {} for k in keys}, False, fingerprint, means_checked=False)


def ranked_candidates(rankings: Mapping[str, Mapping[str, Mapping[str, float]]],
                      anchors: Iterable[str] | None = None) -> dict[str, set[str]]:
    """Anchor -> the candidates ranked for it under any concept (``anchors``: only those)."""
    wanted = None if anchors is None else set(anchors)
    out: dict[str, set[str]] = {}
    for by_anchor in rankings.values():
        for anchor, ranks in by_anchor.items():
            if wanted is None or anchor in wanted:
                out.setdefault(anchor, set()).update(ranks)
    return out


def folder_retrieval(data_dir: Path, fingerprint: Fingerprint | None = None) -> RetrievalIdentity | None:
    """The retrieval sets of a data folder: the rankings' (``ranked.json``), else ``to_be_ranked.json``'s; None
    when it holds neither."""
    if (data_dir / RANKING_FILE).is_file():
        return compare_candidates(ranked_candidates(load_rankings(data_dir / RANKING_FILE)), True, fingerprint)
    if (data_dir / CANDIDATES_FILE).is_file():
        return compare_candidates(load_candidate_sets(data_dir / CANDIDATES_FILE), True, fingerprint)
    return None


def data_identity(data_dir: str | os.PathLike, fingerprint: Fingerprint | None = None) -> DataIdentity:
    """Whether a data folder holds the published ConViS-Bench: its ``ConVIS.jsonl`` (a missing pair makes it other
    data) and its retrieval sets (``ranked.json``, else ``to_be_ranked.json``). Unreadable files raise as the
    loaders do."""
    root = Path(data_dir)
    identity = truth_identity(load_ground_truth(root / PAIR_FILE), None, fingerprint)
    retrieval = folder_retrieval(root, fingerprint)
    return identity if retrieval is None else replace(identity, retrieval=retrieval)


def logged_identity(files: Iterable[str], fingerprint: Fingerprint | None = None) -> DataIdentity:
    """The identity of what a run scored, from the records its samples files logged (``--log_samples``): the
    pairs and the human means (:func:`records_identity`), and the retrieval anchors and candidates."""
    files = list(files)
    identity = records_identity([r for f in files for _, r in iter_log_records(f, "pair")], fingerprint)
    sets: dict[str, set[str]] = {}
    for _, record in (item for f in files for item in iter_log_records(f, "retrieval")):
        sets.setdefault(os.path.basename(str(record["anchor"])), set()).add(os.path.basename(str(record["candidate"])))
    return replace(identity, retrieval=compare_candidates(sets, False, fingerprint)) if sets else identity


def recorded_label(meta: Mapping) -> str:
    """The label of a submission's recorded ``data_identity``, for people; ``not recorded`` when absent."""
    recorded = meta.get("data_identity")
    return str(recorded["label"]) if isinstance(recorded, Mapping) and recorded.get("label") else "not recorded"


def leaderboard_problems(meta: object, truth: GroundTruth,
                         fingerprint: Fingerprint | None = None) -> tuple[list[str], list[str]]:
    """``(problems, notes)`` of a leaderboard submission whose metadata is ``meta``, checked against ``truth``.

    Problems: the submission records (``metadata.data_identity``) answers made on other data, or ``truth`` is not
    the published pair file; notes: the submission records no data identity (an older convis-eval)."""
    problems, notes = [], []
    recorded = meta.get("data_identity") if isinstance(meta, Mapping) else None
    if recorded is None:
        notes.append("metadata: no data_identity (which data the answers were made on); written by an older "
                     "convis-eval: only the pairs answered are checked")
    elif not isinstance(recorded, Mapping) or not isinstance(recorded.get("published"), bool):
        problems.append("metadata: data_identity must be an object with a boolean 'published'")
    elif not recorded["published"]:
        problems.append(f"metadata: data_identity: the answers were made on {recorded.get('label') or 'other data'}"
                        ", not the published ConViS-Bench")
    identity = truth_identity(truth, None, fingerprint)
    if not identity.published:
        problems.append(f"the ground truth {truth.path} is {identity.label()}, not the published ConViS-Bench")
    return problems, notes
