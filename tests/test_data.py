import gzip
import hashlib

import pytest
import torch

from alexnet_edu import data as data_module
from alexnet_edu.data import (CorruptDataError, DataNotFoundError, balanced_subset, batches,
                              find_fashion_mnist, load_fashion_mnist, to_model_input)

from conftest import write_tiny_fashion_mnist


def test_found_through_the_variable_and_read_from_gz(isolated, monkeypatch):
    folder = write_tiny_fashion_mnist(isolated / "mine", compress=True)
    monkeypatch.setenv("ALEXNET_EDU_DATA", str(folder))
    data = load_fashion_mnist(download=False)
    assert data.train_images.shape == (40, 1, 28, 28) and data.train_images.dtype == torch.uint8
    assert data.test_images.shape == (20, 1, 28, 28)
    # every pixel of image i is label_i * 25: images and labels stayed paired
    assert torch.equal(data.train_images[:, 0, 0, 0].long(), data.train_labels * 25)
    assert torch.bincount(data.train_labels).tolist() == [4] * 10
    # decompressed into the user cache, not next to the user's files, and only once
    assert str(isolated / "cache") in data.source
    raw = next((isolated / "cache").glob("from-*/FashionMNIST/raw/train-images-idx3-ubyte"))
    first = raw.stat().st_mtime_ns
    assert load_fashion_mnist(download=False).source == data.source
    assert raw.stat().st_mtime_ns == first


def test_explicit_root_wins_and_plain_files_work(isolated, monkeypatch):
    monkeypatch.setenv("ALEXNET_EDU_DATA", str(isolated / "does-not-exist"))
    folder = write_tiny_fashion_mnist(isolated / "plain", n_train=30, compress=False)
    assert len(load_fashion_mnist(folder, download=False).train_labels) == 30


def test_debian_copy_is_decompressed_once_and_checked(isolated, monkeypatch):
    system = write_tiny_fashion_mnist(isolated / "usr-share", compress=True)
    monkeypatch.setattr(data_module, "SYSTEM_DIR", system)
    # our tiny files are not the published dataset, so the byte check must refuse them
    with pytest.raises(CorruptDataError, match="differ from the published Fashion-MNIST"):
        find_fashion_mnist(download=False)
    # with the checksums of these files it goes through, and lands in the cache
    sums = {}
    for name in data_module.FILES:
        sums[name] = hashlib.md5(gzip.open(system / f"{name}.gz").read()).hexdigest()
    monkeypatch.setattr(data_module, "PUBLISHED_MD5", sums)
    root = find_fashion_mnist(download=False)
    assert root == isolated / "cache"
    assert sorted(p.name for p in (root / "FashionMNIST" / "raw").iterdir()) == sorted(data_module.FILES)
    # second time: found in the cache even without the system copy
    monkeypatch.setattr(data_module, "SYSTEM_DIR", isolated / "gone")
    assert find_fashion_mnist(download=False) == root


def test_truncated_gz_names_the_file(isolated, monkeypatch):
    folder = write_tiny_fashion_mnist(isolated / "broken", compress=True)
    bad = folder / "train-images-idx3-ubyte.gz"
    bad.write_bytes(bad.read_bytes()[:60])
    monkeypatch.setenv("ALEXNET_EDU_DATA", str(folder))
    with pytest.raises(CorruptDataError, match=r"train-images-idx3-ubyte\.gz is truncated or corrupt"):
        load_fashion_mnist(download=False)


def test_truncated_idx_inside_a_valid_gz_is_a_clear_error(isolated, monkeypatch):
    folder = write_tiny_fashion_mnist(isolated / "short", compress=False)
    bad = folder / "t10k-images-idx3-ubyte"
    bad.write_bytes(bad.read_bytes()[:1000])
    with pytest.raises(CorruptDataError, match=r"t10k-images-idx3-ubyte.*truncated"):
        load_fashion_mnist(folder, download=False)


def test_nothing_found_lists_every_way(isolated):
    with pytest.raises(DataNotFoundError) as info:
        load_fashion_mnist(download=False)
    message = str(info.value)
    assert "apt-get install dataset-fashion-mnist" in message
    assert "downloaded" in message
    assert "ALEXNET_EDU_DATA" in message
    assert str(isolated / "cache") in message


def test_a_folder_without_the_files_is_named(isolated):
    (isolated / "empty").mkdir()
    with pytest.raises(DataNotFoundError, match="does not hold the four Fashion-MNIST files"):
        load_fashion_mnist(isolated / "empty", download=False)


def test_balanced_subset_is_balanced_and_deterministic():
    labels = torch.arange(1000) % 10
    a = balanced_subset(labels, 100, seed=3)
    assert torch.equal(a, balanced_subset(labels, 100, seed=3))
    assert not torch.equal(a, balanced_subset(labels, 100, seed=4))
    assert torch.bincount(labels[a]).tolist() == [10] * 10
    assert len(a.unique()) == 100
    assert torch.bincount(labels[balanced_subset(labels, 25)]).tolist() == [3] * 5 + [2] * 5
    assert len(balanced_subset(labels, None)) == 1000


def test_batches_resize_normalise_and_cover_everything():
    images = torch.randint(0, 256, (70, 1, 28, 28), dtype=torch.uint8)
    labels = torch.arange(70) % 10
    seen = []
    for x, y in batches(images, labels, 32, 96, shuffle=True, generator=torch.Generator().manual_seed(0)):
        assert x.shape[1:] == (1, 96, 96) and x.dtype == torch.float32
        seen.append(y)
    assert [len(y) for y in seen] == [32, 32, 6]
    assert sorted(torch.cat(seen).tolist()) == sorted(labels.tolist())
    x = to_model_input(images, 28)
    assert abs(x.mean().item() - (127.5 / 255 - data_module.MEAN) / data_module.STD) < 0.05


def test_a_corrupt_file_in_the_cache_is_replaced_not_loaded(isolated, monkeypatch):
    system = write_tiny_fashion_mnist(isolated / "usr-share", compress=True)
    monkeypatch.setattr(data_module, "SYSTEM_DIR", system)
    monkeypatch.setattr(data_module, "PUBLISHED_MD5", {   # these tiny files play the published ones
        name: hashlib.md5(gzip.open(system / f"{name}.gz").read()).hexdigest() for name in data_module.FILES})
    raw = find_fashion_mnist(download=False) / "FashionMNIST" / "raw"
    good = (raw / "train-images-idx3-ubyte").read_bytes()
    (raw / "train-images-idx3-ubyte").write_bytes(good[:100])     # a copy cut short
    with pytest.warns(UserWarning, match=r"train-images-idx3-ubyte in .* differ from the published .* fetched again"):
        data = load_fashion_mnist(download=False)
    assert (raw / "train-images-idx3-ubyte").read_bytes() == good   # fetched again from the system copy
    assert len(data.train_labels) == 40
    # with nowhere to fetch it from, the damaged file is still not loaded
    (raw / "train-images-idx3-ubyte").write_bytes(good[:100])
    monkeypatch.setattr(data_module, "SYSTEM_DIR", isolated / "gone")
    with pytest.warns(UserWarning, match="fetched again"), pytest.raises(DataNotFoundError):
        load_fashion_mnist(download=False)


def test_two_processes_filling_the_cache_at_once_both_succeed(tmp_path, monkeypatch):
    """Two kernels (or pytest-xdist workers) that find the cache empty decompress the same file at the
    same time. Here the second copy runs to the end while the first is half-way through its write."""
    source = write_tiny_fashion_mnist(tmp_path / "source")
    name = data_module.FILES[0]
    dest = tmp_path / "cache" / name
    dest.parent.mkdir()
    real_open = gzip.open
    interrupted = []

    class FirstReadLetsTheOtherFinish:
        def __init__(self, path):
            self.f = real_open(path)

        def read(self, size):
            if not interrupted:
                interrupted.append(True)
                data_module._copy_checked(source, name, dest, published=False)   # the other process
            return self.f.read(size)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.f.close()

    monkeypatch.setattr(data_module.gzip, "open", lambda path: FirstReadLetsTheOtherFinish(path)
                        if not interrupted else real_open(path))
    data_module._copy_checked(source, name, dest, published=False)
    with real_open(source / f"{name}.gz") as f:
        assert dest.read_bytes() == f.read()
    assert [p.name for p in dest.parent.iterdir()] == [name]   # no partial file left behind
