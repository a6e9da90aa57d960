"""The benchmark's arithmetic: parsing answers, the unparsed policy, correlations, retrieval metrics, agreement,
bootstrap, ceiling, composite and expected scores. Pure functions; imports neither torch, lmms-eval nor PyAV."""
