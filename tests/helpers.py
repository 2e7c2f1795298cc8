"""Small builders the tests share: random image data, a tiny training config, an ImageFolder tree of PNG files, a
small notebook."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from dcgan_utils.engine.config import TrainConfig
from dcgan_utils.engine.data import ImageData


def tiny_data(n: int = 256, channels: int = 1, size: int = 28) -> ImageData:
    """Random images and labels: enough to exercise the loop without real data."""
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (n, channels, size, size), dtype=torch.uint8, generator=g)
    return ImageData(images, torch.randint(0, 10, (n,), generator=g), tuple("0123456789"))


def tiny_config(**changes) -> TrainConfig:
    """A TrainConfig small enough for a CPU test, with the given fields changed."""
    base = dict(g_width=8, d_width=8, latent_dim=16, batch_size=32, epochs=2, sample_every=3, checkpoint_every=4,
                num_samples=8, device="cpu", ema=0.9, seed=3)
    return TrainConfig(**{**base, **changes})


def image_folder(root: Path, sizes=((32, 32),), modes=("RGB",), classes=("a", "b"), repeat: int = 1) -> dict:
    """Write an ImageFolder tree of random PNGs: per class, `repeat` images of every (mode, size); {path: image}."""
    rng = np.random.default_rng(0)
    written = {}
    for cls in classes:
        (root / cls).mkdir(parents=True, exist_ok=True)
        combos = [(m, s) for _ in range(repeat) for m in modes for s in sizes]
        for i, (mode, (w, h)) in enumerate(combos):
            shape = (h, w, 3) if mode == "RGB" else (h, w)
            img = Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8), mode)
            img.save(root / cls / f"{i}.png")
            written[root / cls / f"{i}.png"] = img
    return written


def small_notebook(path: Path, code: str, kernel: str = "python3", heading: str = "") -> Path:
    """Write a notebook with a `parameters` cell (SMOKE) and one code cell, after a markdown `heading` cell when one is
    given; the kernelspec names `kernel`."""
    import nbformat  # here, not at the top: the GPU check's machine runs the CUDA tests without it

    cells = [nbformat.v4.new_code_cell("SMOKE = False", metadata={"tags": ["parameters"]}),
             nbformat.v4.new_code_cell(code)]
    if heading:
        cells.insert(0, nbformat.v4.new_markdown_cell(heading))
    metadata = {"kernelspec": {"name": kernel, "display_name": kernel, "language": "python"}}
    nbformat.write(nbformat.v4.new_notebook(cells=cells, metadata=metadata), path)
    return path


NEEDS = {"00_setup": ("mnist_root",), "04_train_mnist": ("mnist_root",),  # the data (the classifier ships)
         "05_train_cifar10": ("cifar_data", "mnist_root"),  # 05's collapse rerun: MNIST
         "06_stabilising_training": ("mnist_root",)}


def data_for(notebook: Path, request) -> None:
    """Skip (or, with DCGAN_REQUIRE_DATA=1, fail) like every other data test when the notebook's data are missing."""
    for fixture in NEEDS.get(notebook.stem, ()):
        request.getfixturevalue(fixture)
