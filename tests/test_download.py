"""``pixelgen download`` against a loopback HTTP server on 127.0.0.1 that serves small
files in the published formats: a success (then loaded by the data set's own loader), a
corrupted file, a transfer cut short that the next run continues, a server that ignores
Range, a server that is down, a mirror, and the data sets that cannot be fetched. Nothing
here touches the real network: the published checksums are swapped for the small files'."""

from __future__ import annotations

import gzip
import hashlib
import io
import pickle
import shutil
import struct
import tarfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

from pixelgen.cli import main
from pixelgen.data import download as dl
from pixelgen.data import load_split


def idx_gz(array: np.ndarray) -> bytes:
    raw = struct.pack(">BBBB", 0, 0, 8, array.ndim) + struct.pack(f">{array.ndim}i", *array.shape)
    return gzip.compress(raw + array.astype(np.uint8).tobytes(), mtime=0)


def mnist_files() -> dict[str, bytes]:
    rng = np.random.default_rng(0)
    return {
        "train-images-idx3-ubyte.gz": idx_gz(rng.integers(0, 256, (30, 28, 28))),
        "train-labels-idx1-ubyte.gz": idx_gz(rng.integers(0, 10, 30)),
        "t10k-images-idx3-ubyte.gz": idx_gz(rng.integers(0, 256, (7, 28, 28))),
        "t10k-labels-idx1-ubyte.gz": idx_gz(rng.integers(0, 10, 7)),
    }


def cifar_archive() -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
        for b, name in enumerate(names):
            batch = {b"labels": [b % 10] * 4, b"data": np.full((4, 3072), b, np.uint8)}
            data = pickle.dumps(batch, protocol=2)
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


class Server:
    """Serves ``files`` at ``/NAME``, honouring Range; ``cut`` names files whose first
    transfer stops half-way, ``corrupt`` files served with one byte changed, and
    ``ranges=False`` makes it ignore Range (it then sends the whole file)."""

    def __init__(self, files: dict[str, bytes]):
        self.files, self.cut, self.corrupt, self.ranges = files, set(), set(), True
        self.requests: list[tuple[str, str | None]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                name = self.path.rsplit("/", 1)[-1]
                server.requests.append((self.path, self.headers.get("Range")))
                if name not in server.files:
                    self.send_error(404)
                    return
                data = server.files[name]
                if name in server.corrupt:
                    data = data[:10] + bytes([data[10] ^ 1]) + data[11:]
                start = 0
                if server.ranges and self.headers.get("Range"):
                    start = int(self.headers["Range"].split("=")[1].rstrip("-"))
                    if start >= len(data):
                        self.send_error(416)
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                else:
                    self.send_response(200)
                body = data[start:]
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if name in server.cut:
                    server.cut.discard(name)
                    body = body[: len(body) // 2]  # the connection drops half-way
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/pub/"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def served(monkeypatch):
    """A server with small MNIST and CIFAR-10 files, published under its address."""
    files = {**mnist_files(), "cifar-10-python.tar.gz": cifar_archive()}
    server = Server(files)
    for name in ("mnist", "cifar10"):
        src = dl.SOURCES[name]
        remotes = tuple(
            dl.Remote(r.name, ("md5", hashlib.md5(files[r.name]).hexdigest())) for r in src.files
        )
        monkeypatch.setitem(
            dl.SOURCES, name, dl.Source(hosts=(server.url,), folder=src.folder, files=remotes)
        )
    monkeypatch.delenv("PIXELGEN_MIRROR", raising=False)
    monkeypatch.delenv("PIXELGEN_DATA", raising=False)
    yield server
    server.stop()


def run(args, capsys):
    code = main(args)
    return code, capsys.readouterr().err


def test_download_then_load(tmp_path, served, capsys):
    code, err = run(["download", "mnist", "--root", str(tmp_path), "--no-progress"], capsys)
    assert code == 0, err
    folder = tmp_path / "mnist"
    assert sorted(p.name for p in folder.iterdir()) == sorted(mnist_files())  # no .part left
    assert "md5 checksum verified" in err and f"ready in {folder}" in err
    for name in mnist_files():
        assert (folder / name).read_bytes() == served.files[name]
    ds = load_split("mnist", "test", root=str(tmp_path))
    assert len(ds) == 7  # the downloaded files, not the 10,000 shipped test images
    # A second run keeps the verified files and fetches nothing.
    before = len(served.requests)
    assert run(["download", "mnist", "--root", str(tmp_path), "--no-progress"], capsys)[0] == 0
    assert len(served.requests) == before


def test_cifar10_archive(tmp_path, served, capsys):
    code, err = run(["download", "cifar10", "--root", str(tmp_path), "--no-progress"], capsys)
    assert code == 0, err
    test = load_split("cifar10", "test", root=str(tmp_path), valid_size=4)
    assert len(test) == 4 and int(test[0].max()) == 5


def test_a_corrupted_file_is_deleted_and_one_line(tmp_path, served, capsys):
    served.corrupt.add("t10k-images-idx3-ubyte.gz")
    code, err = run(["download", "mnist", "--root", str(tmp_path), "--no-progress"], capsys)
    lines = [ln for ln in err.splitlines() if ln.startswith("error:")]
    assert code == 1 and len(lines) == 1 and "Traceback" not in err
    assert "t10k-images-idx3-ubyte.gz: md5" in lines[0] and "not the published" in lines[0]
    assert not list((tmp_path / "mnist").glob("t10k-images*"))  # neither the file nor .part


def test_a_cut_transfer_continues_where_it_stopped(tmp_path, served, capsys):
    name = "train-images-idx3-ubyte.gz"
    served.cut.add(name)
    code, err = run(["download", "mnist", "--root", str(tmp_path), "--no-progress"], capsys)
    assert code == 1 and "stopped at" in err and "run the same command again" in err
    part = tmp_path / "mnist" / (name + ".part")
    half = part.stat().st_size
    assert 0 < half < len(served.files[name]) and not (tmp_path / "mnist" / name).exists()
    code, err = run(["download", "mnist", "--root", str(tmp_path), "--no-progress"], capsys)
    assert code == 0, err
    assert (tmp_path / "mnist" / name).read_bytes() == served.files[name]
    assert (f"/pub/{name}", f"bytes={half}-") in served.requests  # continued, not restarted


def test_a_server_without_ranges_sends_it_all_again(tmp_path, served, capsys):
    name = "train-images-idx3-ubyte.gz"
    served.cut.add(name)
    run(["download", "mnist", "--root", str(tmp_path), "--no-progress"], capsys)
    served.ranges = False
    code, err = run(["download", "mnist", "--root", str(tmp_path), "--no-progress"], capsys)
    assert code == 0, err
    assert (tmp_path / "mnist" / name).read_bytes() == served.files[name]


def test_a_server_that_is_down(tmp_path, served, capsys):
    served.stop()
    code, err = run(["download", "mnist", "--root", str(tmp_path), "--no-progress"], capsys)
    lines = [ln for ln in err.splitlines() if ln.startswith("error:")]
    assert code == 1 and len(lines) == 1 and "Traceback" not in err
    assert "cannot reach" in lines[0] and "no network?" in lines[0]
    assert "by hand" in lines[0] and "--mirror" in lines[0]
    assert not [p for p in (tmp_path / "mnist").iterdir()]


def test_a_mirror_replaces_the_host(tmp_path, served, capsys, monkeypatch):
    src = dl.SOURCES["mnist"]
    monkeypatch.setitem(
        dl.SOURCES, "mnist", dl.Source(("http://127.0.0.1:9/",), src.folder, src.files)
    )
    mirror = served.url.replace("/pub/", "/mirror/")
    monkeypatch.setenv("PIXELGEN_MIRROR", mirror)
    code, err = run(["download", "mnist", "--root", str(tmp_path), "--no-progress"], capsys)
    assert code == 0, err
    assert all(path.startswith("/mirror/") for path, _ in served.requests)


def test_the_standard_binarized_mnist_is_checked_for_its_form(tmp_path, monkeypatch, capsys):
    rows = {"train": 5, "valid": 2, "test": 2}
    rng = np.random.default_rng(0)
    files = {
        f"binarized_mnist_{s}.amat": "".join(
            " ".join(map(str, r)) + "\n" for r in rng.integers(0, 2, (n, 784))
        ).encode()
        for s, n in rows.items()
    }
    files["binarized_mnist_test.amat"] = files["binarized_mnist_test.amat"].replace(b"1", b"2", 1)
    server = Server(files)
    try:
        remotes = tuple(
            dl.Remote(f"binarized_mnist_{s}.amat", None, dl._amat_check(n)) for s, n in rows.items()
        )
        monkeypatch.setitem(
            dl.SOURCES, "binarized_mnist", dl.Source((server.url,), "binarized_mnist", remotes)
        )
        code, err = run(
            ["download", "binarized_mnist", "--root", str(tmp_path), "--no-progress"], capsys
        )
    finally:
        server.stop()
    assert code == 1 and "binarized_mnist_test.amat: not the published file (line 1" in err
    assert "form checked (no checksum is published)" in err  # train and valid passed
    assert sorted(p.name for p in (tmp_path / "binarized_mnist").iterdir()) == [
        "binarized_mnist_train.amat",
        "binarized_mnist_valid.amat",
    ]


@pytest.mark.parametrize("name", ["imagenet32", "imagenet64"])
def test_imagenet_says_which_files_and_where(tmp_path, capsys, name):
    code, err = run(["download", name, "--no-progress"], capsys)
    side = name[-2:]
    assert code == 1 and "image-net.org" in err
    assert f"train_{side}x{side}.tar" in err and f"valid_{side}x{side}.tar" in err


def test_an_unknown_data_set(capsys):
    code, err = run(["download", "mnits", "--no-progress"], capsys)
    assert code == 1 and "no download for data set 'mnits'" in err


def test_the_published_table():
    """The real table: every file has a checksum or a form check, and https where the
    publisher offers it."""
    for name, src in dl.SOURCES.items():
        assert src.hosts and all(h.endswith("/") for h in src.hosts), name
        for r in src.files:
            assert (r.digest is None) != (r.check is None), r.name
            if r.digest:
                assert r.digest[0] == "md5" and len(r.digest[1]) == 32
    assert dl.destination("mnist", "/x") == Path("/x/mnist")


def amat(rows: np.ndarray) -> bytes:
    return "".join(" ".join(map(str, r)) + "\n" for r in rows).encode()


@pytest.fixture
def standard_files():
    rng = np.random.default_rng(1)
    return {f"binarized_mnist_{s}.amat": amat(rng.integers(0, 2, (n, 784)))
            for s, n in (("train", 6), ("valid", 3), ("test", 2))}  # fmt: skip


def test_the_standard_binarization_is_read_as_published(tmp_path, standard_files):
    folder = tmp_path / "binarized_mnist"
    folder.mkdir()
    for name, data in standard_files.items():
        (folder / name).write_bytes(data)
    test = load_split("binarized_mnist", "test", root=str(tmp_path), binarize="standard")
    want = np.array(standard_files["binarized_mnist_test.amat"].split(), dtype=np.uint8)
    assert len(test) == 2 and test.levels == 2
    assert np.array_equal(test[1].numpy().ravel(), want.reshape(2, 784)[1])
    assert "standard fixed binarization" in test.description
    assert len(load_split("binarized_mnist", "valid", root=str(tmp_path), binarize="standard")) == 3
    with pytest.raises(Exception, match="data.valid_size: the standard binarization"):
        load_split(
            "binarized_mnist", "train", root=str(tmp_path), binarize="standard", valid_size=5
        )
    (folder / "binarized_mnist_test.amat").write_bytes(b"0 1 2\n")
    with pytest.raises(Exception, match="not a binarized MNIST .amat file"):
        load_split("binarized_mnist", "test", root=str(tmp_path), binarize="standard")


def test_missing_standard_files_say_how_to_get_them(tmp_path, monkeypatch):
    monkeypatch.setattr("pixelgen.data.locate.cache_dir", lambda: tmp_path / "cache")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(Exception, match="pixelgen download binarized_mnist"):
        load_split("binarized_mnist", "test", root=str(tmp_path / "nowhere"), binarize="standard")


def test_train_and_eval_download_on_first_use(tmp_path, monkeypatch, capsys, standard_files):
    server = Server(standard_files)
    try:
        remotes = tuple(dl.Remote(n, ("md5", hashlib.md5(d).hexdigest())) for n, d in
                        standard_files.items())  # fmt: skip
        monkeypatch.setitem(
            dl.SOURCES, "binarized_mnist", dl.Source((server.url,), "binarized_mnist", remotes)
        )
        root = tmp_path / "data"
        sets = ["model.hidden=4", "model.layers=1", "train.batch_size=2", "train.max_steps=2",
                "data.binarize=standard", f"data.root={root}", "sample.n=1"]  # fmt: skip
        args = ["train", "quick_rowlstm", "--no-progress", "--out", str(tmp_path / "run")]
        code, err = run([*args, *(a for s in sets for a in ("--set", s))], capsys)
        assert code == 1 and "pixelgen download binarized_mnist" in err  # not without --download
        code, err = run([*args, "--download", *(a for s in sets for a in ("--set", s))], capsys)
        assert code == 0, err
        flat = " ".join(err.split())
        assert "downloaded, md5 checksum verified" in flat and "standard fixed binarization" in flat
        assert (root / "binarized_mnist" / "binarized_mnist_train.amat").is_file()
        # The run's recipe says data.download: true, so its eval fetches what is gone.
        shutil.rmtree(root)
        assert run(["eval", str(tmp_path / "run"), "--no-progress"], capsys)[0] == 0
        # A run trained without it: eval fetches only with --download.
        args2 = ["train", "quick_rowlstm", "--no-progress", "--out", str(tmp_path / "run2")]
        assert run([*args2, *(a for s in sets for a in ("--set", s))], capsys)[0] == 0
        shutil.rmtree(root)
        evaluate = ["eval", str(tmp_path / "run2"), "--no-progress"]
        code, err = run(evaluate, capsys)
        assert code == 1 and "pixelgen download binarized_mnist" in err, err
        code, err = run([*evaluate, "--download"], capsys)
        assert code == 0, err
        assert (root / "binarized_mnist" / "binarized_mnist_test.amat").is_file()
    finally:
        server.stop()


def test_a_run_from_before_data_download_still_resumes():
    from pixelgen.train.setup import _identity

    old = {"name": "binarized_mnist", "root": None, "valid_size": None}
    new = {**old, "download": True, "binarize": None}
    assert _identity(old) == _identity(new)
    assert _identity(old) != _identity({**old, "binarize": "dynamic"})


def test_a_host_without_the_file_is_not_called_offline(tmp_path, served, capsys, monkeypatch):
    src = dl.SOURCES["mnist"]
    gone = (dl.Remote("gone.gz", ("md5", "0" * 32)),)
    monkeypatch.setitem(dl.SOURCES, "mnist", dl.Source(src.hosts, src.folder, gone))
    code, err = run(["download", "mnist", "--root", str(tmp_path), "--no-progress"], capsys)
    line = next(ln for ln in err.splitlines() if ln.startswith("error:"))
    assert code == 1 and "HTTP 404" in line and "no network" not in line


@pytest.mark.parametrize("mirror", ["example.com/mnist", "ftp://host/"])
def test_a_mirror_that_is_not_a_url(tmp_path, capsys, mirror):
    code, err = run(["download", "mnist", "--mirror", mirror, "--root", str(tmp_path)], capsys)
    assert code == 1 and "expected a URL" in err and "internal error" not in err
