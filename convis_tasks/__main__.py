"""``python -m convis_tasks path`` prints the task folder; other words are ``convis`` subcommands."""

import sys

from convis_tasks.cli import main

sys.exit(main())
