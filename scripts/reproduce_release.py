"""Print rho/tau per concept for every per-pair answer file in the authors' release.

    python scripts/reproduce_release.py [REFERENCE_DIR]   (default: ../shared/reference)

Feeds each released file through the same code path as `convis correlate` (0.0 = unparsed -> 3.0).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from convis_tasks.scoring.evaluate import run_correlate
from convis_tasks.concepts import CONCEPTS


def main(reference: Path) -> None:
    truth = str(reference / "vicos.user_inputs.json")
    start = time.perf_counter()
    header = "| model | " + " | ".join(f"{c.title} rho / tau" for c in CONCEPTS) + " | unparsed |"
    print(header + "\n|---|" + "---:|" * (len(CONCEPTS) + 1))
    lmm_root = reference / "computed_conditioned_similarities"
    models = sorted({p.name for p in lmm_root.glob("*/*") if p.is_dir()})
    for model in models:
        cells, unparsed = [], 0
        for concept in CONCEPTS:
            path = lmm_root / concept.folder / model / f"{model}_{concept.folder}_similarities.json"
            r = run_correlate(str(path), truth)[concept.key]
            cells.append(f"{r['spearman']:.1f} / {r['kendall']:.2f}")
            unparsed += r["unparsed"]
        print(f"| {model} | " + " | ".join(cells) + f" | {unparsed} |")
    for path in sorted((reference / "computed_similarities").glob("*/*_similarities.json")):
        results = run_correlate(str(path), truth)
        cells = [f"{results[c.key]['spearman']:.1f} / {results[c.key]['kendall']:.2f}" for c in CONCEPTS]
        print(f"| global: {path.parent.name} | " + " | ".join(cells) + f" | {results['location']['unparsed']} |")
    print(f"\n({time.perf_counter() - start:.1f} s)", file=sys.stderr)


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parents[2] / "shared" / "reference")
