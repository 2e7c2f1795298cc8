"""Execute the course notebooks headlessly with papermill (kernel python3) and render them to HTML.

    python -m dcgan_utils.course --out build          # full size (each notebook shrinks itself on a CPU)
    python -m dcgan_utils.course --out build --smoke  # the smoke run CI uses
"""

from __future__ import annotations

import argparse
from pathlib import Path

import nbformat
import papermill as pm
from nbconvert import HTMLExporter

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
KERNEL = "python3"  # never the kernel name stored in a notebook's metadata, which is machine-specific


def course_notebooks(folder: Path = NOTEBOOKS) -> list[Path]:
    """The course notebooks in reading order (their names start with the number)."""
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
    notebook: Path, out_dir: Path, parameters: dict | None = None, cwd: Path | None = None, html: bool = False
) -> Path:
    """Run one notebook into out_dir/<name> (and out_dir/html/<name>.html); the source is never written."""
    parameters = dict(parameters or {})
    check_parameters(notebook, parameters)
    out_dir.mkdir(parents=True, exist_ok=True)
    out = out_dir / notebook.name
    if out.resolve() == notebook.resolve():
        raise ValueError(f"refusing to overwrite the committed notebook {notebook}: choose another out_dir")
    pm.execute_notebook(
        str(notebook), str(out), parameters=parameters, kernel_name=KERNEL,
        cwd=str(cwd or notebook.parent), progress_bar=False,
    )
    if html:
        (out_dir / "html").mkdir(exist_ok=True)
        body, _ = HTMLExporter().from_notebook_node(nbformat.read(out, as_version=4))
        (out_dir / "html" / f"{notebook.stem}.html").write_text(body, encoding="utf-8")
    return out


def main(argv: list[str] | None = None) -> None:
    """Command line: execute every notebook into --out, with HTML beside."""
    parser = argparse.ArgumentParser(prog="python -m dcgan_utils.course", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("build"), help="output folder (default: build)")
    parser.add_argument("--smoke", action="store_true", help="run every notebook at its smoke size")
    parser.add_argument("notebooks", nargs="*", type=Path, help="notebooks to run (default: all, in order)")
    args = parser.parse_args(argv)
    for notebook in args.notebooks or course_notebooks():
        print(f"executing {notebook} ...", flush=True)
        out = execute(notebook, args.out, {"SMOKE": True} if args.smoke else {}, html=True)
        print(f"  -> {out} and {args.out / 'html' / (notebook.stem + '.html')}", flush=True)


if __name__ == "__main__":
    main()
