"""One entry point for the course's images: MNIST, CIFAR-10 or any ImageFolder tree, decoded once.

`load_dataset` decodes every image once into a uint8 tensor (N, C, H, W), resized once if another size is asked,
and keeps it on the CPU or the GPU. `ImageData.batches` then serves shuffled batches scaled to [-1, 1] by
indexing that tensor: no PIL, no workers and no per-image work in the training loop.

The data root is the `root` argument, else the environment variable DCGAN_DATA_DIR, else the checkout's `data/`
when the package runs from a checkout, else a per-user folder (`~/.local/share/dcgan-course` on Linux, its
equivalent on macOS and Windows) for a pip-installed package, where site-packages is no place for downloads.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.error import URLError

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torchvision import datasets
from torchvision.datasets.utils import check_integrity
from torchvision.transforms.v2 import functional as TF

from dcgan_utils.engine.config import DATASETS, NATIVE, SIZES

CHECKOUT = Path(__file__).resolve().parents[2]  # the repository root, when the package runs from a checkout
USER_FOLDER = "dcgan-course"  # the per-user data folder's name


def in_checkout() -> bool:
    """True when the package is imported from the course's repository (an editable install or the source tree)."""
    return (CHECKOUT / "pyproject.toml").is_file() and (CHECKOUT / "notebooks").is_dir()


def user_data_dir() -> Path:
    """Where a pip-installed package keeps downloads: the platform's per-user data folder."""
    if sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local")
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Application Support"
    else:
        base = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return base / USER_FOLDER
FOLDER_ORDER_SEED = 0  # the fixed shuffle of an ImageFolder tree's images (the same order on every machine)


class DatasetNotFoundError(FileNotFoundError):
    """A data set's files are missing and could not be downloaded."""


def data_root(root: str | os.PathLike | None = None) -> Path:
    """The data folder: the argument, else $DCGAN_DATA_DIR, else the checkout's data/, else the user data folder."""
    if root is not None:
        return Path(root).expanduser()
    env = os.environ.get("DCGAN_DATA_DIR")
    if env:
        return Path(env).expanduser()
    return CHECKOUT / "data" if in_checkout() else user_data_dir()


def to_model_range(images: torch.Tensor) -> torch.Tensor:
    """uint8 pixels in [0, 255] -> float32 in [-1, 1], the range of the generator's Tanh."""
    return images.to(torch.float32).div_(127.5).sub_(1.0)


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """Float images in [-1, 1] -> uint8 pixels in [0, 255] (values outside are clipped)."""
    return ((images.detach().float().clamp(-1, 1) + 1) * 127.5).round_().to(torch.uint8)


@dataclass
class ImageData:
    """Decoded images (uint8, N x C x H x W) with integer labels, on one device."""

    images: torch.Tensor  # uint8 (N, C, H, W)
    labels: torch.Tensor  # int64 (N,)
    classes: tuple[str, ...]  # class names, indexed by label

    def __len__(self) -> int:
        return self.images.shape[0]

    @property
    def channels(self) -> int:
        return self.images.shape[1]

    @property
    def image_size(self) -> int:
        return self.images.shape[-1]

    @property
    def device(self) -> torch.device:
        return self.images.device

    def to(self, device: str | torch.device) -> ImageData:
        """The same data on another device (the whole set moves at once)."""
        return ImageData(self.images.to(device), self.labels.to(device), self.classes)

    def first(self, n: int) -> ImageData:
        """The first n images with their labels: a fair sample of the classes in load_dataset's order (MNIST's own; a
        folder's shuffled once with a fixed seed)."""
        return ImageData(self.images[:n], self.labels[:n], self.classes)

    def num_batches(self, batch_size: int, drop_last: bool = True) -> int:
        """How many batches one pass over the data yields."""
        return len(self) // batch_size if drop_last else -(-len(self) // batch_size)

    def batches(
        self, batch_size: int, generator: torch.Generator | None = None, drop_last: bool = True, start: int = 0
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """One shuffled pass: (images in [-1, 1] float32, labels) on the data's device, from batch `start` on."""
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        if drop_last and batch_size > len(self):
            raise ValueError(f"batch_size {batch_size} is larger than the data set ({len(self)} images): lower it")
        order = torch.randperm(len(self), generator=generator).to(self.device)
        for first in range(start * batch_size, self.num_batches(batch_size, drop_last) * batch_size, batch_size):
            index = order[first : first + batch_size]
            yield to_model_range(self.images.index_select(0, index)), self.labels.index_select(0, index)


def load_dataset(
    name: str,
    root: str | os.PathLike | None = None,
    *,
    train: bool = True,
    image_size: int | None = None,
    channels: int | None = None,
    device: str | torch.device = "cpu",
    download: bool = True,
) -> ImageData:
    """Load "mnist", "cifar10" (torchvision, downloaded if missing) or "folder" (an ImageFolder tree at `root`)."""
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}: choose one of {', '.join(DATASETS)}")
    if image_size is not None and image_size not in SIZES:
        raise ValueError(f"image_size must be one of {SIZES} (the sizes the models support), got {image_size!r}")
    if name == "folder":
        if root is None:
            raise ValueError("load_dataset('folder') needs root=<folder with one sub-folder of images per class>")
        data = _load_folder(Path(root).expanduser(), image_size, channels or 3)
    else:
        native_channels = NATIVE[name][0]
        if channels not in (None, native_channels):
            raise ValueError(f"{name} has {native_channels} channel(s); channels={channels} is only for 'folder'")
        data = _load_torchvision(name, data_root(root), train, download)
        if image_size is not None and image_size != data.image_size:
            data.images = _resize(data.images, image_size)
    return data.to(device)


def _resize(images: torch.Tensor, size: int) -> torch.Tensor:
    """Resize a uint8 batch (N, C, H, W) to (N, C, size, size) once, antialiased, in chunks to bound memory."""
    chunks = [TF.resize(chunk, [size, size], antialias=True) for chunk in images.split(4096)]
    return torch.cat(chunks)


def _expected_files(name: str) -> tuple[Path, list[str], str]:
    """Folder (relative to the root), file names with md5 and download address of a torchvision data set."""
    if name == "mnist":
        files = [f"{f} (md5 {md5})" for f, md5 in datasets.MNIST.resources]
        return Path("MNIST") / "raw", files, " or ".join(datasets.MNIST.mirrors)
    cifar = datasets.CIFAR10
    return Path("."), [f"{cifar.filename} (md5 {cifar.tgz_md5})"], cifar.url


def _damaged(path: Path, md5: str) -> bool:
    """True when a file exists but does not match its published md5."""
    return path.exists() and not check_integrity(str(path), md5)


def _load_torchvision(name: str, root: Path, train: bool, download: bool) -> ImageData:
    """Decode MNIST or CIFAR-10 through torchvision into uint8 tensors."""
    cls = datasets.MNIST if name == "mnist" else datasets.CIFAR10
    try:
        ds = cls(str(root), train=train, download=download)
    except (RuntimeError, URLError, OSError) as err:
        folder, files, url = _expected_files(name)
        how = "could not be downloaded" if download else "download=False was given"
        reason = next(iter(str(err).splitlines()), type(err).__name__)
        damaged = [f.split()[0] for f in files if _damaged(root / folder / f.split()[0], f.split()[-1][:-1])]
        if damaged:
            raise DatasetNotFoundError(
                f"{name}: files in {root / folder} fail their md5 check (truncated or altered): {', '.join(damaged)}.\n"
                f"Expected: {', '.join(files)}.\nDelete them and download again (from {url}), or copy intact ones there."
            ) from err
        raise DatasetNotFoundError(
            f"{name}: files not found in {root / folder} and {how} ({reason}).\n"
            f"Expected: {', '.join(files)}.\n"
            f"Get them from {url} and put them in {root / folder}, or point DCGAN_DATA_DIR (or root=) at a folder "
            f"that has them; torchvision then checks and extracts them without a network."
        ) from err
    if name == "mnist":
        images = ds.data[:, None]  # (N, 1, 28, 28) uint8
        labels = ds.targets
    else:
        images = torch.from_numpy(ds.data).permute(0, 3, 1, 2).contiguous()  # (N, 32, 32, 3) -> (N, 3, 32, 32)
        labels = torch.as_tensor(ds.targets)
    return ImageData(images, labels.to(torch.int64), tuple(ds.classes))


def _load_folder(root: Path, image_size: int | None, channels: int) -> ImageData:
    """Decode every image of an ImageFolder tree once (RGB or grayscale), resizing to image_size if given."""
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 (grayscale) or 3 (RGB), got {channels!r}")
    if not root.is_dir():
        raise DatasetNotFoundError(f"folder: {root} is not a folder; give root=<folder with one sub-folder per class>")
    try:
        tree = datasets.ImageFolder(str(root))  # lists (path, class index); decodes nothing yet
    except FileNotFoundError as err:
        raise DatasetNotFoundError(
            f"folder: {root} must hold one sub-folder per class, each with at least one image "
            f"({', '.join(datasets.folder.IMG_EXTENSIONS)}): {err}"
        ) from err
    mode = "RGB" if channels == 3 else "L"
    pixels, sizes = [], set()
    for path, _ in tree.samples:
        try:
            with Image.open(path) as img:
                img = img.convert(mode)  # grayscale and RGB files mixed become one mode
                if image_size is not None and img.size != (image_size, image_size):
                    img = _center_square(img, image_size)
        except (UnidentifiedImageError, OSError) as err:
            raise ValueError(f"folder: cannot decode {path} as an image ({err}); remove or replace that file") from err
        sizes.add(img.size)
        pixels.append(np.asarray(img).reshape(img.size[1], img.size[0], channels))
    if len(sizes) > 1:
        raise ValueError(
            f"folder: images in {root} have different sizes ({sorted(sizes)[:4]}...): pass image_size= one of {SIZES} "
            f"to resize them all once"
        )
    images = torch.from_numpy(np.stack(pixels)).permute(0, 3, 1, 2).contiguous()  # (N, C, H, W) uint8
    if image_size is None and (images.shape[-1] not in SIZES or images.shape[-2] != images.shape[-1]):
        raise ValueError(f"folder: images are {tuple(images.shape[-2:])}; pass image_size= one of {SIZES}")
    # ImageFolder lists class by class: one seeded shuffle here makes every prefix (data[:n]) a fair sample
    order = torch.randperm(len(images), generator=torch.Generator().manual_seed(FOLDER_ORDER_SEED))
    labels = torch.tensor(tree.targets, dtype=torch.int64)
    return ImageData(images[order].contiguous(), labels[order], tuple(tree.classes))


def _center_square(img: Image.Image, size: int) -> Image.Image:
    """Scale the shorter side to `size`, then crop the centre square."""
    scale = size / min(img.size)
    w, h = max(size, round(img.size[0] * scale)), max(size, round(img.size[1] * scale))
    img = img.resize((w, h), Image.Resampling.BICUBIC)
    left, top = (w - size) // 2, (h - size) // 2
    return img.crop((left, top, left + size, top + size))


def dataset_status(root: str | os.PathLike | None = None) -> dict[str, tuple[Path, bool]]:
    """For each torchvision data set: the folder it is looked for in, and whether its files are there."""
    base = data_root(root)
    mnist = base / "MNIST" / "raw"
    mnist_ok = all((mnist / f).exists() or (mnist / f.removesuffix(".gz")).exists() for f, _ in datasets.MNIST.resources)
    cifar = base / datasets.CIFAR10.base_folder
    cifar_ok = cifar.is_dir() or (base / datasets.CIFAR10.filename).exists()
    return {"mnist": (mnist, mnist_ok), "cifar10": (cifar, cifar_ok)}


def load_cifar10(root: str | os.PathLike | None = None, subset: str | os.PathLike | None = None,
                 image_size: int = 32, device: str | torch.device = "cpu") -> tuple[ImageData, ImageData, str]:
    """CIFAR-10 train and test sets and where they came from: torchvision's files when present (or downloadable),
    else an ImageFolder copy with train/ and test/ (default <data root>/cifar10-subset, the course's offline subset)."""
    base = data_root(root)
    folder = Path(subset) if subset else base / "cifar10-subset"
    if not dataset_status(root)["cifar10"][1] and (folder / "train").is_dir():
        train = load_dataset("folder", folder / "train", image_size=image_size, device=device)
        test = load_dataset("folder", folder / "test", image_size=image_size, device=device)
        where = f"{folder.name}/ in the data root" if folder.parent == base else folder.name
        return train, test, f"the ImageFolder copy {where} ({len(train):,} training images)"
    train = load_dataset("cifar10", root, image_size=image_size, device=device)  # downloads when online
    test = load_dataset("cifar10", root, train=False, image_size=image_size, device=device)
    return train, test, f"torchvision's CIFAR-10 in the data root ({len(train):,} training images)"
