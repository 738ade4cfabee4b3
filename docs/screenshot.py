"""Render the first screen of a run's HTML report in headless Chromium (Debian's ``chromium``, which
``make test`` installs) and save it as PNG: the picture of the report in the README.

    .venv/bin/python docs/screenshot.py demo-output/output/report.html docs/report-first-screen.png
"""

from __future__ import annotations

import sys
from pathlib import Path

from playwright.sync_api import sync_playwright

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def main(report: str, png: str, width: int = 1400, height: int = 900) -> None:
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = browser.new_page(viewport={"width": width, "height": height})
            page.goto(Path(report).resolve().as_uri())
            page.screenshot(path=png)
        finally:
            browser.close()


if __name__ == "__main__":
    main(*sys.argv[1:3])
