"""Mutation testing: plant one defect at a time in a copy of the package and count the defects some test catches.

    python benchmarks/mutation.py            # every mutant (make mutation); prints a table and the score
    python benchmarks/mutation.py --list     # the mutants, without running anything

Each mutant is a small edit a real bug could make (a flipped sign, a skipped line, a wrong constant, a swapped
argument), applied to a copy of the working tree; the tests named for it run against that copy (PYTHONPATH puts the
copy first), and the mutant is *killed* when they fail. A mutant that survives is a test the suite is missing. The
tests run are the fast ones of the module the mutant touches (never `slow`); real data are used where the tests
find them (DCGAN_DATA_DIR), as in CI. The list is curated, not generated: every line is a defect that matters.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Mutant:
    path: str  # file in the repository
    old: str  # exact text, found exactly once
    new: str  # what it becomes
    what: str  # the defect, in words
    tests: tuple[str, ...]  # test files that should catch it


E = "dcgan_utils/engine/"
C = "dcgan_utils/course/"
RESUME_TESTS = ("tests/test_checkpoint.py", "tests/test_training.py", "tests/test_reliability.py")  # what a checkpoint defect breaks
M = [
    Mutant(E + "run_state.py", '{"layout_optimization": False} if device.type == "cuda" else None', "None",
           "inductor's own layout choice left on under CUDA compile", ("tests/test_throughput.py",)),
    Mutant(E + "run_state.py", "G.net[0].to(memory_format=torch.contiguous_format)", "pass",
           "G's first layer left NHWC under compile", ("tests/test_throughput.py",)),
    Mutant(E + "losses.py", "return bce_with_logits(fake_logits, 1.0)", "return bce_with_logits(fake_logits, 0.0)",
           "non-saturating G loss with target 0", ("tests/test_losses.py",)),
    Mutant(E + "losses.py", "bce_with_logits(real_logits, real_label) + bce_with_logits(fake_logits, 0.0)",
           "bce_with_logits(real_logits, 0.0) + bce_with_logits(fake_logits, real_label)",
           "D's labels flipped", ("tests/test_losses.py",)),
    Mutant(E + "losses.py", "return -bce_with_logits(fake_logits, 0.0)", "return bce_with_logits(fake_logits, 0.0)",
           "minimax G loss with its sign flipped", ("tests/test_losses.py",)),
    Mutant(E + "losses.py", "F.relu(1 - real_logits).mean() + F.relu(1 + fake_logits).mean()",
           "F.relu(1 + real_logits).mean() + F.relu(1 - fake_logits).mean()", "hinge margins on the wrong sides",
           ("tests/test_losses.py",)),
    Mutant(E + "losses.py", "return fake_logits.mean() - real_logits.mean()",
           "return real_logits.mean() - fake_logits.mean()", "Wasserstein critic loss sign flipped",
           ("tests/test_losses.py",)),
    Mutant(E + "losses.py", "0.5 * (real_logits - 1).pow(2).mean() + 0.5 * fake_logits.pow(2).mean()",
           "0.5 * (real_logits - 1).pow(2).mean() + 0.5 * (fake_logits - 1).pow(2).mean()",
           "least-squares D pulls fakes to 1", ("tests/test_losses.py",)),
    Mutant(E + "losses.py", "(target * F.softplus(-logits) + (1.0 - target) * F.softplus(logits)).mean()",
           "(target * F.softplus(logits) + (1.0 - target) * F.softplus(-logits)).mean()",
           "BCE with softplus arguments swapped", ("tests/test_losses.py",)),
    Mutant(E + "training.py", "fake_logits = state.d_run(fake.detach(), y)", "fake_logits = state.d_run(fake, y)",
           "fakes not detached in D's step", ("tests/test_training.py",)),
    Mutant(E + "training.py", "    state.opt_g.zero_grad(set_to_none=True)\n", "",
           "G's gradients never zeroed", ("tests/test_training.py",)),
    Mutant(E + "training.py", "    state.opt_d.zero_grad(set_to_none=True)\n", "",
           "D's gradients never zeroed", ("tests/test_training.py",)),
    Mutant(E + "training.py", "    for batch, batch_labels in chunks:\n        fake, d_stats",
           "    for batch, batch_labels in list(chunks)[-1:]:\n        fake, d_stats",
           "only one of the k D steps runs", ("tests/test_training.py",)),
    Mutant(E + "training.py", "        state.ema.update_parameters(state.G)\n", "        pass\n",
           "EMA never updated", ("tests/test_training.py",)),
    Mutant(E + "penalties.py", "return (grad.flatten(1).norm(dim=1) - 1).pow(2).mean()",
           "return grad.flatten(1).norm(dim=1).pow(2).mean()", "gradient penalty towards norm 0, not 1",
           ("tests/test_penalties.py",)),
    Mutant(E + "penalties.py", "return grad.flatten(1).pow(2).sum(1).mean()",
           "return grad.flatten(1).abs().sum(1).mean()", "R1 with the L1 norm", ("tests/test_penalties.py",)),
    Mutant(E + "data.py", "return images.to(torch.float32).div_(127.5).sub_(1.0)",
           "return images.to(torch.float32).div_(255.0).sub_(1.0)", "pixels scaled to [-1, 0]",
           ("tests/test_data.py",)),
    Mutant(E + "data.py", "return ImageData(images[order].contiguous(), labels[order], tuple(tree.classes))",
           "return ImageData(images.contiguous(), labels, tuple(tree.classes))",
           "ImageFolder left in class order", ("tests/test_data.py",)),
    Mutant(E + "models.py", "nn.init.normal_(module.weight, 0.0, 0.02)", "nn.init.normal_(module.weight, 0.0, 0.2)",
           "conv weights initialised 10x too wide", ("tests/test_models.py",)),
    Mutant(E + "models.py", "            nn.Tanh(),", "            nn.Identity(),",
           "generator without its output Tanh", ("tests/test_models.py",)),
    Mutant(E + "checkpoint.py", "    set_rng_states(payload[\"rng\"])\n", "",
           "resume without the saved random states", ("tests/test_checkpoint.py", "tests/test_training.py")),
    Mutant(E + "checkpoint.py", "    state.opt_d.load_state_dict(payload[\"opt_d\"])\n", "",
           "resume without D's optimiser state", RESUME_TESTS),
    Mutant(E + "checkpoint.py", "    state.noise.set_state(payload[\"noise\"].cpu())\n", "",
           "resume without the run's noise generator", RESUME_TESTS),
    Mutant(E + "checkpoint.py", "    if resume and is_release(payload):", "    if False:",
           "a release resumed as if it were a training checkpoint", RESUME_TESTS),
    Mutant(E + "checkpoint.py", "    if wrong:\n        raise ValueError(f\"checkpoint does not match", "    if False:\n"
           "        raise ValueError(f\"checkpoint does not match", "a checkpoint loaded into another architecture", RESUME_TESTS),
    Mutant(E + "checkpoint.py", "weights_only=True)", "weights_only=False)",
           "checkpoints unpickled with code allowed", RESUME_TESTS),
    Mutant(E + "checkpoint.py", "    if not isinstance(payload, dict) or payload.get(\"format\") != FORMAT:",
           "    if not isinstance(payload, dict):", "any torch file taken for a checkpoint", RESUME_TESTS),
    Mutant(E + "runs.py", "    if sha256(path) != entry[\"sha256\"]:", "    if False:",
           "a release whose hash does not match is used", ("tests/test_pretrained.py",)),
    Mutant(E + "lock.py", "        os.kill(int(pid), 0)", "        pass",
           "a dead writer's lock taken for a live one", ("tests/test_runs.py", "tests/test_reliability.py")),
    Mutant("dcgan_utils/course/theory.py", "return 0.5 * kl(p, m, dx) + 0.5 * kl(q, m, dx)",
           "return kl(p, m, dx) + kl(q, m, dx)", "JSD without its halves", ("tests/test_theory.py",)),
    Mutant("dcgan_utils/evaluation/metrics.py", "            self._fid.update(batch.to(self.images.device), real=False)",
           "            self._fid.update(batch.to(self.images.device), real=True)", "Frechet distance fed the fakes as real",
           ("tests/test_metrics.py",)),
    Mutant("dcgan_utils/evaluation/metrics.py", "        self._fid.reset()", "        pass",
           "one generated set's features leak into the next set's Frechet distance", ("tests/test_metrics.py",)),
    Mutant("dcgan_utils/evaluation/precision_recall.py", "kthvalue(k + 1, dim=1)", "kthvalue(k, dim=1)",
           "coverage's real balls reach the (k-1)-th neighbour, the point itself counted", ("tests/test_precision_recall.py",)),
    Mutant("dcgan_utils/evaluation/precision_recall.py", "covered += holds.any(dim=1).sum().item()",
           "covered += holds.any(dim=0).sum().item()", "coverage counts generated points, not real ones",
           ("tests/test_precision_recall.py",)),
    # the exercise checkers: a checker that passes a wrong answer, or fails a right one, misleads every learner
    Mutant(C + "exercises.py", "    if torch.equal(got, expected) if exact else torch.allclose(got, expected, atol=ATOL, "
           "rtol=RTOL, equal_nan=True):", "    if True:", "checker accepts any number", ("tests/test_exercises.py",)),
    Mutant(C + "exercises.py", "torch.equal(got, expected) if exact else torch.allclose(", "torch.allclose(",
           "a size or count passes when off by less than 1e-6", ("tests/test_exercises.py",)),
    Mutant(C + "exercises.py", "    if got.shape != expected.shape:", "    if False:",
           "checker ignores the answer's shape", ("tests/test_exercises.py",)),
    Mutant(C + "exercises.py", "    if not torch.isfinite(got).all() and torch.isfinite(expected).all():", "    if False:",
           "checker does not say an answer is not finite", ("tests/test_exercises.py",)),
    Mutant(C + "exercises.py", "        if message:\n", "        if False:\n",
           "checker never reports a wrong answer", ("tests/test_exercises.py",)),
    Mutant(C + "exercises.py", '                raise AssertionError(f"{name}: not attempted")', "                pass",
           "strict checker passes an unattempted exercise", ("tests/test_exercises.py",)),
    Mutant(C + "exercises.py", "for args in ((p, q), disjoint, same)]", "for args in ((p, q), same)]",
           "JSD checker without disjoint supports", ("tests/test_exercises.py",)),
    Mutant(C + "exercises.py", "for t in (0.0, 0.9, 1.0)]", "for t in (1.0,)]",
           "BCE checker with target 1 only", ("tests/test_exercises.py",)),
    Mutant(C + "stability_checks.py", "        if not reaches:", "        if False:",
           "R1 checker accepts a penalty that never reaches D", ("tests/test_exercises.py",)),
    Mutant(C + "stability_checks.py", "    inputs.append((doubled, _random((50, 3), 12), 1))\n", "",
           "precision checker without repeated real points", ("tests/test_exercises.py",)),
    Mutant(C + "step_exercise.py", '("labels flipped", _mistaken(flip=True),',
           '("labels flipped", _mistaken(flip=False),', "step checker's flipped-labels variant is the right step",
           ("tests/test_step_exercise.py",)),
    Mutant(C + "step_exercise.py", "for name, _, phrase, advice in ERRORS if phrase in said]",
           "for name, _, phrase, advice in ERRORS if True]",
           "step checker names the first error it knows for any error", ("tests/test_step_exercise.py",)),
    Mutant(C + "step_exercise.py", "ERRORS if _error_of(variant) == _said(err)]",
           "ERRORS if False]", "step checker no longer tells two in-place errors apart by the tensor they name",
           ("tests/test_step_exercise.py",)),
    Mutant(C + "step_exercise.py", "for name, variant, advice in MISTAKES if _same(got, _run(variant))]",
           "for name, variant, advice in MISTAKES if not _same(got, _run(variant))]",
           "step checker names a mistake whose effect differs", ("tests/test_step_exercise.py",)),
    Mutant(C + "step_exercise.py", "torch.allclose(a, b, rtol=1e-7, atol=1e-10)",
           "torch.allclose(a, b, rtol=1e-2, atol=1e-3)", "step checker's tolerance loosened to 1%",
           ("tests/test_step_exercise.py",)),
    Mutant(C + "collapse.py", "lr=config.lr if map_lr is None else map_lr)", "lr=config.lr)",
           "the z-map copies trained at the start's rate, not map_lr", ("tests/test_collapse.py",)),
    Mutant(E + "checkpoint.py", '"opt_g": {**payload["opt_g"], "state": {}}, ', "",
           "a start for the z-map copies that keeps G's Adam moments", ("tests/test_collapse.py",)),
    Mutant(E + "training.py", "        require_g_state(payload)\n", "        pass\n",
           "G trained on from a start without its Adam moments", ("tests/test_collapse.py",)),
]


def copy_tree(target: Path) -> None:
    """The working tree's files (tracked and untracked, not ignored) into target."""
    names = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT, check=True,
                           capture_output=True, text=True).stdout.split("\n")
    for name in filter(None, names):
        source = ROOT / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)


def run(mutant: Mutant, tree: Path) -> tuple[bool, float, str]:
    """Apply the mutant in tree, run its tests, undo it; (killed, seconds, last line of pytest's output)."""
    path = tree / mutant.path
    original = path.read_text()
    if original.count(mutant.old) != 1:
        raise SystemExit(f"{mutant.path}: the mutant's text is found {original.count(mutant.old)} times, not once: "
                         f"update the mutant to the code\n{mutant.old!r}")
    path.write_text(original.replace(mutant.old, mutant.new))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tree), os.environ.get("PYTHONPATH", "")])}
    start = time.perf_counter()
    try:
        done = subprocess.run([sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", "-m", "not slow",
                               *mutant.tests], cwd=tree, env=env, capture_output=True, text=True, timeout=1200)
    finally:
        path.write_text(original)
    last = (done.stdout.strip().splitlines() or [""])[-1]
    return done.returncode != 0, time.perf_counter() - start, last


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--list", action="store_true", help="list the mutants and exit")
    parser.add_argument("-k", default="", help="only mutants whose description contains this text")
    args = parser.parse_args()
    mutants = [m for m in M if args.k in m.what]
    if args.list:
        for m in mutants:
            print(f"{m.path:40s} {m.what}")
        return
    with tempfile.TemporaryDirectory() as folder:
        tree = Path(folder)
        copy_tree(tree)
        files = tuple(sorted({t for m in mutants for t in m.tests}))
        failed, seconds, last = run(Mutant(M[0].path, M[0].old, M[0].old, "no change", files), tree)
        if failed:  # every mutant would count as killed
            raise SystemExit(f"the unmutated tree fails its own tests ({last}): fix that first")
        print(f"unmutated: {', '.join(f.split('/')[-1] for f in files)} pass ({seconds:.0f} s)\n")
        killed = 0
        print(f"{'mutant':48s} {'file':34s} {'result':9s} {'s':>5s}  tests")
        for m in mutants:
            dead, seconds, last = run(m, tree)
            killed += dead
            print(f"{m.what:48s} {m.path.split('/')[-1]:34s} {'killed' if dead else 'SURVIVED':9s} {seconds:5.0f}  "
                  f"{', '.join(t.split('/')[-1] for t in m.tests)}: {last}", flush=True)
    print(f"\nmutation score: {killed}/{len(mutants)} killed ({100 * killed / len(mutants):.0f}%)")


if __name__ == "__main__":
    main()
