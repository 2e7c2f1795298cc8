"""JupyterLab in a real browser: the theory notebook runs in headless Chromium, its widgets render, and moving a
slider redraws the plot (the part of the course no headless executor can check)."""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from conftest import _need
from dcgan_utils.course.build import NOTEBOOKS

pytestmark = pytest.mark.slow  # notebooks, a browser or several processes: not in `make floors`

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]  # no calls out


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def lab(tmp_path):
    """JupyterLab on a free localhost port with a random token, serving a copy of the theory notebook."""
    if not Path(CHROMIUM).exists():
        _need(f"Chromium at {CHROMIUM}", "install Debian's chromium package (`make browser`; .ci/run does it in CI)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        _need("playwright", "it is in the test extra: make setup")  # fails under DCGAN_REQUIRE_DATA=1 (CI)
    root = tmp_path / "notebooks"
    root.mkdir()
    shutil.copy(NOTEBOOKS / "01_gan_theory.ipynb", root)
    port, token = _free_port(), secrets.token_hex(16)
    log = open(tmp_path / "lab.log", "w")
    server = subprocess.Popen(
        [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}",
         f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}", "--LabApp.expose_app_in_browser=True",
         "--ServerApp.allow_root=True", "--LabApp.news_url=None", "--LabApp.check_for_updates_class="
         "jupyterlab.NeverCheckForUpdate"],
        env={**os.environ, "DCGAN_SMOKE": "1"}, stdout=log, stderr=subprocess.STDOUT, cwd=root)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(120):
            try:
                with urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2) as reply:
                    if reply.status == 200:
                        break
            except OSError:
                time.sleep(0.5)
        else:
            pytest.fail("JupyterLab did not start: " + (tmp_path / "lab.log").read_text()[-2000:])
        yield base, token, root
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()


def _notebook_state(page) -> dict:
    """Execution counts, error outputs and kernel status of the open notebook, read from JupyterLab's models."""
    return page.evaluate("""() => {
        const panel = window.jupyterapp.shell.currentWidget;
        const cells = panel.content.widgets.filter(c => c.model.type === 'code');
        const errors = [];
        for (const c of cells) {
            for (const o of c.model.outputs.toJSON()) {
                if (o.output_type === 'error') errors.push(o.ename + ': ' + o.evalue);
            }
        }
        const kernel = panel.sessionContext.session && panel.sessionContext.session.kernel;
        return {counts: cells.map(c => c.model.executionCount), errors: errors,
                status: kernel ? kernel.status : 'none'};
    }""")


def test_theory_notebook_runs_in_jupyterlab_and_its_slider_redraws_the_plot(lab, tmp_path):
    from playwright.sync_api import sync_playwright

    base, token, _ = lab
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(f"{base}/lab/tree/01_gan_theory.ipynb?token={token}")
        page.wait_for_function("() => window.jupyterapp && window.jupyterapp.shell.currentWidget && "
                               "window.jupyterapp.shell.currentWidget.sessionContext.isReady", timeout=120_000)
        page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            state = _notebook_state(page)
            if state["errors"] or (all(state["counts"]) and state["status"] == "idle"):
                break
            time.sleep(1)
        assert not state["errors"], f"cells raised: {state['errors']}"
        assert all(state["counts"]), "not every cell ran within 10 minutes"

        slider = page.locator(".widget-slider", has=page.locator("label", has_text="D steps")).first
        slider.scroll_into_view_if_needed()
        assert slider.is_visible(), "the toy explorer's sliders did not render"
        explorer = page.locator(".widget-vbox", has=slider).last
        image = explorer.locator(".widget-output img").first
        before = image.get_attribute("src")
        assert before and before.startswith("data:image/png"), "the explorer shows no plot"
        readout = slider.locator(".widget-readout")
        readout.click()
        page.keyboard.press("Control+A")
        page.keyboard.type("2")
        page.keyboard.press("Enter")
        page.wait_for_function("([el, old]) => { const img = el.querySelector('.widget-output img');"
                               " return img && img.getAttribute('src') !== old; }",
                               arg=[explorer.element_handle(), before], timeout=300_000)
        assert readout.inner_text().strip() == "2"
        page.screenshot(path=str(tmp_path / "jupyterlab.png"))
        assert not _notebook_state(page)["errors"]
        browser.close()
    assert (tmp_path / "jupyterlab.png").stat().st_size > 10_000
