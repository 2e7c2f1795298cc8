"""TrainConfig: every knob of a training run, checked at construction; the vocabularies the engine accepts.

A leaf module: it imports nothing else of the package (building a TrainConfig needs no torch or torchvision), and
models, data and losses take their accepted values (SIZES, DATASETS, LOSS_KINDS) from here.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass

SIZES = (28, 32, 64)  # image sides the models support
DATASETS = ("mnist", "cifar10", "folder")
NATIVE = {"mnist": (1, 28), "cifar10": (3, 32)}  # channels and side of the torchvision data sets
LOSS_KINDS = ("minimax", "non_saturating", "least_squares", "hinge", "wasserstein")
BCE_KINDS = ("minimax", "non_saturating")  # kinds whose D reads its output as a probability
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
D_NORMS = ("batch", "layer", "spectral", "none")  # the discriminator's normalisation
# the fields a checkpoint fixes: resuming with other values is refused
ARCHITECTURE = ("dataset", "image_size", "channels", "latent_dim", "g_width", "d_width", "num_classes", "d_norm",
                "minibatch_std", "extra_layer")
WHERE = ("device", "data_dir", "compile")  # where and how a run executes, not what it learns (left out of run_key)


def knob(default, help: str):
    """A field with its help text (the CLI's --help reads it from the field's metadata)."""
    return dataclasses.field(default=default, metadata={"help": help})


@dataclass
class TrainConfig:
    """Settings of one GAN training run; invalid values raise ValueError naming the field."""

    dataset: str = knob("mnist", 'data source: "mnist", "cifar10" or "folder"')
    data_dir: str | None = knob(None, 'data root (for "folder": the ImageFolder tree); None: $DCGAN_DATA_DIR or data/')
    image_size: int = knob(28, "image side the models are built for: 28, 32 or 64")
    channels: int = knob(0, "image channels; 0 means the dataset's own (MNIST 1, otherwise 3)")
    latent_dim: int = knob(100, "length of the noise vector z (Radford et al.: 100)")
    g_width: int = knob(32, "generator feature maps in its last hidden layer (PyTorch's examples/dcgan: 64; Radford "
                            "et al.'s 64x64 G, 1024 -> 128 channels: 128; 32 is half the compute on a CPU)")
    d_width: int = knob(32, "discriminator feature maps in its first layer (PyTorch's examples/dcgan: 64; Radford et "
                            "al.'s code: 128; 32 as for G)")
    num_classes: int = knob(0, "0: unconditional; n > 0: G and D also see the class label (conditional DCGAN)")
    loss: str = knob("non_saturating", "minimax, non_saturating, least_squares, hinge or wasserstein")
    real_label: float = knob(1.0, "target for real images in D's BCE; 0.9 is one-sided label smoothing")
    d_norm: str = knob("batch", 'D\'s normalisation: "batch" (Radford et al.), "layer" (WGAN-GP\'s advice), "spectral" '
                                '(spectral norm on every convolution, Miyato et al. 2018) or "none"')
    minibatch_std: bool = knob(False, "give D one more feature map before its last layer: the spread of its features "
                                      "over groups of 4 images (Karras et al. 2018), so it can see a lack of variety")
    extra_layer: bool = knob(False, "one more 3x3 stride-1 convolution in G and in D where they hold width maps "
                                    "(14x14 for MNIST); not in the DCGAN paper, as in the n_extra_layers option of "
                                    "the WGAN authors' DCGAN code (Arjovsky et al. 2017)")
    gradient_penalty: float = knob(0.0, "weight lambda of WGAN-GP's gradient penalty on interpolates (Gulrajani et "
                                        "al.: 10); 0: off")
    r1_penalty: float = knob(0.0, "weight gamma of the R1 penalty gamma/2 E||grad D(x)||^2 on real images "
                                  "(Mescheder et al. 2018); 0: off")
    top_k: float = knob(1.0, "G learns from the k fakes D scores highest: k starts at the whole batch and shrinks "
                             "by 0.99 per epoch to this share of it (top-k training, Sinha et al. 2020); 1: off")
    batch_size: int = knob(128, "images per generator step (Radford et al.: 128)")
    d_steps: int = knob(1, "discriminator steps per generator step, each on its own batch (Algorithm 1's k)")
    g_steps: int = knob(1, "generator updates per training step, each on fresh noise (Algorithm 1: 1; more lets G "
                           "chase a D that lags behind, a way to provoke mode collapse)")
    lr: float = knob(2e-4, "Adam step size of the generator (Radford et al.: 2e-4)")
    d_lr: float = knob(2e-4, "Adam step size of the discriminator (Radford et al.: same as G); 0 freezes D, so G "
                             "trains against a fixed D, what Goodfellow et al. 2014 warn leads to collapse")
    beta1: float = knob(0.5, "Adam momentum; Radford et al. lower it from 0.9 to 0.5 for stability")
    beta2: float = knob(0.999, "Adam second-moment decay (Adam's default, kept by PyTorch's DCGAN example and by "
                               "Radford et al.'s code; the paper does not state it)")
    lr_decay: bool = knob(False, "decay both learning rates linearly to 0 over the run: over max_minutes of "
                                 "training time when set, else over its epochs or max_steps")
    ema: float = knob(0.0, "decay of a moving average of G's weights used for samples; 0 turns it off")
    epochs: int = knob(20, "passes over the training set")
    max_steps: int = knob(0, "stop after this many generator steps in total; 0 means no limit")
    max_minutes: float = knob(5.0, "stop after this much training time of the run (kept across resumes): a default "
                                   "run takes about 5 minutes on any machine, or less when its epochs end first; "
                                   "0: no limit (a run of exactly its epochs or max_steps)")
    sample_every: int = knob(200, "steps between image grids from the fixed noise")
    checkpoint_every: int = knob(1000, "steps between checkpoints (one is also written at the end)")
    num_samples: int = knob(64, "images in the fixed-noise grid")
    device: str = knob("auto", '"auto" (cuda, then mps, then cpu), "cpu", "cuda", "cuda:N" or "mps"')
    precision: str = knob("auto", '"auto" (what the hardware does natively), "fp32", "bf16" or "fp16" (CUDA)')
    channels_last: bool = knob(True, "NHWC memory layout, faster convolutions on CUDA and on recent CPUs")
    compile: bool = knob(False, "torch.compile both models (CUDA, or a CPU with a C++ compiler; slow start)")
    seed: int = knob(0, "seeds Python, NumPy, PyTorch, the noise and the data order")

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):  # max_minutes=0 and 0.0 are one setting: one run key, one run folder
            value = getattr(self, f.name)
            if f.type == "float" and isinstance(value, int) and not isinstance(value, bool):
                setattr(self, f.name, float(value))
        def check(ok: bool, field: str, rule: str) -> None:
            if not ok:
                raise ValueError(f"TrainConfig.{field} {rule}, got {getattr(self, field)!r}")

        check(self.dataset in DATASETS, "dataset", f"must be one of {DATASETS}")
        check(self.image_size in SIZES, "image_size", f"must be one of {SIZES} (the sizes the models support)")
        if self.channels == 0:
            self.channels = NATIVE.get(self.dataset, (3,))[0]
        check(self.channels in (1, 3), "channels", "must be 1 or 3 (0 picks the dataset's own)")
        for name in ("latent_dim", "g_width", "d_width", "batch_size", "d_steps", "g_steps",
                     "sample_every", "checkpoint_every",
                     "num_samples"):
            check(_is_int(getattr(self, name)) and getattr(self, name) >= 1, name, "must be a positive integer")
        for name in ("epochs", "max_steps", "seed", "num_classes"):
            check(_is_int(getattr(self, name)) and getattr(self, name) >= 0, name, "must be an integer >= 0")
        check(self.loss in LOSS_KINDS, "loss", f"must be one of {LOSS_KINDS}")
        check(0 < self.real_label <= 1, "real_label", "must be in (0, 1]")
        check(self.real_label == 1 or self.loss in BCE_KINDS, "real_label", f"< 1 needs a BCE loss {BCE_KINDS}")
        check(_is_num(self.lr) and self.lr > 0, "lr", "must be a number > 0")
        check(_is_num(self.d_lr) and self.d_lr >= 0, "d_lr", "must be a number >= 0 (0 freezes D)")
        for name in ("beta1", "beta2"):
            check(_is_num(getattr(self, name)) and 0 <= getattr(self, name) < 1, name, "must be in [0, 1)")
        check(_is_num(self.top_k) and 0 < self.top_k <= 1, "top_k", "must be in (0, 1] (1: off)")
        check(_is_num(self.ema) and 0 <= self.ema < 1, "ema", "must be in [0, 1) (0 turns it off)")
        check(_is_num(self.max_minutes) and self.max_minutes >= 0, "max_minutes", "must be >= 0 (0: no limit)")
        check(self.epochs > 0 or self.max_steps > 0 or self.max_minutes > 0, "epochs",
              "must be > 0 unless max_steps or max_minutes is set")
        check(self.precision in PRECISIONS, "precision", f"must be one of {PRECISIONS}")
        check(self.d_norm in D_NORMS, "d_norm", f"must be one of {D_NORMS}")
        for name in ("gradient_penalty", "r1_penalty"):
            check(_is_num(getattr(self, name)) and getattr(self, name) >= 0, name, "must be >= 0 (0: off)")
        instead = {"gradient_penalty": "d_norm='layer' (WGAN-GP's critic, Gulrajani et al. 2017)",
                   "r1_penalty": "d_norm='none' (notebook 06's R1 run; with 'layer' the DCGAN recipe drew no digits "
                                 "in a trial recorded in benchmarks/README.md)"}
        for name in ("gradient_penalty", "r1_penalty"):  # a gradient of D(x_i) with respect to x_i alone
            check(getattr(self, name) == 0 or self.d_norm != "batch", name,
                  f"is a penalty per image, which BatchNorm's mixing of the batch breaks: set {instead[name]} with it")
            check(getattr(self, name) == 0 or not self.minibatch_std, name,
                  "is a penalty per image, which minibatch_std's mixing of the batch breaks: use one or the other")
        check(not self.minibatch_std or self.batch_size < 4 or self.batch_size % 4 == 0, "batch_size",
              "must be a multiple of 4 with minibatch_std (its groups of 4 images)")
        check(self.loss != "wasserstein" or self.gradient_penalty > 0, "loss",
              "'wasserstein' needs a Lipschitz critic, which an unconstrained D is not (its scores grow without "
              "bound): use WGAN-GP, gradient_penalty=10 with d_norm='layer', d_steps=5, lr=d_lr=1e-4, beta1=0, "
              "beta2=0.9 (Gulrajani et al. 2017), or the hinge loss")
        check(self.dataset != "folder" or bool(self.data_dir), "data_dir", "must name the image folder for 'folder'")

    def to_dict(self) -> dict:
        """Plain dict (for checkpoints and JSON)."""
        return dataclasses.asdict(self)

    def budget_spent(self, train_seconds: float) -> bool:
        """Whether a run that has trained for train_seconds has used up max_minutes (never, when it is 0)."""
        return bool(self.max_minutes) and train_seconds >= 60 * self.max_minutes

    def run_key(self) -> str:
        """<dataset>-<12 hex digits of the settings that differ from their defaults>; device, data folder and
        compile aside. Equal settings give equal keys on any machine, and a field added later, left at its default,
        leaves every existing key (and so every shipped pretrained run) as it was. A changed default changes the key
        of every run that set the old value (max_minutes 0 -> 5 on 2026-12-01: the shipped runs were re-exported)."""
        settings = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
                    if f.name not in WHERE and getattr(self, f.name) != f.default}
        settings["dataset"] = self.dataset
        return f"{self.dataset}-{hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:12]}"

    @classmethod
    def from_dict(cls, values: dict) -> TrainConfig:
        """Rebuild from to_dict(); unknown keys are an error, missing ones (fields added later) take defaults."""
        unknown = set(values) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise ValueError(f"unknown TrainConfig field(s) {sorted(unknown)}")
        return cls(**values)


def field_help(name: str) -> str:
    """The help text of a TrainConfig field."""
    return next(f.metadata["help"] for f in dataclasses.fields(TrainConfig) if f.name == name)


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_num(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)
