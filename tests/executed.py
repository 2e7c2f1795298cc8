"""What one execution of a notebook's student copy must show, however it ran (in JupyterLab by the browser test, or
with papermill where no browser is installed): each notebook is executed once per test run and checked here.

- no cell raised;
- every cell tagged `nbval-check-output` printed what the committed notebook shows, compared as `pytest --nbval-lax`
  compares it: streams coalesced by nbval's own `coalesce_streams`, volatile text replaced by the patterns of
  nbval_sanitize.cfg (read by nbval's own parser), images and widget ids not compared;
- every exercise stub reports "not attempted yet" (its solution is gone from the student copy).
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import nbformat
from nbval.plugin import coalesce_streams, get_sanitize_patterns

SANITIZE = Path(__file__).with_name("nbval_sanitize.cfg")
PATTERNS = get_sanitize_patterns(SANITIZE.read_text())
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"  # Debian's (`make browser`), driven by playwright
SKIP = {"image/png", "image/jpeg", "image/svg+xml", "application/vnd.jupyter.widget-view+json"}  # as nbval skips


def browser_runs_notebooks() -> bool:
    """Whether test_browser.py can run the notebooks here (it does in CI, where a missing browser is a failure)."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return False
    return Path(CHROMIUM).exists()


def checked(cell) -> bool:
    """nbval compares this cell's output: the tag, invisible to a learner (comment markers are refused)."""
    return "nbval-check-output" in cell.metadata.get("tags", [])


def _sanitize(text: str) -> str:
    for regex, replace in PATTERNS:
        text = re.sub(regex, replace, text)
    return text


def comparable(outputs) -> list[tuple[str, str]]:
    """A cell's outputs as nbval compares them: (stream name or MIME type, sanitised text), in order."""
    found = []
    for out in coalesce_streams([nbformat.from_dict(dict(o)) for o in outputs]):
        if out.output_type == "stream":
            found.append((out.name, _sanitize(out.text)))
        elif out.output_type in ("execute_result", "display_data"):
            found += [(k, _sanitize(v if isinstance(v, str) else str(v))) for k, v in out.data.items() if k not in SKIP]
    return found


def problems(executed: Path, committed: Path) -> list[str]:
    """Everything wrong with `executed` (a run of committed's student copy), one line each; [] when all is well."""
    ran = {c.get("id"): c for c in nbformat.read(executed, as_version=4).cells}
    found = []
    for cell in ran.values():
        for out in cell.get("outputs", []):
            if out.output_type == "error":
                found.append(f"cell {cell.get('id')} raised {out.ename}: {out.evalue[:300]}")
        if cell.cell_type == "code" and "raise NotImplementedError" in cell.source:
            text = "".join(o.get("text", "") for o in cell.get("outputs", []))
            if "not attempted" not in text:
                found.append(f"exercise stub {cell.get('id')} did not report 'not attempted': {text[-300:]!r}")
    for cell in nbformat.read(committed, as_version=4).cells:
        if not checked(cell) or "solution" in cell.metadata.get("tags", []):
            continue
        if cell.id not in ran:
            found.append(f"checked cell {cell.id} is missing from the executed copy")
            continue
        want, got = comparable(cell.outputs), comparable(ran[cell.id].get("outputs", []))
        if want != got:
            found.append(f"checked cell {cell.id} ({cell.source.splitlines()[0][:60]!r}) printed\n{got}\n"
                         f"instead of the committed\n{want}")
    return found
