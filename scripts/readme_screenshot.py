"""Make the README's picture of the run page: run the demo (or use a run folder given), then let headless
Chromium photograph the top of the page.

    python scripts/readme_screenshot.py                      # runs `tabline demo` into a temporary folder
    python scripts/readme_screenshot.py runs/demo-.../line   # an existing run folder

Writes docs/images/view.png (1300 × 1500 pixels). Needs Debian's `chromium` on PATH.
"""
from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "images" / "view.png"


def main(argv: list[str]) -> int:
    if shutil.which("chromium") is None:
        print("error: chromium is not on PATH (apt-get install chromium)", file=sys.stderr)
        return 2
    from tabline.view import write_view

    with tempfile.TemporaryDirectory() as tmp:
        if argv:
            run = Path(argv[0])
        else:
            from tabline.demo import run_demo

            run = run_demo(Path(tmp) / "demo", progress=False) / "line"
        page = write_view(run)
        OUT.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(["chromium", "--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                        "--virtual-time-budget=10000", "--window-size=1300,1500", f"--screenshot={OUT}",
                        page.resolve().as_uri()], check=True, capture_output=True, timeout=120)
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
