#!/usr/bin/env python
"""Make the README's screenshot of ``convis inspect``: a demo run -> the page -> headless Chromium -> a PNG.

    python scripts/inspect_screenshot.py                 # writes docs/img/inspect.png (a demo run takes ~40 s)
    python scripts/inspect_screenshot.py --run DIR       # reuse the folder of `convis demo --output DIR`

The demo runs ``convis_colour_histogram`` (no weights) on the bundled synthetic set; the page is written with the
demo's data folder, ground truth and rankings; Chromium (Debian's ``chromium``) renders it at ``--width`` x
``--height`` CSS pixels. The PNG is reduced to 256 colours (the demo's frames are flat colours).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DEMO = REPO / "convis_tasks" / "demo_data"


def _run(cmd: list[str], env: dict) -> None:
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd[:4])} ... failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    if proc.stdout.strip():
        print(proc.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--run", help="an existing `convis demo --output DIR` folder (default: a new demo run)")
    parser.add_argument("-o", "--output", default=str(REPO / "docs" / "img" / "inspect.png"))
    parser.add_argument("--width", type=int, default=1400)
    parser.add_argument("--height", type=int, default=1700)
    args = parser.parse_args(argv)
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        raise SystemExit("Chromium is not installed (Debian: apt-get install chromium)")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    with tempfile.TemporaryDirectory(prefix="convis-inspect-shot-") as tmp:
        run = Path(args.run) if args.run else Path(tmp) / "demo"
        if not args.run:
            _run([sys.executable, "-m", "convis_tasks", "demo", "--model", "convis_colour_histogram", "--output",
                  str(run)], env)
        page = Path(tmp) / "page.html"
        _run([sys.executable, "-m", "convis_tasks", "inspect", str(run), "-o", str(page), "--data-dir", str(DEMO),
              "--ground-truth", str(DEMO / "ConVIS.jsonl"), "--rankings", str(DEMO / "ranked.json")], env)
        raw = Path(tmp) / "shot.png"
        subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                        "--force-device-scale-factor=1", f"--window-size={args.width},{args.height}",
                        f"--screenshot={raw}", page.as_uri()], capture_output=True, timeout=120, check=True)
        from PIL import Image

        Path(args.output).parent.mkdir(parents=True, exist_ok=True)
        with Image.open(raw) as image:
            image.convert("RGB").quantize(256).save(args.output, optimize=True)
    print(f"wrote {args.output} ({Path(args.output).stat().st_size / 1e3:.0f} kB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
