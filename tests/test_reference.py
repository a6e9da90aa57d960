"""Against the benchmark authors' released files (../shared/reference): skipped when they are absent.

Expected numbers are the published ones (ConViS-Bench, NeurIPS 2025): Spearman rho x100 as printed in the
paper's tables, quoted at the precision they were published with; Krippendorff's alpha from the paper's text.
"""

import json
from pathlib import Path
import subprocess
import sys

import numpy as np
import pytest

from convis_tasks.scoring.evaluate import run_correlate
from convis_tasks.scoring.agreement import agreement
from convis_tasks.reading.annotations import load_ground_truth, load_ratings
from convis_tasks.concepts import CONCEPT_KEYS

FOLDERS = {"main_action": "Main_Action", "main_subjects": "Main_Subjects", "main_objects": "Main_Objects",
           "location": "Location", "order_of_actions": "Order_Of_Actions"}

# (model folder, concept, published rho, decimals published)
PUBLISHED_LMM_RHO = [
    ("LLaVA-OneVision-Qwen2-7B", "main_action", 51.8, 1),
    ("LLaVA-OneVision-Qwen2-7B", "main_subjects", 48.4, 1),
    ("LLaVA-OneVision-Qwen2-7B", "main_objects", 58.6, 1),
    ("LLaVA-OneVision-Qwen2-7B", "location", 58.9, 1),
    ("LLaVA-OneVision-Qwen2-7B", "order_of_actions", 41.0, 1),
    ("LLaVA-OneVision-Qwen2-0.5B", "main_action", 1.95, 2),
    ("LLaVA-OneVision-Qwen2-0.5B", "main_subjects", -5.05, 2),
    ("LLaVA-NeXT-Video-7B", "main_objects", 45.85, 2),
    ("LLaVA-NeXT-Video-7B", "order_of_actions", 41.25, 2),
    ("InternVL2_5-8B", "order_of_actions", 18.15, 2),
    ("InternVL3-8B", "location", 45.47, 2),
    ("mPLUG-Owl3-7B-240728", "main_action", 30.6, 1),
    ("Qwen2.5-VL-7B-Instruct", "main_action", 37.9, 1),
]

# global baselines, one prediction file correlated with every concept (rho, 1 decimal)
PUBLISHED_GLOBAL_RHO = {
    "dinov2-large/dinov2-large_similarities.json": [33.3, 40.9, 37.4, 57.4, 34.6],
    "videomae-large/videomae-large_similarities.json": [13.0, 23.1, 13.2, 37.8, 15.1],
    "mPLUG-Owl3-7B-240728/mPLUG-Owl3-7B-240728_similarities.json": [52.1, 45.5, 55.1, 28.4, 49.9],
    "LLaVA-OneVision_mPLUG-Owl3-7B-240728/LLaVA-OneVision_similarities.json": [51.1, 55.8, 58.3, 46.5, 48.1],
}


def _lmm_file(reference, model, concept):
    folder = FOLDERS[concept]
    return reference / "computed_conditioned_similarities" / folder / model / f"{model}_{folder}_similarities.json"


def test_raw_ratings_reproduce_the_released_means_exactly(reference):
    raw = load_ground_truth(reference / "vicos.user_inputs.json")
    released = load_ground_truth(reference / "gt_conditioned_similarities.json")
    assert len(raw) == len(released) == 610
    for concept in CONCEPT_KEYS:
        assert raw.by_concept(concept) == released.by_concept(concept)  # bit for bit, not approximately


@pytest.mark.parametrize("model, concept, rho, decimals", PUBLISHED_LMM_RHO)
def test_lmm_answers_reproduce_the_published_rho(reference, model, concept, rho, decimals):
    result = run_correlate(str(_lmm_file(reference, model, concept)), str(reference / "vicos.user_inputs.json"))
    assert list(result) == [concept]  # the concept is read off the release path
    assert round(result[concept]["spearman"], decimals) == rho
    assert result[concept]["n"] == 610


def test_unparsed_answers_are_counted_and_scored_neutral(reference):
    path = _lmm_file(reference, "LLaVA-OneVision-Qwen2-0.5B", "main_action")
    rows = json.loads(path.read_text())
    zeros = sum(1 for r in rows if r["similarity"] == 0.0)
    result = run_correlate(str(path), str(reference / "gt_conditioned_similarities.json"))["main_action"]
    assert result["unparsed"] == zeros
    # independent check of the protocol: 0.0 -> 3.0, then scipy on the two vectors in file order
    from scipy.stats import kendalltau, spearmanr

    truth = {(g["video1"].split("/")[-1], g["video2"].split("/")[-1]): g["conditioned_similarity"]["MainAction"]
             for g in json.loads((reference / "gt_conditioned_similarities.json").read_text())}
    x = [3.0 if r["similarity"] == 0.0 else r["similarity"] for r in rows]
    y = [truth[(r["video1"].split("/")[-1], r["video2"].split("/")[-1])] for r in rows]
    assert result["spearman"] == pytest.approx(spearmanr(x, y).statistic * 100, abs=1e-9)
    assert result["kendall"] == pytest.approx(kendalltau(x, y).statistic * 100, abs=1e-9)


@pytest.mark.parametrize("relative, rhos", PUBLISHED_GLOBAL_RHO.items())
def test_global_baselines_reproduce_the_published_rho_for_every_concept(reference, relative, rhos):
    result = run_correlate(str(reference / "computed_similarities" / relative),
                           str(reference / "gt_conditioned_similarities.json"))
    assert [round(result[c]["spearman"], 1) for c in CONCEPT_KEYS] == rhos


def test_agreement_matches_the_published_facts(reference):
    report = agreement(load_ratings(reference / "vicos.user_inputs.json"))
    assert report.annotators == 147 and report.pairs == 610
    assert round(report.ratings_per_pair, 1) == 6.2
    # the paper: highest alpha 0.361 (Location), lowest 0.244 (Main Subjects)
    assert round(report.alpha["location"], 3) == 0.361
    assert round(report.alpha["main_subjects"], 3) == 0.244
    assert max(report.alpha, key=report.alpha.get) == "location"
    assert min(report.alpha, key=report.alpha.get) == "main_subjects"


def test_cli_json_output_is_one_object_with_canonical_keys(reference):
    path = _lmm_file(reference, "InternVL3-8B", "location")
    out = subprocess.run([sys.executable, "-m", "convis_tasks", "correlate", str(path), "--ground-truth",
                          str(reference / "vicos.user_inputs.json"), "--json"],
                         capture_output=True, text=True, check=True).stdout
    data = json.loads(out)
    assert list(data) == ["location"]
    assert set(data["location"]) == {"spearman", "kendall", "n", "unparsed"}
    assert round(data["location"]["spearman"], 2) == 45.47
    assert np.isfinite(data["location"]["kendall"])


SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "reproduce_release.py"


@pytest.mark.parametrize("holds", [[], ["vicos.user_inputs.json"]])
def test_reproduce_release_without_the_release_files_fails_naming_what_is_missing(tmp_path, holds):
    for name in holds:
        (tmp_path / name).write_text("[]")
    proc = subprocess.run([sys.executable, str(SCRIPT), str(tmp_path)], capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stdout == ""  # no empty table
    assert str(tmp_path) in proc.stderr and "computed_conditioned_similarities" in proc.stderr
    assert ("vicos.user_inputs.json (the human ratings)" in proc.stderr) == (not holds)


def test_reproduce_release_prints_one_row_per_released_model(reference, tmp_path):
    """A release folder reduced to one LMM (links to the real files) prints that model's published rho."""
    (tmp_path / "vicos.user_inputs.json").symlink_to(reference / "vicos.user_inputs.json")
    model = "LLaVA-OneVision-Qwen2-7B"
    for folder in FOLDERS.values():
        target = tmp_path / "computed_conditioned_similarities" / folder / model
        target.mkdir(parents=True)
        name = f"{model}_{folder}_similarities.json"
        (target / name).symlink_to(_lmm_file(reference, model, next(k for k, v in FOLDERS.items() if v == folder)))
    proc = subprocess.run([sys.executable, str(SCRIPT), str(tmp_path)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    rows = [line for line in proc.stdout.splitlines() if line.startswith(f"| {model} |")]
    assert len(rows) == 1 and "51.8 / " in rows[0] and "58.9 / " in rows[0]
