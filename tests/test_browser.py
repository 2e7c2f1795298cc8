"""What a learner sees, in a real browser: every course notebook opened in JupyterLab (started with `make lab`'s own
flags and a fresh learner's settings) and run with Run All Cells at smoke size, and every rendered HTML page.

The notebook opened is its student copy (`make student`: the solution cells removed), and this run is the one
execution of each notebook in a test run: once it has finished, JupyterLab saves it and tests/executed.py checks the
saved file as nbval would (no error, every checked output as committed, every exercise stub "not attempted yet").

Each notebook must open clean (unmodified, no popup over it, no raw widget text or half-drawn progress bar in its
saved outputs), run without an error, and each of its widgets must
redraw its figure when a slider moves. A screenshot of every figure (each cell scrolled to in turn: JupyterLab
renders only the cells near the screen) goes to build/browser/ for a person to look at; every saved figure must show.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import nbformat
import pytest
from nbconvert import HTMLExporter

from conftest import _need
from dcgan_utils.course.build import course_notebooks
from dcgan_utils.course.student import student_copy
from executed import CHROMIUM, problems
from helpers import data_for

pytestmark = pytest.mark.slow  # notebooks, a browser or several processes: not in `make floors`

ALL = course_notebooks()
REPO = Path(__file__).resolve().parent.parent
SHOTS = REPO / "build" / "browser"  # screenshots for a person to look at (build/ is git-ignored)
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]  # no calls out
RAW = re.compile(r"(VBox|HBox|FloatSlider|IntSlider|FloatProgress|IntProgress)\(|NBVAL_|\b\d{1,2}%\|")  # not a figure


def make_lab_flags() -> list[str]:
    """The --LabApp settings of `make lab`'s recipe: the test opens the lab a learner gets, popups included."""
    recipe = re.search(r"^lab:.*\n\t(.*)$", (REPO / "Makefile").read_text(), re.M).group(1)
    return re.findall(r"--LabApp\.\S+", recipe)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        _need(f"Chromium at {CHROMIUM}", "install Debian's chromium package (`make browser`; .ci/run does it in CI)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _need("playwright", "it is in the test extra: make setup")  # fails under DCGAN_REQUIRE_DATA=1 (CI)
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """JupyterLab on a free localhost port with a random token, serving the course notebooks' student copies at smoke
    size, with an empty settings folder (a learner's first start); yields (address, token, the folder it serves)."""
    tmp = tmp_path_factory.mktemp("lab")
    root = tmp / "notebooks"
    for notebook in ALL:
        student_copy(notebook, root)
    port, token = _free_port(), secrets.token_hex(16)
    env = {**os.environ, "DCGAN_SMOKE": "1", "DCGAN_RUNS_DIR": str(tmp / "runs"),
           "JUPYTERLAB_SETTINGS_DIR": str(tmp / "settings"), "JUPYTERLAB_WORKSPACES_DIR": str(tmp / "workspaces")}
    log = open(tmp / "lab.log", "w")
    server = subprocess.Popen(
        [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}",
         f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}", "--LabApp.expose_app_in_browser=True",
         "--ServerApp.allow_root=True", *make_lab_flags()],
        env=env, stdout=log, stderr=subprocess.STDOUT, cwd=root)
    base, reply = f"http://127.0.0.1:{port}", None
    try:
        for _ in range(240):
            try:
                with urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2) as reply:
                    if reply.status == 200:
                        break
            except OSError:
                try:
                    server.wait(timeout=0.5)  # returns at once if the server has died
                    break
                except subprocess.TimeoutExpired:
                    pass
        if server.poll() is not None or reply is None or reply.status != 200:
            pytest.fail("JupyterLab did not start: " + (tmp / "lab.log").read_text()[-2000:])
        yield base, token, root
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()


STATE = """() => {
    const panel = window.jupyterapp.shell.currentWidget;
    const cells = panel.content.widgets.filter(c => c.model.type === 'code');
    const errors = [];
    for (const c of cells) {
        for (const o of c.model.outputs.toJSON()) {
            if (o.output_type === 'error') errors.push(o.ename + ': ' + o.evalue);
        }
    }
    const kernel = panel.sessionContext.session && panel.sessionContext.session.kernel;
    return {counts: cells.map(c => c.model.executionCount), errors: errors, dirty: panel.context.model.dirty,
            status: kernel ? kernel.status : 'none'};
}"""
DONE = f"() => {{ const s = ({STATE})(); return s.errors.length > 0 || (s.counts.every(c => c) && s.status === 'idle'); }}"
POPUPS = """() => [...document.querySelectorAll('.jp-Dialog, .Toastify__toast')]
    .filter(e => e.getClientRects().length > 0).map(e => e.innerText.trim().slice(0, 120))"""
OUTPUT_TEXT = "() => [...document.querySelectorAll('.jp-OutputArea-output')].map(e => e.innerText)"


# The cells of the open notebook whose outputs hold a figure or a widget (whose figure is drawn once it runs)
FIGURE_CELLS = """() => window.jupyterapp.shell.currentWidget.content.widgets.flatMap((c, i) =>
    c.model.type === 'code' && c.model.outputs.toJSON().some(o => Object.keys(o.data || {}).some(k =>
        k.startsWith('image/') || k === 'application/vnd.jupyter.widget-view+json')) ? [i] : [])"""


def _screenshots(page, folder: Path, cells=None) -> int:
    """Every figure into folder/NN.png; each must have loaded (a broken image has no natural width).

    cells: the indices of a JupyterLab notebook's cells to look in (FIGURE_CELLS). JupyterLab renders only the cells
    near the screen, so each is scrolled to in turn and its figures captured there; a page without it (HTML) holds
    every figure at once.
    """
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    count = 0
    for cell in cells if cells is not None else [None]:
        if cell is not None:
            page.evaluate("async i => { const nb = window.jupyterapp.shell.currentWidget.content;"
                          " await nb.scrollToItem(i, 'start'); }", cell)
            scope = page.locator(f".jp-Notebook .jp-Cell[data-windowed-list-index='{cell}']")
        else:
            scope = page
        images = scope.locator("img").filter(visible=True)  # a collapsed output hides its figures
        for i in range(images.count()):
            image = images.nth(i)
            image.scroll_into_view_if_needed()
            image.wait_for(state="visible")
            page.wait_for_function("img => img.complete", arg=image.element_handle(), timeout=30_000)
            assert image.evaluate("img => img.naturalWidth > 0"), f"figure {count} did not load"
            image.screenshot(path=str(folder / f"{count:02d}.png"))
            count += 1
    return count


def _slider_redraws(page, area) -> str:
    """Move the first slider of a widget one step with the keyboard, as a learner can; wait until its figure changes."""
    slider = area.locator(".widget-slider").first
    handle = slider.locator(".noUi-handle").first
    at_max = handle.get_attribute("aria-valuenow") == handle.get_attribute("aria-valuemax")
    figure = area.locator(".widget-output img").first
    before = figure.get_attribute("src")
    handle.focus()
    page.keyboard.press("ArrowLeft" if at_max else "ArrowRight")
    page.wait_for_function("([area, old]) => { const img = area.querySelector('.widget-output img');"  # redrawn: a new img
                           " return img && img.getAttribute('src') !== old; }", arg=[area.element_handle(), before],
                           timeout=120_000, polling=250)
    return f"{slider.locator('label').inner_text().strip()} -> {slider.locator('.widget-readout').inner_text().strip()}"


@pytest.mark.parametrize("notebook", ALL, ids=lambda p: p.stem)
def test_a_learner_opens_the_notebook_in_jupyterlab_runs_all_cells_and_moves_every_widget(notebook, lab, browser,
                                                                                          request, report):
    data_for(notebook, request)
    base, token, root = lab
    page = browser.new_page(viewport={"width": 1440, "height": 900})
    # a workspace of its own, reset: JupyterLab would otherwise reopen the notebooks the earlier tests opened
    page.goto(f"{base}/lab/workspaces/{notebook.stem}/tree/{notebook.name}?token={token}&reset")
    page.wait_for_function("() => { const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;"
                           " const k = w && w.sessionContext.isReady && w.sessionContext.session.kernel;"
                           " return k && k.status === 'idle'; }", timeout=120_000)  # the kernel's info is in
    opened = page.evaluate(STATE)
    assert not opened["dirty"], "marked modified at opening: compare its metadata with what JupyterLab writes"
    stale = [t[:120] for t in page.evaluate(OUTPUT_TEXT) if RAW.search(t)]
    assert not stale, f"saved outputs show raw widget text, a test marker or a half-drawn progress bar: {stale}"
    saved = nbformat.read(root / notebook.name, as_version=4).cells
    shown = sum(1 for c in saved if not c.metadata.get("jupyter", {}).get("outputs_hidden")
                for o in c.get("outputs", []) if any(k.startswith("image/") for k in o.get("data", {})))
    assert _screenshots(page, SHOTS / notebook.stem / "saved", page.evaluate(FIGURE_CELLS)) == shown, \
        "a saved figure was not shown"

    page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")
    page.wait_for_function(DONE, timeout=900_000, polling=1000)
    state = page.evaluate(STATE)
    assert not state["errors"], f"cells raised: {state['errors']}"
    figures = _screenshots(page, SHOTS / notebook.stem / "run", page.evaluate(FIGURE_CELLS))
    areas = page.locator(".jp-OutputArea-output", has=page.locator(".widget-slider"))
    moved = [_slider_redraws(page, areas.nth(i)) for i in range(areas.count())]
    assert not page.evaluate(STATE)["errors"], "a widget raised"
    page.evaluate("() => window.jupyterapp.commands.execute('docmanager:save')")
    page.wait_for_function("() => !window.jupyterapp.shell.currentWidget.context.model.dirty", timeout=60_000)
    wrong = problems(root / notebook.name, notebook)  # the file JupyterLab saved, checked as nbval would
    assert not wrong, "\n".join(wrong)
    popups = page.evaluate(POPUPS)
    assert not popups, f"a popup covers the notebook: {popups}"
    page.screenshot(path=str(SHOTS / notebook.stem / "page.png"))
    page.evaluate("() => window.jupyterapp.shell.currentWidget.sessionContext.shutdown()")  # its kernel, for the next
    page.close()
    report("browser", f"{notebook.stem}: ran in JupyterLab, {figures} figures, widgets redrawn: {moved or 'none'}")


@pytest.mark.parametrize("notebook", ALL, ids=lambda p: p.stem)
def test_the_rendered_html_page_shows_finished_figures(notebook, browser, tmp_path):
    """The page `make course` renders (nbconvert's HTMLExporter), from the committed outputs, opened offline."""
    body, _ = HTMLExporter().from_notebook_node(nbformat.read(notebook, as_version=4))
    page_file = tmp_path / f"{notebook.stem}.html"
    page_file.write_text(body)
    page = browser.new_page(viewport={"width": 1440, "height": 900})
    page.route(re.compile(r"^https?://"), lambda route: route.abort())  # offline, as in CI
    page.goto(page_file.as_uri())
    stale = [t[:120] for t in page.evaluate(OUTPUT_TEXT) if RAW.search(t) or "Traceback" in t]
    assert not stale, f"the page shows raw widget text, a test marker, an error or a half-drawn bar: {stale}"
    assert _screenshots(page, SHOTS / notebook.stem / "html") > 0 or notebook.stem.startswith("00")
    page.close()
