"""Notebook 04's quality measurements: the shipped results of two benchmarks, how they are written and read, and the
curve's figure.

benchmarks/quality_curve.py trains a recipe on MNIST and measures it after 1, 2, 5, 10 and 20 minutes of its own
training time, on two seeds; it writes dcgan_utils/pretrained/quality_curve_mnist.json. benchmarks/mnist_quality.py
measures one recipe after a 5-minute budget (data loading included) and writes dcgan_utils/pretrained/methods_mnist.json.
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import matplotlib.pyplot as plt

from dcgan_utils.engine.checkpoint import sha256
from dcgan_utils.engine.device import machine_summary

RESULTS = "quality_curve_mnist.json"  # in dcgan_utils/pretrained/, written by benchmarks/quality_curve.py
METHODS = "methods_mnist.json"  # in dcgan_utils/pretrained/, written by benchmarks/mnist_quality.py
PANELS = (("confident", "confident >= 0.9 (%)", 100.0), ("min_class_share", "smallest class (%)", 100.0),
          ("frechet", "Frechet distance to test digits", 1.0))  # (row key, axis label, scale)


def load_quality_curve() -> dict:
    """The shipped curve: {"machine", "judge", "judge_sha256", "samples", "real": {"confident", "min_class_share"},
    "rows": [...]}, a row per recipe, seed and mark: label, seed, minutes, steps, epochs, confident, min_class_share,
    frechet."""
    return json.loads(resources.files("dcgan_utils").joinpath("pretrained", RESULTS).read_text())


def load_methods() -> dict:
    """The shipped 5-minute table: the same header as load_quality_curve(), a row per recipe and seed: label, seed,
    steps, epochs, wall_s, confident, min_class_share, frechet (and kept_share for rejection sampling)."""
    return json.loads(resources.files("dcgan_utils").joinpath("pretrained", METHODS).read_text())


def methods_table(results: dict) -> str:
    """The 5-minute table as text: a line per recipe, the defaults first, then rows drawn from the defaults' run
    (rejection sampling), then the others by mean confident share, highest first; each value for seed 0, seed 1, ...
    joined by " / " (rejection sampling's rows also give the share of draws kept)."""
    recipes: dict[str, list[dict]] = {}
    for row in sorted(results["rows"], key=lambda r: r["seed"]):
        recipes.setdefault(row["label"], []).append(row)

    def rank(label: str) -> tuple:
        rows = recipes[label]
        return label != "defaults", not label.startswith("defaults"), -sum(r["confident"] for r in rows) / len(rows)

    def each(rows, key, fmt):
        return " / ".join(format(r[key], fmt) for r in rows)

    columns = [("recipe", None, None), ("seeds", "seed", "d"), ("steps", "steps", ",d"),
               ("confident", "confident", ".1%"), ("smallest class", "min_class_share", ".1%"),
               ("Frechet", "frechet", ".1f")]
    table = [[name for name, _, _ in columns]]
    for label in sorted(recipes, key=rank):
        rows = recipes[label]
        kept = [f"kept {each(rows, 'kept_share', '.0%')} of draws"] if "kept_share" in rows[0] else []
        table.append([label] + [each(rows, key, fmt) for _, key, fmt in columns[1:]] + kept)
    widths = [max(len(line[i]) for line in table if i < len(line)) for i in range(len(columns))]
    return "\n".join(" | ".join(cell.ljust(w) for cell, w in zip(line, widths + [0])).rstrip() for line in table)


def results_header(judge: str | Path, samples: int, real: dict) -> dict:
    """The header both benchmarks write above their rows: this machine, the judge's file name and sha256, the samples
    per row, and real test digits' confident share and smallest class (from class_coverage)."""
    return {"machine": machine_summary(), "judge": Path(judge).name, "judge_sha256": sha256(judge), "samples": samples,
            "real": {k: real[k] for k in ("confident", "min_class_share")}}


def add_rows(path: str | Path, header: dict, rows: list[dict]) -> None:
    """Write header and rows to the JSON file at path, keeping its earlier rows except those of the same label and
    seed as a new one (a re-run replaces its rows)."""
    path = Path(path)
    saved = json.loads(path.read_text())["rows"] if path.is_file() else []
    new = {(r["label"], r["seed"]) for r in rows}
    kept = [r for r in saved if (r["label"], r["seed"]) not in new]
    path.write_text(json.dumps({**header, "rows": kept + rows}, indent=1) + "\n")


def curves(rows: list[dict]) -> dict[tuple[str, int], list[dict]]:
    """The rows of each (recipe, seed), in order of training time; recipes in the order they first appear, then seeds."""
    recipes = list(dict.fromkeys(r["label"] for r in rows))
    out: dict[tuple[str, int], list[dict]] = {}
    for row in sorted(rows, key=lambda r: (recipes.index(r["label"]), r["seed"], r["minutes"])):
        out.setdefault((row["label"], row["seed"]), []).append(row)
    return out


def plot_quality_curve(results: dict) -> plt.Figure:
    """Confident share, smallest class and Frechet distance against minutes of training (a log time axis), a colour
    per recipe, a line style per seed; real test digits' confident share and smallest class dotted, the 90% and 5%
    targets dash-dotted."""
    fig, axes = plt.subplots(1, len(PANELS), figsize=(13, 3.4))
    grouped = curves(results["rows"])
    recipes = list(dict.fromkeys(label for label, _ in grouped))  # a colour per recipe, in curves()' order
    marks = sorted({round(r["minutes"]) for r in results["rows"]})  # the benchmark's marks, whole minutes
    for (label, seed), rows in grouped.items():
        minutes = [r["minutes"] for r in rows]
        for ax, (key, _, scale) in zip(axes, PANELS):
            ax.plot(minutes, [r[key] * scale for r in rows], marker="o", markersize=3, color=f"C{recipes.index(label)}",
                    linestyle="-" if seed == 0 else "--", label=f"{label}, seed {seed}")
    for ax, (key, name, scale) in zip(axes, PANELS):
        if key in results["real"]:
            ax.axhline(results["real"][key] * scale, color="k", linestyle=":", linewidth=1, label="real test digits")
        target = {"confident": 90.0, "min_class_share": 5.0}.get(key)
        if target is not None:
            ax.axhline(target, color="0.5", linestyle="-.", linewidth=1, label="target (90%, 5%)")
        ax.set_xscale("log")
        ax.set_xticks(marks, [str(m) for m in marks])
        ax.minorticks_off()
        ax.set_xlabel("minutes of training")
        ax.set_title(name, fontsize=10)
    axes[-1].legend(*axes[0].get_legend_handles_labels(), fontsize=7, loc="center left", bbox_to_anchor=(1.02, 0.5))
    fig.tight_layout()
    return fig
