"""The lecture outputs: the HTML index, the slides, and widget state kept in HTML pages."""

import json
import re
import subprocess
import sys

import nbformat
import pytest

from dcgan_utils.course.build import SLIDES, NOTEBOOKS, course_notebooks, execute, summary, write_index, write_slides
from helpers import small_notebook


def test_index_lists_every_notebook_in_reading_order_with_goals_and_runtime(tmp_path):
    notebooks = course_notebooks()
    page = write_index(notebooks, tmp_path / "html").read_text()
    links = re.findall(r'<h2><a href="([^"]+)\.html">', page)
    assert links == [p.stem for p in notebooks]
    sections = page.split("<section>")[1:]
    for notebook, section in zip(notebooks, sections):
        info = summary(notebook)
        assert "Learning goals." in section and "Expected runtime." in section
        assert info["title"].split("·")[-1].strip()[:20] in section
        assert "CPU" in info["runtime"], f"{notebook.name}: say how long it takes on a CPU"


def test_slides_follow_the_cells_slide_metadata(tmp_path):
    (path,) = write_slides([NOTEBOOKS / "03_dcgan_architecture.ipynb"], tmp_path)
    slides = path.read_text()
    cells = nbformat.read(NOTEBOOKS / "03_dcgan_architecture.ipynb", as_version=4).cells
    kinds = [c.metadata.get("slideshow", {}).get("slide_type") for c in cells]
    assert "reveal" in slides.lower() and kinds.count("slide") >= 5
    for cell, kind in zip(cells, kinds):
        if cell.cell_type == "markdown" and kind == "slide":
            heading = cell.source.splitlines()[0].lstrip("# ").split("$")[0].strip()[:25]
            assert heading.replace("&", "&amp;") in slides, heading
    assert "solution_parameter_count" in "".join(c.source for c in cells)
    assert "solution_parameter_count" not in slides, "a skipped (solution) cell reached the slides"
    assert set(SLIDES) <= {p.stem for p in course_notebooks()}


@pytest.mark.slow  # a notebook kernel: not in `make floors`
def test_an_executed_notebooks_html_keeps_its_widgets(tmp_path):
    source = small_notebook(tmp_path / "widget.ipynb",
                            "import ipywidgets\nipywidgets.IntSlider(value=7, description='knob')")
    execute(source, tmp_path / "out", {"SMOKE": True}, cwd=tmp_path, html=True)
    page = (tmp_path / "out" / "html" / "widget.html").read_text()
    state = re.search(r'<script type="application/vnd.jupyter.widget-state\+json">(.*?)</script>', page, re.S)
    assert state, "widget state missing: sliders would not render in the HTML"
    models = json.loads(state.group(1))["state"].values()
    assert any(m["state"].get("description") == "knob" and m["state"].get("value") == 7 for m in models)


def course_page(path, number: int, title: str, code: str):
    """A small course notebook: the first cell as the index reads it, a parameters cell, and `code`."""
    return small_notebook(path, code, heading=f"# {number:02d} · {title}\n\n**Learning goals.** to {title.lower()}.\n\n"
                                              f"**Expected runtime.** CPU: a second.")


@pytest.mark.slow  # a subprocess that executes notebooks: not in `make floors`
def test_the_course_build_command_executes_each_notebook_into_a_page_and_an_index(tmp_path):
    """What `make course` runs, end to end in a subprocess, on two small notebooks (the course's own run at smoke
    size in test_notebooks.py)."""
    source = tmp_path / "src"
    source.mkdir()
    first = course_page(source / "01_first.ipynb", 1, "Count", "print('smoke' if SMOKE else 'full', 6 * 7)")
    second = course_page(source / "02_second.ipynb", 2, "Plot", "import matplotlib.pyplot as plt\nplt.plot([0, 1])\n"
                                                                  "plt.show()")
    before = first.read_bytes()
    done = subprocess.run([sys.executable, "-m", "dcgan_utils.course.build", "--smoke", "--out", tmp_path / "build",
                           first, second], cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert first.read_bytes() == before, "the source notebook was written"
    executed = nbformat.read(tmp_path / "build" / "01_first.ipynb", as_version=4)
    assert "smoke 42" in "".join(o.get("text", "") for o in executed.cells[-1].outputs)
    assert "smoke 42" in (tmp_path / "build" / "html" / "01_first.html").read_text()
    assert "image/png" in (tmp_path / "build" / "html" / "02_second.html").read_text()
    index = (tmp_path / "build" / "html" / "index.html").read_text()
    assert re.findall(r'<h2><a href="([^"]+)\.html">', index) == ["01_first", "02_second"]


@pytest.mark.slow  # a subprocess that executes notebooks: not in `make floors`
def test_the_slides_command_writes_every_lecture(tmp_path):
    done = subprocess.run([sys.executable, "-m", "dcgan_utils.course.build", "--slides", "--out", tmp_path],
                          cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    written = sorted(p.name for p in (tmp_path / "slides").iterdir())
    assert written == sorted(f"{name}.slides.html" for name in SLIDES)
    for name in written:
        assert "reveal" in (tmp_path / "slides" / name).read_text().lower()


def test_each_notebook_prints_its_time_and_machine_and_its_header_cites_that_time():
    """The header's runtime is the committed execution's own: its last code cell prints the seconds and the machine
    (device.ran_on), and the header's runtime paragraph quotes those seconds."""
    for notebook in course_notebooks():
        cells = nbformat.read(notebook, as_version=4).cells
        timing = [c for c in cells if c.cell_type == "code" and "notebook ran in" in c.source]
        assert len(timing) == 1 and timing[0] is [c for c in cells if c.cell_type == "code"][-1], notebook.name
        assert "ran_on(" in timing[0].source, f"{notebook.name}: the timing line must name the machine"
        printed = "".join(o.get("text", "") for o in timing[0].outputs)
        found = re.search(r"notebook ran in (\d+) s .* on (cpu|cuda\S*|mps)\b.*: .+ \(flags: .+\), "
                          r"\d+ logical CPUs available, PyTorch set to \d+ threads?", printed)
        assert found, f"{notebook.name}: no committed timing line (execute the notebook): {printed!r}"
        assert re.search(rf"\b{found.group(1)} s\b", summary(notebook)["runtime"]), \
            f"{notebook.name}: the header's runtime does not quote the committed {found.group(1)} s"
