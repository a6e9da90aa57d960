"""Reporting on top of the scoring utilities: side-by-side tables, bootstrap intervals, the human ceiling,
the composite similarity, plots and leaderboard submissions.

Nothing here imports torch or lmms-eval; matplotlib is imported lazily, by :mod:`convis_tasks.report.plots` only.
The ``convis`` subcommands are registered by :func:`convis_tasks.report.commands.add_commands`.
"""
