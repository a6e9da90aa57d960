"""Cost of the journal's integrity checks: request key + input identity per request, and loading + verifying
every line's checksum when a run resumes.

    python benchmarks/journal_cost.py [--entries 10000]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time

from convis_tasks.harness.journal import AnswerJournal, entry_checksum, input_identity, request_key


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--entries", type=int, default=10_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        video = os.path.join(folder, "v.mp4")
        with open(video, "wb") as handle:
            handle.write(b"x" * 1000)
        start = time.perf_counter()
        keys = [(request_key("convis_location", "test", i, f"a{i}|b{i}"),
                 input_identity("prompt " * 50, {"max_new_tokens": 16}, [video, video])) for i in range(args.entries)]
        seconds = time.perf_counter() - start
        print(f"request key + input identity (2 stats, 2 sha256): {seconds:.3f} s for {args.entries} requests, "
              f"{seconds / args.entries * 1e6:.0f} us each")
        os.makedirs(os.path.join(folder, "j"))
        with open(os.path.join(folder, "j", "answers.rank0.jsonl"), "w", encoding="utf-8") as handle:
            for key, inputs in keys:
                handle.write(json.dumps({"model": "m", "key": key, "inputs": inputs, "answer": "Score: 4",
                                         "sha256": entry_checksum("m", key, inputs, "Score: 4")}) + "\n")
        start = time.perf_counter()
        journal = AnswerJournal(os.path.join(folder, "j"), "m")
        seconds = time.perf_counter() - start
        print(f"load + verify {len(journal)} journal lines: {seconds:.3f} s, {seconds / len(journal) * 1e6:.0f} us each")


if __name__ == "__main__":
    main()
