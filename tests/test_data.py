"""Loading through torchvision, read-only roots, missing data and validation splits."""
from __future__ import annotations

import gzip
import hashlib
import shutil
import stat

import pytest
import torch
from torchvision.datasets import FashionMNIST

from fakedata import write_idx
from fashion_core import data


def test_loads_idx_files_through_torchvision(fake_root):
    train, test = data.load_split(True, fake_root), data.load_split(False, fake_root)
    assert train.images.shape == (600, 28, 28) and train.images.dtype == torch.uint8
    assert test.images.shape == (200, 28, 28) and train.labels.dtype == torch.int64
    assert data.CLASSES[0] == "T-shirt/top" and len(data.CLASSES) == 10


def test_read_only_root_is_copied_to_a_writable_cache(tmp_path, monkeypatch):
    """Like ../shared/data: only the .gz archives, in a folder nobody may write to."""
    root = write_idx(tmp_path / "ro", n_train=50, n_test=20)
    raw = root / "FashionMNIST" / "raw"
    resources = []
    for f in sorted(raw.iterdir()):
        gz = f.with_name(f.name + ".gz")
        gz.write_bytes(gzip.compress(f.read_bytes()))
        f.unlink()
        resources.append((gz.name, hashlib.md5(gz.read_bytes()).hexdigest()))
    monkeypatch.setattr(FashionMNIST, "resources", resources)
    monkeypatch.setattr(data, "RAW_FILES", resources)
    monkeypatch.setattr(data, "CACHE_DIR", tmp_path / "cache")
    raw.chmod(stat.S_IRUSR | stat.S_IXUSR)
    before = sorted(p.name for p in raw.iterdir())
    try:
        loaded = data.load_split(True, root)
        assert len(loaded) == 50 and loaded.images.dtype == torch.uint8
        assert sorted(p.name for p in raw.iterdir()) == before  # nothing written into the root
        assert (tmp_path / "cache" / "FashionMNIST" / "raw" / "train-images-idx3-ubyte").exists()
    finally:
        raw.chmod(stat.S_IRWXU)


def test_missing_data_names_the_four_files(tmp_path, monkeypatch):
    monkeypatch.setattr(FashionMNIST, "mirrors", ["http://127.0.0.1:9/"])  # refused at once: offline
    with pytest.raises(data.DataMissingError) as err:
        data.load_split(True, tmp_path / "empty")
    msg = str(err.value)
    for name, _ in data.RAW_FILES:
        assert name in msg
    assert str(tmp_path / "empty" / "FashionMNIST" / "raw") in msg


def test_damaged_or_unwritable_data_is_a_clear_error(tmp_path, monkeypatch):
    root = write_idx(tmp_path / "d", n_train=50, n_test=20)
    images = root / "FashionMNIST" / "raw" / "train-images-idx3-ubyte"
    for damage in (images.read_bytes()[:1000], b"garbage"):
        images.write_bytes(damage)
        with pytest.raises(data.DataMissingError, match="could not be read.*damaged"):
            data.load_split(True, root)
    # a copy in the cache serves only a root that still holds the archives: an empty root is not ready
    monkeypatch.setattr(data, "CACHE_DIR", tmp_path / "cache")
    shutil.copytree(root / "FashionMNIST", tmp_path / "cache" / "FashionMNIST")
    assert data.is_available(root) and not data.is_available(tmp_path / "empty")
    not_a_folder = tmp_path / "notes.txt"  # a root that cannot hold folders (even for root, unlike chmod)
    not_a_folder.write_text("")
    with pytest.raises(data.DataMissingError, match="^cannot create"):
        data.download(not_a_folder)


def test_random_split_is_deterministic_and_disjoint():
    labels = torch.arange(1000) % 10
    tr, va = data.split_indices(labels, "random", fraction=0.2, seed=3)
    tr2, va2 = data.split_indices(labels, "random", fraction=0.2, seed=3)
    assert len(va) == 200 and len(tr) == 800
    assert torch.equal(va, va2) and torch.equal(tr, tr2)
    assert not set(tr.tolist()) & set(va.tolist())
    assert not torch.equal(va, data.split_indices(labels, "random", fraction=0.2, seed=4)[1])


def test_stratified_split_has_equal_classes():
    labels = torch.randint(0, 10, (5000,), generator=torch.Generator().manual_seed(0))
    tr, va = data.split_indices(labels, "stratified", count=400, seed=0)
    assert len(va) == 400 and len(tr) == 4600
    assert torch.bincount(labels[va], minlength=10).tolist() == [40] * 10


def test_no_split_trains_on_everything():
    tr, va = data.split_indices(torch.arange(100) % 10, "none")
    assert len(tr) == 100 and len(va) == 0


def test_unknown_split_is_rejected():
    with pytest.raises(ValueError, match="val_split"):
        data.split_indices(torch.arange(10), "sometimes")


def test_class_names_and_files_are_torchvisions():
    # written out in fashion_core.data so that naming a class loads no torch; they must not drift
    assert data.CLASSES == FashionMNIST.classes and data.RAW_FILES == [tuple(r) for r in FashionMNIST.resources]
