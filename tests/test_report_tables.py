"""`convis report`: tables side by side, LaTeX marking, CSV, composite, labels, inputs, and no heavy imports."""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import subprocess
import sys

import pytest
from scipy.stats import kendalltau, spearmanr

from convis_tasks.report.build import HUMAN_LABEL, RANDOM_LABEL, ReportOptions, build_report
from convis_tasks.cli.report import add_parsers
from convis_tasks.scoring.composite import WeightsError, parse_weights, score_composite
from convis_tasks.reading.inputs import load_inputs
from convis_tasks.report.tables import Column, Row, Table, marks, to_csv, to_latex, to_markdown
from convis_tasks.reading.annotations import load_ground_truth
from convis_tasks.reading.predictions import PredictionError, Predictions
from convis_tasks.reading.rankings import load_rankings
from test_report_support import DEMO_GT, DEMO_RANKINGS, demo_rows, make_run, write_gt

GT_KEYS = {"main_action": "MainAction", "main_subjects": "MainSubjects", "main_objects": "MainObjects",
           "location": "Location", "order_of_actions": "OrderOfActions"}


def cli(*argv) -> tuple[int, str, str]:
    parser = argparse.ArgumentParser(prog="convis")
    sub = parser.add_subparsers(dest="command", required=True)
    add_parsers(sub)
    args = parser.parse_args([str(a) for a in argv])
    out, err = io.StringIO(), io.StringIO()
    stdout, stderr = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = out, err
    try:
        code = args.func(args)
    finally:
        sys.stdout, sys.stderr = stdout, stderr
    return code, out.getvalue(), err.getvalue()


# --- LaTeX best / second marking on a hand table --------------------------------------------------------------

def hand_table() -> Table:
    return Table("t", "Hand table", [Column("rho", "rho", 1, "Loc", "$\\rho$"),
                                     Column("err", "err", 2, "Loc", "err", higher_is_better=False),
                                     Column("n", "n", 0, mark=False)],
                 [Row("M_1", {"rho": 50.04, "err": 0.5, "n": 10}),
                  Row("M2", {"rho": 49.96, "err": 0.7, "n": 10}),   # prints 50.0 too: tied for best
                  Row("M3", {"rho": 40.0, "err": 0.6, "n": 10}),
                  Row("M4", {"rho": -3.0, "err": None, "n": 10}),
                  Row("Human", {"rho": 90.0, "err": 0.1, "n": 10}, reference=True)])


def test_latex_marks_best_bold_and_second_underlined_per_column_as_printed():
    table = hand_table()
    assert marks(table) == {(0, "rho"): "best", (1, "rho"): "best", (2, "rho"): "second",
                            (0, "err"): "best", (2, "err"): "second"}
    latex = to_latex([table])
    lines = {line.split(" & ")[0]: line for line in latex.splitlines() if " & " in line}
    assert lines["M\\_1"] == r"M\_1 & \textbf{50.0} & \textbf{0.50} & 10 \\"
    assert lines["M2"] == r"M2 & \textbf{50.0} & 0.70 & 10 \\"
    assert lines["M3"] == r"M3 & \underline{40.0} & \underline{0.60} & 10 \\"
    assert lines["M4"] == r"M4 & $-$3.0 & - & 10 \\"
    assert lines[r"\textit{Human}"] == r"\textit{Human} & 90.0 & 0.10 & 10 \\"  # reference rows are never marked
    assert r"\multicolumn{2}{c}{Loc}" in latex and r"\cmidrule(lr){2-3}" in latex
    assert latex.index(r"\textit{Human}") > latex.index("M4")  # below the model rows, after a rule


def test_markdown_and_tidy_csv():
    table = hand_table()
    md = to_markdown([table])
    assert "| M_1 | 50.0 | 0.50 | 10 |" in md and "| *Human* | 90.0 | 0.10 | 10 |" in md
    assert "| M4 | -3.0 | - | 10 |" in md
    rows = list(csv.DictReader(io.StringIO(to_csv([table]))))
    assert {"table": "t", "row": "M_1", "column": "rho", "value": "50.04"} in rows
    assert not any(r["row"] == "M4" and r["column"] == "err" for r in rows)  # undefined cells are left out


# --- composite (Eq. 2) on a 4-pair hand example ---------------------------------------------------------------

def four_pairs(tmp_path):
    ma, loc = [1, 2, 3, 4], [4, 3, 1, 2]
    rows = [{"video1": f"k{i}a.mp4", "video2": f"k{i}b.mp4", "MainAction": ma[i], "Location": loc[i],
             "MainSubjects": 3, "MainObjects": 3, "OrderOfActions": 3} for i in range(4)]
    truth = load_ground_truth(write_gt(tmp_path / "gt.jsonl", rows))
    preds = Predictions("hand", {"main_action": {(f"k{i}a.mp4", f"k{i}b.mp4"): v for i, v in enumerate([2, 2, 4, 5])},
                                 "location": {(f"k{i}a.mp4", f"k{i}b.mp4"): v for i, v in enumerate([5, 3, None, 1])}})
    return truth, preds


def test_composite_on_a_hand_example(tmp_path):
    truth, preds = four_pairs(tmp_path)
    weights = parse_weights("main_action=0.25,Location=0.75")
    # truth 3.25, 2.75, 1.5, 2.5; prediction (unparsed location = 3) 4.25, 2.75, 3.25, 2.0
    # ranks 4,3,1,2 vs 4,2,3,1: sum d^2 = 6, rho = 1 - 6*6/(4*15) = 0.4; 4 concordant, 2 discordant: tau = 2/6
    result = score_composite(preds, truth, weights)
    assert result.spearman == pytest.approx(40.0)
    assert result.kendall == pytest.approx(100 * 2 / 6)
    assert (result.n, result.unparsed) == (4, 1)
    dropped = score_composite(preds, truth, weights, unparsed="drop")
    assert (dropped.n, dropped.unparsed) == (3, 1)


@pytest.mark.parametrize("spec, message", [
    ("main_action=0.5,location=0.6", "sum to 1.1"),
    ("main_action=-0.5,location=1.5", "must be a finite number >= 0"),
    ("main_action=1,colour=0", "unknown concept 'colour'"),
    ("main_action=0.5,Main Action=0.5", "weighted twice"),
    ("main_action0.5", "has no '='"),
    ("location=abc", "not a number"),
])
def test_weights_errors_are_clear(spec, message):
    with pytest.raises(WeightsError, match=message) as info:
        parse_weights(spec)
    assert "--weights main_action=0.4,location=0.6" in str(info.value)


def test_weights_default_to_zero_for_missing_concepts():
    assert parse_weights("location=1") == {"main_action": 0.0, "main_subjects": 0.0, "main_objects": 0.0,
                                           "location": 1.0, "order_of_actions": 0.0}


# --- the report on hand-built runs ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    make_run(root / "a", seed=1, model_args="pretrained=org/model-a-7b")
    make_run(root / "b", seed=2, model_args="pretrained=org/model-b-2b", with_retrieval=False, with_global=False)
    return root


def _scipy(run_seed_rows, concept, answers):
    """rho, tau of answers (parsed, unparsed = 3) against the demo means, straight from scipy."""
    from convis_tasks.scoring.parsing import parse_score

    x = [parse_score(a) or 3.0 for a in answers]
    y = [r[GT_KEYS[concept]] for r in run_seed_rows]
    return 100 * spearmanr(x, y).statistic, 100 * kendalltau(x, y).statistic


def test_pair_global_and_retrieval_tables_side_by_side(runs):
    from test_report_support import seeded_answer

    items = load_inputs([f"A={runs / 'a'}", str(runs / "b")])
    assert [i.label for i in items] == ["A", "org/model-b-2b"]
    report = build_report(items, load_ground_truth(DEMO_GT), load_rankings(DEMO_RANKINGS),
                          ReportOptions(weights=parse_weights("main_action=0.4,location=0.6")))
    keys = [t.key for t in report.tables]
    assert keys == ["pairs", "global", "retrieval"]  # ConVIS.jsonl holds means only: no ceiling
    pairs = report.tables[0]
    rows = demo_rows()
    for row, seed in zip(pairs.rows, (1, 2)):
        rhos = []
        for concept in GT_KEYS:
            answers = [seeded_answer(seed, f"convis_{concept}", i, 5) for i in range(len(rows))]
            rho, tau = _scipy(rows, concept, answers)
            assert row.values[f"{concept}.spearman"] == pytest.approx(rho, abs=1e-9)
            assert row.values[f"{concept}.kendall"] == pytest.approx(tau, abs=1e-9)
            rhos.append(rho)
        assert row.values["mean.spearman"] == pytest.approx(sum(rhos) / 5, abs=1e-9)
        assert row.values["n"] == 11 and row.values["unparsed"] == 5 * 2  # answers 4 and 9 of each task
    assert [r.label for r in report.tables[1].rows] == ["A"]  # only run a has convis_global
    retrieval = report.tables[2]
    assert [r.label for r in retrieval.rows] == ["A", RANDOM_LABEL] and retrieval.rows[1].reference
    assert retrieval.rows[1].values["location.r@1"] == pytest.approx(25.0)  # 1 / 4 candidates
    assert "composite = 0.4 main_action + 0.6 location" in " ".join(pairs.notes)


def test_report_command_writes_markdown_latex_csv_and_json(runs, tmp_path):
    code, out, err = cli("report", f"A={runs / 'a'}", f"B={runs / 'b'}", "--ground-truth", DEMO_GT,
                         "--rankings", DEMO_RANKINGS, "--latex", tmp_path / "t.tex", "--csv", tmp_path / "t.csv",
                         "--json", tmp_path / "t.json", "--concept", "location,main_action")
    assert code == 0, err
    assert out.startswith("### Pair scoring") and "| A |" in out and "| B |" in out
    assert "human-ceiling row" in err and "mean ratings only" in err
    latex = (tmp_path / "t.tex").read_text()
    assert latex.count(r"\begin{table}") == 3 and r"\textbf{" in latex
    data = json.loads((tmp_path / "t.json").read_text())
    assert set(data["pairs"]) == {"A", "B"} and set(data["pairs"]["A"]) == {"main_action", "location", "mean"}
    rows = list(csv.DictReader(open(tmp_path / "t.csv")))
    value = next(r for r in rows if r["table"] == "pairs" and r["row"] == "A" and r["column"] == "location.spearman")
    assert float(value["value"]) == data["pairs"]["A"]["location"]["spearman"]


def test_labels_inputs_and_their_errors(runs, tmp_path):
    code, out, _ = cli("report", runs / "a", runs / "b", "--label", "first", "--label", "second",
                       "--ground-truth", DEMO_GT)
    assert code == 0 and "| first |" in out and "| second |" in out
    code, _, err = cli("report", runs / "a", "--label", "x", "--label", "y", "--ground-truth", DEMO_GT)
    assert code == 2 and "2 --label value(s) for 1 input(s)" in err
    code, _, err = cli("report", f"A={tmp_path / 'nowhere'}", "--ground-truth", DEMO_GT)
    assert code == 2 and "nowhere: input not found" in err
    make_run(tmp_path / "two", date="20260101_000000", model_args="pretrained=org/other-7b")
    make_run(tmp_path / "two", date="20260101_000001", seed=3)
    code, _, err = cli("report", tmp_path / "two", "--ground-truth", DEMO_GT)
    assert code == 2 and "runs of 2 different models" in err and "*_results.json" in err
    code, out, _ = cli("report", tmp_path / "two" / "20260101_000001_results.json", "--ground-truth", DEMO_GT)
    assert code == 0 and "| org/fake-7b |" in out
    code, _, err = cli("report", runs / "a", "--ground-truth", DEMO_GT, "--weights", "location=2")
    assert code == 2 and "weights sum to 2" in err


def test_inputs_sharing_a_label_are_merged_and_release_files_are_read(tmp_path):
    rows = demo_rows()
    for concept, folder in (("location", "Location"), ("main_action", "Main_Action")):
        path = tmp_path / folder / "M"
        path.mkdir(parents=True)
        (path / f"M_{folder}_similarities.json").write_text(json.dumps(
            [{"video1": r["video1"], "video2": r["video2"], "similarity": float(r[GT_KEYS[concept]])} for r in rows]))
    items = load_inputs([str(tmp_path / "Location" / "M" / "M_Location_similarities.json"),
                         str(tmp_path / "Main_Action" / "M" / "M_Main_Action_similarities.json")])
    assert len(items) == 1 and items[0].label == "M" and items[0].concepts == ["main_action", "location"]
    report = build_report(items, load_ground_truth(DEMO_GT), None, ReportOptions())
    row = report.tables[0].rows[0]
    assert row.values["location.spearman"] == pytest.approx(100.0)  # the truth itself
    assert "mean.spearman" not in row.values  # three concepts are missing: no mean


def test_conflicting_merge_is_refused(tmp_path):
    rows = demo_rows()[:3]
    for name, score in (("a", 1.0), ("b", 2.0)):
        (tmp_path / f"{name}_Location_similarities.json").write_text(json.dumps(
            [{"video1": r["video1"], "video2": r["video2"], "similarity": score} for r in rows]))
    with pytest.raises(PredictionError, match="two different scores"):
        load_inputs([f"M={tmp_path / 'a_Location_similarities.json'}", f"M={tmp_path / 'b_Location_similarities.json'}"])


def test_report_path_imports_neither_torch_lmms_eval_nor_matplotlib(runs, tmp_path):
    code = f"""
import argparse, sys
from convis_tasks.cli.report import add_parsers
p = argparse.ArgumentParser(); sub = p.add_subparsers(dest="command", required=True); add_parsers(sub)
assert "scipy" not in sys.modules, "registering the commands must stay light"
for argv in (["report", "{runs / 'a'}", "--ground-truth", "{DEMO_GT}", "--rankings", "{DEMO_RANKINGS}",
              "--bootstrap", "50", "--weights", "location=1", "--latex", "{tmp_path / 'x.tex'}"],
             ["submit", "{runs / 'a'}", "-o", "{tmp_path / 's.json'}", "--size", "7B"],
             ["validate", "{tmp_path / 's.json'}", "--ground-truth", "{DEMO_GT}", "--any-data"],
             ["score", "{tmp_path / 's.json'}", "--ground-truth", "{DEMO_GT}", "--json"]):
    args = p.parse_args(argv)
    assert args.func(args) == 0, argv
import convis_tasks.report.plots
heavy = [m for m in ("torch", "lmms_eval", "matplotlib", "torchvision", "transformers") if m in sys.modules]
assert not heavy, heavy
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]


# --- the release -------------------------------------------------------------------------------------------------

def test_release_report_matches_convis_correlate_and_has_the_ceiling_row(reference):
    from convis_tasks.scoring.evaluate import run_correlate
    from convis_tasks.reading.inputs import load_release_model

    raw = str(reference / "vicos.user_inputs.json")
    dino = reference / "computed_similarities" / "dinov2-large" / "dinov2-large_similarities.json"
    items = [load_release_model(str(reference), "LLaVA-OneVision-Qwen2-7B")] + load_inputs([f"DINOv2={dino}"])
    report = build_report(items, load_ground_truth(raw), None, ReportOptions())
    pairs, glob = report.tables[0], report.tables[1]
    assert [r.label for r in pairs.rows] == ["LLaVA-OneVision-Qwen2-7B", HUMAN_LABEL]
    llava = pairs.rows[0].values
    for concept, published in zip(GT_KEYS, (51.8, 48.4, 58.6, 58.9, 41.0)):
        folder = {"main_action": "Main_Action", "main_subjects": "Main_Subjects", "main_objects": "Main_Objects",
                  "location": "Location", "order_of_actions": "Order_Of_Actions"}[concept]
        path = reference / "computed_conditioned_similarities" / folder / "LLaVA-OneVision-Qwen2-7B" / \
            f"LLaVA-OneVision-Qwen2-7B_{folder}_similarities.json"
        assert llava[f"{concept}.spearman"] == run_correlate(str(path), raw)[concept]["spearman"]
        assert round(llava[f"{concept}.spearman"], 1) == published
    assert [round(glob.rows[0].values[f"{c}.spearman"], 1) for c in GT_KEYS] == [33.3, 40.9, 37.4, 57.4, 34.6]
    human = pairs.rows[1]
    assert human.reference and all(0 < human.values[f"{c}.spearman"] < 100 for c in GT_KEYS)
    assert math.isnan(llava.get("composite.spearman", math.nan))  # no --weights, no composite


def test_hostile_labels_are_inert_in_markdown_latex_and_csv():
    hostile = ["<script>alert(1)</script>", "=HYPERLINK(\"http://x\",\"y\")", "\\input{/etc/passwd}", "a|b\x1b[2J",
               "-2+3"]
    table = Table("t", "Hostile", [Column("rho", "rho", 1)], [Row(h, {"rho": 1.0 + i}) for i, h in enumerate(hostile)],
                  notes=["scored on fewer pairs: <b>=cmd</b>"])
    md = to_markdown([table])
    assert "<script>" not in md and "&lt;script&gt;alert(1)&lt;/script&gt;" in md
    assert "| a\\|b\\\\x1b\\[2J |" in md and "\x1b" not in md
    assert "_Note: scored on fewer pairs: &lt;b&gt;=cmd&lt;/b&gt;_" in md
    latex = to_latex([table])
    assert "\\input{" not in latex and r"\textbackslash{}input\{/etc/passwd\}" in latex
    rows = list(csv.DictReader(io.StringIO(to_csv([table]))))
    labels = [r["row"] for r in rows if r["column"] == "rho"]
    assert labels[1] == "'=HYPERLINK(\"http://x\",\"y\")" and labels[4] == "'-2+3"
    assert labels[0] == "<script>alert(1)</script>"  # CSV is not HTML: only formulas and control characters matter
    assert {"table": "t", "row": "", "column": "note", "value": "scored on fewer pairs: <b>=cmd</b>"} in rows
    assert [float(r["value"]) for r in rows if r["column"] == "rho"] == [1.0, 2.0, 3.0, 4.0, 5.0]  # numbers stay numbers
