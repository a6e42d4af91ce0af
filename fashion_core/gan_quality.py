"""How good a generator is, measured with a shipped Fashion-MNIST classifier (never Inception weights,
which this machine cannot download):

- a Fréchet distance between generated and real test images in the classifier's penultimate features
  (torchmetrics' FID with the classifier as its feature extractor), beside the same distance between
  real training and test images, the floor a perfect generator would reach;
- class agreement: the share of the images generated for class c that the classifier calls c;
- diversity: per class, the mean feature distance between two generated images over the same between
  two real ones; a generator that repeats one image per class scores near 0 there, however sharp it is.

`measure(run)` writes quality.json into the generator's run and returns it.
"""
from __future__ import annotations

import time
from pathlib import Path

import torch
import torch.nn as nn
from torchmetrics.image.fid import FrechetInceptionDistance

from fashion_core.data import CLASSES, load_split
from fashion_core.gan import generate, load_generator, per_class
from fashion_core.inference import infer, to_input
from fashion_core import runs as run_folders
from fashion_core.runs import Run, atomic_write_json, load_model



def default_classifier() -> Path:
    """The shipped flagship: whose features and answers measure a generator unless told otherwise."""
    return run_folders.CHECKPOINT_DIR / "flagship"


GOALS = {"agreement": 90.0, "fd_over_floor": 3.0, "diversity": 0.7}  # the goals; diversity is ours


class Penultimate(nn.Module):
    """A classifier's input to its last linear layer: the features FID compares. Takes (N, 28, 28) uint8."""

    def __init__(self, classifier: nn.Module):
        super().__init__()
        self.classifier = classifier.eval()
        last = [m for m in classifier.modules() if isinstance(m, nn.Linear)][-1]
        self.num_features = last.in_features
        self._seen: list[torch.Tensor] = []
        last.register_forward_pre_hook(lambda _m, args: self._seen.append(args[0]))

    @torch.no_grad()
    def forward(self, images_u8: torch.Tensor) -> torch.Tensor:
        self._seen.clear()
        self.classifier(to_input(images_u8))
        return self._seen[-1].flatten(1).double()


def features(extractor: Penultimate, images_u8: torch.Tensor, batch: int = 1000) -> torch.Tensor:
    return torch.cat([extractor(images_u8[i:i + batch]) for i in range(0, len(images_u8), batch)])


def frechet(extractor: Penultimate, a: torch.Tensor, b: torch.Tensor) -> float:
    """The Fréchet distance between two sets of (N, 28, 28) uint8 images in the extractor's features."""
    fid = FrechetInceptionDistance(feature=extractor, input_img_size=(28, 28))
    for i in range(0, len(a), 1000):
        fid.update(a[i:i + 1000], real=True)
    for i in range(0, len(b), 1000):
        fid.update(b[i:i + 1000], real=False)
    return float(fid.compute())


def spread(feats: torch.Tensor, pairs: int = 2000, seed: int = 0) -> float:
    """The mean distance between two random members of a set of feature vectors."""
    g = torch.Generator().manual_seed(seed)
    i, j = torch.randint(len(feats), (2, pairs), generator=g)
    keep = i != j
    return float((feats[i[keep]] - feats[j[keep]]).norm(dim=1).mean())


def measure(run: Run | str | Path, classifier: Run | str | Path | None = None, n: int = 10_000,
            data_root=None, seed: int = 0) -> dict:
    """The generator's quality against the test set (n images, n/10 per class), written to quality.json."""
    run = run if isinstance(run, Run) else Run(Path(run))
    classifier = classifier if isinstance(classifier, Run) else Run(Path(classifier or default_classifier()))
    t0 = time.perf_counter()
    test, train = load_split(False, data_root), load_split(True, data_root)
    real_test = test.images[:n]
    real_train = train.images[torch.randperm(len(train.images), generator=torch.Generator().manual_seed(seed))[:n]]
    labels = per_class(n // len(CLASSES))
    gen = load_generator(run)  # read once, not once per batch
    fake = torch.cat([generate(gen, labels[i:i + 1000], seed=seed + i) for i in range(0, len(labels), 1000)])
    model = load_model(classifier)
    extractor = Penultimate(model)
    fd, floor = frechet(extractor, real_test, fake), frechet(extractor, real_test, real_train)
    predicted = infer(model, fake).argmax(1)
    agree = [float((predicted[labels == c] == c).float().mean() * 100) for c in range(len(CLASSES))]
    fake_f, real_f = features(extractor, fake), features(extractor, real_test)
    real_labels = test.labels[:n]
    diversity = [spread(fake_f[labels == c]) / spread(real_f[real_labels == c]) for c in range(len(CLASSES))]
    result = {
        "images": len(fake), "classifier": classifier.name, "seed": seed,
        "frechet_distance": fd, "frechet_floor": floor, "fd_over_floor": fd / floor,
        "agreement": sum(agree) / len(agree), "agreement_per_class": dict(zip(CLASSES, agree)),
        "diversity": min(diversity), "diversity_per_class": dict(zip(CLASSES, diversity)),
        "seconds": time.perf_counter() - t0,
    }
    result["goals_met"] = {"agreement": result["agreement"] >= GOALS["agreement"],
                           "fd_over_floor": result["fd_over_floor"] <= GOALS["fd_over_floor"],
                           "diversity": result["diversity"] >= GOALS["diversity"]}
    atomic_write_json(run.path / "quality.json", result)
    return result


def report_lines(q: dict) -> list[str]:
    """quality.json as lines of text (the CLI prints them; the README quotes them)."""
    ok = lambda met: "met" if met else "MISSED"  # noqa: E731
    lines = [f"{q['images']:,} generated images against the {q['images']:,} first test images, in the penultimate "
             f"features of {q['classifier']}",
             f"Fréchet distance {q['frechet_distance']:.2f}; real train vs test (the floor) {q['frechet_floor']:.2f}; "
             f"ratio {q['fd_over_floor']:.2f} (goal <= {GOALS['fd_over_floor']}: {ok(q['goals_met']['fd_over_floor'])})",
             f"class agreement {q['agreement']:.1f}% on average (goal >= {GOALS['agreement']}%: "
             f"{ok(q['goals_met']['agreement'])})",
             f"diversity (generated spread / real spread, worst class) {q['diversity']:.2f} "
             f"(goal >= {GOALS['diversity']}: {ok(q['goals_met']['diversity'])})",
             "per class: " + ", ".join(f"{c} {q['agreement_per_class'][c]:.0f}% / {q['diversity_per_class'][c]:.2f}"
                                       for c in CLASSES)]
    return lines
