"""Running the real ``convis`` entry point inside the test process."""

from __future__ import annotations

import contextlib
import io


def convis_in_process(*argv) -> tuple[int, str, str]:
    """``convis ARGV`` through ``convis_tasks.cli.main``, usage errors included: (status, stdout, stderr)."""
    from convis_tasks.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main([str(a) for a in argv])
        except SystemExit as exc:  # argparse's usage errors
            code = exc.code
    return code, out.getvalue(), err.getvalue()
