"""A class-conditional GAN for 28x28 greyscale garments: a DCGAN-style generator with class-conditional
batch norm, and a spectral-norm discriminator with a projection head (Miyato & Koyama, 2018), trained
with the hinge loss (fashion_core.gan). Images are in [-1, 1].

These are not classifiers, so they are not in the model registry; `build_gan` makes both from a GanConfig's
widths, which is all a generator run needs to be rebuilt.
"""
from __future__ import annotations

import torch
import torch.nn as nn
from torch.nn.utils.parametrizations import spectral_norm

N_CLASSES = 10


class ConditionalBatchNorm(nn.Module):
    """Batch norm whose scale and shift are looked up per class: the class steers every layer."""

    def __init__(self, channels: int, n_classes: int = N_CLASSES):
        super().__init__()
        self.bn = nn.BatchNorm2d(channels, affine=False)
        self.scale = nn.Embedding(n_classes, channels)
        self.shift = nn.Embedding(n_classes, channels)
        nn.init.ones_(self.scale.weight)
        nn.init.zeros_(self.shift.weight)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.bn(x) * self.scale(y)[:, :, None, None] + self.shift(y)[:, :, None, None]


class UpBlock(nn.Module):
    """A 4x4 transposed conv that doubles the size, then conditional BN -> ReLU (on this CPU half the
    cost of upsampling and a 3x3 conv at the larger size)."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.conv = nn.ConvTranspose2d(c_in, c_out, 4, stride=2, padding=1, bias=False)
        self.norm = ConditionalBatchNorm(c_out)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.norm(self.conv(x), y))


class Generator(nn.Module):
    """(z of latent_dim, class) -> (1, 28, 28) in [-1, 1]: a 7x7 map of 4*width channels from z and the
    class's embedding, two upsampling blocks to 14x14 (2*width) and 28x28 (width), a 3x3 conv to one channel."""

    def __init__(self, latent_dim: int = 64, width: int = 32):
        super().__init__()
        self.latent_dim = latent_dim
        self.embed = nn.Embedding(N_CLASSES, latent_dim)
        self.fc = nn.Linear(2 * latent_dim, 4 * width * 7 * 7, bias=False)
        self.norm0 = ConditionalBatchNorm(4 * width)
        self.up1 = UpBlock(4 * width, 2 * width)
        self.up2 = UpBlock(2 * width, width)
        self.out = nn.Conv2d(width, 1, 3, padding=1)

    def forward(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        x = self.fc(torch.cat([z, self.embed(y)], 1)).view(len(z), -1, 7, 7)
        x = torch.relu(self.norm0(x, y))
        return torch.tanh(self.out(self.up2(self.up1(x, y), y)))


class Discriminator(nn.Module):
    """(image in [-1, 1], class) -> a realness score: spectral-norm convs 28 -> 14 -> 7, a sum over the
    map, and a linear score plus the projection of the features on the class's embedding (what makes
    the images of each class look like that class)."""

    def __init__(self, width: int = 32):
        super().__init__()
        sn = spectral_norm
        act = nn.LeakyReLU(0.1)
        self.body = nn.Sequential(
            sn(nn.Conv2d(1, width, 4, stride=2, padding=1)), act,  # 14x14
            sn(nn.Conv2d(width, 2 * width, 3, padding=1)), act,
            sn(nn.Conv2d(2 * width, 4 * width, 4, stride=2, padding=1)), act)  # 7x7
        self.score = sn(nn.Linear(4 * width, 1))
        self.embed = sn(nn.Embedding(N_CLASSES, 4 * width))

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        h = self.body(x).sum((2, 3))
        return self.score(h).squeeze(1) + (self.embed(y) * h).sum(1)


def build_gan(latent_dim: int, g_width: int, d_width: int) -> tuple[Generator, Discriminator]:
    return Generator(latent_dim, g_width), Discriminator(d_width)
