"""Execute the course notebooks headlessly with papermill (kernel python3), render them to HTML with an index page,
and render the lecture notebooks as reveal.js slides.

    python -m dcgan_utils.course.build --out build          # full size: build/*.ipynb, build/html/ (index.html first)
    python -m dcgan_utils.course.build --out build --smoke  # the smoke run CI uses
    python -m dcgan_utils.course.build --slides --out build # build/slides/: 01-03 and 06 as slides, from the committed outputs
"""

from __future__ import annotations

import argparse
import html
import re
from pathlib import Path

import nbformat
import papermill as pm
from nbconvert import HTMLExporter, SlidesExporter
from nbconvert.filters import markdown2html

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
KERNEL = "python3"  # never the kernel name stored in a notebook's metadata, which is machine-specific
SLIDES = ("01_gan_theory", "02_loss_equations", "03_dcgan_architecture", "06_stabilising_training")  # lectures
SMOKE_CELL_TIMEOUT = 600  # seconds a cell of a smoke run may take: a stuck kernel fails in minutes, not at CI's limit


def course_notebooks(folder: Path = NOTEBOOKS) -> list[Path]:
    """The course notebooks in reading order (their names start with the number)."""
    if not folder.is_dir():
        raise FileNotFoundError(f"no notebooks folder at {folder}: the notebooks live in the course's repository, not in "
                                "the installed package; clone it, or name the notebooks on the command line")
    return sorted(p for p in folder.glob("*.ipynb") if not p.name.startswith("."))


def check_parameters(notebook: Path, parameters: dict) -> None:
    """Raise if a parameter is not one the notebook's `parameters` cell defines (papermill would only warn)."""
    known = pm.inspect_notebook(str(notebook))
    if not known:
        raise ValueError(f"{notebook.name} has no cell tagged 'parameters': tag one so papermill can set knobs")
    unknown = sorted(set(parameters) - set(known))
    if unknown:
        raise ValueError(f"{notebook.name} has no parameter(s) {unknown}; it defines {sorted(known)}")


def execute(
    notebook: Path, out_dir: Path, parameters: dict | None = None, cwd: Path | None = None, html: bool = False,
    cell_timeout: int | None = None,
) -> Path:
    """Run one notebook into out_dir/<name> (and out_dir/html/<name>.html); the source is never written.

    cell_timeout: seconds per cell before papermill gives up (None: SMOKE_CELL_TIMEOUT for a smoke run, else no limit).
    """
    parameters = dict(parameters or {})
    if cell_timeout is None and parameters.get("SMOKE"):
        cell_timeout = SMOKE_CELL_TIMEOUT
    check_parameters(notebook, parameters)
    out_dir.mkdir(parents=True, exist_ok=True)
    out = out_dir / notebook.name
    if out.resolve() == notebook.resolve():
        raise ValueError(f"refusing to overwrite the committed notebook {notebook}: choose another out_dir")
    pm.execute_notebook(
        str(notebook), str(out), parameters=parameters, kernel_name=KERNEL,
        cwd=str(cwd or notebook.parent), progress_bar=False, execution_timeout=cell_timeout,
    )
    if html:
        (out_dir / "html").mkdir(exist_ok=True)
        body, _ = HTMLExporter().from_notebook_node(nbformat.read(out, as_version=4))
        (out_dir / "html" / f"{notebook.stem}.html").write_text(body, encoding="utf-8")
    return out


def summary(notebook: Path) -> dict:
    """Title, learning goals and expected runtime, read from a notebook's first cell (markdown)."""
    first = nbformat.read(notebook, as_version=4).cells[0].source
    title = first.splitlines()[0].lstrip("# ").strip()
    goals = re.search(r"\*\*Learning goals\.\*\*(.*?)(?=\n\n|\Z)", first, re.S)
    runtime = re.search(r"\*\*Expected runtime\.\*\*(.*?)(?=\n\n|\Z)", first, re.S)
    if not goals or not runtime:
        raise ValueError(f"{notebook.name}: the first cell needs '**Learning goals.**' and '**Expected runtime.**'")
    return {"name": notebook.stem, "title": title, "goals": goals.group(1).strip(), "runtime": runtime.group(1).strip()}


def write_index(notebooks: list[Path], html_dir: Path) -> Path:
    """html_dir/index.html: the notebooks in reading order, each with its goals, runtime and a link to its page."""
    parts = []
    for info in map(summary, notebooks):
        parts.append(f'<section><h2><a href="{info["name"]}.html">{html.escape(info["title"])}</a></h2>'
                     f'{markdown2html("**Learning goals.** " + info["goals"])}'
                     f'{markdown2html("**Expected runtime.** " + info["runtime"])}</section>')
    page = ("<!DOCTYPE html><html><head><meta charset='utf-8'><title>GANs from the equations up</title>"
            "<style>body{font-family:sans-serif;max-width:52em;margin:2em auto;line-height:1.45}"
            "section{border-top:1px solid #ccc;padding-top:.5em}</style>"
            "<script>window.MathJax={tex:{inlineMath:[['$','$']]}}</script>"  # the goals' equations, as in the pages
            "<script async src='https://cdn.jsdelivr.net/npm/mathjax@3/es5/tex-chtml.js'></script></head><body>"
            "<h1>GANs from the equations up: a DCGAN course</h1><p>Read the notebooks in this order.</p>"
            + "".join(parts) + "</body></html>")
    html_dir.mkdir(parents=True, exist_ok=True)
    (html_dir / "index.html").write_text(page, encoding="utf-8")
    return html_dir / "index.html"


def write_slides(notebooks: list[Path], slides_dir: Path) -> list[Path]:
    """Each notebook as reveal.js slides (cells' slide metadata: slide, subslide, skip) in slides_dir."""
    slides_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for notebook in notebooks:
        body, _ = SlidesExporter().from_notebook_node(nbformat.read(notebook, as_version=4))
        written.append(slides_dir / f"{notebook.stem}.slides.html")
        written[-1].write_text(body, encoding="utf-8")
    return written


def main(argv: list[str] | None = None) -> None:
    """Command line: execute every notebook into --out, with HTML and an index beside; or write the slides."""
    parser = argparse.ArgumentParser(prog="python -m dcgan_utils.course.build", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("build"), help="output folder (default: build)")
    parser.add_argument("--smoke", action="store_true", help="run every notebook at its smoke size")
    parser.add_argument("--slides", action="store_true", help=f"only write slides of {', '.join(SLIDES)}")
    parser.add_argument("notebooks", nargs="*", type=Path, help="notebooks to run (default: all, in order)")
    args = parser.parse_args(argv)
    if args.slides:
        for path in write_slides([NOTEBOOKS / f"{name}.ipynb" for name in SLIDES], args.out / "slides"):
            print(f"  -> {path}")
        return
    notebooks = args.notebooks or course_notebooks()
    for notebook in notebooks:
        print(f"executing {notebook} ...", flush=True)
        out = execute(notebook, args.out, {"SMOKE": True} if args.smoke else {}, html=True)
        print(f"  -> {out} and {args.out / 'html' / (notebook.stem + '.html')}", flush=True)
    print(f"  -> {write_index(notebooks, args.out / 'html')}")


if __name__ == "__main__":
    main()
