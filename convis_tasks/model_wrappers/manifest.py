"""The models ConViS-Eval registers with lmms-eval, and what each needs: pure data, imports nothing.

``convis run``'s preflight and ``convis doctor`` read what a model needs from here (``reads_videos``: a caption-only
model runs without the video files); lmms-eval reads the class paths through the ``lmms_eval.models`` entry point
(:func:`convis_tasks.model_wrappers.manifests`).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ModelSpec:
    """One ``--model`` name: the class lmms-eval loads, and whether the model reads the videos' frames."""

    class_path: str
    reads_videos: bool = True


MODELS: dict[str, ModelSpec] = {
    "convis_colour_histogram": ModelSpec("convis_tasks.model_wrappers.colour_histogram.ColourHistogramSimilarity"),
    "convis_resumable": ModelSpec("convis_tasks.model_wrappers.resumable.ResumableModel"),
    "convis_qwen2_5_vl": ModelSpec("convis_tasks.model_wrappers.hf_video.ConvisQwen2_5_VL"),
    "convis_llava_hf": ModelSpec("convis_tasks.model_wrappers.hf_video.ConvisLlavaHf"),
    "convis_frame_embedding": ModelSpec("convis_tasks.model_wrappers.embedding.FrameEmbeddingSimilarity"),
    "convis_caption_similarity": ModelSpec("convis_tasks.model_wrappers.embedding.CaptionSimilarity",
                                           reads_videos=False),
    "convis_clipscore": ModelSpec("convis_tasks.model_wrappers.embedding.CrossModalSimilarity"),
    "convis_caption_judge": ModelSpec("convis_tasks.model_wrappers.caption_judge.CaptionJudge", reads_videos=False),
}


def inner_model(model: str, model_args: str | None) -> str | None:
    """The model ``convis_resumable`` wraps (its ``inner=`` argument), else None."""
    if model != "convis_resumable":
        return None
    for part in (model_args or "").split(","):
        key, _, value = part.partition("=")
        if key.strip() == "inner" and value.strip():
            return value.strip()
    return None


def reads_videos(model: str, model_args: str | None = None) -> bool:
    """False only for a plugin model declared caption-only (through ``convis_resumable`` too)."""
    inner = inner_model(model, model_args)
    if inner:
        return reads_videos(inner)
    spec = MODELS.get(model)
    return True if spec is None else spec.reads_videos
