"""Bad inputs and faults not covered elsewhere: truncated videos, answer shapes in the metrics, the journal."""

import json

import numpy as np
import pytest

from convis_tasks import hooks
from convis_tasks.utils.journal import AnswerJournal, JournalError, request_key
from convis_tasks.utils.video import VideoDecodeError, read_frames, write_clip


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


def test_journal_survives_a_torn_last_line_and_refuses_other_models(tmp_path):
    journal = AnswerJournal(tmp_path, "model-a")
    key = request_key("convis_location", "test", 0, "a|b", "prompt", {"max_new_tokens": 1})
    journal.put(key, "4")
    journal.close()
    with open(journal.path, "a") as handle:
        handle.write('{"model": "model-a", "key": "half')  # killed mid-write
    again = AnswerJournal(tmp_path, "model-a", rank=0)
    assert again.get(key) == "4" and len(again) == 1
    again.put("other", "2")  # appends after the torn line, on a fresh line
    again.close()
    assert AnswerJournal(tmp_path, "model-a").get("other") == "2"
    with pytest.raises(JournalError, match="model-b"):
        AnswerJournal(tmp_path, "model-b")


def test_journal_malformed_middle_line_is_an_error_naming_it(tmp_path):
    (tmp_path / "answers.rank0.jsonl").write_text('not json\n{"model": "m", "key": "k", "answer": "1"}\n')
    with pytest.raises(JournalError, match="line 1"):
        AnswerJournal(tmp_path, "m")


def test_request_key_depends_on_prompt_pair_and_settings():
    base = request_key("t", "test", 0, "a|b", "p", {"max_new_tokens": 1})
    assert base == request_key("t", "test", 0, "a|b", "p", {"max_new_tokens": 1})
    assert base != request_key("t", "test", 0, "a|c", "p", {"max_new_tokens": 1})
    assert base != request_key("t", "test", 0, "a|b", "q", {"max_new_tokens": 1})
    assert base != request_key("t", "test", 0, "a|b", "p", {"max_new_tokens": 2})
    assert json.loads(json.dumps(base)) == base
