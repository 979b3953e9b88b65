"""A real browser (Debian's chromium, driven by Playwright; no browser download) opens every page
of a running `streamlit run app.py`, finds no error element, and saves a screenshot of each under
test-artifacts/screenshots/. Without chromium the test is skipped with how to enable it, unless
SEMSAFE_REQUIRE_BROWSER=1 (set by .ci/run), which makes a missing browser a failure."""

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "test-artifacts" / "screenshots"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]
# the lesson path, in the navigation's order
PAGES = {"home": "", "cost_matrix": "Cost_matrix", "emd_inspector": "EMD_inspector",
         "playground": "Playground", "fine_tune": "Fine_tune", "compare": "Compare"}


def _need_browser():
    missing = []
    if not CHROMIUM:
        missing.append("chromium (apt-get install chromium)")
    try:
        import playwright  # noqa: F401
    except ImportError:
        missing.append("playwright (pip install playwright; no browser download needed)")
    if missing:
        message = "browser test needs " + " and ".join(missing)
        if os.environ.get("SEMSAFE_REQUIRE_BROWSER") == "1":
            pytest.fail(message + " (SEMSAFE_REQUIRE_BROWSER=1)")
        pytest.skip(message + "; CI installs both")


@contextlib.contextmanager
def streamlit_server(runs: Path):
    """`streamlit run app.py` on a free local port, its runs in ``runs``; yields its URL."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = dict(os.environ, SEMSAFE_RUNS=str(runs), HF_HUB_OFFLINE="1")
    proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", str(ROOT / "app.py"),
                             "--server.address", "127.0.0.1", "--server.port", str(port),
                             "--server.headless", "true", "--browser.gatherUsageStats", "false"],
                            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 120
        while time.time() < deadline:
            try:
                if urllib.request.urlopen(f"{url}/_stcore/health", timeout=2).read() == b"ok":
                    break
            except OSError:
                time.sleep(0.5)
        else:
            pytest.fail("streamlit did not answer on its health endpoint within 120 s")
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@pytest.fixture(scope="module")
def server(tmp_path_factory, embedded):
    _need_browser()
    with streamlit_server(tmp_path_factory.mktemp("runs")) as url:
        yield url


@pytest.fixture(scope="module")
def browser():
    _need_browser()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield b
        b.close()


def wait_until_idle(page, timeout_s=180):
    """Streamlit shows a 'running' status widget while the script runs."""
    page.wait_for_selector("h1", timeout=timeout_s * 1000)
    deadline = time.time() + timeout_s
    quiet = 0
    while time.time() < deadline and quiet < 3:
        running = page.locator('[data-testid="stStatusWidget"]').count()
        quiet = quiet + 1 if running == 0 else 0
        time.sleep(0.5)


def assert_lesson_navigation(page):
    """The navigation names every page in lesson order, Home first, by title ("Fine-tune"), not
    by script name ("app", "Fine tune": what Streamlit's older pages/ mode shows)."""
    nav = page.locator('[data-testid="stSidebarNav"]').inner_text()
    order = [nav.find(t) for t in ("Home", "Cost matrix", "EMD inspector", "Playground", "Fine-tune", "Compare")]
    assert -1 not in order and order == sorted(order) and "app" not in nav.split(), nav


@pytest.mark.parametrize("name", list(PAGES))
def test_every_page_in_a_real_browser(name, server, browser):
    page = browser.new_page(viewport={"width": 1400, "height": 2200})
    page.goto(f"{server}/{PAGES[name]}", wait_until="domcontentloaded")
    wait_until_idle(page)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
    assert page.locator('[data-testid="stException"]').count() == 0
    errors = page.locator('[data-testid="stAlertContentError"]')
    assert errors.count() == 0, errors.all_inner_texts()
    assert page.locator("h1").first.inner_text().strip()
    assert_lesson_navigation(page)
    assert "Glossary" in page.locator('[data-testid="stSidebar"]').inner_text()
    page.close()


def test_compare_report_renders_with_the_network_blocked(browser, tmp_path):
    """The HTML report draws its plots with every network request refused."""
    import json

    from semsafe.compare import compare_table, write_html

    refs = []
    for name, harm in (("a", 0.8), ("b", 0.3)):
        folder = tmp_path / name
        folder.mkdir()
        ci = lambda m: {"mean": m, "low": max(0, m - 0.1), "high": min(1, m + 0.1), "n": 20}  # noqa: E731
        (folder / "summary.json").write_text(json.dumps({"suites": {
            "harmful": {"harmful_rate": ci(harm), "refusal_rate": ci(1 - harm)},
            "overalign": {"over_refusal_rate": ci(0.1 if name == "a" else 0.25)}}}))
        refs.append(str(folder))
    out = tmp_path / "report.html"
    write_html(compare_table(refs), refs, out)
    context = browser.new_context()
    requests = []

    def route(r):
        requests.append(r.request.url)
        r.continue_() if r.request.url.startswith("file:") else r.abort()
    context.route("**/*", route)
    page = context.new_page()
    page.goto(out.as_uri())
    page.wait_for_selector(".main-svg", timeout=30000)
    assert page.locator(".plotly-graph-div").count() >= 2
    assert all(u.startswith("file:") for u in requests), requests
    context.close()



def test_a_page_opened_first_by_its_url_gets_the_apps_navigation(browser, tmp_path, embedded):
    """On a freshly started server, the first visitor to /Compare (a bookmark) got the page
    without app.py, under Streamlit's older pages/ navigation; semsafe.ui.ensure_app_navigation
    reruns it through app.py."""
    with streamlit_server(tmp_path / "runs") as url:
        page = browser.new_page(viewport={"width": 1400, "height": 1200})
        page.goto(f"{url}/Compare", wait_until="domcontentloaded")
        wait_until_idle(page)
        assert page.locator("h1").first.inner_text().strip() == "Compare"
        assert_lesson_navigation(page)
        page.close()
