"""Is it the published ConViS-Bench? The package's fingerprint of the authors' release, and every surface saying it.

Tests marked by the ``reference`` fixture read ../shared/reference (the authors' released files) and skip when it
is absent; the others build a fingerprint of the bundled demo set, so the comparison logic is tested everywhere.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

import pytest

from convis_tasks.cli import main
from convis_tasks.concepts import CONCEPTS
from convis_tasks.reading.annotations import load_ground_truth
from convis_tasks.reading.published import (canonical_mean, compare_candidates, data_identity, FINGERPRINT_FILE,
    FingerprintError, load_fingerprint, logged_identity, make_fingerprint, parse_fingerprint, records_identity,
    rounded_fractions, truth_identity)
from convis_tasks.reading.rankings import load_candidate_sets
from convis_tasks.report.submission import build_from_run, validate
from test_report_support import DEMO_DIR, DEMO_GT, make_run, write_gt
from test_report_tables import cli

REPO = Path(__file__).resolve().parent.parent
DEMO_LABEL = "other data (11 pairs, differs from the published set: 610 missing, 0 changed, 11 extra)"
PUBLISHED_LABEL = "published ConViS-Bench (610 pairs)"


def _other(pairs: int, missing: int, changed: int, extra: int) -> str:
    return (f"other data ({pairs} pairs, differs from the published set: {missing} missing, {changed} changed, "
            f"{extra} extra)")


@pytest.fixture(scope="module")
def release_rows(reference) -> list[dict]:
    """The released pairs as ConVIS.jsonl rows: ``videos/`` prefixes (the release has ``videos_trimmed/``), a
    shuffled order and means written with 6 or 7 decimals or in full, as the release writes them."""
    pairs = load_ground_truth(reference / "gt_conditioned_similarities.json").pairs
    rows = [{"video1": "videos/" + Path(p.video1).name, "video2": "videos/" + Path(p.video2).name,
             **{c.gt_key: round(p.scores[c.key], (6, 7, 17)[i % 3]) for c in CONCEPTS}} for i, p in enumerate(pairs)]
    random.Random(3).shuffle(rows)
    return rows


def _folder(tmp_path: Path, rows: list[dict], reference: Path | None = None) -> Path:
    tmp_path.mkdir(parents=True, exist_ok=True)
    write_gt(tmp_path / "ConVIS.jsonl", rows)
    if reference is not None:
        (tmp_path / "to_be_ranked.json").write_text((reference / "to_be_ranked.json").read_text())
    return tmp_path


# --- the fingerprint and the release ------------------------------------------------------------------------------

def test_the_stored_fingerprint_equals_the_one_recomputed_from_the_release(reference):
    truth = load_ground_truth(reference / "gt_conditioned_similarities.json")
    recomputed = make_fingerprint(truth, load_candidate_sets(reference / "to_be_ranked.json"))
    assert json.loads(FINGERPRINT_FILE.read_text()) == recomputed
    assert len(recomputed["pairs"]) == 610 and len(recomputed["retrieval"]["anchors"]) == 133
    proc = subprocess.run([sys.executable, str(REPO / "scripts" / "published_fingerprint.py"), str(reference),
                           "--check"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and "up to date" in proc.stdout, proc.stdout + proc.stderr
    assert "videos_trimmed" not in FINGERPRINT_FILE.read_text()  # digests only, never the names or the means


def test_the_release_files_read_as_the_published_set(reference):
    for name in ("gt_conditioned_similarities.json", "vicos.user_inputs.json"):  # the raw ratings' means too
        identity = truth_identity(load_ground_truth(reference / name))
        assert identity.published and identity.label() == PUBLISHED_LABEL, name
        assert identity.digest == load_fingerprint().digest
    assert compare_candidates(load_candidate_sets(reference / "to_be_ranked.json"), True).published


def test_a_pair_file_synthesized_from_the_release_reads_as_published_whatever_the_order_prefix_and_format(
        reference, release_rows, tmp_path):
    identity = data_identity(_folder(tmp_path, release_rows, reference))
    assert identity.published and identity.kind == "published" and identity.label() == PUBLISHED_LABEL
    assert identity.digest == load_fingerprint().digest
    assert identity.retrieval.published and identity.retrieval.label() == (
        "published ConViS-Bench retrieval sets (133 anchors x 4 candidates; the human rankings are not in the "
        "authors' release, so they are not checked)")


def test_one_changed_mean_a_dropped_pair_or_an_added_pair_read_as_other_data_with_the_counts(
        reference, release_rows, tmp_path):
    changed = [dict(r) for r in release_rows]
    changed[5]["Location"] = changed[5]["Location"] + 0.125 if changed[5]["Location"] < 4 else 1.0
    assert data_identity(_folder(tmp_path / "changed", changed)).label() == _other(610, 0, 1, 0)
    assert data_identity(_folder(tmp_path / "dropped", release_rows[1:])).label() == _other(609, 1, 0, 0)
    added = release_rows + [{"video1": "videos/new_1.mp4", "video2": "videos/new_2.mp4",
                             **{c.gt_key: 3.0 for c in CONCEPTS}}]
    assert data_identity(_folder(tmp_path / "added", added)).label() == _other(611, 0, 0, 1)
    tiny = [dict(r) for r in release_rows]
    tiny[5]["Location"] += 1e-8  # below the 6-decimal comparison: the same mean
    assert data_identity(_folder(tmp_path / "tiny", tiny)).published


def test_means_rounded_to_two_decimals_read_as_published_and_a_change_of_one_rating_is_still_seen(
        reference, release_rows, tmp_path):
    """A data file that writes the means with 2 decimals (3.17 for 19/6) is still the published set; one rating
    changed moves a mean by 1/n >= 1/32, which a 2-decimal value still shows."""
    rounded = [{k: round(v, 2) if isinstance(v, float) else v for k, v in r.items()} for r in release_rows]
    assert data_identity(_folder(tmp_path / "rounded", rounded)).published
    for i, delta in ((7, 1 / 32), (8, -1 / 16)):
        changed = [dict(r) for r in release_rows]
        old = changed[i]["MainAction"]
        changed[i]["MainAction"] = round(old + (delta if old + delta <= 5 else -abs(delta)), 2)
        rounded_changed = [{k: round(v, 2) if isinstance(v, float) else v for k, v in r.items()} for r in changed]
        assert data_identity(_folder(tmp_path / f"changed{i}", rounded_changed)).label() == _other(610, 0, 1, 0)


def test_a_mean_is_compared_as_its_fraction_whatever_the_decimals_written():
    assert canonical_mean(28 / 11) == canonical_mean(2.5454545) == canonical_mean(2.545455) == "28/11"
    assert canonical_mean(2.545454) == "28/11"  # 6 decimals, rounded down: still within 1e-6
    assert canonical_mean(2.54545) == "2.54545"  # 5 decimals: 4.5e-6 off, no fraction within 1e-6 ...
    assert rounded_fractions("2.54545") == ["28/11"]  # ... but the one it rounds, which is how it is compared
    assert "28/11" in rounded_fractions("2.55") and "19/6" in rounded_fractions("3.17")
    assert rounded_fractions("51/20") == rounded_fractions("2.55")  # 2.55 is within 1e-6 of 51/20
    assert rounded_fractions("3.1") == rounded_fractions("19/6") == []  # 1 decimal is too coarse: no match
    assert canonical_mean(3) == canonical_mean(3.0000004) == "3/1" and canonical_mean(3.000002) == "3.000002"
    assert canonical_mean(4.0625) == "65/16"  # sixteen ratings, the most a released pair has


def test_the_demo_data_is_other_data():
    identity = data_identity(DEMO_DIR)
    assert not identity.published and identity.kind == "other" and identity.label() == DEMO_LABEL
    assert identity.retrieval.label() == ("other retrieval sets (4 anchors, differ from the published candidate "
                                          "sets: 133 missing, 0 changed, 4 extra)")


def test_a_broken_fingerprint_file_is_an_error_naming_it(tmp_path):
    path = tmp_path / "fp.json"
    path.write_text(json.dumps({"format": "convis-published-fingerprint", "format_version": 1, "concepts": ["a"]}))
    with pytest.raises(FingerprintError, match=f"{path}: malformed fingerprint document"):
        load_fingerprint(path)


# --- the comparison, on a fingerprint of the demo set (no reference needed) ---------------------------------------

@pytest.fixture(scope="module")
def demo_fp():
    doc = make_fingerprint(load_ground_truth(DEMO_GT), load_candidate_sets(DEMO_DIR / "to_be_ranked.json"))
    return parse_fingerprint(json.loads(json.dumps(doc)), "demo fingerprint")


def _records(rows: list[dict]) -> list[dict]:
    return [{"video1": r["video1"], "video2": r["video2"], "gt": {c.key: r[c.gt_key]}} for r in rows for c in CONCEPTS]


def test_against_its_own_fingerprint_the_demo_folder_is_published(demo_fp):
    identity = data_identity(DEMO_DIR, demo_fp)
    assert identity.published and identity.label() == "published ConViS-Bench (11 pairs)"
    assert identity.retrieval.published  # ranked.json's candidate sets are to_be_ranked.json's


def test_records_of_a_limit_run_are_a_subset_and_a_partial_pair_file_is_other_data(demo_fp, tmp_path):
    rows = [json.loads(line) for line in DEMO_GT.read_text().splitlines()]
    identity = records_identity(_records(rows[:4]), demo_fp)
    assert identity.kind == "subset" and not identity.published
    assert identity.label() == ("a subset of the published ConViS-Bench (4 of 11 pairs, means unchanged: a --limit "
                                "run or a partial pair file)")
    assert records_identity(_records(rows), demo_fp).published  # every concept task of every pair
    partial = _folder(tmp_path, rows[:4])
    assert data_identity(partial, demo_fp).label() == _other(4, 7, 0, 0)  # a data folder is meant whole
    assert truth_identity(load_ground_truth(DEMO_GT), [(Path(r["video1"]).name, Path(r["video2"]).name)
                                                       for r in rows[:4]], demo_fp).kind == "subset"


def test_records_with_two_means_for_one_pair_or_a_changed_mean_count_as_changed(demo_fp):
    rows = [json.loads(line) for line in DEMO_GT.read_text().splitlines()]
    records = _records(rows)
    records.append({**records[0], "gt": {"main_action": 1.0 if rows[0]["MainAction"] != 1.0 else 2.0}})
    assert records_identity(records, demo_fp).label() == _other(11, 0, 1, 0)
    extra_concept = [{**r, "gt": {**r["gt"], "point_of_view": 2.0}} for r in _records(rows)]
    assert records_identity(extra_concept, demo_fp).published  # a concept added later is not compared
    names_only = [{"video1": r["video1"], "video2": r["video2"]} for r in rows]
    assert records_identity(names_only, demo_fp).label() == \
        "published ConViS-Bench (11 pairs; pair names only, the human means were not recorded)"


def test_a_run_on_the_demo_data_logs_its_identity_into_the_submission(demo_fp, tmp_path):
    make_run(tmp_path / "run")
    files = [str(f) for f in (tmp_path / "run").glob("*_samples_*.jsonl")]
    identity = logged_identity(files, demo_fp)
    assert identity.published and identity.retrieval.published
    assert logged_identity(files).label() == DEMO_LABEL
    doc = build_from_run(str(tmp_path / "run"))
    assert doc["metadata"]["data_identity"]["label"] == DEMO_LABEL
    assert doc["metadata"]["data_identity"]["published"] is False


# --- the surfaces -------------------------------------------------------------------------------------------------

def test_tables_and_the_report_say_the_demo_run_is_other_data(tmp_path, capsys):
    make_run(tmp_path / "run")
    assert main(["correlate", str(tmp_path / "run"), "--ground-truth", str(DEMO_GT)]) == 0
    assert f"\nData: {DEMO_LABEL}\n" in capsys.readouterr().out
    assert main(["retrieval", str(tmp_path / "run"), "--ground-truth", str(DEMO_DIR / "ranked.json")]) == 0
    assert "\nData: other retrieval sets (4 anchors, " in capsys.readouterr().out
    code, out, _ = cli("report", tmp_path / "run", "--ground-truth", DEMO_GT, "--rankings", DEMO_DIR / "ranked.json",
                       "--json", tmp_path / "r.json")
    assert code == 0 and f"_Note: data: {DEMO_LABEL}_" in out and "_Note: data: other retrieval sets (4 " in out
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["data"]["label"] == DEMO_LABEL and report["retrieval_data"]["published"] is False


def test_a_run_on_the_published_data_is_published_everywhere_and_a_limit_run_is_a_subset(
        reference, release_rows, tmp_path, capsys):
    gt = reference / "gt_conditioned_similarities.json"
    make_run(tmp_path / "full", rows=release_rows, with_retrieval=False)
    assert main(["correlate", str(tmp_path / "full"), "--ground-truth", str(gt)]) == 0
    assert f"\nData: {PUBLISHED_LABEL}\n" in capsys.readouterr().out
    doc = build_from_run(str(tmp_path / "full"))
    assert doc["metadata"]["data_identity"]["label"] == PUBLISHED_LABEL
    result = validate(doc, load_ground_truth(gt))
    assert result.ok and result.data == PUBLISHED_LABEL, result.errors

    make_run(tmp_path / "limit", rows=release_rows[:20], with_retrieval=False)  # what --limit 20 logs
    subset = "a subset of the published ConViS-Bench (20 of 610 pairs, means unchanged: a --limit run or a " \
             "partial pair file)"
    assert main(["correlate", str(tmp_path / "limit"), "--ground-truth", str(gt)]) == 0
    assert f"\nData: {subset}\n" in capsys.readouterr().out
    doc = build_from_run(str(tmp_path / "limit"))
    assert doc["metadata"]["data_identity"]["kind"] == "subset"
    errors = validate(doc, load_ground_truth(gt)).errors
    assert f"metadata: data_identity: the answers were made on {subset}, not the published ConViS-Bench" in errors
