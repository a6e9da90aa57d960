"""A concept whose answers are all unparsed says so in the tables and ends the command with exit status 1, unless
``--allow-unparsed`` (#21). What counts as unparsed is ``scoring/unparsed.py``'s rule.
(``convis run`` end to end: ``test_run.py::test_a_run_whose_answers_are_all_unparsed_says_so_and_exits_1_unless_allowed``.)
"""

from __future__ import annotations

import json
import math

from cli_helpers import convis_in_process as cli
from test_report_support import DEMO_GT, DEMO_RANKINGS, make_run, seeded_answer

from convis_tasks.scoring.unparsed import all_unparsed

SILENT = {"convis_location", "convis_global", "convis_retrieval_location"}  # tasks whose every answer is unparsed


def _run(tmp_path):
    def answer(task, i, doc):
        return "I would rather not say." if task in SILENT else seeded_answer(0, task, i, unparsed_every=5)

    make_run(tmp_path / "run", answer=answer)
    return tmp_path / "run"


def test_all_unparsed_is_the_unparsed_rule_applied_to_every_answer():
    assert all_unparsed([None, math.nan, None]) is True
    assert all_unparsed([None, 3.0]) is False and all_unparsed([]) is False  # nothing at all is not "all unparsed"
    assert all_unparsed(iter([None])) is True


def test_correlate_says_which_concepts_and_exits_1_after_printing_the_table(tmp_path):
    run = _run(tmp_path)
    code, out, err = cli("correlate", run, "--ground-truth", DEMO_GT)
    assert code == 1
    assert "| Location | - | - | 11* | 11 (all) |" in out
    assert "| Main Action | " in out and "| 11* | 2 |" in out  # the other concepts: scored, some unparsed
    assert "Note: Location: all 11 answers unparsed, so every pair counts as the neutral 3.0" in out
    assert "Note: Location (concept-free answers): all 11 answers unparsed" in out
    last = err.strip().splitlines()[-1]
    assert last.startswith(f"convis: error: {run}: every answer is unparsed for location, main_action "
                           "(concept-free), main_subjects (concept-free)")
    assert "--allow-unparsed accepts" in last and "correlation undefined" not in err  # the reason, not the symptom
    code, out, _ = cli("correlate", run, "--ground-truth", DEMO_GT, "--json", "--concept", "location")
    data = json.loads(out)
    assert code == 1 and data["location"]["all_unparsed"] is True and data["global"]["location"]["all_unparsed"] is True
    assert cli("correlate", run, "--ground-truth", DEMO_GT, "--allow-unparsed")[0] == 0
    code, _, _ = cli("correlate", run, "--ground-truth", DEMO_GT, "--concept", "main_action", "--json")
    assert code == 1  # the concept-free answers of main_action are all unparsed too


def test_retrieval_says_it_too(tmp_path):
    run = _run(tmp_path)
    code, out, err = cli("retrieval", run, "--ground-truth", DEMO_RANKINGS)
    assert code == 1 and "Note: Location: all 16 answers unparsed, so every candidate counts as the neutral 3.0 " \
                         "and they all tie" in out
    assert "every answer is unparsed for location:" in err.strip().splitlines()[-1]
    code, out, _ = cli("retrieval", run, "--ground-truth", DEMO_RANKINGS, "--json", "--allow-unparsed")
    assert code == 0 and json.loads(out)["location"]["all_unparsed"] is True
    assert "all_unparsed" not in json.loads(out)["main_action"]
