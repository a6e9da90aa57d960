"""ConViS-Eval: the ConViS-Bench (concept-based video similarity) tasks for the lmms-eval harness.

The folder holding this file is the lmms-eval task folder: pass it to ``--include_path``
(``python -m convis_tasks path`` prints it).
"""

from pathlib import Path

__version__ = "0.1.0"

TASK_DIR = Path(__file__).resolve().parent


def task_path() -> str:
    """Return the folder to give lmms-eval as ``--include_path``."""
    return str(TASK_DIR)
