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
    "convis_llava_onevision": "convis_tasks.model_wrappers.llava_next.ConvisLlavaOneVision",
    "convis_llava_vid": "convis_tasks.model_wrappers.llava_next.ConvisLlavaVid",
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


def expected_scoring_problem(model: str) -> str | None:
    """None when ``--model model`` answers the expected tasks' requests, else why not (:data:`EXPECTED_SCORING`)."""
    if model in EXPECTED_SCORING:
        return EXPECTED_SCORING[model]
    supported = ", ".join(name for name, why in EXPECTED_SCORING.items() if why is None)
    return f"its class has no loglikelihood for video (models that have one: {supported})"


def _option(argv: list[str], name: str) -> str | None:
    """The value of ``--name V`` or ``--name=V`` in ``argv`` (the last one wins), else None."""
    value = None
    for i, arg in enumerate(argv):
        if arg == name and i + 1 < len(argv):
            value = argv[i + 1]
        elif arg.startswith(name + "="):
            value = arg.split("=", 1)[1]
    return value


def task_hint(argv: list[str]) -> str | None:
    """What plain ``lmms-eval`` will not say about ConViS task names in ``argv``, or None.

    lmms-eval 0.7.3 answers only "Tasks not found" for a ConViS task without ``--include_path`` (its task index holds
    its own tree plus that folder) and for a misspelt one. This names the missing option, or the closest names.
    """
    from .. import task_path

    tasks = _option(argv, "--tasks")
    names = [t.strip() for t in (tasks or "").split(",") if t.strip().lower().startswith("convis")]
    if not names:
        return None
    include = _option(argv, "--include_path")
    if include is None:
        return (f"the ConViS tasks ({', '.join(names)}) are not in lmms-eval's own task tree: add "
                f"--include_path {task_path()} (python -m convis_tasks path prints it), or use `convis run`, "
                "which adds it and checks the inputs first")
    from ..run import RunError, resolve_tasks, task_index

    try:
        index = task_index(include)
    except Exception:  # noqa: BLE001 - not our folder, or unreadable: lmms-eval will say what it says
        return None
    if not index:
        return None
    unknown = [n for n in names if n not in index]
    if not unknown:
        return None
    by_lower = {k.lower(): k for k in index}
    cased = [f"{n} -> {by_lower[n.lower()]}" for n in unknown if n.lower() in by_lower]
    if cased:
        return f"lmms-eval matches task names exactly: {', '.join(cased)} (`convis run` accepts any case)"
    try:
        resolve_tasks(",".join(unknown), index)
    except RunError as exc:
        return str(exc)
    return None


def manifests():
    """The model manifests lmms-eval reads at start-up (``lmms_eval.models`` entry point).

    lmms-eval loads them before it looks up the tasks, so this is also where a hint about ConViS task names in the
    command line (see :func:`task_hint`) is printed, once, on stderr.
    """
    import sys

    from lmms_eval.models.registry_v2 import ModelManifest

    try:
        hint = task_hint(sys.argv[1:])
    except Exception:  # noqa: BLE001 - a hint must never stop the harness
        hint = None
    if hint:
        print(f"convis: note: {hint}", file=sys.stderr, flush=True)

    return [ModelManifest(model_id=name, simple_class_path=path) for name, path in MODELS.items()]
