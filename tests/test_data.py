"""Tests for pixelgen.data: the shipped MNIST, binarization, CIFAR-10 (fake batches,
safe unpickling), both ImageNet forms, image folders, locating and option errors.
Everything except MNIST is written small into tmp_path, so the tests are fast and
independent of what is installed on the machine."""

from __future__ import annotations

import gzip
import io
import os
import pickle
import struct
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from pixelgen.data import ImageSet, binarize, list_datasets, load_split, locate, verify_sha256
from pixelgen.data.checksums import SHIPPED_MNIST_SHA256
from pixelgen.data.idx import read_idx
from pixelgen.errors import ConfigError, DataError

MNIST_DIR = locate.SHIPPED_DIR / "mnist"


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    """No real data set outside the package can be found (env, ./data, system, cache)."""
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.delenv("PIXELGEN_DATA", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(locate, "SYSTEM_DIRS", ())
    return tmp_path


# ---------------------------------------------------------------- MNIST


@pytest.fixture(scope="module")
def mnist_raw() -> np.ndarray:
    return read_idx(MNIST_DIR / "train-images-idx3-ubyte.gz")  # (60000, 28, 28)


def test_catalog_lists_every_data_set():
    names = [n for n, _ in list_datasets()]
    assert names == [
        "mnist",
        "binarized_mnist",
        "fashion_mnist",
        "cifar10",
        "imagenet32",
        "imagenet64",
        "folder",
    ]
    assert all(desc and "\n" not in desc for _, desc in list_datasets())


def test_mnist_splits_sizes_and_values():
    sizes = {s: len(load_split("mnist", s)) for s in ("train", "valid", "test")}
    assert sizes == {"train": 50000, "valid": 10000, "test": 10000}
    ds = load_split("mnist", "test")
    assert isinstance(ds, ImageSet) and isinstance(ds, torch.utils.data.Dataset)
    x = ds[0]
    assert x.dtype == torch.uint8 and x.shape == (1, 28, 28)
    assert (ds.channels, ds.height, ds.width, ds.levels) == (1, 28, 28, 256)
    assert x.max() == 255 and x.min() == 0
    assert ds.labels[0] == 7  # the canonical first test label
    assert torch.equal(ds[-1], ds[len(ds) - 1])
    with pytest.raises(IndexError):
        ds[len(ds)]
    info = ds.info()
    assert info["num_images"] == 10000 and info["levels"] == 256
    assert info["sources"][0].endswith("t10k-images-idx3-ubyte.gz")
    assert "mnist test: 10000 images 1x28x28" in info["description"]


def test_mnist_train_pixels_match_canonical_statistics():
    train, valid = load_split("mnist", "train"), load_split("mnist", "valid")
    assert list(train.labels[:10]) == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    first = train[0].float().mean().item() / 255
    assert 0.05 < first < 0.3
    everything = torch.stack(
        [train[i] for i in range(len(train))] + [valid[i] for i in range(len(valid))]
    )
    assert abs(everything.double().mean().item() / 255 - 0.1307) < 5e-4


def test_mnist_valid_is_the_last_training_images(mnist_raw):
    train, valid = load_split("mnist", "train"), load_split("mnist", "valid")
    assert torch.equal(train[49999][0], torch.from_numpy(np.array(mnist_raw[49999])))
    for j in (0, 1, 9999):
        assert torch.equal(valid[j][0], torch.from_numpy(np.array(mnist_raw[50000 + j])))
    # No overlap: no valid image equals the train image at the same file row.
    assert not torch.equal(valid[0], train[0])
    small = load_split("mnist", "valid", valid_size=5000)
    assert len(small) == 5000 and len(load_split("mnist", "train", valid_size=5000)) == 55000
    assert torch.equal(small[0][0], torch.from_numpy(np.array(mnist_raw[55000])))


def test_tensors_are_writable_copies():
    ds = load_split("mnist", "test")
    x = ds[3]
    x.zero_()
    assert ds[3].sum() > 0


def test_shipped_checksums_and_verify_sha256(tmp_path):
    for name, digest in SHIPPED_MNIST_SHA256.items():
        verify_sha256(MNIST_DIR / name, digest)
    f = tmp_path / "x.bin"
    f.write_bytes(b"hello")
    good = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
    verify_sha256(f, good)
    with pytest.raises(DataError, match="checksum mismatch"):
        verify_sha256(f, "0" * 64)
    f.write_bytes(b"hellO")  # same size; the mtime changes, so the cache must not hide it
    os.utime(f, ns=(1, 1))
    with pytest.raises(DataError, match="checksum mismatch"):
        verify_sha256(f, good)


def test_a_user_copy_of_mnist_comes_before_the_shipped_one(tmp_path, monkeypatch):
    data = tmp_path / "envdata" / "mnist"
    write_idx(data / "t10k-images-idx3-ubyte", np.full((3, 28, 28), 9, np.uint8))
    monkeypatch.setenv("PIXELGEN_DATA", str(tmp_path / "envdata"))
    ds = load_split("mnist", "test")
    assert len(ds) == 3 and ds[2].unique().tolist() == [9]
    assert ds.labels is None


# ---------------------------------------------------------------- binarized MNIST


def test_binarized_static_is_fixed(mnist_raw):
    a = load_split("binarized_mnist", "train")
    assert a.levels == 2 and set(a[0].unique().tolist()) <= {0, 1}
    assert "static binarization (seed 0)" in a.description
    first = a[0].clone()
    binarize._STATIC_CACHE.clear()  # a second load must redraw the same bits
    b = load_split("binarized_mnist", "train")
    assert torch.equal(first, b[0]) and torch.equal(a[1234], b[1234])
    a.set_epoch(5)
    assert torch.equal(a[0], first)
    # Bernoulli(p = x/255): black stays 0, white stays 1, the mean follows the intensity.
    gray = torch.from_numpy(np.array(mnist_raw[:50000]))[:, None]
    bits = torch.stack([a[i] for i in range(2000)])
    assert bits[gray[:2000] == 0].max() == 0 and bits[gray[:2000] == 255].min() == 1
    assert abs(bits.float().mean().item() - gray[:2000].float().mean().item() / 255) < 0.005
    other = load_split("binarized_mnist", "train", binarize_seed=1)
    assert not torch.equal(other[0], first) and "seed 1" in other.description


def test_binarized_dynamic_changes_per_epoch_but_is_reproducible():
    ds = load_split("binarized_mnist", "train", binarize="dynamic")
    assert "dynamic" in ds.description
    e0 = torch.stack([ds[i] for i in range(8)])
    assert torch.equal(e0, torch.stack([ds[i] for i in range(8)]))
    ds.set_epoch(1)
    e1 = torch.stack([ds[i] for i in range(8)])
    assert not torch.equal(e0, e1)
    again = load_split("binarized_mnist", "train", binarize="dynamic")
    again.set_epoch(1)
    assert torch.equal(e1, torch.stack([again[i] for i in range(8)]))
    assert set(e1.unique().tolist()) <= {0, 1}


@pytest.mark.parametrize("split", ["valid", "test"])
def test_binarized_valid_and_test_are_always_static(split):
    static = load_split("binarized_mnist", split)
    dyn = load_split("binarized_mnist", split, binarize="dynamic")
    dyn.set_epoch(3)
    assert "static" in dyn.description
    assert all(torch.equal(static[i], dyn[i]) for i in (0, 17, 999))


# ---------------------------------------------------------------- IDX / Fashion-MNIST


def write_idx(path: Path, array: np.ndarray, compress: bool = False) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    raw = struct.pack(">BBBB", 0, 0, 8, array.ndim) + struct.pack(f">{array.ndim}i", *array.shape)
    raw += array.astype(np.uint8).tobytes()
    path.write_bytes(gzip.compress(raw) if compress else raw)


@pytest.mark.parametrize("compress", [False, True])
def test_fashion_mnist_from_idx_files(tmp_path, monkeypatch, compress):
    rng = np.random.default_rng(0)
    train = rng.integers(0, 256, (30, 28, 28), dtype=np.uint8)
    test = rng.integers(0, 256, (7, 28, 28), dtype=np.uint8)
    # Debian's dataset-fashion-mnist layout: <system dir>/fashion-mnist/<MNIST file names>.
    folder = tmp_path / "usr-share-datasets" / "fashion-mnist"
    gz = ".gz" if compress else ""
    write_idx(folder / f"train-images-idx3-ubyte{gz}", train, compress)
    write_idx(folder / f"t10k-images-idx3-ubyte{gz}", test, compress)
    write_idx(folder / f"t10k-labels-idx1-ubyte{gz}", np.arange(7), compress)
    monkeypatch.setattr(locate, "SYSTEM_DIRS", (str(tmp_path / "usr-share-datasets"),))
    ds = load_split("fashion_mnist", "test")
    assert len(ds) == 7 and torch.equal(ds[4][0], torch.from_numpy(test[4]))
    assert list(ds.labels) == list(range(7))
    va = load_split("fashion_mnist", "valid", valid_size=10)
    assert len(va) == 10 and torch.equal(va[0][0], torch.from_numpy(train[20]))
    with pytest.raises(ConfigError, match="valid_size"):
        load_split("fashion_mnist", "train")  # default 10000 >= 30 images


def test_fashion_mnist_missing_says_how_to_get_it():
    with pytest.raises(DataError, match="apt-get install dataset-fashion-mnist"):
        load_split("fashion_mnist", "train")


def test_installed_fashion_mnist_if_present(monkeypatch):
    real = Path("/usr/share/datasets/fashion-mnist")
    if not (real / "t10k-images-idx3-ubyte.gz").is_file():
        pytest.skip("dataset-fashion-mnist is not installed")
    monkeypatch.setattr(locate, "SYSTEM_DIRS", ("/usr/share/datasets",))
    ds = load_split("fashion_mnist", "test")
    assert len(ds) == 10000 and ds[0].shape == (1, 28, 28)
    assert ds.sources[0].startswith(str(real))


def test_broken_idx_files_are_data_errors(tmp_path):
    bad = tmp_path / "bad-idx3-ubyte"
    bad.write_bytes(b"\x12\x34\x08\x03" + b"\0" * 20)
    with pytest.raises(DataError, match="not an IDX file"):
        read_idx(bad)
    short = tmp_path / "short-idx3-ubyte"
    write_idx(short, np.zeros((4, 28, 28), np.uint8))
    short.write_bytes(short.read_bytes()[:-5])
    with pytest.raises(DataError, match="truncated"):
        read_idx(short)
    gz = tmp_path / "cut.gz"
    gz.write_bytes(gzip.compress(b"\0\0\x08\x01" + b"\0\0\0\x05" + b"abcde")[:-6])
    with pytest.raises(DataError):
        read_idx(gz)


# ---------------------------------------------------------------- CIFAR-10


def fake_cifar_batches(n: int = 10) -> dict[str, dict]:
    """Published-style batches: image k of batch b has pixel (c, y, x) equal to
    (b*n + k + 7*c + y + 3*x) % 256."""
    c, y, x = np.meshgrid(np.arange(3), np.arange(32), np.arange(32), indexing="ij")
    batches = {}
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    for b, name in enumerate(names):
        imgs = np.stack([(b * n + k + 7 * c + y + 3 * x) % 256 for k in range(n)]).astype(np.uint8)
        batches[name] = {
            b"batch_label": name.encode(),
            b"labels": [(b + k) % 10 for k in range(n)],
            b"data": imgs.reshape(n, 3072),  # R plane, G plane, B plane, each row-major
            b"filenames": [f"img{k}.png".encode() for k in range(n)],
        }
    return batches


def expected_pixel(batch: int, k: int, c: int, y: int, x: int, n: int = 10) -> int:
    return (batch * n + k + 7 * c + y + 3 * x) % 256


def write_cifar_folder(root: Path) -> Path:
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    for name, batch in fake_cifar_batches().items():
        with open(folder / name, "wb") as f:
            pickle.dump(batch, f, protocol=2)
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({b"label_names": [b"airplane"] * 10}, f, protocol=2)
    return folder


def test_cifar10_from_the_batches_folder(tmp_path):
    write_cifar_folder(tmp_path / "c")
    train = load_split("cifar10", "train", root=str(tmp_path / "c"), valid_size=10)
    valid = load_split("cifar10", "valid", root=str(tmp_path / "c"), valid_size=10)
    test = load_split("cifar10", "test", root=str(tmp_path / "c"), valid_size=10)
    assert (len(train), len(valid), len(test)) == (40, 10, 10)
    assert (train.channels, train.height, train.width, train.levels) == (3, 32, 32, 256)
    img = train[13]  # batch 2 (index 1), image 3
    assert img.shape == (3, 32, 32) and img.dtype == torch.uint8
    assert img[2, 5, 17].item() == expected_pixel(1, 3, 2, 5, 17)
    assert img[0, 31, 0].item() == expected_pixel(1, 3, 0, 31, 0)
    assert valid[0][1, 2, 3].item() == expected_pixel(4, 0, 1, 2, 3)  # last batch starts valid
    assert test[9][1, 30, 1].item() == expected_pixel(5, 9, 1, 30, 1)
    assert list(test.labels[:3]) == [5, 6, 7]
    with pytest.raises(ConfigError, match="valid_size"):
        load_split("cifar10", "train", root=str(tmp_path / "c"))  # default 5000 > 50


def test_cifar10_from_the_tar_gz_archive(tmp_path, monkeypatch):
    folder = write_cifar_folder(tmp_path / "unpacked")
    data = tmp_path / "envdata" / "cifar-10"
    data.mkdir(parents=True)
    with tarfile.open(data / "cifar-10-python.tar.gz", "w:gz") as tar:
        tar.add(folder, arcname="cifar-10-batches-py")
    monkeypatch.setenv("PIXELGEN_DATA", str(tmp_path / "envdata"))
    test = load_split("cifar10", "test")
    assert "tar.gz" in test.description and test.sources[0].endswith("cifar-10-python.tar.gz")
    assert test[4][0, 9, 9].item() == expected_pixel(5, 4, 0, 9, 9)
    train = load_split("cifar10", "train", valid_size=0)
    assert len(train) == 50 and train[49][2, 1, 1].item() == expected_pixel(4, 9, 2, 1, 1)


class _Evil:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("where", ["data_batch_1", "test_batch"])
def test_cifar10_refuses_a_malicious_pickle(tmp_path, where):
    folder = write_cifar_folder(tmp_path / "c")
    marker = tmp_path / "pwned"
    batch = fake_cifar_batches()[where]
    batch[b"labels"] = _Evil(marker)
    (folder / where).write_bytes(pickle.dumps(batch, protocol=2))
    split = "test" if where == "test_batch" else "train"
    with pytest.raises(DataError, match="system") as e:
        load_split("cifar10", split, root=str(tmp_path / "c"), valid_size=1)
    assert "refusing" in str(e.value) and "\n" not in str(e.value)
    assert not marker.exists()


def test_cifar10_refuses_other_callables_too(tmp_path):
    folder = write_cifar_folder(tmp_path / "c")
    # builtins.eval spelled directly in protocol 0 opcodes.
    (folder / "test_batch").write_bytes(b"cbuiltins\neval\n(S'1+1'\ntR.")
    with pytest.raises(DataError, match="builtins.eval"):
        load_split("cifar10", "test", root=str(tmp_path / "c"))


# ---------------------------------------------------------------- ImageNet


def known_image(side: int, k: int) -> np.ndarray:
    """(side, side, 3) image whose pixel (y, x, c) = (k + 5y + 11x + 40c) % 256."""
    y, x, c = np.meshgrid(np.arange(side), np.arange(side), np.arange(3), indexing="ij")
    return ((k + 5 * y + 11 * x + 40 * c) % 256).astype(np.uint8)


def png_bytes(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def test_imagenet32_png_folders(tmp_path):
    for stem, count in (("train_32x32", 3), ("valid_32x32", 2)):
        (tmp_path / stem).mkdir()
        for k in range(count):
            (tmp_path / stem / f"{k:05d}.png").write_bytes(png_bytes(known_image(32, k)))
    train = load_split("imagenet32", "train", root=str(tmp_path))
    assert len(train) == 3 and train[2].shape == (3, 32, 32)
    assert train[2][1, 4, 6].item() == (2 + 5 * 4 + 11 * 6 + 40) % 256
    assert "paper's downsampled ImageNet (PNG folder train_32x32/)" in train.description
    test = load_split("imagenet32", "test", root=str(tmp_path))
    assert len(test) == 2 and torch.equal(
        test[1], load_split("imagenet32", "valid", root=str(tmp_path))[1]
    )
    assert "validation set" in test.description


def test_imagenet64_png_tar_is_read_lazily(tmp_path):
    data = tmp_path / "imagenet"
    data.mkdir()
    with tarfile.open(data / "valid_64x64.tar", "w") as tar:
        for k in (2, 0, 1):  # stored out of order: the set sorts by name
            blob = png_bytes(known_image(64, k))
            info = tarfile.TarInfo(f"valid_64x64/{k:05d}.png")
            info.size = len(blob)
            tar.addfile(info, io.BytesIO(blob))
    ds = load_split("imagenet64", "valid", root=str(tmp_path))
    assert len(ds) == 3 and ds.height == 64
    assert ds[1][2, 63, 10].item() == (1 + 5 * 63 + 110 + 80) % 256
    assert "PNG archive valid_64x64.tar" in ds.description
    # The set survives pickling (DataLoader workers) once its file handle is open.
    clone = pickle.loads(pickle.dumps(ds))
    assert torch.equal(clone[0], ds[0])
    with pytest.raises(DataError, match="imagenet64"):
        load_split("imagenet64", "train", root=str(tmp_path))


def test_imagenet_png_of_the_wrong_size_is_refused(tmp_path):
    (tmp_path / "valid_32x32").mkdir()
    (tmp_path / "valid_32x32" / "a.png").write_bytes(png_bytes(known_image(64, 0)))
    ds = load_split("imagenet32", "valid", root=str(tmp_path))
    with pytest.raises(DataError, match="expected 32x32"):
        ds[0]


def write_npz_batches(root: Path, side: int, per_batch: int = 2, compressed: bool = False):
    save = np.savez_compressed if compressed else np.savez
    train = root / f"Imagenet{side}_train_npz"
    train.mkdir(parents=True)
    for b in range(1, 11):
        imgs = np.stack([known_image(side, 10 * b + k) for k in range(per_batch)])  # (N, H, W, 3)
        data = imgs.transpose(0, 3, 1, 2).reshape(per_batch, -1)  # R, G, B planes
        save(
            train / f"train_data_batch_{b}.npz",
            data=data,
            labels=np.arange(per_batch) + 1,
            mean=data.mean(0),
        )
    val = root / f"Imagenet{side}_val_npz"
    val.mkdir()
    imgs = np.stack([known_image(side, 200 + k) for k in range(3)])
    save(val / "val_data.npz", data=imgs.transpose(0, 3, 1, 2).reshape(3, -1), labels=np.ones(3))


@pytest.mark.parametrize("compressed", [False, True])
def test_imagenet32_npz_batches(tmp_path, compressed):
    write_npz_batches(tmp_path, 32, compressed=compressed)
    train = load_split("imagenet32", "train", root=str(tmp_path))
    assert len(train) == 20
    img = train[5]  # batch 3, image 1
    assert img.shape == (3, 32, 32)
    assert img[2, 7, 9].item() == (31 + 35 + 99 + 80) % 256
    assert "Chrabaszcz et al. 2017 npz" in train.description
    valid = load_split("imagenet32", "valid", root=str(tmp_path), format="npz")
    assert len(valid) == 3 and valid[2][0, 0, 1].item() == (202 + 11) % 256
    assert "validation set" in valid.description


def test_imagenet_format_choice(tmp_path):
    write_npz_batches(tmp_path, 32)
    (tmp_path / "valid_32x32").mkdir()
    (tmp_path / "valid_32x32" / "0.png").write_bytes(png_bytes(known_image(32, 0)))
    assert "PNG" in load_split("imagenet32", "valid", root=str(tmp_path)).description
    assert "npz" in load_split("imagenet32", "valid", root=str(tmp_path), format="npz").description
    with pytest.raises(DataError, match="train_32x32"):
        load_split("imagenet32", "train", root=str(tmp_path), format="png")
    with pytest.raises(ConfigError, match="format"):
        load_split("imagenet32", "train", root=str(tmp_path), format="jpeg")


def test_imagenet_npz_of_the_wrong_size_or_incomplete(tmp_path):
    write_npz_batches(tmp_path, 32)
    (tmp_path / "Imagenet32_val_npz").rename(tmp_path / "Imagenet64_val_npz")
    with pytest.raises(DataError, match="12288"):
        load_split("imagenet64", "valid", root=str(tmp_path))
    (tmp_path / "Imagenet32_train_npz" / "train_data_batch_7.npz").unlink()
    with pytest.raises(DataError, match="train_data_batch_7"):
        load_split("imagenet32", "train", root=str(tmp_path))


# ---------------------------------------------------------------- folder


def write_mixed_folder(root: Path) -> None:
    rng = np.random.default_rng(1)
    for split in ("train", "valid", "test"):
        (root / split / "sub").mkdir(parents=True)
    Image.fromarray(rng.integers(0, 256, (30, 40, 4), dtype=np.uint8), "RGBA").save(
        root / "train" / "a.png"
    )
    Image.fromarray(rng.integers(0, 256, (20, 20), dtype=np.uint8), "L").save(
        root / "train" / "sub" / "b.JPG"
    )
    Image.fromarray(rng.integers(0, 256, (50, 10, 3), dtype=np.uint8), "RGB").convert(
        "P", palette=Image.Palette.ADAPTIVE
    ).save(root / "train" / "c.png")
    Image.fromarray(rng.integers(0, 65536, (12, 12), dtype=np.uint16)).save(
        root / "valid" / "d.png"
    )
    Image.fromarray(np.full((8, 8, 3), 200, np.uint8)).save(root / "test" / "e.jpeg", quality=95)
    (root / "train" / "notes.txt").write_text("not an image")


def test_folder_converts_sizes_and_modes(tmp_path):
    write_mixed_folder(tmp_path / "imgs")
    root = str(tmp_path / "imgs")
    train = load_split("folder", "train", root=root, image_size=16, channels=1)
    assert len(train) == 3 and (train.channels, train.height, train.width) == (1, 16, 16)
    assert all(train[i].shape == (1, 16, 16) and train[i].dtype == torch.uint8 for i in range(3))
    rgb = load_split("folder", "train", root=root, image_size=[12, 24])
    assert rgb.channels == 3 and all(rgb[i].shape == (3, 12, 24) for i in range(3))
    valid = load_split("folder", "valid", root=root, image_size=4, channels=1)
    assert len(valid) == 1 and valid[0].shape == (1, 4, 4)
    test = load_split("folder", "test", root=root, image_size=8)
    assert abs(int(test[0].float().mean()) - 200) <= 3  # JPEG round trip, no resize
    # Default size: the folder's first image (train/a.png is 40 wide, 30 high).
    default = load_split("folder", "test", root=root)
    assert (default.height, default.width) == (30, 40) and default[0].shape == (3, 30, 40)


def test_folder_without_split_subfolders_is_split_by_hash(tmp_path):
    root = tmp_path / "flat"
    (root / "deep").mkdir(parents=True)
    for k in range(60):
        where = root / "deep" if k % 2 else root
        Image.fromarray(np.full((6, 6), k, np.uint8)).save(where / f"{k}.png")
    sets = {
        s: load_split("folder", s, root=str(root), channels=1) for s in ("train", "valid", "test")
    }
    files = {s: set(d.files) for s, d in sets.items()}
    assert sum(len(f) for f in files.values()) == 60
    assert not (
        files["train"] & files["valid"]
        or files["train"] & files["test"]
        or files["valid"] & files["test"]
    )
    assert len(files["train"]) > 40
    again = load_split("folder", "train", root=str(root), channels=1)
    assert again.files == sets["train"].files


def test_folder_errors(tmp_path):
    with pytest.raises(ConfigError, match="data.root"):
        load_split("folder", "train")
    with pytest.raises(DataError, match="not a folder"):
        load_split("folder", "train", root=str(tmp_path / "nope"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no PNG/JPEG"):
        load_split("folder", "train", root=str(tmp_path / "empty"))
    (tmp_path / "half" / "train").mkdir(parents=True)
    Image.new("RGB", (4, 4)).save(tmp_path / "half" / "train" / "x.png")
    with pytest.raises(DataError, match="valid/"):
        load_split("folder", "valid", root=str(tmp_path / "half"))
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "x.png").write_bytes(b"not a png")
    with pytest.raises(DataError, match="cannot read image"):
        load_split("folder", "train", root=str(tmp_path / "broken"), image_size=4)[0]
    with pytest.raises(ConfigError, match="channels"):
        load_split("folder", "train", root=str(tmp_path / "half"), channels=4)
    with pytest.raises(ConfigError, match="image_size"):
        load_split("folder", "train", root=str(tmp_path / "half"), image_size=[4, 0])


# ---------------------------------------------------------------- locating and options


def test_missing_data_set_lists_every_place_searched(tmp_path, monkeypatch):
    monkeypatch.setenv("PIXELGEN_DATA", str(tmp_path / "env"))
    monkeypatch.setattr(locate, "SYSTEM_DIRS", (str(tmp_path / "sys"),))
    with pytest.raises(DataError) as e:
        load_split("cifar10", "train", root=str(tmp_path / "myroot"))
    msg = str(e.value)
    assert "\n" not in msg
    for place in (
        tmp_path / "myroot",
        tmp_path / "env",
        tmp_path / "cwd" / "data",
        tmp_path / "sys",
        tmp_path / "cache" / "pixelgen",
    ):
        assert str(place) in msg
    assert "cifar-10-python.tar.gz" in msg and "https://www.cs.toronto.edu" in msg
    monkeypatch.delenv("PIXELGEN_DATA")
    with pytest.raises(DataError, match=r"\$PIXELGEN_DATA \(not set\)"):
        load_split("imagenet64", "valid")


def test_data_found_in_dot_data_and_cache(tmp_path):
    write_cifar_folder(tmp_path / "cache" / "pixelgen" / "cifar10")
    ds = load_split("cifar10", "test")
    assert str(tmp_path / "cache") in ds.sources[0]
    write_cifar_folder(tmp_path / "cwd" / "data")  # ./data comes first
    ds = load_split("cifar10", "test")
    assert ds.sources[0].startswith(str(tmp_path / "cwd" / "data"))


def test_unknown_names_splits_and_options():
    with pytest.raises(ConfigError, match="did you mean 'mnist'"):
        load_split("mnsit", "train")
    with pytest.raises(ConfigError, match="did you mean 'valid'"):
        load_split("mnist", "vaild")
    with pytest.raises(ConfigError, match="data.image_size is only used by data set 'folder'"):
        load_split("mnist", "train", image_size=32)
    with pytest.raises(ConfigError, match="binarized_mnist"):
        load_split("cifar10", "train", binarize="static")
    with pytest.raises(ConfigError, match="did you mean 'valid_size'"):
        load_split("mnist", "train", vaild_size=3)
    with pytest.raises(ConfigError, match="binarize"):
        load_split("binarized_mnist", "train", binarize="sometimes")
    for bad in (-1, 2.5, True, "10"):
        with pytest.raises(ConfigError, match="valid_size"):
            load_split("mnist", "train", valid_size=bad)
    with pytest.raises(ConfigError, match="valid_size"):
        load_split("mnist", "valid", valid_size=0)
    # None means "not set", also for another data set's option.
    assert len(load_split("binarized-mnist", "test", valid_size=None, image_size=None)) == 10000
