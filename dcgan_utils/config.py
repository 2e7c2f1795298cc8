"""TrainConfig: every knob of a training run, with the DCGAN paper's defaults, checked at construction."""

from __future__ import annotations

import dataclasses
import hashlib
import inspect
import json
import re
from dataclasses import dataclass

from dcgan_utils.data import DATASETS, NATIVE
from dcgan_utils.losses import BCE_KINDS, KINDS
from dcgan_utils.models import SIZES

PRECISIONS = ("auto", "fp32", "bf16", "fp16")
# the fields a checkpoint fixes: resuming with other values is refused
ARCHITECTURE = ("dataset", "image_size", "channels", "latent_dim", "g_width", "d_width", "num_classes")
WHERE = ("device", "data_dir", "compile")  # where and how a run executes, not what it learns (left out of run_key)


@dataclass
class TrainConfig:
    """Settings of one GAN training run; invalid values raise ValueError naming the field."""

    dataset: str = "mnist"  # data source: "mnist", "cifar10" or "folder"
    data_dir: str | None = None  # data root (for "folder": the ImageFolder tree); None: $DCGAN_DATA_DIR or data/
    image_size: int = 28  # image side the models are built for: 28, 32 or 64
    channels: int = 0  # image channels; 0 means the dataset's own (MNIST 1, otherwise 3)
    latent_dim: int = 100  # length of the noise vector z (paper: 100)
    g_width: int = 32  # generator feature maps in its last hidden layer (paper: 64; 32 learns MNIST faster on a CPU)
    d_width: int = 32  # discriminator feature maps in its first layer (paper: 64; 32 as for G)
    num_classes: int = 0  # 0: unconditional; n > 0: G and D also see the class label (conditional DCGAN; MNIST 10)
    loss: str = "non_saturating"  # minimax, non_saturating, least_squares, hinge or wasserstein
    real_label: float = 1.0  # target for real images in D's BCE; 0.9 is one-sided label smoothing
    batch_size: int = 128  # images per step (paper: 128)
    lr: float = 2e-4  # Adam step size of the generator (paper: 2e-4)
    d_lr: float = 2e-4  # Adam step size of the discriminator (paper: same as G)
    beta1: float = 0.5  # Adam momentum; the paper lowers it from 0.9 to 0.5 for stability
    beta2: float = 0.999  # Adam second-moment decay (paper: PyTorch's default)
    ema: float = 0.0  # decay of an exponential moving average of G's weights used for samples; 0 turns it off
    epochs: int = 20  # passes over the training set (20: about 5 minutes for MNIST 28x28 on a 2-core CPU in bf16)
    max_steps: int = 0  # stop after this many steps in total; 0 means no limit
    max_minutes: float = 0.0  # stop after this much wall-clock training time; 0 means no limit
    sample_every: int = 200  # steps between image grids from the fixed noise
    checkpoint_every: int = 1000  # steps between checkpoints (one is also written at the end)
    num_samples: int = 64  # images in the fixed-noise grid
    device: str = "auto"  # "auto" (cuda, then mps, then cpu), "cpu", "cuda", "cuda:N" or "mps"
    precision: str = "auto"  # "auto" (fastest stable on this hardware), "fp32", "bf16" or "fp16" (CUDA only)
    channels_last: bool = True  # NHWC memory layout, faster convolutions on CUDA and on recent CPUs
    compile: bool = False  # torch.compile both models (CUDA, or a CPU with a C++ compiler; slow start, faster steps)
    seed: int = 0  # seeds Python, NumPy, PyTorch, the noise and the data order

    def __post_init__(self) -> None:
        def check(ok: bool, field: str, rule: str) -> None:
            if not ok:
                raise ValueError(f"TrainConfig.{field} {rule}, got {getattr(self, field)!r}")

        check(self.dataset in DATASETS, "dataset", f"must be one of {DATASETS}")
        check(self.image_size in SIZES, "image_size", f"must be one of {SIZES} (the sizes the models support)")
        if self.channels == 0:
            self.channels = NATIVE.get(self.dataset, (3,))[0]
        check(self.channels in (1, 3), "channels", "must be 1 or 3 (0 picks the dataset's own)")
        for name in ("latent_dim", "g_width", "d_width", "batch_size", "sample_every", "checkpoint_every", "num_samples"):
            check(_is_int(getattr(self, name)) and getattr(self, name) >= 1, name, "must be a positive integer")
        for name in ("epochs", "max_steps", "seed", "num_classes"):
            check(_is_int(getattr(self, name)) and getattr(self, name) >= 0, name, "must be an integer >= 0")
        check(self.loss in KINDS, "loss", f"must be one of {KINDS}")
        check(0 < self.real_label <= 1, "real_label", "must be in (0, 1]")
        check(self.real_label == 1 or self.loss in BCE_KINDS, "real_label", f"< 1 needs a BCE loss {BCE_KINDS}")
        for name in ("lr", "d_lr"):
            check(_is_num(getattr(self, name)) and getattr(self, name) > 0, name, "must be a number > 0")
        for name in ("beta1", "beta2"):
            check(_is_num(getattr(self, name)) and 0 <= getattr(self, name) < 1, name, "must be in [0, 1)")
        check(_is_num(self.ema) and 0 <= self.ema < 1, "ema", "must be in [0, 1) (0 turns it off)")
        check(_is_num(self.max_minutes) and self.max_minutes >= 0, "max_minutes", "must be >= 0 (0: no limit)")
        check(self.epochs > 0 or self.max_steps > 0, "epochs", "must be > 0 unless max_steps is set")
        check(self.precision in PRECISIONS, "precision", f"must be one of {PRECISIONS}")
        check(self.dataset != "folder" or bool(self.data_dir), "data_dir", "must name the image folder for 'folder'")

    def to_dict(self) -> dict:
        """Plain dict (for checkpoints and JSON)."""
        return dataclasses.asdict(self)

    def run_key(self) -> str:
        """<dataset>-<12 hex digits of the settings>: equal settings (device aside) give equal keys, on any machine."""
        settings = {k: v for k, v in self.to_dict().items() if k not in WHERE}
        return f"{self.dataset}-{hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:12]}"

    @classmethod
    def from_dict(cls, values: dict) -> TrainConfig:
        """Rebuild from to_dict(); unknown keys are an error."""
        unknown = set(values) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise ValueError(f"unknown TrainConfig field(s) {sorted(unknown)}")
        return cls(**values)


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_num(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def field_help() -> dict[str, str]:
    """Each field's comment in the source above, used as its --help text (one place documents a field)."""
    source = inspect.getsource(TrainConfig)
    return dict(re.findall(r"^    (\w+): [^=]+=[^#\n]*#\s*(.+)$", source, flags=re.M))
