"""The models ConViS-Eval registers with lmms-eval, and what each needs: pure data, imports nothing.

``convis run``'s preflight and ``convis doctor`` read what a model needs from here (``reads_videos``: a caption-only
model runs without the video files; :data:`EXPECTED_SCORING`: which models answer the expected tasks' log-likelihood
requests); lmms-eval reads the class paths through the ``lmms_eval.models`` entry point
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
    "convis_llava_onevision": ModelSpec("convis_tasks.model_wrappers.llava_next.ConvisLlavaOneVision"),
    "convis_llava_vid": ModelSpec("convis_tasks.model_wrappers.llava_next.ConvisLlavaVid"),
}

# Which --model names can run the *_expected tasks (lmms-eval `multiple_choice`: one loglikelihood request per
# answer "1".."5", with the pair's video), as data: None = supported, else why not. lmms-eval 0.7.3 implements
# loglikelihood with video for llava_onevision, llava_vid, vila, oryx and ola (models/simple/<name>.py), but each
# returns the mean cross-entropy loss over the answer and the chat template's closing tokens, not the answer's
# log-probability (the expected tasks refuse a positive value); llava_onevision's also fails first. Every other
# model (qwen2_5_vl, llava_hf, the plugin's baselines, ...) has no loglikelihood for video at all.
EXPECTED_SCORING: dict[str, str | None] = {
    "convis_llava_onevision": None,
    "convis_llava_vid": None,
    "llava_onevision": "lmms-eval 0.7.3's loglikelihood fails on video (it reads self.metadata, which is never "
                       "set) and returns a loss; convis_llava_onevision is the same model with a working one",
    "llava_vid": "lmms-eval 0.7.3's loglikelihood returns a loss, not a log-probability; convis_llava_vid is the "
                 "same model with a working one",
    "vila": "lmms-eval 0.7.3's loglikelihood returns a loss, not a log-probability",
    "oryx": "lmms-eval 0.7.3's loglikelihood returns a loss, not a log-probability",
    "ola": "lmms-eval 0.7.3's loglikelihood returns a loss, not a log-probability",
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


def expected_scoring_problem(model: str) -> str | None:
    """None when ``--model model`` answers the expected tasks' requests, else why not (:data:`EXPECTED_SCORING`)."""
    if model in EXPECTED_SCORING:
        return EXPECTED_SCORING[model]
    supported = ", ".join(name for name, why in EXPECTED_SCORING.items() if why is None)
    return f"its class has no loglikelihood for video (models that have one: {supported})"
