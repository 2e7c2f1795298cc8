"""DCGAN generator and discriminator (Radford et al., 2015) for 28x28, 32x32 and 64x64 images.

The rules of the paper, and where they live below:
- no pooling: G upsamples with fractionally-strided (transposed) convolutions, D downsamples with strided ones;
- no hidden fully-connected layers: z enters G as a 1x1 "image", D ends with a convolution to one logit;
- BatchNorm everywhere except G's output layer and D's input layer;
- ReLU in G with Tanh on the output (images live in [-1, 1]); LeakyReLU(0.2) in D;
- D returns raw logits (N,); the sigmoid lives inside the loss, which keeps it numerically stable.

Shapes, with w = width, C = channels and s0 the first spatial side (7 for 28x28, 4 otherwise):

    size | G: z -> ...                                   | D: image -> ...
    28   | (w*2, 7)  -> (w, 14)  -> (C, 28)               | (w, 14) -> (2w, 7) -> logit
    32   | (w*4, 4)  -> (2w, 8)  -> (w, 16) -> (C, 32)    | (w, 16) -> (2w, 8) -> (4w, 4) -> logit
    64   | (w*8, 4)  -> (4w, 8)  -> (2w, 16) -> (w, 32) -> (C, 64) | (w, 32) -> ... -> (8w, 4) -> logit
"""

from __future__ import annotations

import torch
from torch import nn

SIZES = (28, 32, 64)  # image sides the models support
CHANNELS = (1, 3)  # grayscale or RGB


def _plan(image_size: int, channels: int, width: int) -> tuple[int, list[int]]:
    """First spatial side s0 and the hidden channel counts from the smallest feature map to the largest."""
    if image_size not in SIZES:
        raise ValueError(f"image_size must be one of {SIZES}, got {image_size!r}")
    if channels not in CHANNELS:
        raise ValueError(f"channels must be one of {CHANNELS} (grayscale or RGB), got {channels!r}")
    if not isinstance(width, int) or width < 1:
        raise ValueError(f"width must be a positive integer (the paper uses 64), got {width!r}")
    s0 = 7 if image_size == 28 else 4
    n_up = (image_size // s0).bit_length() - 1  # number of 2x upsamplings from s0 to image_size
    return s0, [width * 2 ** i for i in reversed(range(n_up))]  # e.g. 64x64: [8w, 4w, 2w, w]


class Generator(nn.Module):
    """Map noise z of shape (N, latent_dim) to images (N, channels, image_size, image_size) in [-1, 1]."""

    def __init__(self, image_size: int = 64, channels: int = 3, latent_dim: int = 100, width: int = 64):
        super().__init__()
        if not isinstance(latent_dim, int) or latent_dim < 1:
            raise ValueError(f"latent_dim must be a positive integer (the paper uses 100), got {latent_dim!r}")
        s0, hidden = _plan(image_size, channels, width)
        self.image_size, self.channels, self.latent_dim, self.width = image_size, channels, latent_dim, width
        layers: list[nn.Module] = [
            # project z, seen as a (N, latent_dim, 1, 1) image, to the smallest feature map
            nn.ConvTranspose2d(latent_dim, hidden[0], s0, 1, 0, bias=False),  # (N, hidden[0], s0, s0)
            nn.BatchNorm2d(hidden[0]),  # (N, hidden[0], s0, s0)
            nn.ReLU(inplace=True),  # (N, hidden[0], s0, s0)
        ]
        for c_in, c_out in zip(hidden, hidden[1:]):
            layers += [
                nn.ConvTranspose2d(c_in, c_out, 4, 2, 1, bias=False),  # (N, c_out, 2s, 2s): doubles the side
                nn.BatchNorm2d(c_out),  # (N, c_out, 2s, 2s)
                nn.ReLU(inplace=True),  # (N, c_out, 2s, 2s)
            ]
        layers += [
            nn.ConvTranspose2d(hidden[-1], channels, 4, 2, 1, bias=False),  # (N, C, size, size): no BatchNorm here
            nn.Tanh(),  # (N, C, size, size), values in [-1, 1] like the scaled data
        ]
        self.net = nn.Sequential(*layers)
        self.apply(init_weights)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """Generate images from noise (N, latent_dim) or (N, latent_dim, 1, 1)."""
        if z.dim() == 2:
            z = z[:, :, None, None]  # (N, latent_dim, 1, 1)
        if z.dim() != 4 or z.shape[1:] != (self.latent_dim, 1, 1):
            raise ValueError(
                f"Generator expects noise of shape (N, {self.latent_dim}) or (N, {self.latent_dim}, 1, 1), "
                f"got {tuple(z.shape)}: draw it with torch.randn(N, {self.latent_dim}), not an image"
            )
        return self.net(z)


class Discriminator(nn.Module):
    """Map images (N, channels, image_size, image_size) to one real-vs-fake logit each, shape (N,)."""

    def __init__(self, image_size: int = 64, channels: int = 3, width: int = 64):
        super().__init__()
        s0, hidden = _plan(image_size, channels, width)
        hidden = hidden[::-1]  # D mirrors G: from the largest feature map to the smallest
        self.image_size, self.channels, self.width = image_size, channels, width
        layers: list[nn.Module] = [
            nn.Conv2d(channels, hidden[0], 4, 2, 1, bias=False),  # (N, w, size/2, size/2): no BatchNorm here
            nn.LeakyReLU(0.2, inplace=True),  # (N, w, size/2, size/2)
        ]
        for c_in, c_out in zip(hidden, hidden[1:]):
            layers += [
                nn.Conv2d(c_in, c_out, 4, 2, 1, bias=False),  # (N, c_out, s/2, s/2): strided conv halves the side
                nn.BatchNorm2d(c_out),  # (N, c_out, s/2, s/2)
                nn.LeakyReLU(0.2, inplace=True),  # (N, c_out, s/2, s/2)
            ]
        layers.append(nn.Conv2d(hidden[-1], 1, s0, 1, 0, bias=False))  # (N, 1, 1, 1): one logit per image
        self.net = nn.Sequential(*layers)
        self.apply(init_weights)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return logits (N,); apply torch.sigmoid to read them as probabilities of 'real'."""
        expected = (self.channels, self.image_size, self.image_size)
        if x.dim() != 4 or tuple(x.shape[1:]) != expected:
            raise ValueError(
                f"Discriminator expects images of shape (N, {', '.join(map(str, expected))}), got {tuple(x.shape)}"
            )
        return self.net(x).flatten()  # (N,)


def init_weights(module: nn.Module) -> None:
    """DCGAN initialisation: conv weights ~ N(0, 0.02), BatchNorm scales ~ N(1, 0.02), biases 0."""
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
        nn.init.normal_(module.weight, 0.0, 0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.BatchNorm2d):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
