"""Issue #11, input side: every input file read one strict way; each test builds the hostile input and fails on the
old behaviour (a silent coercion, a silent choice, a null result or a traceback)."""

import json
import os
import shutil
import threading

import pytest

from convis_tasks.scoring.agreement import AgreementError, agreement
from convis_tasks.reading.annotations import AnnotationError, EmptyGroundTruthError, load_ground_truth, load_ratings
from convis_tasks.reading.datafolder import DATA_ENV, DEMO_DIR
from convis_tasks.reading.names import OUTSIDE_ENV, VideoPathError, walk_files
from convis_tasks.reading.documents import check_videos, load_documents
from convis_tasks.scoring.metrics import EmptyEvaluationError
from convis_tasks.reading.predictions import (SCALE_RATING, SCALE_SIMILARITY, EmptyPredictionsError, PredictionError,
                                              load_log_samples, load_release)
from convis_tasks.reading.rankings import load_candidate_sets, load_rankings, load_retrieval_predictions

GT_KEYS = ["MainAction", "MainSubjects", "Location", "OrderOfActions", "MainObjects"]
RAW_KEYS = ["MainAction", "MainSubjects", "Location", "OrderofActions", "MainObjects"]


def _row(v1, v2, value=3.0):
    return {"video1": f"videos/{v1}", "video2": f"videos/{v2}", **dict.fromkeys(GT_KEYS, value)}


def _jsonl(path, rows):
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


def _raw(uid, pair, values):
    return {"user_id": uid, "video_pair_id": pair, "user_inputs": dict(zip(RAW_KEYS, values))}


# --- ground truth ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("rows, message", [
    ([_row("a.mp4", "b.mp4"), _row("b.mp4", "a.mp4")],
     "line 2: pair b.mp4 / a.mp4 mirrors pair a.mp4 / b.mp4 of line 1"),
    ([_row("a.mp4", "a.mp4")], "line 1: pair a.mp4 / a.mp4 pairs a video with itself"),
    ([{**_row("a.mp4", "b.mp4"), "Location": True}], "line 1: field 'Location' is not a number: True"),
    ([{**_row("a.mp4", "b.mp4"), "Location": "4 "}], "line 1: field 'Location' is not a number"),
    ([{**_row("a.mp4", "b.mp4"), "Location": "nan"}], "line 1: field 'Location' is not a number"),
    (['{"video1": "a.mp4", "video2": "b.mp4", "MainAction": 3, "MainSubjects": 3, "Location": 3, '
      '"OrderOfActions": 3, "MainObjects": 3, "Location": 5}'], "line 1: duplicate key 'Location'"),
    (['{"video1": "a.mp4", "video2": "b.mp4", "MainAction": 3, "MainSubjects": 3, "Location": NaN, '
      '"OrderOfActions": 3, "MainObjects": 3}'], "line 1: NaN is not a JSON number"),
    (['{"video1": "a.mp4", "video2": "b.mp4", "MainAction": 3, "MainSubjects": 3, "Location": 1e999, '
      '"OrderOfActions": 3, "MainObjects": 3}'], "line 1: number 1e999 is not finite"),
])
def test_ground_truth_violations_name_file_line_and_field(tmp_path, rows, message):
    path = _jsonl(tmp_path / "ConVIS.jsonl", rows)
    with pytest.raises(AnnotationError) as info:
        load_ground_truth(path)
    assert f"{path}, {message}" in str(info.value)


def test_release_tolerance_numeral_strings_still_read(tmp_path):
    path = _jsonl(tmp_path / "ConVIS.jsonl", [{**_row("a.mp4", "b.mp4"), "Location": "3.75"}])
    assert load_ground_truth(path).by_concept("location") == {("a.mp4", "b.mp4"): 3.75}


def test_nested_shape_rejects_booleans_and_duplicate_keys(tmp_path):
    path = tmp_path / "gt.json"
    path.write_text(json.dumps([{"video1": "a.mp4", "video2": "b.mp4",
                                 "conditioned_similarity": {**dict.fromkeys(GT_KEYS, 3), "MainAction": False}}]))
    with pytest.raises(AnnotationError, match="entry 0: field 'MainAction' is not a number: False"):
        load_ground_truth(path)
    path.write_text('[{"video1": "a.mp4", "video1": "c.mp4", "video2": "b.mp4"}]')
    with pytest.raises(AnnotationError, match="duplicate key 'video1'"):
        load_ground_truth(path)


@pytest.mark.parametrize("content", ["", "\n\n", "[]"])
def test_empty_ground_truth_is_an_error(tmp_path, content):
    path = tmp_path / ("ConVIS.jsonl" if content != "[]" else "gt.json")
    path.write_text(content)
    with pytest.raises(EmptyGroundTruthError, match="no pairs"):
        load_ground_truth(path)
    assert issubclass(EmptyGroundTruthError, EmptyEvaluationError) and issubclass(EmptyGroundTruthError,
                                                                                  AnnotationError)


def test_raw_annotator_rating_a_pair_twice_differently_is_an_error_in_either_order(tmp_path):
    first = _raw("u1", "a.mp4-b.mp4", ["5", "4", "3", "2", "1"])
    second = _raw("u1", "a.mp4-b.mp4", ["1", "4", "3", "2", "1"])
    other = _raw("u2", "a.mp4-b.mp4", ["3", "3", "3", "3", "3"])
    for records in ([first, other, second], [second, other, first]):
        path = tmp_path / "vicos.user_inputs.json"
        path.write_text(json.dumps(records))
        with pytest.raises(AnnotationError, match="annotator u1 rated this pair twice with different ratings"):
            load_ground_truth(path)


def test_raw_identical_double_submission_is_kept_as_the_release_kept_it_whatever_the_order(tmp_path):
    same = _raw("u1", "a.mp4-b.mp4", ["5", "4", "3", "2", "1"])
    other = _raw("u2", "a.mp4-b.mp4", ["2", "2", "2", "2", "2"])
    results = []
    for records in ([same, same, other], [other, same, same], [same, other, same]):
        path = tmp_path / "vicos.user_inputs.json"
        path.write_text(json.dumps(records))
        truth = load_ground_truth(path)
        results.append(truth.by_concept("main_action"))
    # by hand: the release's mean counts both submissions: (5 + 5 + 2) / 3 = 4
    assert results == [{("a.mp4", "b.mp4"): 4.0}] * 3


@pytest.mark.parametrize("record, message", [
    (_raw("u1", "a.mp4-b.mp4", ["4.5", "4", "3", "2", "1"]), "'MainAction' = '4.5' is not a whole rating"),
    (_raw("u1", "a.mp4-b.mp4", [True, "4", "3", "2", "1"]), "'MainAction' is not a number: True"),
    (_raw("u1", "a.mp4-b.mp4", ["0", "4", "3", "2", "1"]), "outside the rating scale"),
    (_raw("u1", "a.mp4-a.mp4", ["1", "4", "3", "2", "1"]), "pairs a video with itself"),
    (_raw("u1", "a.mp4-b.mp4-c.mp4", ["1", "4", "3", "2", "1"]), "ambiguous"),
    ({"video_pair_id": "a.mp4-b.mp4", "user_inputs": dict(zip(RAW_KEYS, "12345"))}, "'user_id'"),
])
def test_raw_rating_violations_name_entry_and_field(tmp_path, record, message):
    path = tmp_path / "vicos.user_inputs.json"
    path.write_text(json.dumps([_raw("u0", "x.mp4-y.mp4", ["1", "2", "3", "4", "5"]), record]))
    with pytest.raises(AnnotationError, match="entry 1") as info:
        load_ground_truth(path)
    assert message in str(info.value)


def test_raw_mirrored_pair_is_an_error(tmp_path):
    path = tmp_path / "vicos.user_inputs.json"
    path.write_text(json.dumps([_raw("u1", "a.mp4-b.mp4", list("12345")), _raw("u2", "b.mp4-a.mp4", list("12345"))]))
    with pytest.raises(AnnotationError, match="entry 1.*mirrors pair a.mp4 / b.mp4"):
        load_ground_truth(path)


# --- agreement ---------------------------------------------------------------------------------------------------

def test_agreement_without_any_pair_rated_twice_is_a_clear_error_not_a_library_traceback(tmp_path):
    path = tmp_path / "vicos.user_inputs.json"
    path.write_text(json.dumps([_raw("u1", "a.mp4-b.mp4", list("12345")), _raw("u2", "c.mp4-d.mp4", list("54321"))]))
    with pytest.raises(AgreementError, match="main_action: no pair was rated by two annotators"):
        agreement(load_ratings(path))
    assert issubclass(AgreementError, AnnotationError)  # the CLI's clean error path
    with pytest.raises(EmptyEvaluationError):
        agreement([])


def test_convis_agreement_exits_2_with_one_line(tmp_path):
    import subprocess
    import sys

    path = tmp_path / "vicos.user_inputs.json"
    path.write_text(json.dumps([_raw("u1", "a.mp4-b.mp4", list("12345")), _raw("u2", "c.mp4-d.mp4", list("54321"))]))
    run = subprocess.run([sys.executable, "-m", "convis_tasks", "agreement", str(path)], capture_output=True,
                         text=True)
    assert run.returncode == 2 and "Traceback" not in run.stderr
    assert "no pair was rated by two annotators" in run.stderr


# --- predictions -------------------------------------------------------------------------------------------------

def _release(tmp_path, values, name="Model_Location_similarities.json"):
    path = tmp_path / name
    rows = [{"video1": f"videos/a{i}.mp4", "video2": f"videos/b{i}.mp4", "similarity": v} for i, v in enumerate(values)]
    path.write_text(json.dumps(rows))
    return path


@pytest.mark.parametrize("values, message", [
    ([4.0, 7], "entry 1, field 'similarity': score 7 is off the 1-5 rating scale"),
    ([4.0, -2.0], "entry 1, field 'similarity': score -2.0 is off the 1-5 rating scale"),
    ([4.0, 1e308], "score 1e+308 is on no score scale"),
    ([4.0, True], "entry 1, field 'similarity': score True is not a number"),
    ([4.0, "4"], "score '4' is not a number"),
    ([4.0, 0.5], "0.5 is off the 1-5 rating scale"),  # a similarity among ratings: one file, one scale
    ([0.0, 1.0, 0.0], "ambiguous"),
])
def test_release_scores_off_the_contract_are_errors_naming_file_entry_field(tmp_path, values, message):
    path = _release(tmp_path, values)
    with pytest.raises(PredictionError) as info:
        load_release(str(path))
    assert str(path) in str(info.value) and message in str(info.value)


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", "1e999"])
def test_release_non_finite_literals_are_errors(tmp_path, literal):
    path = tmp_path / "Model_Location_similarities.json"
    path.write_text(f'[{{"video1": "a.mp4", "video2": "b.mp4", "similarity": {literal}}}]')
    with pytest.raises(PredictionError, match=str(path)):
        load_release(str(path))


def test_release_keeps_the_documented_zero_as_unparsed_and_reads_similarity_files(tmp_path):
    rated = load_release(str(_release(tmp_path, [4.0, 0.0, 1.0])))
    assert rated.scale == SCALE_RATING and list(rated.scores["location"].values()) == [4.0, None, 1.0]
    cosine = load_release(str(_release(tmp_path, [0.9, 0.0, 1.0000001], "m_similarities.json")))
    assert cosine.scale == SCALE_SIMILARITY and list(cosine.scores[None].values()) == [0.9, 0.0, 1.0000001]


@pytest.mark.parametrize("rows, message", [
    ([("a.mp4", "b.mp4", 3.0), ("b.mp4", "a.mp4", 3.0)], "entry 1: pair b.mp4 / a.mp4 mirrors"),
    ([("a.mp4", "b.mp4", 3.0), ("x/a.mp4", "b.mp4", 3.0)], "entry 1: duplicate pair a.mp4 / b.mp4"),
    ([("a.mp4", "a.mp4", 3.0)], "pairs a video with itself"),
])
def test_release_duplicates_mirrors_and_self_pairs_are_errors(tmp_path, rows, message):
    path = tmp_path / "Model_Location_similarities.json"
    path.write_text(json.dumps([{"video1": a, "video2": b, "similarity": s} for a, b, s in rows]))
    with pytest.raises(PredictionError, match=message):
        load_release(str(path))


def test_empty_predictions_are_an_error(tmp_path):
    path = tmp_path / "Model_Location_similarities.json"
    path.write_text("[]")
    with pytest.raises(EmptyPredictionsError, match="no predictions"):
        load_release(str(path))
    samples = tmp_path / "run" / "x_samples_convis_location.jsonl"
    samples.parent.mkdir()
    samples.write_text("")
    with pytest.raises(EmptyPredictionsError):
        load_log_samples(str(samples.parent))
    assert issubclass(EmptyPredictionsError, EmptyEvaluationError)


def test_predictions_sharing_no_pair_with_the_truth_raise_in_the_cli(tmp_path):
    from convis_tasks.scoring.evaluate import run_correlate

    truth = _jsonl(tmp_path / "ConVIS.jsonl", [_row("a.mp4", "b.mp4", 2.0), _row("c.mp4", "d.mp4", 4.0)])
    preds = _release(tmp_path, [4.0, 2.0])  # pairs a0/b0, a1/b1: none in the truth
    with pytest.raises(EmptyEvaluationError, match="share none"):
        run_correlate(str(preds), str(truth))


def _sample(record):
    return json.dumps({"doc_id": 0, "spearman": record, "kendall": record})


@pytest.mark.parametrize("score, message", [(7.0, "7.0"), (True, "True"), (0.0, "0.0"), ("4", "'4'")])
def test_logged_scores_off_the_contract_are_errors(tmp_path, score, message):
    path = tmp_path / "x_samples_convis_location.jsonl"
    record = {"kind": "pair", "video1": "a.mp4", "video2": "b.mp4", "concept": "location", "answer": "4",
              "score": score}
    path.write_text(_sample(record) + "\n")
    with pytest.raises(PredictionError, match=f"line 1: field 'score' = {message}"):
        load_log_samples(str(path))


def test_logged_sample_with_two_different_records_is_an_error(tmp_path):
    path = tmp_path / "x_samples_convis_location.jsonl"
    record = {"kind": "pair", "video1": "a.mp4", "video2": "b.mp4", "concept": "location", "answer": "4",
              "score": 4.0}
    path.write_text(json.dumps({"spearman": record, "kendall": {**record, "score": 1.0}}) + "\n")
    with pytest.raises(PredictionError, match="line 1: the sample's metrics carry different ConViS records"):
        load_log_samples(str(path))


# --- retrieval ---------------------------------------------------------------------------------------------------

def _rankings(tmp_path, text):
    path = tmp_path / "ranked.json"
    path.write_text(text)
    return path


@pytest.mark.parametrize("text, message", [
    ('[{"anchor": "a.mp4", "Location": {"b.mp4": 1, "c.mp4": 2, "b.mp4": 3}}]', "duplicate key 'b.mp4'"),
    ('[{"anchor": "a.mp4", "Location": {"a.mp4": 1, "c.mp4": 2}}]', "anchor a.mp4 is listed as its own candidate"),
    ('[{"anchor": "a.mp4", "Location": {"x/b.mp4": 1, "y/b.mp4": 2}}]', "candidate b.mp4 is named twice"),
    ('[{"anchor": "a.mp4", "Location": {"b.mp4": 1, "c.mp4": 1e999}}]', "1e999 is not finite"),
    ('[{"anchor": "a.mp4", "Location": {"b.mp4": 1, "c.mp4": 1.5}}]', "has rank 1.5"),
    ('[{"anchor": "a.mp4", "Location": {"b.mp4": 1, "c.mp4": true}}]', "has rank True"),
    ('[]', "no anchors"),
])
def test_ranking_violations_are_errors(tmp_path, text, message):
    path = _rankings(tmp_path, text)
    with pytest.raises(AnnotationError) as info:
        load_rankings(path)
    assert str(path) in str(info.value) and message in str(info.value)


def test_whole_float_ranks_still_read(tmp_path):
    path = _rankings(tmp_path, '[{"anchor": "a.mp4", "Location": {"b.mp4": 1.0, "c.mp4": 2}}]')
    assert load_rankings(path)["location"] == {"a.mp4": {"b.mp4": 1.0, "c.mp4": 2.0}}


def test_candidate_sets_refuse_self_and_repeated_candidates(tmp_path):
    path = tmp_path / "to_be_ranked.json"
    path.write_text(json.dumps({"a.mp4": ["b.mp4", "a.mp4"]}))
    with pytest.raises(AnnotationError, match="own candidate"):
        load_candidate_sets(path)
    path.write_text('{"a.mp4": ["b.mp4", "c.mp4"], "a.mp4": ["d.mp4", "e.mp4"]}')
    with pytest.raises(AnnotationError, match="duplicate key 'a.mp4'"):
        load_candidate_sets(path)


@pytest.mark.parametrize("text, message", [
    ('{"a.mp4": {"b.mp4": 4.0, "c.mp4": 7}}', "candidate c.mp4: score 7 is off the 1-5 rating scale"),
    ('{"a.mp4": {"b.mp4": 4.0, "c.mp4": -1.5}}', "score -1.5 is off the 1-5 rating scale"),
    ('{"a.mp4": {"b.mp4": 4.0, "c.mp4": false}}', "score False is not a number"),
    ('{"a.mp4": {"b.mp4": 4.0, "c.mp4": 1e308}}', "on no score scale"),
    ('{"a.mp4": {"b.mp4": 4.0, "b.mp4": 2.0}}', "duplicate key 'b.mp4'"),
    ('{"a.mp4": {"a.mp4": 4.0, "b.mp4": 2.0}}', "own candidate"),
    ('{}', "no anchors"),
])
def test_retrieval_score_violations_are_errors(tmp_path, text, message):
    path = tmp_path / "Model_Location_ranking.json"
    path.write_text(text)
    with pytest.raises(PredictionError) as info:
        load_retrieval_predictions(path)
    assert str(path) in str(info.value) and message in str(info.value)


# --- videos: containment, ambiguity, loops, optional videos ------------------------------------------------------

def _data(tmp_path, rows=None):
    data = tmp_path / "data"
    shutil.copytree(DEMO_DIR, data)
    if rows is not None:
        _jsonl(data / "ConVIS.jsonl", rows)
    return data


@pytest.mark.parametrize("video", ["../outside.mp4", "videos/../../outside.mp4", "/etc/passwd"])
def test_video_paths_leaving_the_data_folder_are_refused_unless_allowed(tmp_path, monkeypatch, video):
    (tmp_path / "outside.mp4").write_bytes(b"not a video")
    data = _data(tmp_path, [{**_row("v01.mp4", "v02.mp4"), "video2": video}])
    monkeypatch.delenv(OUTSIDE_ENV, raising=False)
    with pytest.raises(VideoPathError, match="v01.mp4 / ") as info:
        load_documents("location", data)
    assert repr(video) in str(info.value) and OUTSIDE_ENV in str(info.value)
    if video != "/etc/passwd" or os.path.isfile(video):
        monkeypatch.setenv(OUTSIDE_ENV, "1")
        assert load_documents("location", data)[0]["video2_path"] == str(data / video)


def test_dotdot_that_stays_inside_is_fine(tmp_path):
    data = _data(tmp_path, [{**_row("v01.mp4", "v02.mp4"), "video2": "videos/../videos/v02.mp4"}])
    assert os.path.samefile(load_documents("location", data)[0]["video2_path"], data / "videos" / "v02.mp4")


def test_two_files_with_the_searched_base_name_are_an_error_listing_both(tmp_path):
    data = _data(tmp_path, [_row("v01.mp4", "v02.mp4")])
    (data / "videos" / "v01.mp4").rename(data / "clips_a.mp4")
    for sub in ("x", "y"):
        (data / sub).mkdir()
        shutil.copy(data / "clips_a.mp4", data / sub / "v01.mp4")
    with pytest.raises(VideoPathError, match="ambiguous") as info:
        load_documents("location", data)
    assert str(data / "x" / "v01.mp4") in str(info.value) and str(data / "y" / "v01.mp4") in str(info.value)


def test_one_file_reached_through_a_symlinked_folder_is_not_ambiguous(tmp_path):
    data = _data(tmp_path, [_row("v01.mp4", "v02.mp4")])
    (data / "videos").rename(data / "real")
    (data / "alias").symlink_to(data / "real", target_is_directory=True)
    doc = load_documents("location", data)[0]
    assert os.path.samefile(doc["video1_path"], data / "real" / "v01.mp4")


def test_symlink_loops_do_not_hang_the_base_name_search(tmp_path):
    data = _data(tmp_path, [_row("v01.mp4", "v02.mp4")])
    (data / "videos").rename(data / "deep")
    (data / "deep" / "loop").symlink_to(data, target_is_directory=True)
    (data / "deep" / "self").symlink_to(data / "deep", target_is_directory=True)
    result = {}
    worker = threading.Thread(target=lambda: result.setdefault("docs", load_documents("location", data)),
                              daemon=True)
    worker.start()
    worker.join(timeout=60)
    assert not worker.is_alive(), "the base-name search hung on a symlink loop"
    assert os.path.samefile(result["docs"][0]["video1_path"], data / "deep" / "v01.mp4")
    assert len(walk_files(data)) < 50


def test_videos_required_by_default_and_optional_for_caption_only_models(tmp_path, monkeypatch):
    data = _data(tmp_path)
    victim = sorted((data / "videos").iterdir())[0]
    victim.unlink()
    with pytest.raises(FileNotFoundError, match=victim.name):
        load_documents("location", data)
    docs = load_documents(None, data, videos_required=False)
    paths = [d[f"video{i}_path"] for d in docs for i in (1, 2)]
    assert None in paths and all(p is None or os.path.isfile(p) for p in paths)
    assert sum(p is None for p in paths) == sum(
        1 for d in docs for i in (1, 2) if d[f"video{i}"].endswith(victim.name))
    with pytest.raises(FileNotFoundError):
        load_documents("location", data)


def test_check_videos_lists_every_problem_without_building_datasets(tmp_path, monkeypatch):
    data = _data(tmp_path)
    monkeypatch.delenv("CONVIS_RANKINGS", raising=False)
    assert check_videos(data) == []
    victim = sorted((data / "videos").iterdir())[0]
    victim.unlink()
    problems = check_videos(data)
    assert problems and all(victim.name in p for p in problems)
    # one line per path as written (videos/v01.mp4 in ConVIS.jsonl, v01.mp4 in ranked.json), not one per pair
    assert len(problems) == 2


def test_env_data_dir_is_honoured_by_check_videos(tmp_path, monkeypatch):
    data = _data(tmp_path)
    monkeypatch.setenv(DATA_ENV, str(data))
    assert check_videos() == []


def test_alpha_of_identical_ratings_is_nan_with_a_named_warning():
    import math
    import warnings

    import numpy as np

    from convis_tasks.scoring.agreement import krippendorff_alpha
    from convis_tasks.scoring.metrics import ConstantInputWarning

    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        with pytest.warns(ConstantInputWarning, match="location undefined: every rating is 3"):
            assert math.isnan(krippendorff_alpha(np.full((2, 3), 3.0), concept="location"))


def test_a_line_separator_inside_an_answer_is_not_a_line_end(tmp_path):
    path = tmp_path / "x_samples_convis_location.jsonl"
    record = {"kind": "pair", "video1": "a.mp4", "video2": "b.mp4", "concept": "location",
              "answer": "Both\u2028Score: 4", "score": 4.0}
    path.write_text(json.dumps({"spearman": record}, ensure_ascii=False) + "\n", encoding="utf-8")
    assert load_log_samples(str(path)).answers["location"][("a.mp4", "b.mp4")] == "Both\u2028Score: 4"
    truth = tmp_path / "ConVIS.jsonl"
    truth.write_text(json.dumps({**_row("a.mp4", "b.mp4"), "note": "x\u2028y"}, ensure_ascii=False) + "\n",
                     encoding="utf-8")
    assert len(load_ground_truth(truth)) == 1


def test_unreadable_bytes_are_errors_naming_the_file_not_tracebacks(tmp_path):
    from convis_tasks.harness.journal import AnswerJournal, JournalError

    samples = tmp_path / "x_samples_convis_location.jsonl"
    samples.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(PredictionError, match="cannot read"):
        load_log_samples(str(samples))
    (tmp_path / "j").mkdir()
    (tmp_path / "j" / "answers.rank0.jsonl").write_bytes(b"\xff\xfe\x00garbage\n")
    with pytest.raises(JournalError, match="cannot read"):
        AnswerJournal(tmp_path / "j", "m")


def test_score_pairs_refuses_booleans_and_infinities_instead_of_reading_them_as_numbers():
    from convis_tasks.scoring.metrics import score_pairs

    keys = [(f"a{i}.mp4", f"b{i}.mp4") for i in range(3)]
    truth = dict(zip(keys, [1.0, 2.0, 3.0]))
    with pytest.raises(ValueError, match="a1.mp4 / b1.mp4: prediction True"):
        score_pairs(dict(zip(keys, [1.0, True, 3.0])), truth)
    with pytest.raises(ValueError, match="prediction inf"):
        score_pairs(dict(zip(keys, [1.0, float("inf"), 3.0])), truth)
    with pytest.raises(ValueError, match="reference False"):
        score_pairs(dict(zip(keys, [1.0, 2.0, 3.0])), {**truth, keys[0]: False})


def test_hook_records_of_one_pair_under_two_paths_must_agree():
    from convis_tasks import hooks

    docs = [{"video1": f"v/{i}a.mp4", "video2": f"v/{i}b.mp4", "concept": "location", "gt": {"location": 1.0 + i}}
            for i in range(3)]
    records = [hooks.process_results(d, [a])["spearman"] for d, a in zip(docs, ["1", "2", "3"])]
    moved = dict(records[0], video1="elsewhere/0a.mp4", score=5.0)  # same pair by base name, another answer
    with pytest.raises(ValueError, match="scored twice"):
        hooks.aggregate_spearman(records + [moved])


def test_check_videos_names_a_rankings_variable_pointing_nowhere(tmp_path, monkeypatch):
    data = _data(tmp_path)
    monkeypatch.setenv("CONVIS_RANKINGS", str(tmp_path / "nowhere.json"))
    assert check_videos(data) == [f"$CONVIS_RANKINGS points at {tmp_path / 'nowhere.json'}, which is not a file"]


def test_base_name_search_does_not_leave_the_data_folder_through_a_symlinked_folder(tmp_path, monkeypatch):
    data = _data(tmp_path, [_row("v01.mp4", "v02.mp4")])
    elsewhere = tmp_path / "elsewhere"
    (data / "videos").rename(elsewhere)
    (data / "linked").symlink_to(elsewhere, target_is_directory=True)
    (data / "root").symlink_to("/", target_is_directory=True)  # would walk the whole machine
    monkeypatch.delenv(OUTSIDE_ENV, raising=False)
    assert len(walk_files(data)) < 50
    with pytest.raises(FileNotFoundError, match="v01.mp4"):
        load_documents("location", data)
    (data / "root").unlink()
    monkeypatch.setenv(OUTSIDE_ENV, "1")  # the user allows it explicitly
    assert os.path.samefile(load_documents("location", data)[0]["video1_path"], elsewhere / "v01.mp4")
    # a data folder that is itself a symlink is inside itself
    assert len(walk_files(data / "linked", allow_outside=False)) == len(list(elsewhere.iterdir()))
