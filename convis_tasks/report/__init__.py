"""Reporting on top of the scoring utilities: side-by-side tables, bootstrap intervals, the human ceiling,
the composite similarity, plots and leaderboard submissions.

Nothing here imports torch or lmms-eval; matplotlib is imported lazily, by :mod:`convis_tasks.report.plots` only.
The ``convis`` subcommands are registered by :func:`convis_tasks.cli.report.add_commands`.

Dependencies run one way: :mod:`.console` (exit codes, messages, strict JSON) and :mod:`.runs` (lmms-eval run
folders and the rule that reads them) depend on no other module here; :mod:`.inputs` reads inputs with
:mod:`.runs`; :mod:`.submission`, :mod:`.build` and :mod:`.plots` build on :mod:`.inputs`; :mod:`.commands` on
all of them. ``tests/test_report_modules.py`` checks that no cycle appears.
"""
