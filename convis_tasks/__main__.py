"""``python -m convis_tasks path`` prints the task folder; other words are ``convis`` subcommands."""

import sys

from .cli import main

sys.exit(main())
