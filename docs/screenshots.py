# Authors: The tfmxne developers
# SPDX-License-Identifier: BSD-3-Clause
"""Screenshots of the built documentation, to look at, with headless Chromium.

    python docs/screenshots.py [--build docs/_build/html] [--out docs/_screenshots]

Saves ``front.png`` (the front page) and ``example.png`` (the gallery example of
the sources on the brain, with its figures). Needs Chromium (Debian's
``chromium`` package: ``apt-get install chromium``); runs it without a sandbox
when run as root, as a container's root must.
"""

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
PAGES = {
    "front.png": ("index.html", (1280, 1400)),
    "example.png": ("auto_examples/plot_05_brain_tf.html", (1280, 3200)),
}


def find_chromium():
    for name in ("chromium", "chromium-browser", "google-chrome", "chrome"):
        path = shutil.which(name)
        if path:
            return path
    sys.exit("no Chromium found: apt-get install chromium")


def screenshot(chromium, page, png, size):
    cmd = [
        chromium,
        "--headless",
        "--disable-gpu",
        "--hide-scrollbars",
        "--force-device-scale-factor=1",
        f"--window-size={size[0]},{size[1]}",
        f"--screenshot={png}",
        page.as_uri(),
    ]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.insert(1, "--no-sandbox")
    subprocess.run(cmd, check=True, capture_output=True, timeout=120)
    if not png.is_file() or png.stat().st_size == 0:
        sys.exit(f"no screenshot written for {page}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--build", type=Path, default=HERE / "_build" / "html")
    parser.add_argument("--out", type=Path, default=HERE / "_screenshots")
    args = parser.parse_args()
    chromium = find_chromium()
    args.out.mkdir(parents=True, exist_ok=True)
    for name, (rel, size) in PAGES.items():
        page = (args.build / rel).resolve()
        if not page.is_file():
            sys.exit(f"{page} not found: build the documentation first (README)")
        screenshot(chromium, page, args.out / name, size)
        print(args.out / name)


if __name__ == "__main__":
    main()
