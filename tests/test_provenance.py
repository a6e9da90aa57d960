"""utils/provenance: versions without importing the packages, cached, logged with every record, checked."""

from __future__ import annotations

import importlib.metadata
import json
import platform
import subprocess
import sys

from convis_tasks import __version__, hooks
from convis_tasks.reading import provenance as prov


def test_versions_come_from_the_installed_distributions():
    values = prov.provenance()
    assert list(values) == list(prov.KEYS)
    assert values["convis_eval"] == __version__ and values["python"] == platform.python_version()
    assert values["numpy"] == importlib.metadata.version("numpy")
    assert values["scipy"] == importlib.metadata.version("scipy")
    for name in prov.PACKAGES:
        try:
            expected = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            expected = None
        assert values[name] == expected, name


def test_computed_once_and_each_caller_gets_its_own_copy():
    first = prov.provenance()
    first["torch"] = "tampered"
    assert prov.provenance()["torch"] != "tampered"
    assert prov._computed.cache_info().currsize == 1


def test_reading_the_versions_imports_neither_torch_nor_lmms_eval():
    code = ("import sys; from convis_tasks.reading.provenance import provenance; provenance();"
            "bad = [m for m in sys.modules if m.split('.')[0] in ('torch', 'lmms_eval', 'transformers', 'decord', 'av')];"
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)


def test_every_logged_record_carries_it_and_stays_json():
    doc = {"video1": "a.mp4", "video2": "b.mp4", "concept": "location", "gt": {"location": 2.0}}
    pair = hooks.process_results(doc, ["Score: 4"])["spearman"]
    assert pair["provenance"] == prov.provenance()
    retrieval = hooks.process_retrieval_results({"anchor": "a.mp4", "candidate": "c.mp4", "concept": "location",
                                                 "human_rank": 1.0}, ["2"])["r@1"]
    assert retrieval["provenance"] == prov.provenance()
    json.dumps(pair, allow_nan=False)


def test_check_and_describe():
    assert prov.check(prov.provenance()) == []
    assert prov.check({"convis_eval": "0.1.0", "python": "3.11", "torch": 2.1}) == [
        "torch: version 2.1 is not a string or null"]
    assert prov.check("torch 2") == ["expected an object of package -> version, got str"]
    assert prov.check({"torch": "2"}) == ["convis_eval: missing", "python: missing"]
    assert prov.describe({"convis_eval": "0.1.0", "python": "3.11.7", "decord": None}) == \
        "convis_eval 0.1.0, python 3.11.7 (not installed: decord)"
    assert prov.describe(None) == "not recorded"
