"""Time `convis report` on the authors' 610-pair release, in process and as a command.

    python scripts/time_report.py [REFERENCE_DIR] [--repeat N]   (default: ../shared/reference, 5 repeats)

In process (after the imports): read the raw ratings (147 annotators, 3,808 records), three models' five
per-concept answer files and two concept-free baselines, and build every table (pair scoring, global baselines,
human ceiling with Krippendorff's alpha, composite) rendered as Markdown, LaTeX and CSV; then the same with
``--bootstrap 1000`` (CIs and paired tests). As a command: the whole `convis report` process, interpreter start
and imports included. Prints the median of the repeats (wall clock, and CPU time of this process, which a busy
machine inflates less).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

MODELS = ("LLaVA-OneVision-Qwen2-7B", "InternVL2_5-8B", "Qwen2.5-VL-7B-Instruct")
BASELINES = ("dinov2-large", "videomae-large")
WEIGHTS = "main_action=0.4,location=0.6"

RUNNER = """
import argparse, sys
from convis_tasks.cli import build_parser
from convis_tasks.cli.report import add_parsers
parser = build_parser()
sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
if "report" not in sub.choices:
    add_parsers(sub)
args = parser.parse_args(sys.argv[1:])
sys.exit(args.func(args))
"""


def report_argv(reference: Path, bootstrap: int = 0) -> list[str]:
    argv = ["report", "--ground-truth", str(reference / "vicos.user_inputs.json"), "--release", str(reference),
            "--weights", WEIGHTS]
    for model in MODELS:
        argv += ["--release-model", model]
    for name in BASELINES:
        argv.append(str(reference / "computed_similarities" / name / f"{name}_similarities.json"))
    if bootstrap:
        argv += ["--bootstrap", str(bootstrap)]
    return argv


def in_process(reference: Path, bootstrap: int) -> tuple[float, float]:
    from convis_tasks.report.build import ReportOptions, build_report
    from convis_tasks.scoring.composite import parse_weights
    from convis_tasks.reading.inputs import load_inputs, load_release_model
    from convis_tasks.report.tables import to_csv, to_latex, to_markdown
    from convis_tasks.reading.annotations import load_ground_truth

    start, cpu = time.perf_counter(), time.process_time()
    truth = load_ground_truth(reference / "vicos.user_inputs.json")
    items = [load_release_model(str(reference), m) for m in MODELS]
    items += load_inputs([str(reference / "computed_similarities" / n / f"{n}_similarities.json") for n in BASELINES])
    report = build_report(items, truth, None, ReportOptions(weights=parse_weights(WEIGHTS), bootstrap=bootstrap))
    to_markdown(report.tables), to_latex(report.tables), to_csv(report.tables)
    return time.perf_counter() - start, time.process_time() - cpu


def as_command(reference: Path, bootstrap: int) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", RUNNER] + report_argv(reference, bootstrap), check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("reference", nargs="?", type=Path,
                        default=Path(__file__).resolve().parents[2] / "shared" / "reference")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    if not (args.reference / "vicos.user_inputs.json").is_file():
        sys.exit(f"the authors' release is not at {args.reference}")
    start = time.perf_counter()
    import convis_tasks.report.build  # noqa: F401  (numpy, scipy.stats, krippendorff)
    print(f"imports: {time.perf_counter() - start:.2f} s (once per process)")
    in_process(args.reference, 0)  # warm the file cache
    for label, bootstrap in (("report", 0), ("report --bootstrap 1000", 1000)):
        runs = [in_process(args.reference, bootstrap) for _ in range(args.repeat)]
        wall = [w for w, _ in runs]
        cpu = [c for _, c in runs]
        print(f"{label}, in process: median {statistics.median(wall):.3f} s wall (min {min(wall):.3f}, "
              f"max {max(wall):.3f}), {statistics.median(cpu):.3f} s CPU; {args.repeat} runs, {len(MODELS)} models + "
              f"{len(BASELINES)} baselines, 610 pairs, raw ratings")
    for label, bootstrap in (("report", 0), ("report --bootstrap 1000", 1000)):
        runs = [as_command(args.reference, bootstrap) for _ in range(max(1, args.repeat // 2))]
        print(f"convis {label}, whole command: median {statistics.median(runs):.2f} s")


if __name__ == "__main__":
    main()
