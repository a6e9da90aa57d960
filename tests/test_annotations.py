import json

import pytest

from convis_tasks.reading.annotations import AnnotationError, load_ground_truth, load_ratings, split_pair_id
from convis_tasks.concepts import CONCEPT_KEYS, canonical_concept, parse_concepts

GT_KEYS = ["MainAction", "MainSubjects", "Location", "OrderOfActions", "MainObjects"]
RAW_KEYS = ["MainAction", "MainSubjects", "Location", "OrderofActions", "MainObjects"]

# two pairs rated by annotators u1, u2 (pair a-b) and u1 (pair c-d); means by hand
RAW = [
    {"user_id": "u1", "video_pair_id": "a.mp4-b.mp4", "user_inputs": dict(zip(RAW_KEYS, ["5", "4", "3", "2", "1"]))},
    {"user_id": "u2", "video_pair_id": "a.mp4-b.mp4", "user_inputs": dict(zip(RAW_KEYS, ["4", "4", "2", "2", "2"]))},
    {"user_id": "u1", "video_pair_id": "c.mp4-d.mp4", "user_inputs": dict(zip(RAW_KEYS, ["1", "2", "3", "4", "5"]))},
]
MEANS = {("a.mp4", "b.mp4"): [4.5, 4.0, 2.5, 2.0, 1.5], ("c.mp4", "d.mp4"): [1.0, 2.0, 3.0, 4.0, 5.0]}


def _write_three_shapes(tmp_path):
    raw = tmp_path / "vicos.user_inputs.json"
    raw.write_text(json.dumps(RAW))
    nested = tmp_path / "gt_conditioned_similarities.json"
    nested.write_text(json.dumps([
        {"video1": f"videos_trimmed/{k[0]}", "video2": f"videos_trimmed/sport/{k[1]}",
         "conditioned_similarity": dict(zip(GT_KEYS, v))} for k, v in MEANS.items()]))
    jsonl = tmp_path / "ConVIS.jsonl"
    jsonl.write_text("".join(json.dumps({"video1": f"videos/{k[0]}", "video2": f"videos/{k[1]}",
                                         **dict(zip(GT_KEYS, v))}) + "\n" for k, v in MEANS.items()))
    return raw, nested, jsonl


def test_three_shapes_give_the_same_means(tmp_path):
    for path in _write_three_shapes(tmp_path):
        truth = load_ground_truth(path)
        for i, key in enumerate(GT_KEYS):
            assert truth.by_concept(canonical_concept(key)) == {k: v[i] for k, v in MEANS.items()}, path


def test_folder_resolves_to_its_convis_jsonl(tmp_path):
    _write_three_shapes(tmp_path)
    assert len(load_ground_truth(tmp_path)) == 2


def test_raw_ratings_are_kept_for_agreement(tmp_path):
    raw, nested, _ = _write_three_shapes(tmp_path)
    ratings = load_ratings(raw)
    assert len(ratings) == 3 * 5
    assert {r.annotator for r in ratings} == {"u1", "u2"}
    with pytest.raises(AnnotationError, match="raw per-annotator"):
        load_ratings(nested)


@pytest.mark.parametrize("line, message", [
    ('{"video1": "a.mp4", "video2": "b.mp4", "MainAction": 3, "MainSubjects": 3, "Location": 3, "MainObjects": 3}',
     "line 2: missing concept score 'OrderOfActions'"),
    ('{"video1": "a.mp4", "video2": "b.mp4", "MainAction": 6, "MainSubjects": 3, "Location": 3, '
     '"OrderOfActions": 3, "MainObjects": 3}', "line 2: field 'MainAction' = 6 is outside the rating scale 1-5"),
    ('{"video1": "a.mp4", "MainAction": 3}', "line 2: missing or empty field 'video2'"),
    ('{"video1": "a.mp4", "video2": "b.mp4", "MainAction": "high", "MainSubjects": 3, "Location": 3, '
     '"OrderOfActions": 3, "MainObjects": 3}', "line 2: field 'MainAction' is not a number"),
    ('{"video1": "a.mp4", "video2": ', "line 2: invalid JSON"),
    ('{"video1": "x/c.mp4", "video2": "d.mp4", "MainAction": 3, "MainSubjects": 3, "Location": 3, '
     '"OrderOfActions": 3, "MainObjects": 3}', "duplicate pair c.mp4 / d.mp4 \\(line 2 repeats line 1\\)"),
])
def test_malformed_rows_name_the_file_line_and_field(tmp_path, line, message):
    good = ('{"video1": "c.mp4", "video2": "d.mp4", "MainAction": 3, "MainSubjects": 3, "Location": 3, '
            '"OrderOfActions": 3, "MainObjects": 3}')
    path = tmp_path / "ConVIS.jsonl"
    path.write_text(good + "\n" + line + "\n")
    with pytest.raises(AnnotationError, match=message) as info:
        load_ground_truth(path)
    assert str(path) in str(info.value)


def test_unreadable_or_missing_files(tmp_path):
    with pytest.raises(AnnotationError, match="not found"):
        load_ground_truth(tmp_path / "nope.json")
    bad = tmp_path / "bad.json"
    bad.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(AnnotationError, match="bad.json"):
        load_ground_truth(bad)
    with pytest.raises(AnnotationError, match="no ConVIS.jsonl"):
        load_ground_truth(tmp_path)


def test_pair_ids_and_concept_spellings():
    assert split_pair_id("3863_003.mp4-883_000.mp4") == ("3863_003.mp4", "883_000.mp4")
    assert split_pair_id("my-clip.mp4-other-clip.mp4") == ("my-clip.mp4", "other-clip.mp4")
    for spelling in ("location", "Location", "LOCATION"):
        assert canonical_concept(spelling) == "location"
    for spelling in ("Main_Action", "MainAction", "main_action", "main action"):
        assert canonical_concept(spelling) == "main_action"
    for spelling in ("OrderofActions", "Order_Of_Actions", "order_of_actions", "OrderOfActions"):
        assert canonical_concept(spelling) == "order_of_actions"
    assert parse_concepts("all") == list(CONCEPT_KEYS)
    assert parse_concepts("Location,Main_Objects") == ["location", "main_objects"]
    with pytest.raises(ValueError, match="unknown concept 'colour'"):
        canonical_concept("colour")


def test_concept_selection_refuses_repeats_and_emptiness():
    with pytest.raises(ValueError, match="location is selected twice"):
        parse_concepts("Location,location")
    with pytest.raises(ValueError, match="no concept selected"):
        parse_concepts(" , ")
