"""`--model convis_resumable` with a stand-in inner model: journaled answers are reused only for the very inputs they
were computed from (issue #11 class 1)."""

import importlib.util
from types import SimpleNamespace

import pytest

pytestmark = pytest.mark.skipif(importlib.util.find_spec("lmms_eval") is None, reason="lmms-eval is not installed")


class _Counting:
    """Answers 'Score: <n>' where n counts the answers it computed."""

    calls = 0

    def __init__(self, **kwargs):
        pass

    def generate_until(self, requests):
        out = []
        for _ in requests:
            type(self).calls += 1
            out.append(f"Score: {type(self).calls % 5 + 1}")
        return out


def _wrapper(monkeypatch, journal, docs):
    import lmms_eval.models

    from convis_tasks.model_wrappers.resumable import ResumableModel

    monkeypatch.setattr(lmms_eval.models, "get_model", lambda name, force_simple=False: _Counting)
    model = ResumableModel(inner="counting", journal=str(journal))
    model.task_dict.update({"convis_location": {"test": docs}})
    return model


def _requests(docs, prompt="prompt", gen_kwargs=None, doc_to_visual=None):
    return [SimpleNamespace(args=(prompt, gen_kwargs or {"max_new_tokens": 8}, doc_to_visual, i, "convis_location",
                                  "test"))
            for i in range(len(docs))]


class _Task:
    """What lmms-eval passes as a request's third argument: the task's bound ``doc_to_visual``."""

    def __init__(self, **settings):
        self.lmms_eval_specific_kwargs = settings

    def doc_to_visual(self, doc):
        return []


def test_answers_made_with_other_visual_settings_of_the_task_are_recomputed(tmp_path, monkeypatch, capsys):
    """A task YAML edited between two attempts (frames per video, frame size) makes the journaled answers stale."""
    docs = [{"pair_id": f"p{i}", "video1_path": None, "video2_path": None} for i in range(2)]
    _Counting.calls = 0
    eight = _Task(frames_per_video=8).doc_to_visual
    _wrapper(monkeypatch, tmp_path / "j", docs).generate_until(_requests(docs, doc_to_visual=eight))
    _wrapper(monkeypatch, tmp_path / "j", docs).generate_until(_requests(docs, doc_to_visual=_Task(
        frames_per_video=8).doc_to_visual))
    assert _Counting.calls == 2  # the same settings: reused
    capsys.readouterr()
    _wrapper(monkeypatch, tmp_path / "j", docs).generate_until(_requests(docs, doc_to_visual=_Task(
        frames_per_video=4).doc_to_visual))
    assert _Counting.calls == 4 and "2 stale" in capsys.readouterr().err


def test_resume_reuses_answers_and_recomputes_only_what_changed(tmp_path, monkeypatch, capsys):
    videos = []
    for i in range(3):
        video = tmp_path / f"v{i}.mp4"
        video.write_bytes(bytes([i]) * 100)
        videos.append(video)
    docs = [{"pair_id": f"v{i}|v{(i + 1) % 3}", "video1_path": str(videos[i]), "video2_path": str(videos[(i + 1) % 3])}
            for i in range(3)]
    _Counting.calls = 0
    first = _wrapper(monkeypatch, tmp_path / "j", docs).generate_until(_requests(docs))
    assert _Counting.calls == 3

    again = _wrapper(monkeypatch, tmp_path / "j", docs).generate_until(_requests(docs))
    assert again == first and _Counting.calls == 3  # all from the journal

    videos[2].write_bytes(b"\xff" * 100)  # same size, new content and mtime: docs 1 and 2 use this video
    import os

    os.utime(videos[2], ns=(0, os.stat(videos[2]).st_mtime_ns + 10**9))
    third = _wrapper(monkeypatch, tmp_path / "j", docs).generate_until(_requests(docs))
    assert _Counting.calls == 5 and third[0] == first[0] and third[1:] != first[1:]
    assert "2 stale" in capsys.readouterr().err

    _wrapper(monkeypatch, tmp_path / "j", docs).generate_until(_requests(docs, prompt="another prompt"))
    assert _Counting.calls == 8  # a changed prompt makes every answer stale


def test_answers_journaled_under_other_package_versions_are_recomputed_not_reused(tmp_path, monkeypatch, capsys):
    """#19 provenance: a journal filled with torch 2.14.1 answers none of a run made with another torch."""
    from convis_tasks.model_wrappers import resumable
    from convis_tasks.reading.provenance import provenance

    docs = [{"pair_id": f"p{i}", "video1_path": None, "video2_path": None} for i in range(2)]
    _Counting.calls = 0
    _wrapper(monkeypatch, tmp_path / "j", docs).generate_until(_requests(docs))
    _wrapper(monkeypatch, tmp_path / "j", docs).generate_until(_requests(docs))
    assert _Counting.calls == 2  # same environment: reused
    capsys.readouterr()
    monkeypatch.setattr(resumable, "provenance", lambda: {**provenance(), "torch": "0.0.0-other"})
    _wrapper(monkeypatch, tmp_path / "j", docs).generate_until(_requests(docs))
    assert _Counting.calls == 4
    err = capsys.readouterr().err
    assert "2 stale" in err and "package versions" in err


def test_edited_answer_in_the_journal_stops_the_run_naming_the_line(tmp_path, monkeypatch):
    from convis_tasks.harness.journal import JournalError

    docs = [{"pair_id": "a|b", "video1_path": None, "video2_path": None}]
    _wrapper(monkeypatch, tmp_path / "j", docs).generate_until(_requests(docs))
    path = tmp_path / "j" / "answers.rank0.jsonl"
    path.write_text(path.read_text().replace('"answer": "Score: ', '"answer": "Score: 1'))
    with pytest.raises(JournalError, match="line 1.*checksum"):
        _wrapper(monkeypatch, tmp_path / "j", docs).generate_until(_requests(docs))


class _Scoring:
    """Log-likelihoods of the answers "1".."5" (one is -inf), with a progress bar of its own per call."""

    calls: list[int] = []

    def __init__(self, **kwargs):
        pass

    def loglikelihood(self, requests):
        from tqdm import tqdm

        type(self).calls.append(len(requests))
        out = []
        for request in tqdm(requests, desc="inner bar"):
            k = int(request.args[1])
            out.append((float("-inf") if k == 5 else -k / 3.0, k == 1))
        return out


def test_loglikelihood_requests_are_journaled_by_continuation_a_document_at_a_time_and_read_back_exactly(
        tmp_path, monkeypatch, capsys):
    """The *_expected tasks: one request per answer "1".."5" of a document; the values come back bit for bit."""
    import lmms_eval.models

    from convis_tasks.model_wrappers.resumable import ResumableModel

    monkeypatch.setattr(lmms_eval.models, "get_model", lambda name, force_simple=False: _Scoring)
    docs = [{"pair_id": f"p{i}", "video1_path": None, "video2_path": None} for i in range(2)]
    requests = [SimpleNamespace(args=("prompt", str(k), None, d, "convis_location_expected", "test"))
                for d in range(2) for k in range(1, 6)]

    def model():
        wrapped = ResumableModel(inner="scoring", journal=str(tmp_path / "j"))
        wrapped.task_dict.update({"convis_location_expected": {"test": docs}})
        return wrapped

    _Scoring.calls = []
    first = model().loglikelihood(requests)
    assert _Scoring.calls == [5, 5]  # one document's five answers per call (one forward pass in the adapters)
    assert first == [(-k / 3.0, k == 1) if k < 5 else (float("-inf"), False) for _ in range(2) for k in range(1, 6)]
    err = capsys.readouterr().err
    assert "0 answers from the journal" in err and "10/10" in err and "inner bar" not in err
    again = model().loglikelihood(requests)
    assert _Scoring.calls == [5, 5] and again == first  # all ten from the journal, equal to the last bit
    assert "10 answers from the journal" in capsys.readouterr().err


def test_the_wrapper_shows_lmms_eval_the_inner_models_attributes(tmp_path, monkeypatch):
    """lmms-eval reads ``accelerator`` (and makes a new one when it finds none), ``chat_template``, ... off the model."""
    import lmms_eval.models

    from convis_tasks.model_wrappers.resumable import ResumableModel

    class _WithAccelerator(_Counting):
        accelerator = "the inner model's accelerator"
        chat_template = "{{ messages }}"
        cleaned = False

        def clean(self):
            type(self).cleaned = True

    monkeypatch.setattr(lmms_eval.models, "get_model", lambda name, force_simple=False: _WithAccelerator)
    model = ResumableModel(inner="with_accelerator", journal=str(tmp_path / "j"))
    assert hasattr(model, "accelerator") and model.accelerator == "the inner model's accelerator"
    assert model.chat_template == "{{ messages }}" and not hasattr(model, "no_such_attribute")
    model.clean()
    assert _WithAccelerator.cleaned
