"""What a Fréchet distance means in the flagship's feature space: real training images, slightly changed, against
the test images, on the same scale as a generator's (fashion_core.gan_quality).

    FASHION_MNIST_ROOT=../shared/data python scripts/fd_references.py

Prints the floor (10,000 training images as they are) and the distance after changes no one would call a new
distribution: a one-pixel shift, a mirror, faint noise, a slight blur or contrast change; each as a multiple of
the floor, beside the shipped generator's.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fashion_core.data import load_split  # noqa: E402
from fashion_core.gan_quality import Penultimate, default_classifier, frechet  # noqa: E402
from fashion_core.runs import CHECKPOINT_DIR, load_model  # noqa: E402


def main() -> int:
    test, train = load_split(False).images, load_split(True).images
    g = torch.Generator().manual_seed(0)
    real = train[torch.randperm(len(train), generator=g)[:10_000]]
    f = real.float()
    kernel = torch.tensor([[1., 2., 1.], [2., 4., 2.], [1., 2., 1.]])[None, None] / 16
    blur = F.conv2d(f[:, None], kernel, padding=1)[:, 0]
    changed = {
        "as they are (the floor)": real,
        "contrast x 0.9": (f * 0.9).round().to(torch.uint8),
        "shifted one pixel right": torch.roll(real, 1, dims=-1),
        "noise of up to 8 grey levels": (f + torch.randint(-8, 9, f.shape, generator=g)).clamp(0, 255).to(torch.uint8),
        "mirrored": real.flip(-1),
        "blurred (3x3 binomial)": blur.round().clamp(0, 255).to(torch.uint8),
    }
    extractor = Penultimate(load_model(default_classifier()))
    floor = None
    print(f"Fréchet distance to the 10,000 test images in {default_classifier().name}'s penultimate features\n")
    print("| 10,000 training images | distance | x the floor |")
    print("| --- | ---: | ---: |")
    for name, images in changed.items():
        fd = frechet(extractor, test, images)
        floor = floor or fd
        print(f"| {name} | {fd:.4f} | {fd / floor:.1f} |")
    quality = CHECKPOINT_DIR / "gans" / "cgan" / "quality.json"
    if quality.exists():
        q = json.loads(quality.read_text())
        print(f"| (the shipped generator, gans/cgan: 10,000 generated images) | {q['frechet_distance']:.4f} | "
              f"{q['fd_over_floor']:.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
