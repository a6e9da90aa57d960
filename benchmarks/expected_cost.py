"""Cost of expected scoring against greedy one-token generation, per pair, with ``convis_llava_onevision``.

    python benchmarks/expected_cost.py [--repeats 5] [--threads 1] [--frames 8]

A tiny random LLaVA-NeXT ``llava_qwen`` checkpoint is built offline (``tests/tiny_models.py``: SigLIP tower of 2
layers, hidden 32, 384 px frames; Qwen2 of 1 layer, hidden 32) and loaded once. Every document of the five concept
tasks on the bundled demo set is then answered both ways by the SAME model object, from the SAME cached pair clips
(2N frames, ``max_frames_num=2N``) and prompts:

* **greedy**: the harness's own ``generate_until`` with the benchmark's generation settings (one new token,
  greedy), one request per pair;
* **expected**: the adapter's ``loglikelihood`` for the five requests "1".."5" lmms-eval sends per pair, answered
  from one forward pass.

Both include what a request costs inside the model class: decoding the clip, the image processor, tokenising, the
forward pass(es). Each mode answers all documents once to warm up; then, ``--repeats`` times, every pair is
answered in both modes back to back (alternating which goes first), so that both see the same load on a shared
machine. The figures are the per-pair medians, averaged over the pairs, and the per-pair ratios. It also prints
the share of tied pairs of scores (pairs of pairs with equal scores, within each concept, averaged over the
concepts) of both modes: the ties greedy answers leave and expected scores break.

How it scales: per pair both modes decode the same 2N frames, run the vision tower over them once and prefill the
same prompt (the video's tokens and the benchmark prompt); greedy then picks one token, expected reads five entries
of the same last-position distribution. At 7B (LLaVA-OneVision-Qwen2-7B: SigLIP-400M over 16 frames, then ~3,400
prefill positions through 7B parameters) that shared part is the whole cost. Expected is if anything cheaper there:
LLaVA-NeXT's ``forward`` takes no ``logits_to_keep``, so greedy ``generate`` applies the output head (3584 x 152k)
at every prefill position (about 3.7 of ~55 TFLOPs per pair), while the adapter applies it to the last position
only. The tiny model is the hard case for the ratio: its forward pass is so cheap that fixed per-request costs
(tokenising the prompt and the five answers) weigh the most.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def build_checkpoint(folder: Path) -> Path:
    """The tiny checkpoint and its SigLIP tower in a private hub cache (set before huggingface_hub is imported)."""
    os.environ.update(HF_HUB_CACHE=str(folder / "hub"), HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1",
                      TQDM_DISABLE="1")  # the model classes' progress bars
    sys.path.insert(0, str(REPO / "tests"))
    from tiny_models import build_llava_next_qwen, build_siglip_in_hub_cache

    return build_llava_next_qwen(folder / "tiny-llava-qwen", build_siglip_in_hub_cache(folder / "hub"))


def documents(frames: int, cache: Path) -> list[tuple[dict, str, str]]:
    """``(doc, prompt, pair clip)`` of every demo document of the five concept tasks."""
    from convis_tasks import hooks
    from convis_tasks.concepts import CONCEPT_KEYS
    from convis_tasks.reading.datafolder import DEMO_DIR
    from convis_tasks.reading.documents import load_documents
    from convis_tasks.video.cache import PairClipCache

    clips = PairClipCache(cache)
    out = []
    for concept in CONCEPT_KEYS:
        for doc in load_documents(concept, DEMO_DIR):
            kwargs = {"frames_per_video": frames, "prompt": "benchmark"}
            out.append((doc, hooks.doc_to_text(doc, kwargs),
                        clips.get(doc["video1_path"], doc["video2_path"], n_frames=frames)))
    return out


def requests(docs: list[tuple[dict, str, str]], mode: str) -> list:
    from lmms_eval.api.instance import Instance

    gen = {"max_new_tokens": 1, "temperature": 0, "do_sample": False, "num_beams": 1}  # _template_yaml
    out = []
    for i, (_, prompt, clip) in enumerate(docs):
        visual = (lambda clip: lambda doc: [clip])(clip)
        meta = {"task": "bench", "doc_id": i, "repeats": 1}
        if mode == "greedy":
            out.append(Instance("generate_until", (prompt, dict(gen), visual, i, "bench", "test"), 0, meta))
        else:
            out += [Instance("loglikelihood", (prompt, d, visual, i, "bench", "test"), k, meta)
                    for k, d in enumerate("12345")]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1: steadier figures)")
    parser.add_argument("--frames", type=int, default=8, help="frames per video, N (the model gets 2N)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        checkpoint = build_checkpoint(Path(tmp))
        import torch

        from convis_tasks.model_wrappers.llava_next import ConvisLlavaOneVision
        from convis_tasks.scoring.expected_results import expected_from_responses, tied_pair_share
        from convis_tasks.scoring.parsing import parse_score

        torch.set_num_threads(args.threads)
        model = ConvisLlavaOneVision(pretrained=str(checkpoint), conv_template="qwen_1_5", model_name="llava_qwen",
                                     device="cpu", device_map="auto", max_frames_num=2 * args.frames)
        docs = documents(args.frames, Path(tmp) / "clips")
        model.task_dict = {"bench": {"test": [doc for doc, _, _ in docs]}}
        batches = {mode: requests(docs, mode) for mode in ("greedy", "expected")}
        run = {"greedy": model.generate_until, "expected": model.loglikelihood}
        answers = {mode: run[mode](batches[mode]) for mode in run}  # warm-up, and the answers
        per_pair = {"greedy": 1, "expected": 5}
        seconds: dict[str, list[list[float]]] = {mode: [[] for _ in docs] for mode in run}
        for rep in range(args.repeats):  # pair by pair, the two modes back to back in alternating order, so that
            for i in range(len(docs)):  # both see the same load on a shared machine
                for mode in (("greedy", "expected") if (rep + i) % 2 == 0 else ("expected", "greedy")):
                    k = per_pair[mode]
                    start = time.perf_counter()
                    run[mode](batches[mode][k * i:k * i + k])
                    seconds[mode][i].append(time.perf_counter() - start)
        medians = {mode: [statistics.median(t) for t in seconds[mode]] for mode in run}
        greedy_ms, expected_ms = (1000 * statistics.mean(medians[m]) for m in ("greedy", "expected"))
        ratios = [e / g for e, g in zip(medians["expected"], medians["greedy"])]
        print(f"{len(docs)} pairs (5 concepts of the demo set), {2 * args.frames} frames each, {args.threads} "
              f"torch thread(s); per pair the median of {args.repeats} calls, modes back to back")
        print(f"greedy one-token generation: {greedy_ms:8.2f} ms per pair (mean over pairs)")
        print(f"expected score (5 answers) : {expected_ms:8.2f} ms per pair (mean over pairs)")
        print(f"ratio expected / greedy    : {expected_ms / greedy_ms:8.3f}  (target <= 1.2); per pair: median "
              f"{statistics.median(ratios):.3f}, range {min(ratios):.3f}-{max(ratios):.3f}")
        greedy = [parse_score(a) for a in answers["greedy"]]
        expected = [expected_from_responses(answers["expected"][5 * i:5 * i + 5]).score for i in range(len(docs))]
        for name, scores in (("greedy", greedy), ("expected", expected)):
            by_concept: dict[str, list] = {}
            for (doc, _, _), score in zip(docs, scores):
                by_concept.setdefault(doc["concept"], []).append(score)
            shares = [tied_pair_share(v) for v in by_concept.values()]
            print(f"tied pairs, {name:8s}: {100 * statistics.mean(shares):6.2f} % (mean over concepts; "
                  f"unparsed {sum(s is None for s in scores)})")


if __name__ == "__main__":
    main()
