"""The lecture outputs: the HTML index, the slides, and widget state kept in HTML pages."""

import json
import re

import nbformat

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


def test_an_executed_notebooks_html_keeps_its_widgets(tmp_path):
    source = small_notebook(tmp_path / "widget.ipynb",
                            "import ipywidgets\nipywidgets.IntSlider(value=7, description='knob')")
    execute(source, tmp_path / "out", {"SMOKE": True}, cwd=tmp_path, html=True)
    page = (tmp_path / "out" / "html" / "widget.html").read_text()
    state = re.search(r'<script type="application/vnd.jupyter.widget-state\+json">(.*?)</script>', page, re.S)
    assert state, "widget state missing: sliders would not render in the HTML"
    models = json.loads(state.group(1))["state"].values()
    assert any(m["state"].get("description") == "knob" and m["state"].get("value") == 7 for m in models)
