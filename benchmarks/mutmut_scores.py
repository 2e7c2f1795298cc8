"""The share of mutmut's mutants killed, per module: reads `mutmut results --all true` on stdin (`make mutmut`).

A line of that output reads "    dcgan_utils.engine.losses.x_generator_loss__mutmut_3: killed"; the module is the name
up to the function's. "survived" is a mutant no selected test caught (a missing test, or code that changes nothing);
"no tests" a mutated function no selected test calls. The survivors are listed, for `mutmut show NAME`.
"""

from __future__ import annotations

import sys
from collections import Counter, defaultdict


def scores(lines: list[str]) -> dict[str, Counter]:
    """module -> Counter of statuses (killed, survived, timeout, no tests, ...)."""
    by_module: dict[str, Counter] = defaultdict(Counter)
    for line in lines:
        name, sep, status = line.strip().rpartition(": ")
        if sep and "__mutmut_" in name:
            by_module[name.rsplit(".", 1)[0]][status] += 1
    return by_module


def main() -> None:
    lines = sys.stdin.read().splitlines()
    table = scores(lines)
    if not table:
        sys.exit("no mutants in the input: run `mutmut run` first (make mutmut does both)")
    for module, counts in sorted(table.items()):
        total = sum(counts.values())
        caught = counts["killed"] + counts["timeout"]  # a mutant that hangs the tests is caught by the time limit
        others = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()) if s not in ("killed", "timeout"))
        print(f"{module}: {caught}/{total} killed ({caught / total:.0%}){'; ' + others if others else ''}")
    for line in lines:
        if line.strip().endswith(": survived"):
            print("survived:", line.strip().rsplit(": ", 1)[0])


if __name__ == "__main__":
    main()
