"""`convis plot`: the data behind each figure (checked against scipy) and the PNGs themselves."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.stats import spearmanr

from convis_tasks.reading.inputs import load_inputs
from convis_tasks.report.plots import bars_data, concept_matrix_data, distribution_data, frames_data
from convis_tasks.reading.annotations import load_ground_truth
from convis_tasks.concepts import CONCEPTS, CONCEPT_KEYS
from test_report_support import DEMO_GT, demo_rows, make_run
from test_report_tables import cli

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("frames")
    for frames, seed in ((4, 1), (8, 2), (16, 3)):
        make_run(root / f"m{frames}", seed=seed, frames=frames, with_retrieval=False)
    make_run(root / "other8", seed=9, frames=8, with_retrieval=False, with_global=False,
             model_args="pretrained=org/other-2b")
    return root


def _png(path):
    data = path.read_bytes()
    assert data[:8] == PNG and len(data) > 10_000
    return data


def test_concept_matrix_is_scipy_spearman_between_concept_columns():
    truth = load_ground_truth(DEMO_GT)
    matrix = concept_matrix_data(truth)
    columns = np.array([[row[c.gt_key] for c in CONCEPTS] for row in demo_rows()])
    assert np.allclose(matrix, spearmanr(columns).statistic, atol=1e-12)
    assert np.allclose(np.diag(matrix), 1.0) and np.allclose(matrix, matrix.T)


def test_frames_curve_reads_frames_from_each_runs_config(runs):
    items = load_inputs([f"M={runs / f'm{n}'}" for n in (16, 4, 8)] + [str(runs / "other8")], merge=False)
    data = frames_data(items, load_ground_truth(DEMO_GT))
    assert [n for n, _ in data["M"]] == [4, 8, 16] and [n for n, _ in data["org/other-2b"]] == [8]
    from convis_tasks.scoring.evaluate import run_correlate

    scored = run_correlate(str(runs / "m8"), str(DEMO_GT))
    assert dict(data["M"])[8] == pytest.approx(np.mean([scored[c]["spearman"] for c in CONCEPT_KEYS]), abs=1e-12)
    explicit = frames_data(items, load_ground_truth(DEMO_GT), frames=[1, 2, 3, 4], concept="location")
    assert [n for n, _ in explicit["M"]] == [1, 2, 3]
    assert dict(explicit["M"])[3] == pytest.approx(scored["location"]["spearman"], abs=1e-12)
    with pytest.raises(ValueError, match="one per input"):
        frames_data(items, load_ground_truth(DEMO_GT), frames=[4, 8])


def test_bars_and_distribution_data(runs):
    items = load_inputs([str(runs / "other8")])
    truth = load_ground_truth(DEMO_GT)
    from convis_tasks.scoring.evaluate import run_correlate

    scored = run_correlate(str(runs / "other8"), str(DEMO_GT))
    bars = bars_data(items, truth)["org/other-2b"]
    assert bars["location"] == scored["location"]["spearman"]
    assert bars["mean"] == pytest.approx(np.mean([scored[c]["spearman"] for c in CONCEPT_KEYS]))
    human, model, unparsed = distribution_data(items[0], truth, "location")
    assert unparsed == scored["location"]["unparsed"] == 2 and human.size == model.size == 9
    assert set(model.tolist()) <= {1.0, 2.0, 3.0, 4.0, 5.0}


def test_every_plot_kind_writes_a_png(runs, tmp_path):
    pytest.importorskip("matplotlib")
    code, out, err = cli("plot", "bars", f"A={runs / 'm8'}", f"B={runs / 'other8'}", "--ground-truth", DEMO_GT,
                         "--bootstrap", "50", "-o", tmp_path / "bars.png")
    assert code == 0, err
    _png(tmp_path / "bars.png")
    code, _, err = cli("plot", "frames", f"M={runs / 'm4'}", f"M={runs / 'm8'}", f"M={runs / 'm16'}",
                       str(runs / "other8"), "--ground-truth", DEMO_GT, "-o", tmp_path / "frames.png")
    assert code == 0, err
    _png(tmp_path / "frames.png")
    code, _, err = cli("plot", "concepts", "--ground-truth", DEMO_GT, "-o", tmp_path / "concepts.png")
    assert code == 0, err
    _png(tmp_path / "concepts.png")
    code, _, err = cli("plot", "scores", str(runs / "m8"), str(runs / "other8"), "--ground-truth", DEMO_GT,
                       "--concept", "location,main_action", "-o", tmp_path / "scores.png")
    assert code == 0, err
    _png(tmp_path / "scores.png")
    code, _, err = cli("plot", "concepts", "--ground-truth", DEMO_GT, "-o", tmp_path / "x.pdf")
    assert code == 2 and "PNG" in err


def test_frames_plot_without_frames_in_the_run_asks_for_the_flag(runs, tmp_path):
    results = next((runs / "m4").glob("*_results.json"))
    data = json.loads(results.read_text())
    for config in data["configs"].values():
        config["lmms_eval_specific_kwargs"] = {}
    (tmp_path / "r").mkdir()
    for path in (runs / "m4").iterdir():
        (tmp_path / "r" / path.name).write_text(path.read_text())
    (tmp_path / "r" / results.name).write_text(json.dumps(data))
    code, _, err = cli("plot", "frames", tmp_path / "r", "--ground-truth", DEMO_GT, "-o", tmp_path / "f.png")
    assert code == 2 and "pass --frames" in err
    code, _, err = cli("plot", "frames", tmp_path / "r", "--frames", "4", "--ground-truth", DEMO_GT,
                       "-o", tmp_path / "f.png")
    assert code == 0, err


def test_release_concept_matrix(reference):
    matrix = concept_matrix_data(load_ground_truth(reference / "gt_conditioned_similarities.json"))
    assert 0.2 < matrix[3, 4] < matrix[0, 4] < 1  # location and order of actions least alike, action and order most
    assert matrix[0, 4] == pytest.approx(0.84, abs=0.005) and matrix[3, 4] == pytest.approx(0.30, abs=0.005)


def test_labels_are_drawn_literally_never_as_mathtext(runs, tmp_path):
    # an unknown TeX command inside $...$ makes matplotlib's mathtext parser fail; a label is drawn as text
    code, out, err = cli("plot", "bars", f"M$\\notacommand$={runs / 'm8'}", "--ground-truth", DEMO_GT,
                         "-o", tmp_path / "b.png")
    assert code == 0, err
    _png(tmp_path / "b.png")
    code, out, err = cli("plot", "scores", f"M$\\notacommand$={runs / 'm8'}", "--ground-truth", DEMO_GT,
                         "--concept", "location", "-o", tmp_path / "s.png")
    assert code == 0, err
    _png(tmp_path / "s.png")


def test_a_plot_of_nothing_is_an_error_and_a_small_sample_warns(tmp_path, monkeypatch):
    from convis_tasks.scoring import samplesize as console

    monkeypatch.setattr(console, "min_pairs", lambda: 10)
    rows = demo_rows()
    stranger = tmp_path / "Location" / "M" / "M_Location_similarities.json"
    stranger.parent.mkdir(parents=True)
    stranger.write_text(json.dumps([{"video1": f"x{i}.mp4", "video2": f"y{i}.mp4", "similarity": 1 + i % 5}
                                    for i in range(12)]))
    code, _, err = cli("plot", "bars", stranger, "--ground-truth", DEMO_GT, "-o", tmp_path / "b.png")
    assert code == 2 and "nothing was evaluated (0 pairs)" in err.strip().splitlines()[-1]
    assert not (tmp_path / "b.png").exists()
    few = tmp_path / "Location" / "F" / "F_Location_similarities.json"
    few.parent.mkdir(parents=True)
    few.write_text(json.dumps([{"video1": r["video1"], "video2": r["video2"], "similarity": 1 + i % 5}
                               for i, r in enumerate(rows[:4])]))
    code, _, err = cli("plot", "bars", few, "--ground-truth", DEMO_GT, "-o", tmp_path / "f.png")
    assert code == 0 and "warning: F: location: only 4 pairs" in err
