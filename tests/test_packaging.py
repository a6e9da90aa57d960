"""The built wheel carries every task file, template, prompt and demo file, under one import package."""

import os
import subprocess
import sys
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_wheel_holds_the_whole_task_folder_and_one_top_level_package(tmp_path):
    subprocess.run([sys.executable, "-m", "pip", "wheel", str(REPO), "--no-deps", "--no-build-isolation", "-q",
                    "-w", str(tmp_path)], check=True, capture_output=True)
    (wheel,) = tmp_path.glob("convis_eval-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = {
        str(path.relative_to(REPO)).replace(os.sep, "/")
        for path in (REPO / "convis_tasks").rglob("*")
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc"
    }
    assert expected - names == set()
    top_level = {n.split("/")[0] for n in names if not n.startswith("convis_eval-")}
    assert top_level == {"convis_tasks"}
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    text = zipfile.ZipFile(wheel).read(entry_points).decode()
    assert "convis = convis_tasks.cli:main" in text and "[lmms_eval.models]" in text
