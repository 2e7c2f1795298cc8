"""Mode collapse provoked by a frozen D (course/collapse.py): the four continuations, the noise map, the meters, the
verdicts, and the shipped three-seed results that notebook 05 shows."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch

from dcgan_utils.course import collapse
from dcgan_utils.engine import training
from dcgan_utils.engine.checkpoint import (CheckpointError, g_frozen_start, keeps_g_state, load_checkpoint,
                                           release_payload, save_checkpoint)
from dcgan_utils.engine.runs import export_release, find_pretrained
from dcgan_utils.engine.models import Generator
from dcgan_utils.evaluation.metrics import ImageClassifier
from helpers import tiny_config, tiny_data


def test_the_continuations_start_from_one_run_and_differ_in_ds_learning_rate_and_what_of_g_trains(tmp_path):
    config = tiny_config(max_steps=3, epochs=0, precision="fp32", ema=0, lr=2e-3, beta1=0.3)  # G's rate not D's
    states = collapse.frozen_d_runs(config, tiny_data(), tmp_path, more_steps=2)
    assert list(states) == list(collapse.ARMS) and all(s.step == 5 for s in states.values())
    start = load_checkpoint(tmp_path / "start" / "checkpoint.pt")
    assert start["step"] == 3
    learned = [k for k in start["D"] if "running" not in k and "num_batches" not in k]  # BatchNorm's running
    for trained, frozen in ((states["D trained"], states["D frozen"]),  # statistics follow the batches even in a
                            (states["z-map, D trained"], states["z-map, D frozen"])):  # frozen D
        assert all(torch.equal(start["D"][k], frozen.D.state_dict()[k].cpu()) for k in learned)
        assert not all(torch.equal(start["D"][k], trained.D.state_dict()[k].cpu()) for k in learned)
        assert [g["lr"] for g in frozen.opt_d.param_groups] == [0.0]
        assert [g["lr"] for g in trained.opt_d.param_groups] == [config.d_lr]
        assert frozen.config.d_lr == 0 and trained.config.d_lr == config.d_lr
    for arm in ("D trained", "D frozen"):  # G moved on
        assert not all(torch.equal(start["G"][k], v.cpu()) for k, v in states[arm].G.state_dict().items())
    for arm in ("z-map, D trained", "z-map, D frozen"):  # G's weights and statistics as at the start; the map moved
        noise_map = states[arm].G
        assert isinstance(noise_map, collapse.NoiseMap)
        assert all(torch.equal(start["G"][k], v.cpu()) for k, v in noise_map.generator.state_dict().items())
        assert not torch.equal(noise_map.mapping.weight, torch.eye(config.latent_dim))
        assert [p for g in states[arm].opt_g.param_groups for p in g["params"]] == list(noise_map.mapping.parameters())
        assert states[arm].opt_g.param_groups[0]["lr"] == config.lr != config.d_lr
        assert states[arm].opt_g.param_groups[0]["betas"] == (config.beta1, config.beta2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["D frozen", "D trained", "start"]  # z-map arms write nothing
    assert load_checkpoint(tmp_path / "start" / "checkpoint.pt")["step"] == 3  # the start's checkpoint kept as it was
    judge = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(28 * 28, 10))
    row = collapse.meters(states["z-map, D frozen"], judge, samples=50, seed=0)  # the meters read a z-map run too
    assert row["step"] == 5 and sum(row["shares"]) == pytest.approx(1)
    z = torch.randn(8, 16, generator=torch.Generator().manual_seed(1000))  # draw's noise for seed 0
    with torch.no_grad():  # ...on the map's samples, not on those of G alone
        mapped, plain = states["z-map, D frozen"].G(z), states["z-map, D frozen"].G.generator(z)
    assert torch.allclose(collapse.draw(states["z-map, D frozen"], 8), mapped, atol=1e-6)
    assert not torch.allclose(mapped, plain, atol=1e-3)


def test_the_noise_map_starts_as_g_on_the_sphere_and_keeps_gs_batchnorm_in_inference_mode():
    torch.manual_seed(0)
    G = Generator(image_size=28, channels=1, latent_dim=16, width=8)
    G.train()
    G(torch.randn(64, 16))  # BatchNorm running statistics away from their initial values
    noise_map = collapse.NoiseMap(G)
    noise_map.train()
    assert not noise_map.generator.training and not any(m.training for m in noise_map.generator.modules())
    assert not any(p.requires_grad for p in noise_map.generator.parameters())
    z = torch.randn(8, 16)
    on_sphere = z / z.norm(dim=1, keepdim=True) * math.sqrt(16)  # independent of F.normalize
    with torch.no_grad():
        assert torch.allclose(noise_map(z), G.eval()(on_sphere), atol=1e-6)
        assert torch.allclose(noise_map(z * 3), noise_map(z), atol=1e-6)  # the scale of z no longer matters
        A = torch.eye(16) + torch.randn(16, 16, generator=torch.Generator().manual_seed(1))  # not orthogonal
        b = torch.linspace(-2, 2, 16)
        noise_map.mapping.weight.copy_(A)
        noise_map.mapping.bias.copy_(b)
        u = z @ A.T + b  # the map first, then onto the sphere
        seen = []
        hook = noise_map.generator.register_forward_pre_hook(lambda module, args: seen.append(args[0]))
        assert torch.allclose(noise_map(z), G(u / u.norm(dim=1, keepdim=True) * math.sqrt(16)), atol=1e-5)
        hook.remove()
        assert torch.allclose(seen[0].flatten(1).norm(dim=1), torch.full((8,), 4.0), atol=1e-5)  # G's input: |.| = 4
    with pytest.raises(ValueError, match="unconditional"):
        collapse.NoiseMap(Generator(image_size=28, channels=1, latent_dim=16, width=8, num_classes=10))


def test_frozen_d_runs_refuses_what_its_noise_map_cannot_show_before_training_anything(tmp_path):
    for changes in (dict(ema=0.9), dict(ema=0, num_classes=10)):
        with pytest.raises(ValueError, match="unconditional run without EMA"):
            collapse.frozen_d_runs(tiny_config(max_steps=3, epochs=0, **changes), tiny_data(), tmp_path, 1)
    assert not any(tmp_path.iterdir())


def test_a_start_given_as_a_checkpoint_continues_as_the_start_trained_in_place_and_a_slim_one_as_well(tmp_path):
    """The long starts ship without G's Adam moments (g_frozen_start, exported as the package exports them): the
    z-map copies, which train a fresh map in front of G, must come out as if the start had been trained in place, the
    map at map_lr; the whole-G copies too, from a full checkpoint."""
    config = tiny_config(max_steps=3, epochs=0, precision="fp32", ema=0)
    arms = ("z-map, D trained", "z-map, D frozen")
    in_place = collapse.frozen_d_runs(config, tiny_data(), tmp_path / "a", 2, collapse.ARMS, map_lr=3e-3)
    full = tmp_path / "a" / "start" / "checkpoint.pt"
    entry = export_release(full, tmp_path / "shipped", keep=g_frozen_start)
    slim = find_pretrained(config, tmp_path / "shipped")
    assert entry["kind"] == "g_frozen_start" and slim is not None
    assert keeps_g_state(load_checkpoint(full)) and not keeps_g_state(load_checkpoint(slim))
    for i, (start, these) in enumerate(((full, collapse.ARMS), (slim, arms))):
        again = collapse.frozen_d_runs(config, tiny_data(), tmp_path / f"b{i}", 2, these, map_lr=3e-3, start=start)
        assert list(again) == list(these)
        for arm in these:
            assert again[arm].opt_d.param_groups[0]["lr"] == (0.0 if arm.endswith("frozen") else config.d_lr)
            assert again[arm].opt_g.param_groups[0]["lr"] == (3e-3 if arm.startswith("z-map") else config.lr)
            for net in ("G", "D"):
                a, b = getattr(in_place[arm], net).state_dict(), getattr(again[arm], net).state_dict()
                assert all(torch.equal(a[k], b[k]) for k in a), (start.name, arm, net)
    assert load_checkpoint(full)["step"] == 3  # the whole-G copies trained in copies, not in the start's folder


def test_a_start_that_cannot_give_the_copies_asked_for_is_refused_with_what_to_do(tmp_path):
    config = tiny_config(max_steps=3, epochs=0, precision="fp32", ema=0)
    arms = ("z-map, D trained", "z-map, D frozen")
    training.train_gan(config, tiny_data(), tmp_path / "run", progress=False)
    full = tmp_path / "run" / "checkpoint.pt"
    slim = save_checkpoint(g_frozen_start(load_checkpoint(full)), tmp_path / "slim.pt")
    release = save_checkpoint(release_payload(load_checkpoint(full)), tmp_path / "release.pt")
    cut_short = save_checkpoint({**load_checkpoint(full), "step": 2}, tmp_path / "cut.pt")  # as a time budget leaves it
    cases = [((config, ("D trained",), slim), ValueError, "z-map arms only"),  # would restart G's Adam moments
             ((config, arms, release), CheckpointError, "is a release"),
             ((dataclasses.replace(config, seed=1), arms, full), ValueError, "not of mnist-"),  # other settings
             ((config, arms, cut_short), ValueError, "stopped at step 2 of 3"),
             ((config, (), full), ValueError, "no arms"), ((config, ("z-map",), full), ValueError, "unknown")]
    for (cfg, these, start), error, message in cases:
        with pytest.raises(error, match=message):
            collapse.frozen_d_runs(cfg, tiny_data(), tmp_path / "c", 2, these, start=start)
    with pytest.raises(ValueError, match="map_lr must be > 0"):
        collapse.frozen_d_runs(config, tiny_data(), tmp_path / "c", 2, arms, map_lr=0.0, start=full)
    with pytest.raises(CheckpointError, match="no optimiser or random-number states"):
        g_frozen_start(load_checkpoint(release))
    assert not (tmp_path / "c").exists()  # refused before anything was copied or trained
    (tmp_path / "slim").mkdir()  # nor can G train on from it elsewhere (e.g. `train --resume` in its folder)
    save_checkpoint(load_checkpoint(slim), tmp_path / "slim" / "checkpoint.pt")
    before = (tmp_path / "slim" / "checkpoint.pt").read_bytes()
    with pytest.raises(CheckpointError, match="restart its Adam moments"):
        training.train_gan(dataclasses.replace(config, max_steps=5), tiny_data(), tmp_path / "slim", resume=True,
                           progress=False)
    assert (tmp_path / "slim" / "checkpoint.pt").read_bytes() == before  # nothing saved over it


def test_the_shipped_long_starts_are_verified_and_are_the_settings_they_claim():
    for seed in (0, 1, 2):
        payload = load_checkpoint(collapse.shipped_start(seed))
        assert payload["config"] == collapse.long_start_config(seed).to_dict() | {
            k: payload["config"][k] for k in ("device", "data_dir")}
        assert payload["step"] == collapse.LONG_START_STEPS and payload["finished"] and not keeps_g_state(payload)
    with pytest.raises(FileNotFoundError, match="shipped seeds are 0, 1 and 2"):
        collapse.shipped_start(3)


def test_frozen_d_runs_needs_the_starts_length():
    with pytest.raises(ValueError, match="needs config.max_steps"):
        collapse.frozen_d_runs(tiny_config(max_steps=0), tiny_data(), "unused", more_steps=2)


def test_the_meters_read_shares_largest_first_and_the_diversity_of_64(tmp_path):
    state = collapse.frozen_d_runs(tiny_config(max_steps=2, epochs=0, ema=0), tiny_data(), tmp_path, 1)["D frozen"]
    torch.manual_seed(0)
    judge = ImageClassifier().eval()
    row = collapse.meters(state, judge, samples=100, seed=1)
    shares = row["shares"]
    assert len(shares) == 10 and shares == sorted(shares, reverse=True) and sum(shares) == pytest.approx(1)
    assert row["top_two"] == pytest.approx(shares[0] + shares[1]) and row["smallest"] == shares[-1]
    spread = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(28 * 28, 10))  # a judge that uses many classes
    with torch.no_grad():  # on these look-alike samples: differences between them magnified, each sample's mean off
        spread[1].weight.mul_(1e3).sub_(spread[1].weight.mean(1, keepdim=True))
    named = collapse.meters(state, spread, samples=100, seed=1)
    with torch.no_grad():  # the classes named are those whose shares stand beside them: counted here directly
        counts = torch.bincount(spread(collapse.draw(state, 100, seed=1)).argmax(1), minlength=10).tolist()
    assert sum(c > 0 for c in counts) >= 3
    assert [counts[c] / 100 for c in named["classes"]] == pytest.approx(named["shares"])
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
    while the same run with D trained stays healthy (every class at 5% or more); one setting differs. With only the
    noise map training, D frozen collapses too, onto samples classified with more confidence than the healthy run's,
    and D trained does not collapse."""
    results = collapse.load_collapse()
    rows = {(r["seed"], r["arm"]): r for r in results["rows"]}
    seeds = sorted({seed for seed, _ in rows})
    assert len(seeds) == 3 and set(rows) == {(s, a) for s in seeds for a in ("start", *collapse.ARMS)}
    assert results["samples"] >= 2000 and results["settings"]["more_steps"] >= 1000
    most_varied = results["real"]["diversity_one_class"][1]
    for seed in seeds:
        start, trained, frozen, map_trained, map_frozen = (rows[seed, a] for a in ("start", *collapse.ARMS))
        for row in (trained, frozen, map_trained, map_frozen):
            assert row["step"] == start["step"] + results["settings"]["more_steps"]
        assert collapse.verdict(frozen, most_varied) == "collapse" and collapse.verdict(trained, most_varied) == "healthy"
        assert collapse.verdict(start, most_varied) == "neither"  # the start had learned, and not covered every class
        assert collapse.verdict(map_frozen, most_varied) == "collapse"
        assert collapse.verdict(map_trained, most_varied) != "collapse"
        assert map_frozen["confident"] > max(trained["confident"], start["confident"]) > frozen["confident"]
    table = collapse.collapse_table(results)
    assert table.count("collapse") == 6 and table.count("healthy") == 3 and len(table.splitlines()) == 16


def test_the_shipped_long_start_results_show_the_pair_on_three_seeds():
    """What notebook 05 section 5c says of them: from each long start (itself healthy), the z-map copy with D frozen
    collapses onto samples classified with confidence (90% or more, more than the start's and its partner's), while
    the copy with D trained, which differs from it in D's learning rate alone, stays healthy."""
    results = collapse.load_collapse(collapse.LONG_RESULTS)
    rows = {(r["seed"], r["arm"]): r for r in results["rows"]}
    arms = ("start", "z-map, D trained", "z-map, D frozen")
    assert set(rows) == {(s, a) for s in (0, 1, 2) for a in arms}
    settings = results["settings"]
    assert settings["starts"] == "shipped" and settings["max_steps"] == collapse.LONG_START_STEPS
    assert settings["extra_layer"] and settings["map_lr"] == 2e-3 and "lr" not in settings  # G trained at 2e-4
    assert results["samples"] >= 2000 and settings["more_steps"] == 3000
    most_varied = results["real"]["diversity_one_class"][1]
    for seed in (0, 1, 2):
        start, trained, frozen = (rows[seed, a] for a in arms)
        assert trained["step"] == frozen["step"] == start["step"] + settings["more_steps"]
        assert collapse.verdict(start, most_varied) == collapse.verdict(trained, most_varied) == "healthy"
        assert collapse.verdict(frozen, most_varied) == "collapse"
        assert frozen["confident"] >= 0.9 > max(start["confident"], trained["confident"])
