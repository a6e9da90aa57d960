"""Parser running time on adversarial answers of growing length: linear growth means ~2x per doubling.

    python benchmarks/parser_speed.py [--sizes 250000,500000,1000000] [--module convis_tasks.scoring.parsing]
                                      [--compare old_parsing]   # another copy, timed alternately

Prints one line per (answer shape, size): seconds for one parse_score call and the ratio to the previous size;
then the mean time per answer over a fixed set of typical answers (the cost of the checks on ordinary text).
"""

from __future__ import annotations

import argparse
import importlib
import time

SHAPES = {
    "unclosed <think>": lambda n: "<think>" * (n // 7),
    "many 'so' markers": lambda n: "so " * (n // 3) + "Score: 4",
    "label then long spaces": lambda n: "score 1" + " " * n + "x",
    "label then long digits": lambda n: "Score: " + "9" * n,
    "many labels": lambda n: "score " * (n // 6),
    "many fractions": lambda n: "4/" * (n // 2),
    "video mentions": lambda n: "video 1 " * (n // 8) + "Score: 2",
    "unclosed <CONCLUSION>": lambda n: "<CONCLUSION>" * (n // 12),
    "prose then score": lambda n: "blah " * (n // 5) + "\nScore: 3",
    "digits and dots": lambda n: "1." * (n // 2),
    "long space run": lambda n: "x" + " " * n + "x",
    "long tab run after 1": lambda n: "Score 1" + "\t" * n + "to 5",
    "scale mentions": lambda n: "(1-5) " * (n // 6),
    "brackets": lambda n: "([" * (n // 2),
    # shapes of the candidate-set rule (issue #19): mentions, negations, list markers, ratings, final answers
    "many mentions": lambda n: "a 2. " * (n // 5) + "Score: 2",
    "negated answers": lambda n: "not score 2, " * (n // 13),
    "list markers": lambda n: "1. x\n" * (n // 5),
    "bare lines": lambda n: "4\n" * (n // 2),
    "confidence ratings": lambda n: "Confidence: 3/5 " * (n // 16) + "Score: 4",
    "final answers": lambda n: "final answer: 3. " * (n // 17),
    "full-width digits": lambda n: "\uff14 " * (n // 2) + "Score: \uff14/\uff15",
    "one long line of numbers": lambda n: "1 " * (n // 2),
}
TYPICAL = [
    "4", "**4**", "Score: 4", "Score: 3.66000000 (cosine 0.83000000)", "Score: 3.41720000 (mass on 1-5: 0.101877)",
    "I'd rate it 4 out of 5.", "<think>The videos both show 2 people cooking.</think>\nScore: 4",
    "The two videos are very similar in terms of the concept 'Location'. They both show a group of people riding "
    "motorcycles on a dirt track.\n\nThe similarity score is 4. This means that the two videos share the place.",
    "1. Video 1 shows a man in a kitchen.\n2. Video 2 shows a woman in a kitchen.\nBoth are indoors.\n\n"
    "Final answer: 3",
    "The main action differs: in video 1 a man runs, in video 2 a man swims. Score: 2/5. Confidence: 4/5",
]


def _timed(parse_score, answer: str) -> tuple[float, object]:
    start = time.perf_counter()
    result = parse_score(answer)
    return time.perf_counter() - start, result


def _typical(parse_score, rounds: int) -> float:
    """Mean seconds per answer over ``rounds`` passes of TYPICAL."""
    start = time.perf_counter()
    for _ in range(rounds):
        for answer in TYPICAL:
            parse_score(answer)
    return (time.perf_counter() - start) / (rounds * len(TYPICAL))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="250000,500000,1000000")
    parser.add_argument("--module", default="convis_tasks.scoring.parsing")
    parser.add_argument("--compare", default=None, metavar="MODULE",
                        help="also time this module's parse_score on each answer, alternately (a fair comparison "
                             "on a busy machine); prints both times and their ratio")
    parser.add_argument("--limit", type=float, default=30.0, help="skip larger sizes of a shape after this many s")
    args = parser.parse_args()
    parse_score = importlib.import_module(args.module).parse_score
    other = importlib.import_module(args.compare).parse_score if args.compare else None
    sizes = [int(s) for s in args.sizes.split(",")]
    for name, make in SHAPES.items():
        previous = None
        for size in sizes:
            answer = make(size)
            seconds, result = _timed(parse_score, answer)
            ratio = f"x{seconds / previous:.1f}" if previous else ""
            line = f"{name:24s} {len(answer):>9,d} chars  {seconds:8.4f} s  {ratio:6s} -> {result}"
            if other is not None:
                theirs, their_result = _timed(other, answer)
                line += f"   | {args.compare}: {theirs:8.4f} s -> {their_result}  (this / that: {seconds / theirs:.1f})"
            print(line, flush=True)
            previous = seconds
            if seconds > args.limit:
                print(f"{name:24s} stopped: over {args.limit:g} s", flush=True)
                break
    rounds = 2000
    seconds = _typical(parse_score, rounds)
    line = f"typical answers: {seconds * 1e6:.1f} us per answer (mean of {rounds} x {len(TYPICAL)})"
    if other is not None:
        theirs = _typical(other, rounds)
        line += f" | {args.compare}: {theirs * 1e6:.1f} us (this / that: {seconds / theirs:.1f})"
    print(line, flush=True)


if __name__ == "__main__":
    main()
