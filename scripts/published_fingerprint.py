"""Regenerate (or check) the published-set fingerprint, convis_tasks/reading/published_fingerprint.json.

    python scripts/published_fingerprint.py [REFERENCE_DIR] [--check]   (default: ../shared/reference)

Reads the authors' released gt_conditioned_similarities.json (the 610 pairs and their mean ratings) and
to_be_ranked.json (the 133 retrieval candidate sets), checks that the raw ratings (vicos.user_inputs.json, when
present) give the same means, and writes digests only (convis_tasks/reading/published.py says which). With --check
it writes nothing and exits 1 when the stored fingerprint differs from the one recomputed.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from convis_tasks.reading.annotations import load_ground_truth
from convis_tasks.reading.published import (CANDIDATES_FILE, FINGERPRINT_FILE, make_fingerprint, parse_fingerprint,
                                            truth_identity)
from convis_tasks.reading.rankings import load_candidate_sets

DEFAULT_REFERENCE = Path(__file__).resolve().parents[2] / "shared" / "reference"


def recompute(reference: Path) -> dict:
    """The fingerprint document of the release in ``reference``; the raw ratings, when present, must agree."""
    truth = load_ground_truth(reference / "gt_conditioned_similarities.json")
    doc = make_fingerprint(truth, load_candidate_sets(reference / CANDIDATES_FILE))
    raw = reference / "vicos.user_inputs.json"
    if raw.is_file():
        identity = truth_identity(load_ground_truth(raw), None, parse_fingerprint(doc, "recomputed"))
        if not identity.published:
            raise SystemExit(f"{raw}: the raw ratings' means are not the released means: {identity.label()}")
    return doc


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("reference", nargs="?", type=Path, default=DEFAULT_REFERENCE,
                        help="the authors' released files (default: %(default)s)")
    parser.add_argument("--check", action="store_true", help="compare with the stored file; write nothing")
    parser.add_argument("-o", "--output", type=Path, default=FINGERPRINT_FILE)
    args = parser.parse_args(argv)
    doc = recompute(args.reference)
    if args.check:
        same = args.output.is_file() and json.loads(args.output.read_text(encoding="utf-8")) == doc
        print(f"{args.output}: {'up to date' if same else 'DIFFERS from the release in ' + str(args.reference)}")
        return 0 if same else 1
    args.output.write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {args.output}: {len(doc['pairs'])} pairs, {len(doc['retrieval']['anchors'])} retrieval anchors, "
          f"digest {doc['digest'][:16]}...")
    return 0


if __name__ == "__main__":
    sys.exit(main())
