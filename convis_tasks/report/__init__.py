"""Reports on top of the scoring library: side-by-side tables (Markdown, LaTeX, CSV), the report builder, plots,
leaderboard submissions and the inspect page.

Nothing here imports torch, lmms-eval or PyAV; matplotlib is imported lazily, by :mod:`convis_tasks.report.plots`
only. The ``convis`` subcommands are registered by :mod:`convis_tasks.cli.report`; ``tests/test_architecture.py``
checks that no import cycle appears.
"""
