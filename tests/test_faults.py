"""Bad inputs and faults not covered elsewhere: truncated videos, answer shapes in the metrics, the journal."""

import json

import numpy as np
import pytest

from convis_tasks import hooks
from convis_tasks.harness.journal import AnswerJournal, JournalError, input_identity, request_key
from convis_tasks.video.decode import VideoDecodeError, read_frames
from convis_tasks.video.encode import write_clip


def test_truncated_mp4_is_a_decode_error_naming_the_file(tmp_path):
    path = tmp_path / "clip.mp4"
    write_clip(np.full((6, 32, 32, 3), 120, np.uint8), path, fps=6)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(VideoDecodeError) as info:
        read_frames(path, 4)
    assert str(path) in str(info.value)


def test_empty_garbage_out_of_range_and_long_answers_are_counted_never_dropped():
    docs = [{"video1": f"{i}a.mp4", "video2": f"{i}b.mp4", "concept": "location", "gt": {"location": float(g)}}
            for i, g in enumerate([1, 2, 3, 4, 5])]
    answers = ["", "lorem ipsum", "9", "x" * 50_000, "5"]
    records = [hooks.process_results(d, [a])["n"] for d, a in zip(docs, answers)]
    assert hooks.aggregate_n(records) == 5
    assert hooks.aggregate_unparsed(records) == 4
    # four neutral 3.0 and one 5: x = [3, 3, 3, 3, 5] vs y = [1..5]
    from scipy.stats import spearmanr

    assert hooks.aggregate_spearman(records) == pytest.approx(100 * spearmanr([3, 3, 3, 3, 5], [1, 2, 3, 4, 5])[0])


def test_all_constant_answers_report_nan_not_a_crash():
    docs = [{"video1": f"{i}a.mp4", "video2": f"{i}b.mp4", "concept": "location", "gt": {"location": float(i + 1)}}
            for i in range(4)]
    records = [hooks.process_results(d, ["3"])["spearman"] for d in docs]
    with pytest.warns(UserWarning, match="constant"):
        assert np.isnan(hooks.aggregate_spearman(records))


def _journal_with_one_answer(folder, video):
    journal = AnswerJournal(folder, "model-a")
    key = request_key("convis_location", "test", 0, "a|b")
    inputs = input_identity("prompt", {"max_new_tokens": 1}, [str(video), None])
    journal.put(key, "4", inputs)
    journal.close()
    return key, inputs


def test_journal_survives_a_torn_last_line_and_refuses_other_models(tmp_path):
    video = tmp_path / "v.mp4"
    video.write_bytes(b"x" * 10)
    key, inputs = _journal_with_one_answer(tmp_path / "j", video)
    with open(tmp_path / "j" / "answers.rank0.jsonl", "a") as handle:
        handle.write('{"model": "model-a", "key": "half')  # killed mid-write
    again = AnswerJournal(tmp_path / "j", "model-a", rank=0)
    assert again.get(key, inputs) == "4" and len(again) == 1
    again.put("other", "2", inputs)  # appends after the torn line, on a fresh line
    again.close()
    assert AnswerJournal(tmp_path / "j", "model-a").get("other", inputs) == "2"
    with pytest.raises(JournalError, match="model-b"):
        AnswerJournal(tmp_path / "j", "model-b")


def test_journal_malformed_middle_line_is_an_error_naming_it(tmp_path):
    (tmp_path / "answers.rank0.jsonl").write_text('not json\n{"model": "m", "key": "k", "answer": "1"}\n')
    with pytest.raises(JournalError, match="line 1"):
        AnswerJournal(tmp_path, "m")


def test_journal_answer_is_stale_once_its_video_prompt_or_settings_change(tmp_path):
    video = tmp_path / "v.mp4"
    video.write_bytes(b"x" * 10)
    key, inputs = _journal_with_one_answer(tmp_path / "j", video)
    journal = AnswerJournal(tmp_path / "j", "model-a")
    assert journal.get(key, inputs) == "4"
    assert journal.get(key, input_identity("other prompt", {"max_new_tokens": 1}, [str(video), None])) is None
    assert journal.get(key, input_identity("prompt", {"max_new_tokens": 2}, [str(video), None])) is None
    video.write_bytes(b"y" * 11)  # the video changed since the answer was journaled
    changed = input_identity("prompt", {"max_new_tokens": 1}, [str(video), None])
    assert changed != inputs and journal.get(key, changed) is None
    assert journal.stale == 3
    journal.put(key, "2", changed)  # recomputed: both entries live side by side, each used only for its inputs
    journal.close()
    again = AnswerJournal(tmp_path / "j", "model-a")
    assert again.get(key, changed) == "2" and again.get(key, inputs) == "4"


def test_same_size_rewrite_of_a_video_makes_the_answer_stale(tmp_path):
    import os

    video = tmp_path / "v.mp4"
    video.write_bytes(b"x" * 10)
    before = input_identity("p", {}, [str(video)])
    stat = os.stat(video)
    video.write_bytes(b"y" * 10)
    os.utime(video, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    assert input_identity("p", {}, [str(video)]) != before


@pytest.mark.parametrize("edit, message", [
    (lambda e: {**e, "answer": "5"}, "checksum"),                      # an answer edited by hand
    (lambda e: {**e, "sha256": "0" * 64}, "checksum"),
    (lambda e: {k: v for k, v in e.items() if k != "sha256"}, "sha256"),  # an older journal, no checksum
    (lambda e: {**e, "answer": 5}, "answer"),
    (lambda e: [e], "not an object"),                                   # valid JSON, not an object
    (lambda e: "just a string", "not an object"),
])
def test_corrupt_journal_line_is_an_error_naming_it_never_used(tmp_path, edit, message):
    video = tmp_path / "v.mp4"
    video.write_bytes(b"x")
    _journal_with_one_answer(tmp_path / "j", video)
    path = tmp_path / "j" / "answers.rank0.jsonl"
    entry = json.loads(path.read_text())
    path.write_text(json.dumps(edit(entry)) + "\n")
    with pytest.raises(JournalError, match=message) as info:
        AnswerJournal(tmp_path / "j", "model-a")
    assert f"{path}, line 1" in str(info.value)


def test_journal_line_with_a_duplicate_key_is_an_error(tmp_path):
    video = tmp_path / "v.mp4"
    video.write_bytes(b"x")
    _journal_with_one_answer(tmp_path / "j", video)
    path = tmp_path / "j" / "answers.rank0.jsonl"
    line = path.read_text().rstrip("\n")
    path.write_text(line[:-1] + ', "answer": "1"}\n')
    with pytest.raises(JournalError, match="line 1.*duplicate key 'answer'"):
        AnswerJournal(tmp_path / "j", "model-a")


def test_two_different_answers_to_one_request_are_an_error(tmp_path):
    video = tmp_path / "v.mp4"
    video.write_bytes(b"x")
    key, inputs = _journal_with_one_answer(tmp_path / "j", video)
    other = AnswerJournal(tmp_path / "j", "model-a", rank=1)
    other.put(key, "1", inputs)
    other.close()
    with pytest.raises(JournalError, match="second, different answer"):
        AnswerJournal(tmp_path / "j", "model-a")


def test_request_key_names_the_document_and_input_identity_the_inputs():
    base = request_key("t", "test", 0, "a|b")
    assert base == request_key("t", "test", 0, "a|b")
    assert base != request_key("t", "test", 0, "a|c")
    assert base != request_key("t", "test", 1, "a|b")
    ident = input_identity("p", {"max_new_tokens": 1}, [None, None])
    assert ident == input_identity("p", {"max_new_tokens": 1}, [None, None])
    assert ident != input_identity("q", {"max_new_tokens": 1}, [None, None])
    assert ident != input_identity("p", {"max_new_tokens": 2}, [None, None])
    assert json.loads(json.dumps(base)) == base
