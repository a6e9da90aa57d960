"""``convis inspect``: the data it gathers (from samples files written here, with known answers and truths), the
frames it finds, the page it writes, and that page in headless Chromium (rendered DOM, sorting, screenshot, and no
network request)."""

from __future__ import annotations

import http.server
from html.parser import HTMLParser
import json
import os
import re
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from scipy import stats

from chromium import Browser, chromium_binary
from convis_tasks.report.inspect_data import gather, histogram, model_ranks, rank_gaps
from convis_tasks.report.inspect_frames import SOURCE_CACHE, SOURCE_NONE, SOURCE_VIDEOS, FrameFinder, collect_strips
from convis_tasks.report.inspect_page import render_page
from convis_tasks.concepts import CONCEPT_KEYS, get_concept
from convis_tasks.reading.datafolder import DEMO_DIR
from convis_tasks.scoring.parsing import parse_answer, parse_score
from convis_tasks.reading.predictions import PredictionError
from convis_tasks.video.cache import PairClipCache

REPO = Path(__file__).resolve().parent.parent
STAMP = "20260101_000000"
PROMPT = "Rate the {concept} similarity from 1 to 5."


def _record(video1, video2, concept, answer, gt, **extra):
    return {"kind": "pair", "video1": video1, "video2": video2, "concept": concept, "answer": answer,
            "score": parse_score(answer), "gt": gt, "provenance": {"convis_eval": "0.1.0", "python": "3.11.7"},
            **extra}


def _write_run(folder: Path, task_rows: dict[str, list[dict]], frames: int = 2, model_args: str = "") -> Path:
    """A run folder as lmms-eval writes it: one samples file per task and a results file with the task configs."""
    folder.mkdir(parents=True, exist_ok=True)
    for task, rows in task_rows.items():
        with open(folder / f"{STAMP}_samples_{task}.jsonl", "w") as handle:
            for i, record in enumerate(rows):
                metrics = ("r@1", "kendall") if record["kind"] == "retrieval" else ("spearman", "kendall")
                sample = {"doc_id": i, "input": PROMPT.format(concept=record["concept"] or "overall"),
                          **{m: record for m in metrics}}
                handle.write(json.dumps(sample) + "\n")
    configs = {t: {"task": t, "lmms_eval_specific_kwargs": {"default": {"frames_per_video": frames,
                                                                         "prompt": "benchmark", "input": "concat"}}}
               for t in task_rows}
    results = {"results": {}, "configs": configs, "config": {"model": "fake_model", "model_args": model_args},
               "date": "20260101"}
    (folder / f"{STAMP}_results.json").write_text(json.dumps(results))
    return folder


# pair keys sort by name, so the pairs are (v01, v02), (v01, v03), (v02, v04), (v03, v05)
LOCATION = [  # answer, human mean
    ("videos/v01.mp4", "videos/v02.mp4", "4", 3.0),
    ("videos/v01.mp4", "videos/v03.mp4", "Score: 2", 2.0),
    ("videos/v02.mp4", "videos/v04.mp4", "the videos look alike", 5.0),
    ("videos/v03.mp4", "videos/v05.mp4", "7", 1.0),
]


@pytest.fixture()
def small_run(tmp_path):
    rows = [_record(v1, v2, "location", answer, {"location": mean}) for v1, v2, answer, mean in LOCATION]
    free = [_record(v1, v2, None, "3", {"location": mean, "main_action": 6.0 - mean})
            for v1, v2, _, mean in LOCATION]
    return _write_run(tmp_path / "run", {"convis_location": rows, "convis_global": free})


def test_residuals_histogram_reasons_and_order(small_run):
    data = gather([str(small_run)], bootstrap=0)
    by_key = {p.key: p for p in data.pairs}
    location = {p.key: next(a for a in p.answers if a.concept == "location") for p in data.pairs}
    # residual = score (unparsed counts 3.0) - human mean
    assert [location[k].residuals["location"] for k in sorted(location)] == [1.0, 0.0, -2.0, 2.0]
    assert location[("v02.mp4", "v04.mp4")].reason == "no score"
    assert location[("v03.mp4", "v05.mp4")].reason == "out of range"
    assert location[("v01.mp4", "v02.mp4")].reason is None
    # most disagreement first; equal disagreement in name order
    assert [p.key for p in data.pairs] == [("v02.mp4", "v04.mp4"), ("v03.mp4", "v05.mp4"), ("v01.mp4", "v02.mp4"),
                                           ("v01.mp4", "v03.mp4")]
    (model,) = data.models
    summary = next(s for s in model.summaries if s.concept == "location" and not s.concept_free)
    assert summary.histogram == [("1", 0), ("2", 1), ("3", 0), ("4", 1), ("5", 0), ("unparsed", 2)]
    assert (summary.n, summary.unparsed, summary.distinct) == (4, 2, 4)
    expected = stats.spearmanr([4, 2, 3, 3], [3, 2, 5, 1]).statistic * 100  # unparsed -> 3.0, as the benchmark
    assert summary.spearman == pytest.approx(expected)
    assert summary.kendall == pytest.approx(stats.kendalltau([4, 2, 3, 3], [3, 2, 5, 1]).statistic * 100)
    # concept-free answers: one answer, a residual against every concept the pair has
    free = next(a for a in by_key[("v01.mp4", "v02.mp4")].answers if a.concept is None)
    assert free.residuals == {"location": 0.0, "main_action": 0.0}
    free_summary = [s for s in model.summaries if s.concept_free]
    assert [s.concept for s in free_summary] == ["main_action", "location"]
    assert all(s.spearman is None for s in free_summary)  # constant answers: undefined, never a number
    assert model.prompts["convis_location"] == PROMPT.format(concept="location")
    assert model.tasks["convis_location"].n_frames == 2
    # concept answers first in benchmark order, the concept-free one last
    assert [a.concept for a in by_key[("v01.mp4", "v02.mp4")].answers] == ["location", None]


def test_small_helpers():
    assert histogram([1.0, 1.49, 1.5, 4.6, 5.0, None]) == [("1", 2), ("2", 1), ("3", 0), ("4", 0), ("5", 2),
                                                            ("unparsed", 1)]
    assert model_ranks({"a": 4.0, "b": None, "c": 4.0, "d": 1.0}) == {"a": 1, "c": 1, "b": 3, "d": 4}
    gaps = rank_gaps({("a", "b"): 1.0, ("a", "c"): 2.0, ("a", "d"): 3.0}, {("a", "b"): 3.0, ("a", "c"): 2.0,
                                                                          ("a", "d"): 1.0})
    assert gaps == {("a", "b"): -1.0, ("a", "c"): 0.0, ("a", "d"): 1.0}


@pytest.mark.parametrize("answer", ["4", "", "7", "Score: 4/10", "Score: 7", "4\nBoth show cooking.\n2",
                                    "<think>maybe 4", "Video 1 has 3 cats", "alike", "<CONCLUSION></CONCLUSION>",
                                    None, True, 9, 2.5, "Score: 4. Actually, score: 7", "1. The man walks"])
def test_unparsed_reason_exactly_when_unparsed(answer):
    reason = parse_answer(answer).reason
    assert (reason is None) == (parse_score(answer) is not None)
    assert reason is None or reason.strip()


def test_raw_ratings_give_the_spread_and_a_differing_logged_mean_is_reported(small_run, tmp_path):
    raw_key = get_concept("location").raw_key
    ratings = []
    for v1, v2, _, mean in LOCATION:
        other = {get_concept(c).raw_key: int(6 - mean) if c == "main_action" else 3 for c in CONCEPT_KEYS
                 if c != "location"}  # main_action as the run logged it
        for user, value in (("u1", 1), ("u2", 2), ("u3", 3)) if v1.endswith("v01.mp4") and v2.endswith("v02.mp4") \
                else (("u1", int(mean)), ("u2", int(mean))):
            ratings.append({"video_pair_id": f"{Path(v1).name}-{Path(v2).name}", "user_id": user,
                            "user_inputs": {raw_key: value, **other}})
    gt = tmp_path / "vicos.user_inputs.json"
    gt.write_text(json.dumps(ratings))
    data = gather([str(small_run)], ground_truth=str(gt), bootstrap=0)
    first = next(p for p in data.pairs if p.key == ("v01.mp4", "v02.mp4"))
    human = first.human["location"]
    assert human.mean == 2.0 and human.ratings == (1.0, 2.0, 3.0) and human.sd == pytest.approx(1.0)
    assert data.fingerprint and data.truth_source == str(gt)
    # the run logged 3.0 for that pair; the file says 2.0: said, and the file is used
    assert any("1 human mean(s) logged by the run differ" in m for m in data.messages)
    assert next(a for a in first.answers if a.concept == "location").residuals["location"] == 2.0


def test_runs_logging_different_truths_are_an_error_naming_the_pair(small_run, tmp_path):
    rows = [_record(v1, v2, "location", answer, {"location": mean + (1 if i == 1 else 0)})
            for i, (v1, v2, answer, mean) in enumerate(LOCATION)]
    other = _write_run(tmp_path / "other", {"convis_location": rows}, model_args="x=1")
    with pytest.raises(PredictionError, match=r"v01\.mp4 / v03\.mp4 has the human mean 3\.0 for location"):
        gather([f"A={small_run}", f"B={other}"], bootstrap=0)


def test_two_inputs_with_one_label_are_refused(small_run):
    with pytest.raises(PredictionError, match="a second input labelled 'M'"):
        gather([f"M={small_run}", f"M={small_run}"], bootstrap=0)


def test_two_models_side_by_side_share_the_frames_of_one_clip(small_run, tmp_path):
    rows = [_record(v1, v2, "location", "5", {"location": mean}) for v1, v2, _, mean in LOCATION]
    other = _write_run(tmp_path / "other", {"convis_location": rows}, model_args="temperature=1")
    data = gather([f"A={small_run}", f"B={other}"], bootstrap=0)
    assert [m.label for m in data.models] == ["A", "B"]
    pair = next(p for p in data.pairs if p.key == ("v01.mp4", "v02.mp4"))
    assert [(a.model, a.concept) for a in pair.answers] == [("A", "location"), ("A", None), ("B", "location")]
    strips = collect_strips(data, FrameFinder(str(DEMO_DIR), [], 24))
    assert strips[("A", "convis_location", "videos/v01.mp4", "videos/v02.mp4")] is \
        strips[("B", "convis_location", "videos/v01.mp4", "videos/v02.mp4")]
    page = render_page(data, strips, 24, [])
    assert '<select id="model">' in page and page.count('class="strip"') == len(LOCATION)  # one strip per pair


def test_the_command_writes_the_page_without_torch_or_lmms_eval(small_run, tmp_path):
    page = tmp_path / "page.html"
    code = ("import sys; from convis_tasks.cli import main; code = main(sys.argv[1:]); "
            "print(code, sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'lmms_eval', 'transformers')))")
    proc = subprocess.run([sys.executable, "-c", code, "inspect", str(small_run), "-o", str(page), "--data-dir",
                           str(DEMO_DIR), "--bootstrap", "10"], capture_output=True, text=True, timeout=300,
                          env=dict(os.environ, PYTHONPATH=str(REPO), CONVIS_CACHE_DIR=str(tmp_path / "no_clips")))
    assert proc.stdout.strip().splitlines()[-1] == "0 []", proc.stdout + proc.stderr[-2000:]
    assert "frames: 0 from the clip cache, 4 from the source videos, 0 unavailable" in proc.stdout
    assert page.stat().st_size > 10_000


def test_the_command_refuses_what_is_not_a_run(tmp_path):
    answers = tmp_path / "answers.json"
    answers.write_text(json.dumps([{"video1": "a.mp4", "video2": "b.mp4", "similarity": 3}]))
    proc = _inspect(str(answers), "-o", str(tmp_path / "page.html"))
    assert proc.returncode == 2 and not (tmp_path / "page.html").exists()
    assert proc.stderr.strip().splitlines()[-1].startswith(f"convis: error: {answers}: convis inspect reads "
                                                           "lmms-eval runs")
    proc = _inspect(str(tmp_path), "-o", str(tmp_path / "nowhere" / "page.html"))
    assert proc.returncode == 2 and "does not exist" in proc.stderr


def test_retrieval_ranks_and_rankings_file(tmp_path):
    def rec(candidate, answer, rank):
        return {"kind": "retrieval", "anchor": "v01.mp4", "candidate": candidate, "concept": "location",
                "answer": answer, "score": parse_score(answer), "human_rank": rank}

    rows = [rec("v02.mp4", "5", 1), rec("v03.mp4", "2", 2), rec("v04.mp4", "banana", 3)]
    run = _write_run(tmp_path / "run", {"convis_retrieval_location": rows})
    data = gather([str(run)], bootstrap=0)
    (anchor,) = data.anchors
    assert anchor.candidates == ["v02.mp4", "v03.mp4", "v04.mp4"]
    ranks = {a.candidate: (a.model_rank, a.human_rank) for a in anchor.answers}
    assert ranks == {"v02.mp4": (1, 1), "v04.mp4": (2, 3), "v03.mp4": (3, 2)}  # unparsed counts 3.0
    assert anchor.metrics[("fake_model", "location")]["f1@1"] == 100.0
    ranking = tmp_path / "ranked.json"
    ranking.write_text(json.dumps([{"anchor": "v01.mp4", "Location": {"v02.mp4": 2, "v03.mp4": 1, "v04.mp4": 3}}]))
    data = gather([str(run)], rankings=str(ranking), bootstrap=0)
    ranks = {a.candidate: a.human_rank for a in data.anchors[0].answers}
    assert ranks == {"v02.mp4": 2, "v03.mp4": 1, "v04.mp4": 3}
    assert sum("the rankings file says" in m for m in data.messages) == 2


def test_frames_from_the_cache_else_the_sources_else_said_unavailable(small_run, tmp_path):
    data = gather([str(small_run)], bootstrap=0)
    spec = data.models[0].tasks["convis_location"]
    cache = PairClipCache(tmp_path / "cache")
    clip = cache.get(DEMO_DIR / "videos/v01.mp4", DEMO_DIR / "videos/v02.mp4", spec.n_frames)
    finder = FrameFinder(str(DEMO_DIR), [tmp_path / "cache"], thumb_px=32)
    strips = collect_strips(data, finder)
    cached = strips[("fake_model", "convis_location", "videos/v01.mp4", "videos/v02.mp4")]
    assert cached.source == SOURCE_CACHE and cached.detail == clip
    assert len(cached.frames1) == len(cached.frames2) == 2 and cached.frames1[0].startswith("data:image/jpeg;base64,")
    decoded = strips[("fake_model", "convis_location", "videos/v01.mp4", "videos/v03.mp4")]
    assert decoded.source == SOURCE_VIDEOS and len(decoded.frames2) == 2
    # the concept-free task showed the same clip: one strip, decoded once
    assert strips[("fake_model", "convis_global", "videos/v01.mp4", "videos/v02.mp4")] is cached
    # a clip whose bytes changed is not used (the cache's own check), and the page says why
    with open(clip, "r+b") as handle:
        handle.seek(-4, os.SEEK_END)
        handle.write(b"\0\0\0\0")
    again = FrameFinder(str(DEMO_DIR), [tmp_path / "cache"], thumb_px=32).strip(
        "videos/v01.mp4", "videos/v02.mp4", spec)
    assert again.source == SOURCE_VIDEOS and "content digest mismatch" in again.detail
    nowhere = FrameFinder(str(tmp_path), [], thumb_px=32).strip("videos/v01.mp4", "videos/v02.mp4", spec)
    assert nowhere.source == SOURCE_NONE and nowhere.detail.startswith("no data folder:") and not nowhere.frames1
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "ConVIS.jsonl").write_text("")
    missing = FrameFinder(str(tmp_path / "data"), [], thumb_px=32).strip("videos/v01.mp4", "videos/v02.mp4", spec)
    assert missing.source == SOURCE_NONE and "video 'videos/v01.mp4' not found" in missing.detail


def test_page_escapes_every_untrusted_string_and_names_no_other_host(small_run, tmp_path):
    hostile = '<img src="http://198.51.100.7/a.png" onerror="alert(1)"></pre></script><script>alert(2)</script>'
    rows = [_record(v1, v2, "location", hostile if i == 0 else answer, {"location": mean})
            for i, (v1, v2, answer, mean) in enumerate(LOCATION)]
    run = _write_run(tmp_path / "hostile", {"convis_location": rows})
    label = 'x"><b onmouseover=alert(3)>'
    data = gather([str(run)], [label], bootstrap=0)
    page = render_page(data, collect_strips(data, FrameFinder(str(DEMO_DIR), [], 24)), 24, [str(run)])
    assert page.count("<script") == 1 and "alert(2)" in page and "<script>alert(2)" not in page
    assert "&lt;img src=&quot;http://198.51.100.7/a.png&quot;" in page and '<img src="http' not in page
    assert "&quot;&gt;&lt;b onmouseover=alert(3)&gt;" in page and "<b onmouseover" not in page
    assert_no_remote_reference(page)


class _References(HTMLParser):
    """Every URL-bearing attribute of the real tags of a page, and the text of its <style> blocks."""

    URL_ATTRIBUTES = {"src", "href", "srcset", "poster", "action", "formaction", "data", "background", "xlink:href",
                      "manifest", "ping"}

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[tuple[str, str, str]] = []
        self.styles: list[str] = []
        self._in_style = False

    def handle_starttag(self, tag, attrs):
        self._in_style = tag == "style"
        for name, value in attrs:
            if name in self.URL_ATTRIBUTES:
                self.urls.append((tag, name, value or ""))
            if name == "style":
                self.styles.append(value or "")

    def handle_data(self, data):
        if self._in_style:
            self.styles.append(data)

    def handle_endtag(self, tag):
        self._in_style = False


def assert_no_remote_reference(page: str) -> None:
    """No tag attribute or CSS url()/@import that names another host: every URL is a data: URI or a fragment."""
    found = _References()
    found.feed(page)
    for tag, name, value in found.urls:
        assert value.startswith(("data:", "#")) or value == "", f"<{tag} {name}={value[:60]!r}>"
    for css in found.styles:
        assert not re.search(r"url\(\s*['\"]?(?!data:)|@import|@font-face", css), css[:200]


# --- the page in a browser -------------------------------------------------------------------------------------

def _chromium():
    binary = chromium_binary()
    if binary is None:
        pytest.skip("Chromium is not installed (Debian: apt-get install chromium; .ci/run installs it)")
    return binary


def _inspect(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "convis_tasks", "inspect", *args], capture_output=True, text=True,
                          timeout=300, env=env or dict(os.environ, PYTHONPATH=str(REPO)))


@pytest.fixture(scope="module")
def demo_page(colour_demo_run, tmp_path_factory):
    out = tmp_path_factory.mktemp("page") / "page.html"
    proc = _inspect(str(colour_demo_run), "-o", str(out), "--data-dir", str(DEMO_DIR), "--ground-truth",
                    str(DEMO_DIR / "ConVIS.jsonl"), "--rankings", str(DEMO_DIR / "ranked.json"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert re.search(r"wrote .*page\.html: [\d.]+ MB .* 11 pairs, 4 retrieval anchors; frames: \d+ from the clip "
                     r"cache, 0 from the source videos, 0 unavailable", proc.stdout), proc.stdout
    return out


def test_demo_page_in_chromium_names_every_pair_with_frames_and_sorts(demo_page, colour_demo_run, tmp_path):
    pairs = [json.loads(line) for line in (DEMO_DIR / "ConVIS.jsonl").read_text().splitlines()]
    with Browser(_chromium()) as browser:
        browser.open(demo_page.as_uri())
        cards = browser.evaluate("Array.from(document.querySelectorAll('article.pair')).map(function (a) {"
                                 " return [a.querySelector('h3').innerText, a.querySelectorAll('img').length,"
                                 " a.querySelectorAll('img.v1').length, a.querySelectorAll('img.v2').length,"
                                 " a.getBoundingClientRect().height > 0, a.dataset.key]; })")
        assert len(cards) == len(pairs) == 11
        named = {c[0] for c in cards}
        for pair in pairs:  # every pair of the run is named, with its frames: 8 of video 1, then 8 of video 2
            assert f"{pair['video1']} vs {pair['video2']}" in named
        assert all(n == 16 and v1 == 8 and v2 == 8 and shown for _, n, v1, v2, shown, _ in cards)
        loaded = browser.evaluate("Array.from(document.querySelectorAll('article.pair img'))"
                                  ".every(function (i) { return i.complete && i.naturalWidth > 0; })")
        assert loaded  # every data: image decoded
        before = [c[5] for c in cards]
        browser.evaluate("document.querySelector('button[data-sort=key]').click()")
        by_name = browser.evaluate("Array.from(document.querySelectorAll('article.pair')).map(function (a) {"
                                   " return a.dataset.key; })")
        assert by_name == sorted(before) != before  # clicking sort reordered the cards
        browser.evaluate("document.querySelector('button[data-sort=absres]').click()")
        assert browser.evaluate("Array.from(document.querySelectorAll('article.pair')).map(function (a) {"
                                " return a.dataset.key; })") == before
        browser.evaluate("var s = document.getElementById('search'); s.value = 'V07';"
                         " s.dispatchEvent(new Event('input'))")
        visible = browser.evaluate("Array.from(document.querySelectorAll('article.pair')).filter(function (a) {"
                                   " return !a.hidden; }).map(function (a) { return a.dataset.key; })")
        assert visible and all("v07" in key for key in visible)
        assert browser.evaluate("document.getElementById('count').textContent") == f"{len(visible)} of 11 pairs"
        browser.evaluate("var c = document.getElementById('concept'); c.value = 'location';"
                         " c.dispatchEvent(new Event('change'))")
        concepts = browser.evaluate("Array.from(document.querySelectorAll('tr.answer')).filter(function (r) {"
                                    " return !r.hidden && !r.closest('article').hidden; }).map(function (r) {"
                                    " return r.dataset.concept; })")
        assert set(concepts) == {"location", "free"}
        assert browser.evaluate("document.querySelectorAll('article.anchor').length") == 4
        shot = tmp_path / "inspect.png"
        browser.screenshot(str(shot))
        assert shot.stat().st_size > 20_000 and shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert browser.evaluate("window.__cspViolations") == []


class _Recorder(http.server.BaseHTTPRequestHandler):
    hits: list[str] = []

    def do_GET(self):  # noqa: N802 (the http.server name)
        type(self).hits.append(self.path)
        self.send_response(404)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture()
def recorder():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    _Recorder.hits = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"127.0.0.1:{server.server_address[1]}", _Recorder.hits
    server.shutdown()
    server.server_close()


def _remote(requests: list[str], page_url: str) -> list[str]:
    return [u for u in requests if u != page_url and not u.startswith("data:")]


def test_the_page_makes_no_network_request(demo_page, colour_demo_run, recorder, tmp_path):
    host, hits = recorder
    # the detector: a page that names another host is seen, both by the browser's log and by the server
    control = tmp_path / "control.html"
    control.write_text(f'<html><head><link rel="stylesheet" href="http://{host}/a.css"></head>'
                       f'<body><img src="http://{host}/b.png"></body></html>')
    with Browser(_chromium()) as browser:
        browser.open(control.as_uri())
        assert len(_remote(browser.requests, control.as_uri())) == 2
    assert sorted(hits) == ["/a.css", "/b.png"]
    hits.clear()
    # the demo page, and one whose answer and label try to load from that server: nothing is requested
    run = tmp_path / "run"
    shutil.copytree(next(p for p in colour_demo_run.iterdir() if p.name.startswith("convis_colour_histogram")), run)
    samples = next(run.glob("*_samples_convis_location.jsonl"))
    lines = samples.read_text().splitlines()
    first = json.loads(lines[0])
    for key in ("spearman", "kendall", "n", "unparsed"):
        first[key].update(answer=f'<img src="http://{host}/answer.png"><link rel=stylesheet href="//{host}/c.css">',
                          score=None)
    samples.write_text("\n".join([json.dumps(first)] + lines[1:]) + "\n")
    hostile = tmp_path / "hostile.html"
    proc = _inspect(str(run), "--label", f"<img src=http://{host}/label.png>", "-o", str(hostile), "--data-dir",
                    str(DEMO_DIR), "--bootstrap", "0")
    assert proc.returncode == 0, proc.stderr[-3000:]
    for page in (demo_page, hostile):
        assert_no_remote_reference(page.read_text())
        with Browser(_chromium()) as browser:
            browser.open(page.as_uri())
            browser.evaluate("document.querySelectorAll('details').forEach(function (d) { d.open = true; })")
            assert _remote(browser.requests, page.as_uri()) == []
            assert browser.evaluate("window.__cspViolations") == []
            if page == hostile:  # shown as text
                assert f'<img src="http://{host}/answer.png">' in browser.evaluate("document.body.innerText")
    assert hits == []


def test_expected_score_records_show_the_five_probabilities_their_score_is_the_mean_of():
    from convis_tasks.report.inspect_data import answer_probabilities
    from convis_tasks.scoring.expected import expected_score

    logliks = [-3.2, -1.1, -0.7, -2.5, -4.0]
    probs = answer_probabilities(logliks)
    assert probs is not None and sum(probs) == pytest.approx(1.0)
    assert sum((k + 1) * p for k, p in enumerate(probs)) == pytest.approx(expected_score(logliks))
    assert probs.index(max(probs)) == 2  # "3" has the largest log-likelihood
    assert answer_probabilities(None) is None and answer_probabilities([-1.0, None, -2.0, -3.0, -4.0]) is None
