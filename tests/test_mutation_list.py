"""benchmarks/mutation.py's curated defects still fit the code: `make mutation` (not in CI) refuses a defect whose
text is not found exactly once, so a refactor of the code it patches would only show there, late (one did: the
precision checker's repeated-points case, rewritten in #22)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

SCRIPT = Path(__file__).parent.parent / "benchmarks" / "mutation.py"


def test_every_curated_defect_patches_text_found_exactly_once():
    spec = importlib.util.spec_from_file_location("curated_mutation", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look the module up while the class is built
    spec.loader.exec_module(module)
    assert len(module.M) >= 43
    found = {(m.path, m.old): (module.ROOT / m.path).read_text().count(m.old) for m in module.M}
    assert {key: n for key, n in found.items() if n != 1} == {}
