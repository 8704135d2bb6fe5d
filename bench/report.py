"""How big a `phototag report` of 1,000 photos is and how fast it opens in a browser.

    python -m bench report [--photos 1000] [--keep DIR]

Generated 1600 x 1200 photos (real faces from ../shared pasted on blurred scenes), indexed
with --faces-only, reported with the default limit; then opened in headless Chromium
(Playwright): the time until the first page of thumbnails is shown, and until the large view
of a photo is open.
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

from bench.library import WEIGHTS, make_library


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("--photos", type=int, default=1000)
    parser.add_argument("--keep", help="folder for the generated photos (reused)")
    args = parser.parse_args(argv)
    work = Path(args.keep or tempfile.mkdtemp(prefix="phototag-report-"))
    library = work / "photos"
    make_library(library, args.photos, size=(1600, 1200), faces=(1, 6))
    env = dict(os.environ, PHOTOTAG_DB=str(work / "index.db"), PHOTOTAG_WEIGHTS=str(WEIGHTS))
    subprocess.run([sys.executable, "-m", "phototag", "index", "--faces-only", "--quiet", str(library)],
                   env=env, check=True)
    page = work / "report.html"
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "phototag", "report", str(page)], env=env, check=True)
    written = time.perf_counter() - started
    size = page.stat().st_size
    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox", "--disable-gpu"])
        tab = browser.new_page(viewport={"width": 1400, "height": 1000})
        started = time.perf_counter()
        tab.goto(page.as_uri())
        tab.wait_for_function("document.querySelectorAll('.card img').length > 0 && "
                              "[...document.querySelectorAll('.card img')].every(i => i.complete)")
        shown = time.perf_counter() - started
        started = time.perf_counter()
        tab.click(".card >> nth=0")
        tab.wait_for_selector("#viewer.open #large img")
        opened = time.perf_counter() - started
        count = tab.locator("#count").text_content()
        browser.close()
    print(f"{count}; report written in {written:.1f} s: {size / 2**20:.1f} MiB "
          f"({size / args.photos / 1024:.0f} KiB per photo)")
    print(f"first page of photos shown {shown:.2f} s after opening; large view {opened * 1000:.0f} ms after a click")


if __name__ == "__main__":
    main()
