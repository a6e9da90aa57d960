"""The errors of ConViS-Eval: one base class that carries the exit status of the ``convis`` command.

Every error the package raises for a problem of the user's (a file, an argument, the data, the environment) is a
:class:`ConvisError`; its message is one actionable line naming the file, the pair or the field. The command line
turns it into ``convis: error: <message>`` and ``exit_code`` (``convis_tasks.cli``); any other exception is a bug
(exit status 3, with the traceback). The built-in bases (``ValueError``, ``FileNotFoundError``, ...) that the
subclasses also carry keep ``except ValueError`` in callers working.

Imports nothing.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_INVALID = 1  # a submission failed validation; a run that started and failed
EXIT_ERROR = 2  # a usage or input error, found before anything was computed
EXIT_INTERNAL = 3  # a bug: the traceback is printed
EXIT_INTERRUPTED = 130


class ConvisError(Exception):
    """A problem of the input or the environment; ``exit_code`` is the ``convis`` command's exit status."""

    exit_code: int = EXIT_ERROR


class InputError(ConvisError, ValueError):
    """Bad input: a file, a field, an argument or a value that the benchmark's rules refuse."""


class EmptyEvaluationError(InputError):
    """Nothing was evaluated (n = 0): no pair in common, every answer left out, or no anchor to score. Never
    reported as a result (null/NaN)."""


class RunError(ConvisError):
    """A problem found before a run starts (exit status 2); the message is one actionable line."""


class RunFailed(RunError):
    """lmms-eval ran and failed (exit status 1); the message is the failure's own."""

    exit_code = EXIT_INVALID


class SubmissionInvalid(ConvisError):
    """A leaderboard submission failed validation (exit status 1)."""

    exit_code = EXIT_INVALID


class AllUnparsedError(ConvisError):
    """Every answer of a concept is unparsed, so its row is no result (exit status 1, after the tables are printed);
    ``--allow-unparsed`` accepts it."""

    exit_code = EXIT_INVALID
