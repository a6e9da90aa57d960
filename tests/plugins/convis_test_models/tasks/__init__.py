"""No tasks: lmms-eval looks for this package in every plugin."""
