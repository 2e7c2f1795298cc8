"""Student copies of the notebooks: every cell tagged `solution` removed, so no front end can show one.

JupyterLab hides the solution cells (`source_hidden`), but other front ends (Colab, VS Code, a code host's viewer,
the classic notebook) show them. A lecturer hands out these copies instead:

    python -m dcgan_utils.course.student --out build/student    # or: make student

Each exercise cell stays as the learner sees it (a stub that raises NotImplementedError and a check that reports
"not attempted yet"); the committed outputs of the other cells stay, so a copy renders with its figures.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import nbformat
from nbconvert.preprocessors import TagRemovePreprocessor

from dcgan_utils.course.build import NOTEBOOKS, course_notebooks

SOLUTION_TAG = "solution"  # the tag every solution cell carries (tests/test_notebooks.py checks they do)


def student_copy(notebook: Path, out_dir: Path) -> Path:
    """Write out_dir/<name> without the notebook's solution cells; the source is never written."""
    out = out_dir / notebook.name
    if out.resolve() == notebook.resolve():
        raise ValueError(f"refusing to overwrite the committed notebook {notebook}: choose another out_dir")
    nb = nbformat.read(notebook, as_version=4)
    remover = TagRemovePreprocessor(remove_cell_tags={SOLUTION_TAG}, enabled=True)
    nb, _ = remover.preprocess(nb, {})
    out_dir.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, out)
    return out


def main(argv: list[str] | None = None) -> None:
    """Command line: a student copy of every notebook (or of those named) in --out."""
    parser = argparse.ArgumentParser(prog="python -m dcgan_utils.course.student", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("build/student"), help="output folder (default: build/student)")
    parser.add_argument("notebooks", nargs="*", type=Path, help=f"notebooks to copy (default: all of {NOTEBOOKS})")
    args = parser.parse_args(argv)
    for notebook in args.notebooks or course_notebooks():
        print(f"  -> {student_copy(notebook, args.out)}")


if __name__ == "__main__":
    main()
