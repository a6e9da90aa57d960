"""Reading the benchmark's files: strict JSON, names -> files, the data folder, ground truth, predictions, rankings,
documents, run folders and provenance. Imports neither torch, lmms-eval nor PyAV."""
