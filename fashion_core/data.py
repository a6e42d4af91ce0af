"""Fashion-MNIST loading the torchvision way, held as uint8 tensors, plus validation splits.

The root comes from FASHION_MNIST_ROOT (default ./data). A read-only root is copied into a
writable cache; absent data that cannot be downloaded raises DataMissingError naming the files.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:  # torch and torchvision load with the first split, not with the names and paths (the app's Overview)
    import torch

# torchvision.datasets.FashionMNIST's classes and resources, written out so that naming a class needs no torch
# (tests/test_data.py checks that they match)
CLASSES: list[str] = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                      "Ankle boot"]
NUM_CLASSES = len(CLASSES)
RAW_FILES: list[tuple[str, str]] = [  # (file name, md5)
    ("train-images-idx3-ubyte.gz", "8d4fb7e6c68d591d4c3dfef9ec88bf0d"),
    ("train-labels-idx1-ubyte.gz", "25c81989df183df01b3e8a0aad5dffbe"),
    ("t10k-images-idx3-ubyte.gz", "bef4ecab320f06d8554ea6380940ec79"),
    ("t10k-labels-idx1-ubyte.gz", "bb300cfdad3c16e7a12a480ee83cd310"),
]
CACHE_DIR = Path(os.environ.get("FASHION_CORE_CACHE", Path.home() / ".cache" / "fashion_core"))


class DataMissingError(RuntimeError):
    """The dataset is not on disk and could not be downloaded."""


@dataclass(frozen=True)
class FashionData:
    """One split as tensors: images (N, 28, 28) uint8 and labels (N,) int64."""

    images: torch.Tensor
    labels: torch.Tensor

    def __len__(self) -> int:
        return len(self.labels)


def data_root(root: str | os.PathLike | None = None) -> Path:
    return Path(root or os.environ.get("FASHION_MNIST_ROOT") or "./data").expanduser()


def missing_files_message(root: Path) -> str:
    raw = root / "FashionMNIST" / "raw"
    names = "\n".join(f"  {raw / name}" for name, _ in RAW_FILES)
    return (
        "Fashion-MNIST is not available and could not be downloaded (no network?).\n"
        f"Put these four files (from https://github.com/zalandoresearch/fashion-mnist) here:\n{names}\n"
        "or set FASHION_MNIST_ROOT to a folder that holds FashionMNIST/raw/."
    )


def _extracted(raw: Path) -> bool:
    return all((raw / name.removesuffix(".gz")).exists() for name, _ in RAW_FILES)


def _archives(raw: Path) -> bool:
    return all((raw / name).exists() for name, _ in RAW_FILES)


def is_available(root: str | os.PathLike | None = None) -> bool:
    """True when the four files (extracted or .gz) are under root: what load_split reads. (A copy
    in the cache only ever serves a root that still holds the archives.)"""
    raw = data_root(root) / "FashionMNIST" / "raw"
    return _extracted(raw) or _archives(raw)


def _is_writable(folder: Path) -> bool:
    """os.access says yes to root on any folder, so also honour a folder with no write bits."""
    return os.access(folder, os.W_OK) and bool(folder.stat().st_mode & 0o222)


def _writable_root(root: Path) -> Path:
    """root itself when files can be extracted there, else a cache copy of its raw files."""
    raw = root / "FashionMNIST" / "raw"
    if _extracted(raw) or not raw.exists() or _is_writable(raw):
        return root
    cached = CACHE_DIR / "FashionMNIST" / "raw"
    cached.mkdir(parents=True, exist_ok=True)
    for name, _ in RAW_FILES:
        for candidate in (name, name.removesuffix(".gz")):
            src, dst = raw / candidate, cached / candidate
            if src.exists() and not dst.exists():
                tmp = dst.with_suffix(dst.suffix + ".tmp")
                shutil.copyfile(src, tmp)
                os.replace(tmp, dst)
    return CACHE_DIR


def load_split(train: bool, root: str | os.PathLike | None = None) -> FashionData:
    """Load the official train (60k) or test (10k) split through torchvision.FashionMNIST."""
    from torchvision.datasets import FashionMNIST  # noqa: PLC0415

    asked = data_root(root)
    usable = _writable_root(asked)
    try:
        ds = FashionMNIST(str(usable), train=train,
                          download=not _extracted(usable / "FashionMNIST" / "raw"))
    except (RuntimeError, OSError, ValueError, AssertionError) as exc:
        # RuntimeError: every mirror failed; the others: files that are there but damaged
        damaged = (f"The files in {asked / 'FashionMNIST' / 'raw'} could not be read ({type(exc).__name__}: "
                   f"{str(exc)[:200]}); they may be damaged. Replace them.\n\n" if is_available(asked) else "")
        raise DataMissingError(damaged + missing_files_message(asked)) from exc
    return FashionData(ds.data.contiguous(), ds.targets.long())


def download(root: str | os.PathLike | None = None,
             on_progress: Callable[[float, str], None] | None = None) -> Path:
    """Fetch the four archives from torchvision's mirrors with a progress callback (fraction, msg).

    Files are md5-checked and written atomically; raises DataMissingError when no mirror answers.
    """
    from torchvision.datasets import FashionMNIST  # noqa: PLC0415

    raw = data_root(root) / "FashionMNIST" / "raw"
    try:
        raw.mkdir(parents=True, exist_ok=True)
    except OSError as exc:  # a read-only or otherwise unusable FASHION_MNIST_ROOT
        raise DataMissingError(f"cannot create {raw} ({exc.strerror or exc}).\n\n"
                               + missing_files_message(data_root(root))) from exc
    for i, (name, md5) in enumerate(RAW_FILES):
        dst = raw / name
        if dst.exists() and hashlib.md5(dst.read_bytes()).hexdigest() == md5:
            continue
        for mirror in FashionMNIST.mirrors:
            try:
                _fetch(mirror + name, dst, md5, lambda f: on_progress and on_progress((i + f) / 4, name))
                break
            except OSError:
                continue
        else:
            raise DataMissingError(missing_files_message(data_root(root)))
    if on_progress:
        on_progress(1.0, "done")
    return raw


def _fetch(url: str, dst: Path, md5: str, on_fraction: Callable[[float], None]) -> None:
    tmp = dst.with_suffix(".part")
    digest = hashlib.md5()
    with urllib.request.urlopen(url, timeout=20) as resp, open(tmp, "wb") as out:
        total = int(resp.headers.get("Content-Length") or 0)
        done = 0
        while chunk := resp.read(1 << 16):
            out.write(chunk)
            digest.update(chunk)
            done += len(chunk)
            if total:
                on_fraction(done / total)
    if digest.hexdigest() != md5:
        tmp.unlink(missing_ok=True)
        raise OSError(f"md5 mismatch for {url}")
    os.replace(tmp, dst)


TRAIN_SIZE = 60_000  # images in Fashion-MNIST's training set


def val_size(mode: str, n: int, fraction: float = 0.2, count: int = 4000) -> int:
    """How many of n images a validation split of this mode holds out (split_indices draws them)."""
    return {"none": 0, "random": int(round(n * fraction)), "stratified": min(count, n)}.get(mode, 0)


def split_indices(labels: torch.Tensor, mode: str = "random", fraction: float = 0.2,
                  count: int = 4000, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Deterministic (train_idx, val_idx) for a validation split.

    mode: 'random' (a fraction, reports 000/002), 'stratified' (a fixed count with equal
    classes, report 003), 'none' (train on everything; val_idx is empty).
    """
    import torch  # noqa: PLC0415

    n = len(labels)
    g = torch.Generator().manual_seed(seed)
    if mode == "none":
        return torch.arange(n), torch.empty(0, dtype=torch.long)
    if mode == "random":
        perm = torch.randperm(n, generator=g)
        n_val = val_size(mode, n, fraction)
        return perm[n_val:].sort().values, perm[:n_val].sort().values
    if mode == "stratified":
        classes = labels.unique()
        per_class, extra = divmod(count, len(classes))
        val = []
        for k, c in enumerate(classes.tolist()):
            idx = (labels == c).nonzero().flatten()
            idx = idx[torch.randperm(len(idx), generator=g)]
            val.append(idx[: per_class + (k < extra)])
        val_idx = torch.cat(val).sort().values
        mask = torch.ones(n, dtype=torch.bool)
        mask[val_idx] = False
        return mask.nonzero().flatten(), val_idx
    raise ValueError(f"val_split: unknown mode {mode!r} (choose random, stratified or none)")
