"""DCGAN generator and discriminator (Radford et al., 2015) for 28x28, 32x32 and 64x64 images.

The rules of the paper, and where they live below:
- no pooling: G upsamples with fractionally-strided (transposed) convolutions, D downsamples with strided ones;
- no hidden fully-connected layers: z enters G as a 1x1 "image", D ends with a convolution to one logit;
- BatchNorm everywhere except G's output layer and D's input layer;
- ReLU in G with Tanh on the output (images live in [-1, 1]); LeakyReLU(0.2) in D.
Not the paper's: D returns raw logits (N,) (the paper's D ends in a sigmoid); the sigmoid lives inside the loss, which
keeps it numerically stable.

The numbers are PyTorch's examples/dcgan (main.py, and its DCGAN tutorial), not the paper's: 4x4 kernels with stride
2 and padding 1, z projected by a transposed convolution, width 64 by default. The paper's released code
(Newmu/dcgan_code) uses 5x5 kernels with stride 2 and padding 2 and a generator of 1024 -> 512 -> 256 -> 128 channels
for 64x64 images (its Figure 1), which is width 128 here (64x64 G: 8w -> 4w -> 2w -> w).

Conditional DCGAN (num_classes > 0, Mirza and Osindero's conditioning on DCGAN layers): G reads [z, one_hot(y)] as
its 1x1 input, D reads the image with num_classes extra planes, plane y all ones and the others zero. Both then
know which digit is meant, and G is rewarded only for images D believes are real *of that class*.

Shapes, with w = width, C = channels and s0 the first spatial side (7 for 28x28, 4 otherwise):

    size | G: z -> ...                                   | D: image -> ...
    28   | (w*2, 7)  -> (w, 14)  -> (C, 28)               | (w, 14) -> (2w, 7) -> logit
    32   | (w*4, 4)  -> (2w, 8)  -> (w, 16) -> (C, 32)    | (w, 16) -> (2w, 8) -> (4w, 4) -> logit
    64   | (w*8, 4)  -> (4w, 8)  -> (2w, 16) -> (w, 32) -> (C, 64) | (w, 32) -> ... -> (8w, 4) -> logit

extra_layer=True (not in the DCGAN paper; the n_extra_layers option of the DCGAN code Arjovsky et al. released with
WGAN, 2017, adds such layers at the same places) adds one 3x3 stride-1 convolution, with its normalisation and
activation, where G and D hold w maps (G's last hidden side, D's first: 14x14 for MNIST), keeping every shape above.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from dcgan_utils.engine.config import D_NORMS, SIZES

CHANNELS = (1, 3)  # grayscale or RGB


def _plan(image_size: int, channels: int, width: int) -> tuple[int, list[int]]:
    """First spatial side s0 and the hidden channel counts from the smallest feature map to the largest."""
    if image_size not in SIZES:
        raise ValueError(f"image_size must be one of {SIZES}, got {image_size!r}")
    if channels not in CHANNELS:
        raise ValueError(f"channels must be one of {CHANNELS} (grayscale or RGB), got {channels!r}")
    if not isinstance(width, int) or width < 1:
        raise ValueError(f"width must be a positive integer (PyTorch's DCGAN example: 64), got {width!r}")
    s0 = 7 if image_size == 28 else 4
    n_up = (image_size // s0).bit_length() - 1  # number of 2x upsamplings from s0 to image_size
    return s0, [width * 2 ** i for i in reversed(range(n_up))]  # e.g. 64x64: [8w, 4w, 2w, w]


class Generator(nn.Module):
    """Map noise z of shape (N, latent_dim) to images (N, channels, image_size, image_size) in [-1, 1]."""

    def __init__(self, image_size: int = 64, channels: int = 3, latent_dim: int = 100, width: int = 64,
                 num_classes: int = 0, extra_layer: bool = False):
        super().__init__()
        if not isinstance(latent_dim, int) or latent_dim < 1:
            raise ValueError(f"latent_dim must be a positive integer (the paper uses 100), got {latent_dim!r}")
        s0, hidden = _plan(image_size, channels, width)
        self.num_classes = _check_classes(num_classes)
        self.image_size, self.channels, self.latent_dim, self.width = image_size, channels, latent_dim, width
        layers: list[nn.Module] = [
            # project z (with the one-hot label when conditional), seen as a 1x1 image, to the smallest feature map
            nn.ConvTranspose2d(latent_dim + num_classes, hidden[0], s0, 1, 0, bias=False),  # (N, hidden[0], s0, s0)
            nn.BatchNorm2d(hidden[0]),  # (N, hidden[0], s0, s0)
            nn.ReLU(inplace=True),  # (N, hidden[0], s0, s0)
        ]
        for c_in, c_out in zip(hidden, hidden[1:]):
            layers += [
                nn.ConvTranspose2d(c_in, c_out, 4, 2, 1, bias=False),  # (N, c_out, 2s, 2s): doubles the side
                nn.BatchNorm2d(c_out),  # (N, c_out, 2s, 2s)
                nn.ReLU(inplace=True),  # (N, c_out, 2s, 2s)
            ]
        if extra_layer:  # one more layer at G's last hidden side, shape kept
            layers += [
                nn.Conv2d(hidden[-1], hidden[-1], 3, 1, 1, bias=False),  # (N, w, size/2, size/2)
                nn.BatchNorm2d(hidden[-1]),  # (N, w, size/2, size/2)
                nn.ReLU(inplace=True),  # (N, w, size/2, size/2)
            ]
        layers += [
            nn.ConvTranspose2d(hidden[-1], channels, 4, 2, 1, bias=False),  # (N, C, size, size): no BatchNorm here
            nn.Tanh(),  # (N, C, size, size), values in [-1, 1] like the scaled data
        ]
        self.net = nn.Sequential(*layers)
        self.apply(init_weights)

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """Generate images from noise (N, latent_dim) or (N, latent_dim, 1, 1), and class labels (N,) if conditional."""
        if z.dim() == 2:
            z = z[:, :, None, None]  # (N, latent_dim, 1, 1)
        if z.dim() != 4 or z.shape[1:] != (self.latent_dim, 1, 1):
            raise ValueError(
                f"Generator expects noise of shape (N, {self.latent_dim}) or (N, {self.latent_dim}, 1, 1), "
                f"got {tuple(z.shape)}: draw it with torch.randn(N, {self.latent_dim}), not an image"
            )
        if self.num_classes:
            onehot = _one_hot(labels, self.num_classes, z, "Generator")  # (N, num_classes)
            z = torch.cat([z, onehot[:, :, None, None]], 1)  # (N, latent_dim + num_classes, 1, 1)
        elif labels is not None:
            raise ValueError("this Generator is unconditional (num_classes=0): call it without labels")
        return self.net(z)


class Discriminator(nn.Module):
    """Map images (N, channels, image_size, image_size) to one real-vs-fake logit each, shape (N,)."""

    def __init__(self, image_size: int = 64, channels: int = 3, width: int = 64, num_classes: int = 0,
                 norm: str = "batch", minibatch_std: bool = False, extra_layer: bool = False):
        super().__init__()
        s0, hidden = _plan(image_size, channels, width)
        hidden = hidden[::-1]  # D mirrors G: from the largest feature map to the smallest
        if norm not in D_NORMS:
            raise ValueError(f"norm must be one of {D_NORMS}, got {norm!r}")
        self.norm, self.minibatch_std = norm, minibatch_std
        self.num_classes = _check_classes(num_classes)
        self.image_size, self.channels, self.width = image_size, channels, width
        layers: list[nn.Module] = [
            # the image (with one plane per class when conditional) -> w maps; no BatchNorm here
            nn.Conv2d(channels + num_classes, hidden[0], 4, 2, 1, bias=False),  # (N, w, size/2, size/2)
            nn.LeakyReLU(0.2, inplace=True),  # (N, w, size/2, size/2)
        ]
        if extra_layer:  # one more layer at D's first side, shape kept
            layers += [
                nn.Conv2d(hidden[0], hidden[0], 3, 1, 1, bias=False),  # (N, w, size/2, size/2)
                _norm_layer(norm, hidden[0]),  # (N, w, size/2, size/2)
                nn.LeakyReLU(0.2, inplace=True),  # (N, w, size/2, size/2)
            ]
        for c_in, c_out in zip(hidden, hidden[1:]):
            layers += [
                nn.Conv2d(c_in, c_out, 4, 2, 1, bias=False),  # (N, c_out, s/2, s/2): strided conv halves the side
                _norm_layer(norm, c_out),  # (N, c_out, s/2, s/2)
                nn.LeakyReLU(0.2, inplace=True),  # (N, c_out, s/2, s/2)
            ]
        if minibatch_std:  # one more map: how much the images of a group differ (Karras et al. 2018, section 3)
            layers.append(MinibatchStd())  # (N, c + 1, s0, s0)
        layers.append(nn.Conv2d(hidden[-1] + minibatch_std, 1, s0, 1, 0, bias=False))  # (N, 1, 1, 1): one logit each
        self.net = nn.Sequential(*layers)
        self.apply(init_weights)
        if norm == "spectral":  # every convolution divided by its largest singular value (Miyato et al. 2018)
            for i, layer in enumerate(self.net):
                if isinstance(layer, nn.Conv2d):
                    self.net[i] = nn.utils.parametrizations.spectral_norm(layer)

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """Return logits (N,) for images (and their class labels (N,) if conditional); sigmoid reads them as P(real)."""
        expected = (self.channels, self.image_size, self.image_size)
        if x.dim() != 4 or tuple(x.shape[1:]) != expected:
            raise ValueError(
                f"Discriminator expects images of shape (N, {', '.join(map(str, expected))}), got {tuple(x.shape)}"
            )
        if self.num_classes:
            onehot = _one_hot(labels, self.num_classes, x, "Discriminator")  # (N, num_classes)
            planes = onehot[:, :, None, None].expand(-1, -1, *x.shape[2:])  # (N, num_classes, size, size)
            x = torch.cat([x, planes.contiguous(memory_format=_format(x))], 1)  # (N, C + num_classes, size, size)
        elif labels is not None:
            raise ValueError("this Discriminator is unconditional (num_classes=0): call it without labels")
        return self.net(x).flatten()  # (N,)


class MinibatchStd(nn.Module):
    """Append one feature map: the standard deviation of each feature over a group of images, averaged over features
    and positions (Karras et al. 2018, "Progressive growing of GANs", section 3; groups of min(4, N) as in their
    code, which refuses a batch that the group size does not divide, as this does).

    A D that sees how varied a group is can reject a generator whose images are alike, which a D judging one image
    at a time cannot.
    """

    group = 4

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, ...) -> (N, C + 1, ...): feature maps (N, C, H, W), or feature vectors (N, C) of a small MLP."""
        n, rest = x.shape[0], x.shape[2:]
        g = min(self.group, n)
        if n % g:
            raise ValueError(f"MinibatchStd needs a batch that its group of {g} divides, got {n}: use a batch size "
                             f"that is a multiple of {g}")
        y = x.float().reshape(g, n // g, *x.shape[1:])  # image i is in group i % (n // g), as in Karras et al.'s code
        std = (y.var(dim=0, unbiased=False) + 1e-8).sqrt()  # (n // g, C, ...): spread within each group
        per_group = std.flatten(1).mean(dim=1)  # (n // g,): one number per group
        maps = per_group.repeat(g).reshape(n, 1, *[1] * len(rest)).expand(n, 1, *rest).to(x.dtype)  # (N, 1, ...)
        if len(rest) == 2:
            maps = maps.contiguous(memory_format=_format(x))
        return torch.cat([x, maps], 1)


def _norm_layer(norm: str, channels: int) -> nn.Module:
    """D's normalisation after a strided convolution: BatchNorm (DCGAN), layer norm (a GroupNorm with one group over
    C, H, W: what WGAN-GP advises, since a gradient penalty is per image), or none (spectral norm acts on weights)."""
    if norm == "batch":
        return nn.BatchNorm2d(channels)
    if norm == "layer":
        return nn.GroupNorm(1, channels)
    return nn.Identity()


def _check_classes(num_classes: int) -> int:
    """num_classes must be an integer >= 0 (0: unconditional)."""
    if not isinstance(num_classes, int) or isinstance(num_classes, bool) or num_classes < 0:
        raise ValueError(f"num_classes must be an integer >= 0 (0: unconditional, MNIST: 10), got {num_classes!r}")
    return num_classes


def _one_hot(labels: torch.Tensor | None, num_classes: int, like: torch.Tensor, who: str) -> torch.Tensor:
    """Labels (N,) -> one-hot rows (N, num_classes) in like's dtype and device, with clear errors."""
    if labels is None:
        raise ValueError(f"this {who} is conditional (num_classes={num_classes}): pass labels, a (N,) tensor of "
                         f"class indices, for example torch.arange(N) % {num_classes}")
    labels = torch.as_tensor(labels, device=like.device)
    if labels.shape != like.shape[:1] or labels.is_floating_point():
        raise ValueError(f"{who} labels must be integers of shape ({like.shape[0]},), got {labels.dtype} "
                         f"{tuple(labels.shape)}")
    if labels.device.type == "cpu" and len(labels) and (labels.min() < 0 or labels.max() >= num_classes):  # no GPU sync
        raise ValueError(f"{who} labels must lie in [0, {num_classes}), got {labels.min().item()}..{labels.max().item()}")
    return F.one_hot(labels.long(), num_classes).to(like.dtype)


def _format(x: torch.Tensor) -> torch.memory_format:
    """The memory format x is in (channels_last or contiguous), so the label planes match it."""
    channels_last = x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last)
    return torch.channels_last if channels_last else torch.contiguous_format


def init_weights(module: nn.Module) -> None:
    """DCGAN initialisation: conv weights ~ N(0, 0.02) (the paper, section 4), BatchNorm scales ~ N(1, 0.02) and biases
    0 (not in the paper's text: its released code and PyTorch's examples/dcgan)."""
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
        nn.init.normal_(module.weight, 0.0, 0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, (nn.BatchNorm2d, nn.GroupNorm)):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
