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


def release_files(reference: Path) -> tuple[Path, list[str], list[Path]]:
    """The ratings file, the LMMs with per-concept answer files and the global-baseline files under ``reference``.

    Raises ``SystemExit`` (status 2) naming the folder and what it lacks: an empty table is never printed.
    """
    truth = reference / "vicos.user_inputs.json"
    lmm_root = reference / "computed_conditioned_similarities"
    models = sorted({p.name for p in lmm_root.glob("*/*") if p.is_dir()})
    baselines = sorted((reference / "computed_similarities").glob("*/*_similarities.json"))
    lacking = [what for what, missing in ((f"{truth.name} (the human ratings)", not truth.is_file()),
                                          (f"{lmm_root.name}/<Concept>/<Model>/ (the LMMs' answers)", not models))
               if missing]
    if lacking:
        sys.stderr.write(f"reproduce_release: error: {reference} holds no release files: it lacks "
                         f"{' and '.join(lacking)}; pass the folder of the authors' release (see ../shared/README.md)\n")
        raise SystemExit(2)
    return truth, models, baselines


def main(reference: Path) -> None:
    truth_path, models, baselines = release_files(reference)
    truth = str(truth_path)
    start = time.perf_counter()
    header = "| model | " + " | ".join(f"{c.title} rho / tau" for c in CONCEPTS) + " | unparsed |"
    print(header + "\n|---|" + "---:|" * (len(CONCEPTS) + 1))
    lmm_root = reference / "computed_conditioned_similarities"
    for model in models:
        cells, unparsed = [], 0
        for concept in CONCEPTS:
            path = lmm_root / concept.folder / model / f"{model}_{concept.folder}_similarities.json"
            r = run_correlate(str(path), truth)[concept.key]
            cells.append(f"{r['spearman']:.1f} / {r['kendall']:.2f}")
            unparsed += r["unparsed"]
        print(f"| {model} | " + " | ".join(cells) + f" | {unparsed} |")
    for path in baselines:
        results = run_correlate(str(path), truth)
        cells = [f"{results[c.key]['spearman']:.1f} / {results[c.key]['kendall']:.2f}" for c in CONCEPTS]
        print(f"| global: {path.parent.name} | " + " | ".join(cells) + f" | {results['location']['unparsed']} |")
    print(f"\n({time.perf_counter() - start:.1f} s)", file=sys.stderr)


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parents[2] / "shared" / "reference")
