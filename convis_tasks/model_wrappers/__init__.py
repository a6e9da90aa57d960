"""lmms-eval models shipped with ConViS-Eval, registered through the ``lmms_eval.models`` entry-point group.

:func:`manifests` is the entry point's payload: it turns the data of :mod:`.manifest` into lmms-eval's
``ModelManifest`` records (class paths only, so listing models imports no model), and prints, once, what plain
``lmms-eval`` would not say about ConViS task names in its command line (:func:`convis_tasks.harness.tasks.task_hint`).
"""

from __future__ import annotations

import os
import sys

from convis_tasks.harness.tasks import task_hint
from convis_tasks.model_wrappers.manifest import MODELS


def _is_lmms_eval_cli(argv0: str) -> bool:
    """Whether this process is lmms-eval's own command line (``lmms-eval``, ``python -m lmms_eval``), whose arguments
    the hint reads; ``convis run`` and ``convis doctor`` load the same entry point with their own arguments."""
    name = os.path.basename(argv0)
    return name in ("lmms-eval", "lmms_eval") or argv0.replace(os.sep, "/").endswith("lmms_eval/__main__.py")


def manifests():
    """The model manifests lmms-eval reads at start-up (``lmms_eval.models`` entry point)."""
    from lmms_eval.models.registry_v2 import ModelManifest  # the harness, only when the harness asks

    try:
        hint = task_hint(sys.argv[1:]) if sys.argv and _is_lmms_eval_cli(sys.argv[0]) else None
    except Exception:  # noqa: BLE001 - a hint must never stop the harness
        hint = None
    if hint:
        print(f"convis: note: {hint}", file=sys.stderr, flush=True)
    return [ModelManifest(model_id=name, simple_class_path=spec.class_path) for name, spec in MODELS.items()]
