"""lmms-eval models shipped with ConViS-Eval, registered through the ``lmms_eval.models`` entry-point group.

``manifests()`` is the entry point's payload: it names class paths only, so listing models imports nothing heavy.
"""

from __future__ import annotations

MODELS = {
    # --model name: class path
    "convis_colour_histogram": "convis_tasks.model_wrappers.colour_histogram.ColourHistogramSimilarity",
    "convis_resumable": "convis_tasks.model_wrappers.resumable.ResumableModel",
    "convis_qwen2_5_vl": "convis_tasks.model_wrappers.hf_video.ConvisQwen2_5_VL",
    "convis_llava_hf": "convis_tasks.model_wrappers.hf_video.ConvisLlavaHf",
    "convis_frame_embedding": "convis_tasks.model_wrappers.embedding.FrameEmbeddingSimilarity",
    "convis_caption_similarity": "convis_tasks.model_wrappers.embedding.CaptionSimilarity",
    "convis_clipscore": "convis_tasks.model_wrappers.embedding.CrossModalSimilarity",
    "convis_caption_judge": "convis_tasks.model_wrappers.caption_judge.CaptionJudge",
}


def manifests():
    """The model manifests lmms-eval reads at start-up (``lmms_eval.models`` entry point)."""
    from lmms_eval.models.registry_v2 import ModelManifest

    return [ModelManifest(model_id=name, simple_class_path=path) for name, path in MODELS.items()]
