"""``interrupting_colour``: the colour-histogram model (same answers), which a test can slow down, count and stop.

Read from the environment (test settings, not product options):

* ``CONVIS_TEST_COMPUTED``: a file; one line ``<task> <doc_id>`` is appended for each answer computed;
* ``CONVIS_TEST_SECONDS_PER_ANSWER``: sleep this long before each answer (a slow model);
* ``CONVIS_TEST_STOP_AFTER=k``: once this process has computed k answers, send SIGINT to the parent process
  (``convis run``: what Ctrl-C does) and wait for it to stop the run.
"""

from __future__ import annotations

import os
import signal
import time

from convis_tasks.model_wrappers.colour_histogram import ColourHistogramSimilarity


class InterruptingColour(ColourHistogramSimilarity):
    computed = 0  # answers computed by this process

    def generate_until(self, requests):
        answers = []
        stop = int(os.environ.get("CONVIS_TEST_STOP_AFTER", "-1"))
        for request in requests:
            if stop >= 0 and type(self).computed >= stop:
                os.kill(os.getppid(), signal.SIGINT)
                time.sleep(600)  # convis run ends this process
            time.sleep(float(os.environ.get("CONVIS_TEST_SECONDS_PER_ANSWER", "0")))
            answers += super().generate_until([request])
            type(self).computed += 1
            if os.environ.get("CONVIS_TEST_COMPUTED"):
                with open(os.environ["CONVIS_TEST_COMPUTED"], "a", encoding="utf-8") as log:
                    log.write(f"{request.args[4]} {request.args[3]}\n")
        return answers
