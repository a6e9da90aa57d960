"""Running the benchmark through lmms-eval: task names, preflight, launching, the doctor, the demo, the clip session
of the hooks and the answer journal."""
