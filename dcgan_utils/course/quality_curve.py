"""Notebook 04's quality per minute: the shipped results of benchmarks/quality_curve.py, and their figure.

benchmarks/quality_curve.py trains a recipe on MNIST and measures it after 1, 2, 5, 10 and 20 minutes of its own
training time, on two seeds; it writes dcgan_utils/pretrained/quality_curve_mnist.json, which this module reads.
"""

from __future__ import annotations

import json
from importlib import resources

import matplotlib.pyplot as plt

RESULTS = "quality_curve_mnist.json"  # in dcgan_utils/pretrained/, written by benchmarks/quality_curve.py
PANELS = (("confident", "confident >= 0.9 (%)", 100.0), ("min_class_share", "smallest class (%)", 100.0),
          ("frechet", "Frechet distance to test digits", 1.0))  # (row key, axis label, scale)


def load_quality_curve() -> dict:
    """The shipped curve: {"machine", "judge", "judge_sha256", "samples", "real": {"confident", "min_class_share"},
    "rows": [...]}, a row per recipe, seed and mark: label, seed, minutes, steps, epochs, confident, min_class_share,
    frechet."""
    return json.loads(resources.files("dcgan_utils").joinpath("pretrained", RESULTS).read_text())


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
        ax.set_xticks([1, 2, 5, 10, 20], ["1", "2", "5", "10", "20"])
        ax.minorticks_off()
        ax.set_xlabel("minutes of training")
        ax.set_title(name, fontsize=10)
    axes[-1].legend(*axes[0].get_legend_handles_labels(), fontsize=7, loc="center left", bbox_to_anchor=(1.02, 0.5))
    fig.tight_layout()
    return fig
