"""benchmarks/mutmut_scores.py (make mutmut's summary) against counts made by hand on a small `mutmut results` text."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).parent.parent / "benchmarks" / "mutmut_scores.py"
RESULTS = """\
    dcgan_utils.engine.losses.x_generator_loss__mutmut_1: killed
    dcgan_utils.engine.losses.x_generator_loss__mutmut_2: survived
    dcgan_utils.engine.losses.x_mean_output__mutmut_1: no tests
    dcgan_utils.engine.losses.x_bce_with_logits__mutmut_3: timeout
    dcgan_utils.course.exercises.x_check_bce__mutmut_7: killed
"""


def test_the_summary_counts_each_module_and_names_the_survivors():
    out = subprocess.run([sys.executable, str(SCRIPT)], input=RESULTS, capture_output=True, text=True, check=True).stdout
    assert out.splitlines() == [
        "dcgan_utils.course.exercises: 1/1 killed (100%)",
        "dcgan_utils.engine.losses: 2/4 killed (50%); 1 no tests, 1 survived",  # a timeout counts as caught
        "survived: dcgan_utils.engine.losses.x_generator_loss__mutmut_2",
    ]


def test_no_results_is_a_clear_error():
    run = subprocess.run([sys.executable, str(SCRIPT)], input="", capture_output=True, text=True)
    assert run.returncode != 0 and "run `mutmut run` first" in run.stderr
