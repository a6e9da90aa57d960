"""Test-only lmms-eval models, registered with ``LMMS_EVAL_PLUGINS=convis_test_models`` (and this folder's parent on
``PYTHONPATH``); lmms-eval's legacy plugin form wants a ``models`` and a ``tasks`` package."""
