"""Fetching the data sets that are published as plain files: MNIST, Fashion-MNIST, the
standard binarized MNIST of Larochelle & Murray (2011) and CIFAR-10.

Each file goes to ``DEST.part`` first; an interrupted transfer resumes from there (an HTTP
``Range`` request), and only a file whose published checksum matches is renamed to its
final name, so a half-downloaded or corrupted file is never read as the data set. The
files go to ``--root``, else ``$PIXELGEN_DATA``, else ``~/.cache/pixelgen``, in the
per-data-set folder the loaders look in (``pixelgen.data.locate``). A mirror
(``--mirror URL`` or ``$PIXELGEN_MIRROR``) replaces the published host; the file names
and checksums stay those of the published set. ImageNet 32x32 and 64x64 need an account
at image-net.org, so :func:`download` says which files to fetch and where they go.
"""

from __future__ import annotations

import http.client
import os
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from ..errors import DataError
from ..io import storage_error
from . import locate
from .checksums import file_digest

CHUNK = 1 << 16
TIMEOUT_S = 30


@dataclass(frozen=True)
class Remote:
    """One published file: its name, its published checksum ``(algorithm, hex)`` or
    None where none is published (then ``check`` verifies its form)."""

    name: str
    digest: tuple[str, str] | None
    check: Callable[[Path], None] | None = None


@dataclass(frozen=True)
class Source:
    """A data set's published files, where they are published, and the folder (under a
    search place) that its loader looks in."""

    hosts: tuple[str, ...]
    folder: str
    files: tuple[Remote, ...]
    note: str = ""


def _amat_check(lines: int) -> Callable[[Path], None]:
    def check(path: Path) -> None:
        with open(path, "rb") as f:
            rows = [ln.split() for ln in f]
        bad = next((i for i, r in enumerate(rows) if len(r) != 784 or set(r) - {b"0", b"1"}), None)
        if len(rows) != lines or bad is not None:
            where = f"line {bad + 1}" if bad is not None else f"{len(rows)} lines"
            name = path.name.removesuffix(".part")
            raise DataError(
                f"{name}: not the published file ({where}; expected {lines} lines of 784 "
                "values 0/1)"
            )

    return check


def _md5s(table: str) -> tuple[Remote, ...]:
    return tuple(
        Remote(n, ("md5", h)) for n, h in (ln.split() for ln in table.strip().splitlines())
    )


SOURCES: dict[str, Source] = {
    # The MNIST site now refuses most scripted downloads; PyTorch's copy of the same files
    # is first (torchvision uses it too).
    "mnist": Source(
        hosts=(
            "https://ossci-datasets.s3.amazonaws.com/mnist/",
            "http://yann.lecun.com/exdb/mnist/",
        ),
        folder="mnist",
        files=_md5s("""
            train-images-idx3-ubyte.gz f68b3c2dcbeaaa9fbdd348bbdeb94873
            train-labels-idx1-ubyte.gz d53e105ee54ea40749a09fcbcd1e9432
            t10k-images-idx3-ubyte.gz 9fb629c4189551a2d022fa330f9573f3
            t10k-labels-idx1-ubyte.gz ec29112dd5afa0611ce80d1b7f02629c
        """),
        note="MNIST also ships inside pixelgen; this fetches the published files",
    ),
    "fashion_mnist": Source(
        hosts=("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
        folder="fashion-mnist",
        files=_md5s("""
            train-images-idx3-ubyte.gz 8d4fb7e6c68d591d4c3dfef9ec88bf0d
            train-labels-idx1-ubyte.gz 25c81989df183df01b3e8a0aad5dffbe
            t10k-images-idx3-ubyte.gz bef4ecab320f06d8554ea6380940ec79
            t10k-labels-idx1-ubyte.gz bb300cfdad3c16e7a12a480ee83cd310
        """),
    ),
    "binarized_mnist": Source(
        hosts=("http://www.cs.toronto.edu/~larocheh/public/datasets/binarized_mnist/",),
        folder="binarized_mnist",
        files=tuple(
            Remote(f"binarized_mnist_{split}.amat", None, _amat_check(n))
            for split, n in (("train", 50000), ("valid", 10000), ("test", 10000))
        ),
        note="no checksum is published for these files: each is checked for its form "
        "(the number of lines, 784 values of 0 or 1 on each)",
    ),
    "cifar10": Source(
        hosts=("https://www.cs.toronto.edu/~kriz/",),
        folder="cifar10",
        files=(Remote("cifar-10-python.tar.gz", ("md5", "c58f30108f718f92721af3b95e74349a")),),
    ),
}

_BY_HAND = {
    "imagenet32": ("32x32", "Imagenet32"),
    "imagenet64": ("64x64", "Imagenet64"),
}


def destination(name: str, root: str | os.PathLike[str] | None = None) -> Path:
    """Where ``download(name)`` puts the files: ``root``, else ``$PIXELGEN_DATA``, else
    the cache, each in the data set's folder."""
    env = os.environ.get("PIXELGEN_DATA")
    base = Path(root).expanduser() if root else Path(env).expanduser() if env else None
    return (base or locate.cache_dir()) / _source(name).folder


def download(
    name: str,
    *,
    root: str | os.PathLike[str] | None = None,
    mirror: str | None = None,
    progress: bool = True,
    log: Callable[[str], None] | None = None,
) -> Path:
    """Fetch the published files of data set ``name``; returns the folder they are in.
    Files already there with the right checksum are kept."""
    src = _source(name)
    if log is None:  # stderr: stdout stays for data
        console = Console(stderr=True, highlight=False)
        log = lambda msg: console.print(msg, soft_wrap=True)  # noqa: E731
    folder = destination(name, root)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataError(f"cannot create {folder}: {exc.strerror}; choose --root") from None
    mirror = mirror or os.environ.get("PIXELGEN_MIRROR") or None
    if mirror and urllib.parse.urlsplit(mirror).scheme not in ("http", "https", "file"):
        raise DataError(f"--mirror {mirror}: expected a URL such as https://host/path/")
    hosts = (mirror.rstrip("/") + "/",) if mirror else src.hosts
    if src.note:
        log(escape(f"{name}: {src.note}"))
    with _bar(progress) as bar:
        for remote in src.files:
            dest = folder / remote.name
            if dest.is_file() and _verified(dest, remote, quiet=True):
                log(escape(f"{dest}: already there, checksum verified"))
                continue
            _fetch_from(hosts, remote, dest, bar)
            log(escape(f"{dest}: downloaded, {_how_checked(remote)}"))
    return folder


def _source(name: str) -> Source:
    if name in _BY_HAND:
        size, stem = _BY_HAND[name]
        folder = locate.cache_dir() / name
        raise DataError(
            f"{name}: the downsampled ImageNet files need an account at image-net.org, so "
            f"they cannot be fetched for you: sign in at https://image-net.org/download-images, "
            f"fetch train_{size}.tar and valid_{size}.tar (the paper's PNGs) or the {stem} npz "
            f"batches, and put them in {folder} (or a folder named by --root / data.root)"
        )
    if name not in SOURCES:
        known = ", ".join([*SOURCES, *_BY_HAND])
        raise DataError(f"no download for data set {name!r}; known: {known}")
    return SOURCES[name]


def _fetch_from(hosts: tuple[str, ...], remote: Remote, dest: Path, bar: Progress) -> None:
    unreachable = []
    for host in hosts:
        try:
            _fetch(host + remote.name, dest, bar)
        except _Unreachable as exc:
            unreachable.append(f"{host} ({exc})")
            continue
        _verified(dest.with_name(dest.name + ".part"), remote)
        dest.with_name(dest.name + ".part").replace(dest)
        return
    refused = all(" (HTTP " in u for u in unreachable)  # it answered, but not with the file
    raise DataError(
        f"{'no' if refused else 'cannot reach'} {'; '.join(unreachable)}"
        f"{'' if refused else ': no network?'} Fetch {hosts[0]}{remote.name} "
        f"by hand and put it in {dest.parent}, or name a mirror with --mirror URL "
        "($PIXELGEN_MIRROR)"
    )


class _Unreachable(Exception):
    """The host did not answer (no network, refused, unknown name, HTTP error)."""


def _fetch(url: str, dest: Path, bar: Progress) -> None:
    """Download ``url`` into ``dest.part``, continuing a partial file."""
    part = dest.with_name(dest.name + ".part")
    have = part.stat().st_size if part.is_file() else 0
    try:
        req = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
        resp = urllib.request.urlopen(req, timeout=TIMEOUT_S)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and have:  # the partial file is already whole
            return
        raise _Unreachable(f"HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, OSError, ValueError, http.client.HTTPException) as exc:
        raise _Unreachable(getattr(exc, "reason", None) or exc) from None
    with resp:
        if resp.status != 206:
            have = 0  # the server sent the whole file: start over
        elif not (resp.headers.get("Content-Range") or "").startswith(f"bytes {have}-"):
            raise _Unreachable(f"answered a request for bytes {have}- with another range")
        length = resp.headers.get("Content-Length")
        total = have + int(length) if length else None
        task = bar.add_task(dest.name, total=total, completed=have)
        try:
            f = open(part, "ab" if have else "wb")
        except OSError as exc:
            raise storage_error(part, exc) from None
        try:
            with f:
                while block := resp.read(CHUNK):
                    try:
                        f.write(block)
                    except OSError as exc:  # here, not on the network
                        raise storage_error(part, exc, kept="run it again to continue") from None
                    bar.advance(task, len(block))
        except (http.client.IncompleteRead, OSError) as exc:
            got = part.stat().st_size if part.is_file() else 0
            raise DataError(
                f"the transfer of {dest.name} stopped at {got} of {total or '?'} bytes "
                f"({type(exc).__name__}); run the same command again to continue it"
            ) from None
    got = part.stat().st_size
    if total is not None and got < total:
        raise DataError(
            f"the transfer of {dest.name} stopped at {got} of {total} bytes; run the same "
            "command again to continue it"
        )


def _verified(path: Path, remote: Remote, *, quiet: bool = False) -> bool:
    """Check the file against its published checksum (or form); a mismatch deletes it and
    is a one-line error (or False with ``quiet``)."""
    try:
        if remote.digest is not None:
            algorithm, expected = remote.digest
            actual = file_digest(path, algorithm)
            if actual != expected:
                raise DataError(
                    f"{remote.name}: {algorithm} {actual} is not the published "
                    f"{expected}; the file was deleted (a corrupted transfer or a wrong mirror)"
                )
        elif remote.check is not None:
            remote.check(path)
    except DataError:
        if quiet:
            return False
        path.unlink(missing_ok=True)
        raise
    return True


def _how_checked(remote: Remote) -> str:
    if remote.digest is not None:
        return f"{remote.digest[0]} checksum verified"
    return "form checked (no checksum is published)"


def _bar(enabled: bool) -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        disable=not enabled,
        transient=False,
    )
