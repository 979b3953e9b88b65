"""Static PNGs of an experiment report's figures, for docs that cannot hold interactive plots.

Opens ``report.html`` (written by ``semsafe experiment``) in headless chromium through
Playwright, the same browser the dashboard test drives, and screenshots each plotly figure:

    .venv/bin/python bench/figures.py runs/experiments/FOLDER/report.html docs/results/figures PREFIX

writes ``PREFIX-1.png``, ``PREFIX-2.png``, ... in the order the report shows them.
"""

import shutil
import sys
from pathlib import Path

from playwright.sync_api import sync_playwright

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"]


def main() -> None:
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    report, out, prefix = Path(sys.argv[1]).resolve(), Path(sys.argv[2]), sys.argv[3]
    browser_path = shutil.which("chromium") or shutil.which("chromium-browser")
    if not browser_path:
        sys.exit("needs chromium (apt-get install chromium)")
    out.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=browser_path, args=FLAGS)
        page = browser.new_page(viewport={"width": 1100, "height": 900})
        page.goto(report.as_uri())
        page.wait_for_selector(".plotly-graph-div .main-svg")
        for i, fig in enumerate(page.query_selector_all(".plotly-graph-div"), 1):
            path = out / f"{prefix}-{i}.png"
            fig.screenshot(path=str(path))
            print(path)
        browser.close()


if __name__ == "__main__":
    main()
