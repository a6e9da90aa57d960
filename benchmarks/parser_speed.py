"""Parser running time on adversarial answers of growing length: linear growth means ~2x per doubling.

    python benchmarks/parser_speed.py [--sizes 250000,500000,1000000] [--module convis_tasks.scoring.parsing]

Prints one line per (answer shape, size): seconds for one parse_score call and the ratio to the previous size.
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
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="250000,500000,1000000")
    parser.add_argument("--module", default="convis_tasks.scoring.parsing")
    parser.add_argument("--limit", type=float, default=30.0, help="skip larger sizes of a shape after this many s")
    args = parser.parse_args()
    parse_score = importlib.import_module(args.module).parse_score
    sizes = [int(s) for s in args.sizes.split(",")]
    for name, make in SHAPES.items():
        previous = None
        for size in sizes:
            answer = make(size)
            start = time.perf_counter()
            result = parse_score(answer)
            seconds = time.perf_counter() - start
            ratio = f"x{seconds / previous:.1f}" if previous else ""
            print(f"{name:24s} {len(answer):>9,d} chars  {seconds:8.4f} s  {ratio:6s} -> {result}", flush=True)
            previous = seconds
            if seconds > args.limit:
                print(f"{name:24s} stopped: over {args.limit:g} s", flush=True)
                break


if __name__ == "__main__":
    main()
