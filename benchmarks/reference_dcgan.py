"""A re-implementation, written for this course, of the training loop of PyTorch's examples/dcgan main.py.

What it keeps from that script, because that is what we measure against: torchvision MNIST decoded per item by
PIL with Resize(64) / ToTensor / Normalize in a DataLoader with 2 workers; the 64x64 G and D (nz=100, ngf=ndf=64);
a Sigmoid at the end of D with nn.BCELoss; Adam(2e-4, (0.5, 0.999)); fp32, contiguous layout; three .item() calls
per step for the printed statistics.
"""

from __future__ import annotations

import torch
import torchvision.transforms as T
from torch import nn
from torch.utils.data import DataLoader
from torchvision import datasets


class RefGenerator(nn.Module):
    def __init__(self, nz: int = 100, ngf: int = 64, nc: int = 1):
        super().__init__()
        widths = [ngf * 8, ngf * 4, ngf * 2, ngf]
        layers: list[nn.Module] = [nn.ConvTranspose2d(nz, widths[0], 4, 1, 0, bias=False)]  # 4x4
        for a, b in zip(widths, widths[1:]):  # 8x8, 16x16, 32x32
            layers += [nn.BatchNorm2d(a), nn.ReLU(True), nn.ConvTranspose2d(a, b, 4, 2, 1, bias=False)]
        layers += [nn.BatchNorm2d(ngf), nn.ReLU(True), nn.ConvTranspose2d(ngf, nc, 4, 2, 1, bias=False), nn.Tanh()]
        self.main = nn.Sequential(*layers)  # 64x64

    def forward(self, z):
        return self.main(z)


class RefDiscriminator(nn.Module):
    def __init__(self, ndf: int = 64, nc: int = 1):
        super().__init__()
        widths = [ndf, ndf * 2, ndf * 4, ndf * 8]
        layers: list[nn.Module] = [nn.Conv2d(nc, ndf, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, True)]  # 32x32
        for a, b in zip(widths, widths[1:]):  # 16x16, 8x8, 4x4
            layers += [nn.Conv2d(a, b, 4, 2, 1, bias=False), nn.BatchNorm2d(b), nn.LeakyReLU(0.2, True)]
        layers += [nn.Conv2d(ndf * 8, 1, 4, 1, 0, bias=False), nn.Sigmoid()]  # probability
        self.main = nn.Sequential(*layers)

    def forward(self, x):
        return self.main(x).view(-1, 1).squeeze(1)


def weights_init(m: nn.Module) -> None:
    name = type(m).__name__
    if "Conv" in name:
        nn.init.normal_(m.weight, 0.0, 0.02)
    elif "BatchNorm" in name:
        nn.init.normal_(m.weight, 1.0, 0.02)
        nn.init.zeros_(m.bias)


class ReferenceLoop:
    """The examples/dcgan loop on MNIST at 64x64, resumable round by round for interleaved timing."""

    def __init__(self, root: str, batch_size: int = 64, device: str = "cpu", workers: int = 2):
        transform = T.Compose([T.Resize(64), T.ToTensor(), T.Normalize((0.5,), (0.5,))])
        self.loader = DataLoader(datasets.MNIST(root, download=True, transform=transform), batch_size=batch_size,
                                 shuffle=True, num_workers=workers, persistent_workers=workers > 0)
        self.device = torch.device(device)
        self.netG, self.netD = RefGenerator().to(self.device), RefDiscriminator().to(self.device)
        self.netG.apply(weights_init)
        self.netD.apply(weights_init)
        self.criterion = nn.BCELoss()
        self.optD = torch.optim.Adam(self.netD.parameters(), lr=2e-4, betas=(0.5, 0.999))
        self.optG = torch.optim.Adam(self.netG.parameters(), lr=2e-4, betas=(0.5, 0.999))
        self.batches = iter(self.loader)

    def _next(self):
        try:
            return next(self.batches)
        except StopIteration:
            self.batches = iter(self.loader)
            return next(self.batches)

    def run(self, steps: int) -> int:
        """Train `steps` steps; return the number of images used."""
        seen = 0
        for _ in range(steps):
            real = self._next()[0].to(self.device)
            b = real.size(0)
            # (1) Update D: maximize log(D(x)) + log(1 - D(G(z)))
            self.netD.zero_grad()
            label = torch.full((b,), 1.0, device=self.device)
            output = self.netD(real)
            err_real = self.criterion(output, label)
            err_real.backward()
            d_x = output.mean().item()
            fake = self.netG(torch.randn(b, 100, 1, 1, device=self.device))
            label.fill_(0.0)
            output = self.netD(fake.detach())
            err_fake = self.criterion(output, label)
            err_fake.backward()
            d_g_z1 = output.mean().item()
            self.optD.step()
            # (2) Update G: maximize log(D(G(z)))
            self.netG.zero_grad()
            label.fill_(1.0)
            output = self.netD(fake)
            err_g = self.criterion(output, label)
            err_g.backward()
            d_g_z2 = output.mean().item()
            self.optG.step()
            del d_x, d_g_z1, d_g_z2
            seen += b
        return seen
