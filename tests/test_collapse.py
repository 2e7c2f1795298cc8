"""Mode collapse provoked by a frozen D (course/collapse.py): the two continuations, the meters, the verdicts, and
the shipped three-seed results that notebook 05 shows."""

from __future__ import annotations

import pytest
import torch

from dcgan_utils.course import collapse
from dcgan_utils.engine.checkpoint import load_checkpoint
from dcgan_utils.evaluation.metrics import ImageClassifier
from helpers import tiny_config, tiny_data


def test_the_two_continuations_start_from_one_run_and_differ_only_in_ds_learning_rate(tmp_path):
    config = tiny_config(max_steps=3, epochs=0, precision="fp32")
    states = collapse.frozen_d_runs(config, tiny_data(), tmp_path, more_steps=2)
    assert list(states) == list(collapse.ARMS) and all(s.step == 5 for s in states.values())
    start = load_checkpoint(tmp_path / "start" / "checkpoint.pt")
    assert start["step"] == 3
    learned = [k for k in start["D"] if "running" not in k and "num_batches" not in k]  # BatchNorm's running
    frozen, trained = states["D frozen"], states["D trained"]  # statistics follow the batches even in a frozen D
    assert all(torch.equal(start["D"][k], frozen.D.state_dict()[k].cpu()) for k in learned)
    assert not all(torch.equal(start["D"][k], trained.D.state_dict()[k].cpu()) for k in learned)
    for state in states.values():  # G moved on in both
        assert not all(torch.equal(start["G"][k], v.cpu()) for k, v in state.G.state_dict().items())
    assert [g["lr"] for g in frozen.opt_d.param_groups] == [0.0]
    assert [g["lr"] for g in trained.opt_d.param_groups] == [config.d_lr]
    assert frozen.config.d_lr == 0 and trained.config.d_lr == config.d_lr


def test_frozen_d_runs_needs_the_starts_length():
    with pytest.raises(ValueError, match="needs config.max_steps"):
        collapse.frozen_d_runs(tiny_config(max_steps=0), tiny_data(), "unused", more_steps=2)


def test_the_meters_read_shares_largest_first_and_the_diversity_of_64(tmp_path):
    state = collapse.frozen_d_runs(tiny_config(max_steps=2, epochs=0), tiny_data(), tmp_path, 1)["D frozen"]
    torch.manual_seed(0)
    row = collapse.meters(state, ImageClassifier().eval(), samples=100, seed=1)
    shares = row["shares"]
    assert len(shares) == 10 and shares == sorted(shares, reverse=True) and sum(shares) == pytest.approx(1)
    assert row["top_two"] == pytest.approx(shares[0] + shares[1]) and row["smallest"] == shares[-1]
    assert row["step"] == 3 and 0 <= row["confident"] <= 1 and row["diversity"] > 0
    assert collapse.meters(state, ImageClassifier().eval(), samples=100, seed=1)["diversity"] == row["diversity"]


@pytest.mark.parametrize("top_two, smallest, diversity, expected", [
    (0.5, 0.0, 0.689, "collapse"), (0.76, 0.0, 0.3, "collapse"),
    (0.76, 0.0, 0.70, "neither"),  # two classes, but as varied as all digits together: not collapse
    (0.49, 0.05, 0.7, "healthy"), (0.38, 0.054, 0.2, "healthy"), (0.49, 0.049, 0.3, "neither")])
def test_a_verdict_names_only_what_the_numbers_support(top_two, smallest, diversity, expected):
    row = {"top_two": top_two, "smallest": smallest, "diversity": diversity}
    assert collapse.verdict(row, one_class_diversity=0.689) == expected


def test_the_shipped_results_show_collapse_with_d_frozen_and_a_healthy_run_with_d_trained_on_three_seeds():
    """What notebook 05 says of them: on every seed, D frozen collapses (half the samples or more in two classes)
    while the same run with D trained stays healthy (every class at 5% or more); one setting differs."""
    results = collapse.load_collapse()
    rows = {(r["seed"], r["arm"]): r for r in results["rows"]}
    seeds = sorted({seed for seed, _ in rows})
    assert len(seeds) == 3 and set(rows) == {(s, a) for s in seeds for a in ("start", *collapse.ARMS)}
    assert results["samples"] >= 2000 and results["settings"]["more_steps"] >= 1000
    for seed in seeds:
        start, trained, frozen = (rows[seed, a] for a in ("start", *collapse.ARMS))
        assert trained["step"] == frozen["step"] == start["step"] + results["settings"]["more_steps"]
        most_varied = results["real"]["diversity_one_class"][1]
        assert collapse.verdict(frozen, most_varied) == "collapse" and collapse.verdict(trained, most_varied) == "healthy"
        assert collapse.verdict(start, most_varied) == "neither"  # the start had learned, and not covered every class
    table = collapse.collapse_table(results)
    assert table.count("collapse") == 3 and table.count("healthy") == 3 and len(table.splitlines()) == 10
