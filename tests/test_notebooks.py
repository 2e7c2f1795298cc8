"""The notebook harness: how notebooks are set up, copied for students and executed (once per test run), and what an
executed copy must show (tests/executed.py)."""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import papermill as pm
import pytest

from dcgan_utils.course.build import NOTEBOOKS, check_parameters, course_notebooks, execute
from dcgan_utils.course.student import student_copy
from executed import browser_runs_notebooks, checked, comparable, problems
from helpers import data_for, small_notebook

pytestmark = pytest.mark.slow  # notebooks, a browser or several processes: not in `make floors`

ALL = course_notebooks()
# a number at float64 rounding level (or an exact zero in scientific notation): its digits differ between CPUs (seen:
# 0.0e+00 on a Xeon where an AVX2-only EPYC printed 2.2e-16), so a checked cell must print the bound it meets instead
ROUNDING = re.compile(r"\b\d(\.\d+)?e-(1[3-9]|[2-9]\d|\d{3})\b|\b0\.0+e[+-]00\b")


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_the_course_has_notebooks_in_reading_order():
    assert [p.name for p in ALL] == ["00_setup.ipynb", "01_gan_theory.ipynb", "02_loss_equations.ipynb",
                                     "03_dcgan_architecture.ipynb", "04_train_mnist.ipynb", "05_train_cifar10.ipynb",
                                     "06_stabilising_training.ipynb"]


@pytest.mark.parametrize("notebook", ALL, ids=lambda p: p.stem)
def test_notebook_is_set_up_for_the_harness(notebook):
    nb = json.loads(notebook.read_text())
    assert nb["metadata"]["kernelspec"]["name"] == "python3", "machine-specific kernel name"
    # JupyterLab writes the running kernel's display name into the metadata once the kernel starts, and marks the
    # notebook modified when it differs (seen in 2 of 21 openings with "Python 3")
    assert nb["metadata"]["kernelspec"]["display_name"] == "Python 3 (ipykernel)", "ipykernel's own display name"
    first = "".join(nb["cells"][0]["source"])
    assert first.startswith("# ") and "Learning goals" in first and "runtime" in first.lower()
    params = [c for c in nb["cells"] if "parameters" in c["metadata"].get("tags", [])]
    assert len(params) == 1 and "SMOKE" in "".join(params[0]["source"]), "one cell tagged 'parameters' with SMOKE"
    assert "DCGAN_SMOKE" in "".join(params[0]["source"]), "SMOKE must default from DCGAN_SMOKE so nbval can shrink it"
    errors = [o for c in nb["cells"] for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors, "committed outputs contain an error"
    markers = [c for c in nb["cells"] if "NBVAL_" in "".join(c["source"])]
    assert not markers, "nbval's comment markers show to learners: use the cell tag nbval-check-output instead"
    solutions = [c for c in nb["cells"] if "solution" in c["metadata"].get("tags", [])]
    for cell in solutions:  # collapsed, a solution shows its first line: it must say what it is; its output hidden too
        hidden = cell["metadata"].get("jupyter", {})
        assert "".join(cell["source"]).startswith("# Solution") and hidden.get("outputs_hidden"), cell["source"][:2]
    assert any(c.get("outputs") for c in nb["cells"]), "committed without outputs: execute it and commit the result"
    noise = [(c.id, found.group()) for c in nbformat.read(notebook, as_version=4).cells if checked(c)
             for _, text in comparable(c.get("outputs", [])) if (found := ROUNDING.search(text))]
    assert not noise, f"checked cells print rounding-level numbers, which differ between CPUs: {noise}"


@pytest.mark.parametrize("notebook", ALL, ids=lambda p: p.stem)
def test_the_student_copy_drops_every_solution_and_keeps_every_exercise_stub(notebook, tmp_path):
    """`make student`'s copy: no solution left, and every exercise still has its stub, whose check is compared and
    says "not attempted yet" (the one execution, in test_browser.py or below, checks that it still does)."""
    copy = student_copy(notebook, tmp_path / "student")
    text = copy.read_text()
    assert '"solution"' not in text and "solution_" not in text, "a solution survived in the student copy"
    cells = nbformat.read(copy, as_version=4).cells
    stubs = [c for c in cells if c.cell_type == "code" and "raise NotImplementedError" in c.source]
    exercises = sum(c.source.count("### ✏️ Exercise") for c in cells if c.cell_type == "markdown")
    assert sum(c.source.count("raise NotImplementedError") for c in stubs) >= exercises  # a cell may hold two stubs
    for stub in stubs:
        assert checked(stub) and "not attempted" in "".join(o.get("text", "") for o in stub.outputs), stub.source


@pytest.mark.parametrize("notebook", ALL, ids=lambda p: p.stem)
def test_student_copy_runs_with_papermill_where_no_browser_runs_it(notebook, tmp_path, request):
    """Each notebook is executed once per test run: in JupyterLab by test_browser.py (always in CI), or here, where
    no browser is installed. The executed copy is checked as nbval checks it (tests/executed.py)."""
    if browser_runs_notebooks():
        pytest.skip("executed once, in JupyterLab, by tests/test_browser.py")
    data_for(notebook, request)
    before = _digest(notebook)
    copy = student_copy(notebook, tmp_path / "student")
    env = {"DCGAN_SMOKE": "1", "DCGAN_RUNS_DIR": str(tmp_path / "runs")}  # never under notebooks/
    with pytest.MonkeyPatch.context() as mp:
        for key, value in env.items():
            mp.setenv(key, value)
        out = execute(copy, tmp_path / "out", {"SMOKE": True}, cwd=tmp_path, cell_timeout=900)
    wrong = problems(out, notebook)
    assert not wrong, "\n".join(wrong)
    assert _digest(notebook) == before


def _notebook(path: Path, outputs: list, tags=("nbval-check-output",), source="print(x)") -> Path:
    cell = nbformat.v4.new_code_cell(source, metadata={"tags": list(tags)}, id="c1")
    cell.outputs = [nbformat.from_dict(o) for o in outputs]
    nbformat.write(nbformat.v4.new_notebook(cells=[cell]), path)
    return path


def _stream(text, name="stdout"):
    return {"output_type": "stream", "name": name, "text": text}


def test_the_executed_check_compares_checked_outputs_as_nbval_does(tmp_path):
    committed = _notebook(tmp_path / "committed.ipynb", [_stream("loss 0.693 in 1.2 s\n")])
    same = _notebook(tmp_path / "same.ipynb", [_stream("loss 0.693 "), _stream("in 3.4 s\n")])  # split, other time
    assert problems(same, committed) == []
    wrong = _notebook(tmp_path / "wrong.ipynb", [_stream("loss 0.694 in 1.2 s\n")])
    assert "printed" in problems(wrong, committed)[0]
    stderr = _notebook(tmp_path / "stderr.ipynb", [_stream("loss 0.693 in 1.2 s\n"), _stream("warn\n", "stderr")])
    assert problems(stderr, committed), "a new stderr stream is a difference, as in nbval"
    error = _notebook(tmp_path / "error.ipynb", [{"output_type": "error", "ename": "ValueError", "evalue": "bad",
                                                   "traceback": []}], tags=())
    assert any("raised ValueError" in p for p in problems(error, committed))
    unchecked = _notebook(tmp_path / "unchecked.ipynb", [_stream("anything\n")], tags=())
    assert problems(unchecked, _notebook(tmp_path / "c2.ipynb", [_stream("else\n")], tags=())) == []
    stub = _notebook(tmp_path / "stub.ipynb", [_stream("correct\n")], source="raise NotImplementedError")
    assert any("not attempted" in p for p in problems(stub, stub))


@pytest.mark.parametrize("notebook", [p for p in ALL if not p.name.startswith("00")], ids=lambda p: p.stem)
def test_every_solution_passes_its_strict_check_after_the_setup_cells_alone(notebook, tmp_path):
    """Each hidden solution, run after the notebook's first three code cells (install, parameters, setup) and nothing
    else: it checks itself strictly against the reference, so a broken reference, checker or solution fails here."""
    cells = nbformat.read(notebook, as_version=4).cells
    setup = [c.source for c in cells if c.cell_type == "code"][:3]
    solutions = [c.source for c in cells if "solution" in c.metadata.get("tags", [])]
    assert solutions and not any("solution" in c.metadata.get("tags", []) for c in cells[:4])
    script = tmp_path / "solutions.py"
    script.write_text("\n\n".join(["import matplotlib\nmatplotlib.use('Agg')", *setup, *solutions]) + "\n")
    env = {**os.environ, "DCGAN_SMOKE": "1", "DCGAN_RUNS_DIR": str(tmp_path / "runs")}
    run = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=600)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-4000:]
    assert run.stdout.count("correct") >= len(solutions), run.stdout


@pytest.mark.parametrize("notebook", [p for p in ALL if not p.name.startswith("00")], ids=lambda p: p.stem)
def test_exercises_have_stubs_checks_and_hidden_solutions_that_ci_runs(notebook):
    cells = json.loads(notebook.read_text())["cells"]
    text = ["".join(c["source"]) for c in cells]
    exercises = sum(t.count("### ✏️ Exercise") for t in text)
    solutions = [(c, t) for c, t in zip(cells, text) if "solution" in c["metadata"].get("tags", [])]
    assert exercises >= 3, "at least three exercises per notebook"
    assert solutions and all(c["metadata"].get("jupyter", {}).get("source_hidden") for c, _ in solutions)
    assert all("strict=True" in t for _, t in solutions), "solution cells must check strictly so CI can fail"
    stubs = [t for c, t in zip(cells, text) if c["cell_type"] == "code" and "raise NotImplementedError" in t]
    for _, solution in solutions:  # every check a solution runs is also offered to the learner on a stub
        for name in {w.split("(")[0] for w in solution.split() if w.startswith("check_")}:
            assert any(f"{name}(my_" in stub for stub in stubs), f"{notebook.name}: no stub checked by {name}"


def test_harness_ignores_a_machine_specific_kernel_name(tmp_path):
    source = small_notebook(tmp_path / "other_machine.ipynb", "import sys\nprint(sys.executable)",
                             kernel="conda-env-someones-laptop-py")
    out = nbformat.read(execute(source, tmp_path / "out", {"SMOKE": True}, cwd=tmp_path), as_version=4)
    assert out.cells[-1].outputs[0].text.strip() == sys.executable  # ran in this environment's python3 kernel


def test_harness_self_test_the_network_block_makes_a_download_fail_at_once(tmp_path):
    """Of the test harness, not the product: the block that keeps every test offline works in a notebook kernel."""
    source = small_notebook(tmp_path / "downloads.ipynb",
                             "import urllib.request\nurllib.request.urlopen('http://93.184.216.34/', timeout=600)")
    start = time.monotonic()
    with pytest.raises(pm.PapermillExecutionError, match="must not reach the network"):
        execute(source, tmp_path / "out", {"SMOKE": True}, cwd=tmp_path)
    assert time.monotonic() - start < 60, "the kernel waited on the network instead of failing"


def test_a_cell_that_never_finishes_fails_at_the_cell_timeout_instead_of_hanging(tmp_path):
    source = small_notebook(tmp_path / "stuck.ipynb", "import time\ntime.sleep(600)")
    start = time.monotonic()
    with pytest.raises(Exception, match="timed out"):
        execute(source, tmp_path / "out", {"SMOKE": True}, cwd=tmp_path, cell_timeout=3)
    assert time.monotonic() - start < 60, "the harness waited past the cell timeout"


def test_a_notebook_runs_twice_in_a_row_from_any_folder_with_nothing_carried_over(tmp_path):
    runs = []
    for name in ("first", "second"):
        cwd = tmp_path / name
        cwd.mkdir()
        out = nbformat.read(execute(NOTEBOOKS / "00_setup.ipynb", cwd / "out", {"SMOKE": True}, cwd=cwd), as_version=4)
        code = [c for c in out.cells if c.cell_type == "code"]
        assert code[0].execution_count == 1, "a fresh kernel numbers its first cell 1"
        runs.append(["".join(o.get("text", "") for o in c.outputs) for c in code if checked(c)])
    assert runs[0] and runs[0] == runs[1]
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == ["00_setup.ipynb"] * 2


def test_unknown_parameter_is_refused_before_running():
    with pytest.raises(ValueError, match=r"no parameter\(s\) \['SMOKEY'\]"):
        check_parameters(NOTEBOOKS / "00_setup.ipynb", {"SMOKEY": True})


def test_a_notebook_without_parameters_cell_is_refused(tmp_path):
    bare = tmp_path / "bare.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1")]), bare)
    with pytest.raises(ValueError, match="no cell tagged 'parameters'"):
        check_parameters(bare, {})
