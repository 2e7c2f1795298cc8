"""Notebook 04's quality measurements: the shipped curve and methods table, how rows are written, and what the figure
and the table show of them."""

import json

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402

from dcgan_utils.course import quality_curve  # noqa: E402

MARKS = [1, 2, 5, 10, 20]  # benchmarks/quality_curve.py's default marks, minutes of training
LONG = [1, 2, 5, 10, 20, 40, 60]  # the marks of the 60-minute run of the best recipe of the 5-minute methods table


def row(label, seed, minutes, confident, smallest, frechet):
    return {"label": label, "seed": seed, "minutes": minutes, "steps": int(minutes * 100), "epochs": minutes / 5,
            "confident": confident, "min_class_share": smallest, "frechet": frechet}


def test_curves_groups_rows_by_recipe_then_seed_in_order_of_training_time():
    rows = [row("a", 0, 2.0, 0.2, 0.03, 90.0), row("b", 0, 1.0, 0.1, 0.02, 99.0), row("a", 0, 1.0, 0.1, 0.01, 100.0),
            row("a", 1, 1.0, 0.15, 0.02, 95.0)]
    grouped = quality_curve.curves(rows)
    assert list(grouped) == [("a", 0), ("a", 1), ("b", 0)]  # recipes as they first appear
    assert [r["minutes"] for r in grouped[("a", 0)]] == [1.0, 2.0]


def test_the_figure_draws_each_recipe_and_seed_at_its_own_numbers():
    results = {"real": {"confident": 0.95, "min_class_share": 0.088},
               "rows": [row("defaults", 0, 1.01, 0.30, 0.02, 120.0), row("defaults", 0, 2.02, 0.45, 0.04, 80.0),
                        row("batch 32", 1, 1.0, 0.35, 0.03, 110.0), row("batch 32", 1, 2.0, 0.50, 0.05, 70.0)]}
    fig = quality_curve.plot_quality_curve(results)
    confident, smallest, frechet = fig.axes
    lines = {line.get_label(): line for line in confident.get_lines()}
    assert list(lines["defaults, seed 0"].get_xdata()) == [1.01, 2.02]
    assert list(lines["defaults, seed 0"].get_ydata()) == [30.0, 45.0]  # percent
    assert list(lines["batch 32, seed 1"].get_ydata()) == [35.0, 50.0]
    assert lines["batch 32, seed 1"].get_linestyle() == "--" and lines["defaults, seed 0"].get_linestyle() == "-"
    assert lines["real test digits"].get_ydata()[0] == 95.0 and lines["target (90%, 5%)"].get_ydata()[0] == 90.0
    assert [t.get_text() for t in confident.get_xticklabels()] == ["1", "2"]  # the rows' marks, whole minutes
    small = {line.get_label(): line for line in smallest.get_lines()}
    assert list(small["defaults, seed 0"].get_ydata()) == [2.0, 4.0]  # 0.02 * 100, 0.04 * 100 are exact in floats
    assert abs(small["real test digits"].get_ydata()[0] - 8.8) < 1e-9 and small["target (90%, 5%)"].get_ydata()[0] == 5.0
    far = {line.get_label(): line for line in frechet.get_lines()}
    assert list(far["batch 32, seed 1"].get_ydata()) == [110.0, 70.0]
    legend = [text.get_text() for text in frechet.get_legend().get_texts()]
    assert legend == ["defaults, seed 0", "batch 32, seed 1", "real test digits", "target (90%, 5%)"]
    plt.close(fig)


def test_the_shipped_curve_holds_each_recipe_on_two_seeds_at_every_mark():
    shipped = quality_curve.load_quality_curve()
    assert "threads" in shipped["machine"] and len(shipped["judge_sha256"]) == 64
    assert 0.9 < shipped["real"]["confident"] < 1 and 0.05 < shipped["real"]["min_class_share"] < 0.1
    grouped = quality_curve.curves(shipped["rows"])
    marks = {("defaults", 0): MARKS, ("defaults", 1): MARKS, ("batch 32", 0): MARKS, ("batch 32", 1): MARKS,
             ("extra 14x14 layer", 0): LONG, ("extra 14x14 layer", 1): LONG}
    assert list(grouped) == list(marks)
    for key, rows in grouped.items():
        # the budget stops a run at the first step past its mark, so each mark is reached and not overshot by much
        assert len(rows) == len(marks[key]) and all(m <= r["minutes"] < m + 0.1 for r, m in zip(rows, marks[key]))
        steps = [r["steps"] for r in rows]
        assert steps == sorted(steps) and len(set(steps)) == len(rows)  # one run, resumed: steps only grow
        for r in rows:
            assert 0 <= r["confident"] <= 1 and 0 <= r["min_class_share"] <= 0.5 and r["frechet"] > 0


def test_add_rows_replaces_a_rerun_and_keeps_the_other_rows(tmp_path):
    out = tmp_path / "rows.json"
    header = {"machine": "m", "real": {"confident": 0.95}}
    quality_curve.add_rows(out, header, [{"label": "a", "seed": 0, "x": 1}, {"label": "a", "seed": 1, "x": 2}])
    quality_curve.add_rows(out, {**header, "machine": "n"}, [{"label": "a", "seed": 1, "x": 3},
                                                             {"label": "b", "seed": 1, "x": 4}])
    saved = json.loads(out.read_text())
    assert saved["machine"] == "n" and saved["real"] == {"confident": 0.95}
    assert [(r["label"], r["seed"], r["x"]) for r in saved["rows"]] == [("a", 0, 1), ("a", 1, 3), ("b", 1, 4)]


def test_the_methods_table_gives_each_recipes_seeds_side_by_side_defaults_first_then_the_best():
    rows = [{"label": "spectral", "seed": 1, "steps": 900, "confident": 0.5, "min_class_share": 0.04, "frechet": 70.0},
            {"label": "spectral", "seed": 0, "steps": 1200, "confident": 0.6123, "min_class_share": 0.051,
             "frechet": 61.25},
            {"label": "DRS", "seed": 0, "steps": 1200, "confident": 0.7, "min_class_share": 0.02, "frechet": 80.0,
             "kept_share": 0.334},
            {"label": "defaults", "seed": 0, "steps": 1000, "confident": 0.4, "min_class_share": 0.03, "frechet": 90.0}]
    lines = quality_curve.methods_table({"rows": rows}).splitlines()
    cells = [[c.strip() for c in line.split("|")] for line in lines]
    assert cells == [["recipe", "seeds", "steps", "confident", "smallest class", "Frechet"],
                     ["defaults", "0", "1,000", "40.0%", "3.0%", "90.0"],
                     ["DRS", "0", "1,200", "70.0%", "2.0%", "80.0", "kept 33% of draws"],
                     ["spectral", "0 / 1", "1,200 / 900", "61.2% / 50.0%", "5.1% / 4.0%", "61.2 / 70.0"]]
    assert len({line.index("| seeds") if i == 0 else line.index("|") for i, line in enumerate(lines)}) == 1  # aligned


def test_the_shipped_methods_table_has_every_method_and_the_curves_judge():
    methods, curve = quality_curve.load_methods(), quality_curve.load_quality_curve()
    assert methods["judge_sha256"] == curve["judge_sha256"] and methods["real"] == curve["real"]  # one frozen judge
    seeds = {}
    for r in methods["rows"]:
        seeds.setdefault(r["label"], []).append(r["seed"])
        assert 0 <= r["confident"] <= 1 and r["frechet"] > 0 and r["steps"] > 1000 and 290 < r["wall_s"] < 330
    assert {label: sorted(s) for label, s in seeds.items()} == {
        "defaults": [0, 1], "defaults, rejection sampling (gamma: 80th percentile)": [0, 1],
        "extra 14x14 layer": [0, 1], "top-k, floor 0.5": [0, 1], "lr decay": [0], "minibatch std": [0],
        "spectral norm": [0], "R1, gamma 1": [0]}
    drs = [r for r in methods["rows"] if "kept_share" in r]
    assert len(drs) == 2 and all(0 < r["kept_share"] < 1 for r in drs)


def test_results_header_names_the_machine_and_the_judge_file_by_its_hash(tmp_path):
    judge = tmp_path / "mnist_cnn_2ep_v2.pt"
    judge.write_bytes(b"weights")
    header = quality_curve.results_header(judge, 10000, {"confident": 0.95, "min_class_share": 0.088, "classes": 10})
    assert header["judge"] == "mnist_cnn_2ep_v2.pt" and header["samples"] == 10000 and "threads" in header["machine"]
    assert header["judge_sha256"] == "9a129038d9a00aed0cf6a7ea059ca50a813449061ab87848cf1a13eafdf33b2c"  # of b"weights"
    assert header["real"] == {"confident": 0.95, "min_class_share": 0.088}  # only the two shares real digits set
