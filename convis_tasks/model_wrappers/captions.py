"""Captions for the text-to-text and cross-modal baselines, produced by any captioning model through lmms-eval.

Three steps (docs/baselines.md):

1. ``python -m convis_tasks.model_wrappers.captions task my_tasks/`` writes ``my_tasks/convis_captions.yaml``: one
   request per distinct video of the pairs, the original video file, a captioning prompt.
2. Run the captioner: ``lmms-eval --model llava_onevision --model_args ... --tasks convis_captions
   --include_path my_tasks --log_samples --output_path out/captions``.
3. ``python -m convis_tasks.model_wrappers.captions export out/captions captions/llava-ov/`` writes one
   ``<video_id>.txt`` per video, the layout of the release's ``captions/<captioner>/`` folders, which is what
   ``convis_caption_similarity`` and ``convis_clipscore`` read (``captions=captions/llava-ov``).

The hooks below are the task's; the YAML names them as ``!function convis_tasks.model_wrappers.captions.<name>``.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import sys
from pathlib import Path
from convis_tasks import task_path
from convis_tasks.reading.documents import load_documents
from convis_tasks.errors import InputError
from convis_tasks.reading.jsonio import strict_jsonl_objects

DEFAULT_PROMPT = "Describe this video in detail."
TASK_NAME = "convis_captions"
RECORD_KEY = "captions"  # the metric name under which each sample's record is logged


# --------------------------------------------------------------------------------------------
# task hooks
# --------------------------------------------------------------------------------------------


def caption_documents(data_dir: str | os.PathLike | None = None) -> list[dict]:
    """One document per distinct video of the benchmark pairs (in order of first appearance)."""

    seen: dict[str, dict] = {}
    for doc in load_documents(None, data_dir):
        for name, path in ((doc["video1"], doc["video1_path"]), (doc["video2"], doc["video2_path"])):
            vid = Path(name).stem
            if vid in seen and seen[vid]["video_path"] != path:
                raise ValueError(f"two different videos share the id {vid!r}: {seen[vid]['video_path']} and {path}; "
                                 "caption files are named by id and would collide")
            seen.setdefault(vid, {"video_id": vid, "video": name, "video_path": path})
    return list(seen.values())


def docs_videos(dataset):
    """``process_docs``: replace the placeholder split by the distinct videos."""
    import datasets

    return datasets.Dataset.from_list(caption_documents())


def doc_to_visual(doc: dict, lmms_eval_specific_kwargs: dict | None = None) -> list[str]:
    return [doc["video_path"]]


def doc_to_text(doc: dict, lmms_eval_specific_kwargs: dict | None = None) -> str:
    kw = dict(lmms_eval_specific_kwargs or {})
    return kw.get("pre_prompt", "") + kw.get("prompt", DEFAULT_PROMPT) + kw.get("post_prompt", "")


def doc_to_target(doc: dict) -> str:
    return doc["video_id"]


def process_results(doc: dict, results: list[str]) -> dict:
    return {RECORD_KEY: {"kind": "caption", "video_id": doc["video_id"], "video": doc["video"],
                         "caption": results[0] if results else ""}}


def aggregate_captions(records: list[dict]) -> int:
    """The number of distinct videos captioned (the task's only metric)."""
    return len({r["video_id"] for r in records})


TASK_YAML = """\
# Captions of every distinct ConViS video, for the caption-based baselines (convis_tasks/model_wrappers/captions.py)
task: {task}
include: {template}
process_docs: !function convis_tasks.model_wrappers.captions.docs_videos
doc_to_visual: !function convis_tasks.model_wrappers.captions.doc_to_visual
doc_to_text: !function convis_tasks.model_wrappers.captions.doc_to_text
doc_to_target: !function convis_tasks.model_wrappers.captions.doc_to_target
process_results: !function convis_tasks.model_wrappers.captions.process_results
generation_kwargs:
  max_new_tokens: {max_new_tokens}
  temperature: 0
  do_sample: false
  num_beams: 1
metric_list:
  - metric: {record}
    aggregation: !function convis_tasks.model_wrappers.captions.aggregate_captions
    higher_is_better: true
lmms_eval_specific_kwargs:
  default:
    prompt: {prompt}
"""


def task_yaml(prompt: str = DEFAULT_PROMPT, max_new_tokens: int = 512, task: str = TASK_NAME) -> str:

    return TASK_YAML.format(task=task, template=str(Path(task_path()) / "_template_yaml"), record=RECORD_KEY,
                            max_new_tokens=int(max_new_tokens), prompt=json.dumps(prompt))


def write_task(folder: str | os.PathLike, prompt: str = DEFAULT_PROMPT, max_new_tokens: int = 512,
               task: str = TASK_NAME) -> Path:
    folder = Path(os.fspath(folder))
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{task}.yaml"
    path.write_text(task_yaml(prompt, max_new_tokens, task), encoding="utf-8")
    return path


# --------------------------------------------------------------------------------------------
# export from --log_samples
# --------------------------------------------------------------------------------------------


def read_logged_captions(path: str | os.PathLike) -> dict[str, str]:
    """``{video_id: caption}`` from an lmms-eval ``--log_samples`` file or output folder of the captions task."""
    path = os.fspath(path)
    files = [path] if os.path.isfile(path) else sorted(
        glob.glob(os.path.join(path, "**", "*_samples_*.jsonl"), recursive=True))
    if not files:
        raise FileNotFoundError(f"{path}: no lmms-eval '*_samples_*.jsonl' files found")
    captions: dict[str, str] = {}
    for file in files:
        for _, where, sample in strict_jsonl_objects(file, InputError, "sample log", allow_nonfinite=True):
            record = sample.get(RECORD_KEY)
            if not (isinstance(record, dict) and record.get("kind") == "caption"):
                continue  # a sample of another task in the same folder
            vid, text = str(record["video_id"]), str(record["caption"])
            if vid in captions and captions[vid] != text:
                raise InputError(f"{where}: video {vid} was captioned twice with different text")
            captions[vid] = text
    if not captions:
        raise InputError(f"{path}: no {TASK_NAME} samples found in {len(files)} samples file(s)")
    return captions


def export_captions(samples: str | os.PathLike, out_dir: str | os.PathLike, overwrite: bool = False) -> int:
    """Write one ``<video_id>.txt`` per logged caption into ``out_dir``; returns the number written.

    Refuses to overwrite a different existing caption unless ``overwrite``; an empty caption is an error.
    """
    captions = read_logged_captions(samples)
    empty = sorted(v for v, t in captions.items() if not t.strip())
    if empty:
        raise ValueError(f"empty caption(s) for {', '.join(empty[:10])}{' ...' if len(empty) > 10 else ''}")
    out = Path(os.fspath(out_dir))
    out.mkdir(parents=True, exist_ok=True)
    for vid, text in sorted(captions.items()):
        target = out / f"{vid}.txt"
        if target.exists() and not overwrite and target.read_text(encoding="utf-8") != text:
            raise FileExistsError(f"{target} exists with a different caption (pass --overwrite to replace it)")
        target.write_text(text, encoding="utf-8")
    return len(captions)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m convis_tasks.model_wrappers.captions",
                                     description="Caption the ConViS videos through lmms-eval for the caption "
                                                 "baselines.")
    sub = parser.add_subparsers(dest="command", required=True)
    t = sub.add_parser("task", help="write the convis_captions task YAML into a folder for --include_path")
    t.add_argument("folder")
    t.add_argument("--prompt", default=DEFAULT_PROMPT)
    t.add_argument("--max-new-tokens", type=int, default=512)
    e = sub.add_parser("export", help="write <video_id>.txt files from the captions task's --log_samples output")
    e.add_argument("samples", help="a *_samples_convis_captions.jsonl file or the lmms-eval output folder")
    e.add_argument("out_dir")
    e.add_argument("--overwrite", action="store_true")
    args = parser.parse_args(argv)
    try:
        if args.command == "task":
            print(write_task(args.folder, args.prompt, args.max_new_tokens))
        else:
            n = export_captions(args.samples, args.out_dir, args.overwrite)
            print(f"wrote {n} captions to {args.out_dir}")
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
