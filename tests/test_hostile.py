"""Hostile inputs: every command on a table of bad inputs.

Each case builds one bad input in ``tmp_path`` (a broken recipe, image, mask, checkpoint or
export, an output path that cannot be written, a bad option value) and runs the command in
this process through ``pixelgen.cli.main``. Every case must give a non-zero exit code,
exactly one stderr line starting with ``error:`` (never ``internal error:``), no traceback,
and leave no file behind: nothing new under ``tmp_path`` (no partial PNG, JSON, export or
``*.tmp``, no run directory or lock), nothing created outside it, every input file byte for
byte as it was, and no pickle or YAML payload run (its marker file never appears).

One tiny ``quick_rowlstm`` is trained once for the module, and exported once as safetensors
and as TorchScript, to have real files to damage; each case works on copies.

Cases per class (278 in all; what each gets):

- recipe (50): ``train`` on bad YAML syntax, YAML tags (``!!python/...``, never
  constructed), a non-mapping or empty top level, unknown keys, wrong types, out-of-range
  values, a missing file, a directory, a binary file, bad ``--set`` items: exit 2, the file
  (or ``--set`` item) and the full key path named. 5 valid recipes whose data is missing,
  unreadable or too small: exit 1 naming the data (1 of them exit 2, the batch size).
- option (22): out-of-range, wrong-typed, unknown or missing options of every command:
  exit 2, the option named and ``(see pixelgen CMD --help)``; no images to complete: exit 1.
- image (13): ``complete`` on an empty, text, truncated, corrupted, zero-sized or
  decompression-bomb PNG, a checkpoint named .png, a missing file, a directory, a bad second
  image: exit 1, the file named (a bomb with Pillow's limit).
- mask (12): ``--occlude`` with a mask of the wrong size, empty, text, truncated, a bomb,
  missing, a directory; unknown modes and bad ``random:P``: exit 1, the mask or mode named.
- checkpoint (67): 16 kinds of bad checkpoint (empty, a PNG, text, a foreign zip, a run
  directory without one, truncated, a flipped byte in a tensor or the pickle record, pickle
  payloads, a foreign torch file, a newer version, incomplete, missing, the latest run
  damaged) for each of ``eval``, ``sample``, ``complete``, ``export``, and 3 more
  (``complete``'s positional checkpoint, ``train --resume`` on a damaged or absent run):
  exit 1 naming the file and what is wrong (``--resume`` without a run: exit 2).
- export (76): 19 kinds of bad export given as the checkpoint (safetensors empty,
  truncated, with a bad header, a flipped weight byte, foreign, with damaged or lying
  metadata; TorchScript whole, truncated or flipped; ONNX garbage) for each of the 4
  commands: exit 1 naming the file and what is wrong.
- shipped (11): a truncated shipped model and one with a flipped weight byte, by name for
  the 4 commands and as ``sample``'s default, and the ``pretrained`` listing: exit 1.
- output (27): ``--out``, ``--out-dir``, ``--json`` and ``--report`` under a regular
  file, in /proc or /sys, onto a directory or the checkpoint itself, an output name taken
  by a folder, a damaged ``RUN/eval.json``, ``train --out`` into a run or a file: exit 1
  naming the path (a run already there: exit 2), and nothing written.
"""

from __future__ import annotations

import io
import os
import pickle
import re
import shutil
import struct
import warnings
import zipfile
import zlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from pixelgen.cli import main

TINY = (
    "--set model.hidden=4 --set model.layers=1 --set train.batch_size=4 --set train.max_steps=2 "
    "--set train.eval_max_images=8 --set sample.n=2 --no-progress"
)


class Payload:
    """Pickles as a call of ``open(marker, "w")``: loading it unsafely creates ``marker``."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


@dataclass(frozen=True)
class Assets:
    run: Path  # a finished run directory
    safetensors: Path
    torchscript: Path


@pytest.fixture(scope="module")
def assets(tmp_path_factory) -> Assets:
    root = tmp_path_factory.mktemp("hostile-assets")
    run, st, ts = root / "run", root / "m.safetensors", root / "m.ts"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("PIXELGEN_RUNS", str(root / "runs"))
            assert main(["train", "quick_rowlstm", *TINY.split(), "--out", str(run)]) == 0
            assert main(["export", str(run), "-f", "safetensors", "-o", str(st)]) == 0
            assert main(["export", str(run), "-f", "torchscript", "-o", str(ts)]) == 0
    finally:
        torch.set_num_threads(threads)
    probe = root / "probe"
    pickle.loads(pickle.dumps(Payload(probe)))  # the payload does run when unpickled
    assert probe.exists()
    probe.unlink()
    return Assets(run, st, ts)


class Env:
    """Builds a case's inputs in ``tmp`` and fills in its command line."""

    def __init__(self, tmp: Path, assets: Assets, monkeypatch: pytest.MonkeyPatch) -> None:
        self.tmp, self.assets, self.monkeypatch = tmp, assets, monkeypatch
        self.marker = tmp / "PAYLOAD_RAN"

    def fill(self, line: str, inputs: dict[str, Input]) -> list[str]:
        """``line`` split on spaces; ``{tiny}`` is the tiny-training options, ``{tmp}`` this
        folder, ``{name}`` the input ``inputs[name]`` builds, else the good input ``name``
        (``ckpt``, ``image``, ``run``, ``file``), built on first use. An input that is only
        a setup (of a default the command finds) gives "", and its word is left out."""
        built: dict[str, str] = {"tmp": str(self.tmp)}

        def value(m: re.Match) -> str:
            key = m[1]
            if key not in built:
                built[key] = inputs[key](self) if key in inputs else getattr(self, key)()
            return built[key]

        words = []
        for word in line.split():
            words.extend(TINY.split() if word == "{tiny}" else [re.sub(r"\{(\w+)\}", value, word)])
        return [w for w in words if w]

    def p(self, name: str) -> str:
        return str(self.tmp / name)

    def write(self, name: str, data: bytes | str) -> str:
        path = self.tmp / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data.encode() if isinstance(data, str) else data)
        return str(path)

    def dir(self, name: str) -> str:
        (self.tmp / name).mkdir(parents=True, exist_ok=True)
        return self.p(name)

    def file(self) -> str:
        """A regular file, to put paths under."""
        return self.write("file.txt", "a regular file\n")

    def run(self, name: str = "run") -> str:
        dst = self.tmp / name
        if not dst.exists():
            shutil.copytree(self.assets.run, dst)
        return str(dst)

    def ckpt(self, name: str = "good.pt") -> str:
        return self.write(name, self.best_pt())

    def best_pt(self) -> bytes:
        return (self.assets.run / "checkpoints" / "best.pt").read_bytes()

    def image(self, name: str = "digit.png", size=(28, 28)) -> str:
        path = self.tmp / name
        path.parent.mkdir(parents=True, exist_ok=True)
        values = (np.arange(size[0] * size[1]).reshape(size) * 7 % 256).astype(np.uint8)
        Image.fromarray(values, "L").save(path, format="PNG")
        return str(path)

    def png_bytes(self) -> bytes:
        return Path(self.image("_png_source.png")).read_bytes()


Input = Callable[[Env], str]


def data(name: str, content: Callable[[Env], bytes | str] | bytes | str) -> Input:
    """An input file ``name`` holding ``content`` (or what it computes)."""
    return lambda e: e.write(name, content(e) if callable(content) else content)


# ------------------------------------------------------------------------ bad files


def png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_claiming(width: int, height: int) -> bytes:
    """A small PNG whose header claims ``width`` x ``height`` 8-bit grey pixels."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    idat = zlib.compress(b"\0" * 64)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", ihdr)
        + png_chunk(b"IDAT", idat)
        + png_chunk(b"IEND", b"")
    )


def flip_record_byte(data: bytes, pick: Callable[[str], bool]) -> bytes:
    """``data`` (a zip archive such as a torch checkpoint) with one byte flipped in the
    middle of the largest stored record whose name ``pick`` accepts."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        infos = [i for i in archive.infolist() if pick(i.filename) and i.file_size > 0]
    info = max(infos, key=lambda i: i.file_size)
    assert info.compress_type == zipfile.ZIP_STORED
    name_len, extra_len = struct.unpack(
        "<HH", data[info.header_offset + 26 : info.header_offset + 30]
    )
    at = info.header_offset + 30 + name_len + extra_len + info.file_size // 2
    out = bytearray(data)
    out[at] ^= 0xFF
    return bytes(out)


def flip_safetensors_byte(data: bytes) -> bytes:
    """One byte flipped in the tensor data (after the JSON header) of a safetensors file."""
    header = 8 + struct.unpack("<Q", data[:8])[0]
    out = bytearray(data)
    out[header + (len(data) - header) // 2] ^= 0xFF
    return bytes(out)


def safetensors_with(env: Env, name: str, **meta: str) -> str:
    """The good export re-saved with its metadata changed (``None`` drops a key)."""
    from safetensors import safe_open
    from safetensors.torch import save

    with safe_open(str(env.assets.safetensors), framework="pt") as f:
        old = dict(f.metadata())
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    new = {k: v for k, v in {**old, **meta}.items() if v is not None}
    return env.write(name, save(tensors, metadata=new))


def torch_bytes(obj) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def zip_bytes() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("hello.txt", "not a checkpoint")
    return buf.getvalue()


def damaged_run(e: Env, name: str = "run") -> str:
    """A copy of the run with a flipped byte in both its checkpoints."""
    run = Path(e.run(name))
    for ckpt in ("best.pt", "last.pt"):
        target = run / "checkpoints" / ckpt
        target.write_bytes(flip_record_byte(target.read_bytes(), lambda n: "/data/" in n))
    return str(run)


def split_folder(e: Env) -> str:
    """A folder data set of one image per split."""
    for split in ("train", "valid", "test"):
        e.image(f"imgs/{split}/a.png")
    return e.p("imgs")


def shipped(damage: Callable[[bytes], bytes]) -> Input:
    """Points pixelgen at a folder of shipped models holding a damaged mnist_pixelcnn."""

    def setup(e: Env) -> str:
        from pixelgen import pretrained

        good = (pretrained.FOLDER / "mnist_pixelcnn.safetensors").read_bytes()
        folder = Path(e.dir("shipped"))
        (folder / "mnist_pixelcnn.safetensors").write_bytes(damage(good))
        e.monkeypatch.setattr(pretrained, "FOLDER", folder)
        return "mnist_pixelcnn"

    return setup


# ------------------------------------------------------------------------ the table


@dataclass(frozen=True)
class Case:
    kind: str  # the class: recipe, option, image, mask, checkpoint, export, shipped, output
    name: str
    line: str  # the command line, see Env.fill
    code: int  # the exit code
    match: str  # a fragment the error line must hold
    inputs: dict[str, Input] = field(default_factory=dict)
    absent: str | None = None  # a fragment it must not hold
    xfail: str | None = None  # a known bug in a module this file does not own


CASES: list[Case] = []


def case(kind, name, line, code=1, match="", *, absent=None, xfail=None, **inputs) -> None:
    CASES.append(Case(kind, name, line, code, match, inputs, absent, xfail))


# --- recipes: train RECIPE (exit 2, the file and the key path named)

GOOD = (
    "model:\n  name: row_lstm\n  hidden: 4\n  layers: 1\n"
    "data:\n  name: binarized_mnist\n"
    "train:\n  max_steps: 1\n"
)


def train(more: str) -> str:
    """``GOOD`` with ``more`` added to its train section."""
    return GOOD + f"  {more}\n"


LAUGHS = "a: &a [x, x, x, x, x, x, x, x, x]\n"  # 9 ** 8 strings, if anything expanded it
for before, name in zip("abcdef", "bcdefg", strict=True):
    LAUGHS += f"{name}: &{name} [{', '.join([f'*{before}'] * 9)}]\n"
LAUGHS += f"model: [{', '.join(['*g'] * 9)}]\n"

RECIPES = {  # name: (text, what the message names); {m} is the payload marker
    "syntax": ("model: [row_lstm\n", "bad.yaml"),
    "syntax-indent": ("model:\n  name: row_lstm\n hidden: 4\n", "bad.yaml"),
    "tab": ("model:\n\tname: row_lstm\n", "bad.yaml"),
    "duplicate-key": ("model:\n  name: row_lstm\n  name: pixelcnn\n", "name"),
    "tag-python-object": ("model: !!python/object/apply:builtins.open ['{m}', 'w']\n", "bad.yaml"),
    "tag-python-name": ("model: !!python/name:os.system\n", "bad.yaml"),
    "tag-custom": ("model: !pwn {{name: row_lstm}}\n", "bad.yaml"),
    "top-list": ("- model\n- train\n", "bad.yaml"),
    "top-scalar": ("just a string\n", "bad.yaml"),
    "empty": ("", "bad.yaml"),
    "billion-laughs": (LAUGHS, "bad.yaml"),
    "unknown-top-key": (GOOD + "trian:\n  lr: 1\n", "trian"),
    "unknown-key": (train("lerning_rate: 1"), "lerning_rate"),
    "unknown-model": (GOOD.replace("row_lstm", "row_lstn"), "row_lstn"),
    "unknown-hparam": (GOOD.replace("layers: 1", "layers: 1\n  hiden: 3"), "hiden"),
    "section-not-mapping": (GOOD + "eval: 3\n", "eval"),
    "type-str-for-int": (train("batch_size: big"), "batch_size"),
    "type-bool-for-float": (train("lr: true"), "lr"),
    "type-list-for-int": (GOOD.replace("hidden: 4", "hidden: [4]"), "hidden"),
    "type-float-for-int": (GOOD.replace("max_steps: 1", "max_steps: 1.5"), "max_steps"),
    "type-null-name": (GOOD.replace("name: row_lstm", "name: null"), "name"),
    "range-lr": (train("lr: -1"), "lr"),
    "range-batch": (train("batch_size: 0"), "batch_size"),
    "range-steps": (GOOD.replace("max_steps: 1", "max_steps: -5"), "max_steps"),
    "range-hidden": (GOOD.replace("hidden: 4", "hidden: 0"), "hidden"),
    "range-temperature": (GOOD + "sample:\n  temperature: 0\n", "temperature"),
    "range-nan": (train("lr: .nan"), "lr"),
    "choice-split": (GOOD + "eval:\n  split: bogus\n", "split"),
    "choice-optimizer": (train("optimizer: sgd"), "optimizer"),
    "both-lengths": (train("epochs: 1"), "epochs"),
}
for name, (text, match) in RECIPES.items():
    bad = (lambda t: lambda e: e.write("bad.yaml", t.format(m=e.marker)))(text)
    case("recipe", name, "train {bad} --out {tmp}/newrun --no-progress", 2, match, bad=bad)

NEW = "--out {tmp}/newrun --no-progress"
case("recipe", "binary", f"train {{bad}} {NEW}", 2, "UTF-8", bad=data("b.yaml", b"\xff\xfe\x80"))
case("recipe", "png-as-recipe", f"train {{bad}} {NEW}", 2, "UTF-8", bad=lambda e: e.image("r.yaml"))
case("recipe", "missing-file", f"train {{tmp}}/nope.yaml {NEW}", 2, "nope.yaml")
case("recipe", "directory", f"train {{bad}} {NEW}", 2, "directory", bad=lambda e: e.dir("r.yaml"))

SETS = {  # name: (--set item, what the message names)
    "set-no-equals": ("train.lr", "KEY=VALUE"),
    "set-empty-key": ("=3", "KEY=VALUE"),
    "set-bad-yaml": ("train.lr=[1", "train.lr"),
    "set-tag": ("train.lr=!!python/name:os.system", "train.lr"),
    "set-unknown-section": ("trian.lr=1", "trian"),
    "set-unknown-key": ("train.lerning_rate=1", "lerning_rate"),
    "set-mapping": ("train={lr:1}", "train"),
    "set-type": ("train.batch_size=big", "batch_size"),
    "set-range": ("model.hidden=-3", "hidden"),
    "set-deep": ("train.lr.x=1", "train.lr"),
}
for name, (item, match) in SETS.items():
    line = f"train quick_rowlstm --set {item} {NEW}"
    case("recipe", name, line, 2, match, absent="did you mean 'train.lr.x'")

# Valid recipes whose data cannot be had: refused before any run directory is left behind.
CIFAR = "train quick_rowlstm --set data.name=cifar10"
FOLDER = "train quick_rowlstm --set data.name=folder --set data.channels=1 --set data.root={root}"
case("recipe", "missing-dataset", f"{CIFAR} --set data.root={{root}} {NEW}", 1, "cifar10",
     root=lambda e: e.dir("nodata"))  # fmt: skip
case("recipe", "missing-dataset-default-out", f"{CIFAR} --no-progress", 1, "cifar10")
case("recipe", "missing-dataset-existing-out", f"{CIFAR} --out {{out}} --no-progress", 1,
     "cifar10", out=lambda e: e.dir("empty"))  # fmt: skip
case("recipe", "folder-of-bad-images", f"{FOLDER} {NEW}", 1, "a.png",
     root=lambda e: e.write("imgs/a.png", "text") and e.p("imgs"))  # fmt: skip
case("recipe", "folder-too-small", f"{FOLDER} {NEW}", 1, "valid",
     root=lambda e: e.image("few/a.png") and e.image("few/b.png") and e.p("few"))  # fmt: skip
case("recipe", "batch-over-data", f"{FOLDER} --set data.image_size=8 --set train.batch_size=64 "
     f"{NEW}", 2, "batch_size", root=split_folder)  # fmt: skip


# --- command-line options (exit 2, the option named, and where --help is)

SAMPLE = "sample {ckpt} --out {tmp}/s.png"
OPTIONS = {  # name: (command line, the option named)
    "sample-n-zero": (f"{SAMPLE} -n 0", "-n"),
    "sample-n-text": (f"{SAMPLE} -n many", "-n"),
    "sample-temperature-zero": (f"{SAMPLE} --temperature 0", "temperature"),
    "sample-temperature-negative": (f"{SAMPLE} --temperature -1", "temperature"),
    "sample-temperature-nan": (f"{SAMPLE} --temperature nan", "temperature"),
    "sample-method": (f"{SAMPLE} --method quick", "method"),
    "sample-size-zero": (f"{SAMPLE} --size 0x5", "--size"),
    "sample-size-text": (f"{SAMPLE} --size big", "--size"),
    "sample-nrow-zero": (f"{SAMPLE} --nrow 0", "--nrow"),
    "sample-device": (f"{SAMPLE} --device tpu", "--device"),
    "sample-unknown-option": (f"{SAMPLE} --bogus", "--bogus"),
    "eval-split": ("eval {ckpt} --split bogus", "--split"),
    "eval-max-images-zero": ("eval {ckpt} --max-images 0", "--max-images"),
    "eval-batch-size-text": ("eval {ckpt} --batch-size x", "--batch-size"),
    "complete-samples-zero": (
        "complete -c {ckpt} --occlude center {image} --samples 0 --out {tmp}/c", "--samples"),
    "complete-no-occlude": ("complete -c {ckpt} {image} --out {tmp}/c", "--occlude"),
    "export-format": ("export {ckpt} --format zip --out {tmp}/m.zip", "--format"),
    "export-batch-zero": (
        "export {ckpt} -f safetensors --batch 0 --out {tmp}/m.safetensors", "--batch"),
    "export-no-out": ("export {ckpt} -f safetensors", "--out"),
    "train-no-recipe": ("train", "recipe"),
    "unknown-command": ("verify {ckpt}", "verify"),
}  # fmt: skip
for name, (line, match) in OPTIONS.items():
    case("option", name, line, 2, match)
case("option", "complete-no-images", "complete {run} --occlude center --out {tmp}/c", 1,
     "no images")  # fmt: skip


# --- images for complete (exit 1, the file named)

COMPLETE = "complete -c {ckpt} --occlude {mask} {image} --samples 1 --out {tmp}/out"
IMAGES = {  # name: (the bad image, what the message names)
    "empty": (data("x.png", b""), "x.png"),
    "text": (data("x.png", "not an image\n"), "x.png"),
    "truncated": (data("x.png", lambda e: e.png_bytes()[:60]), "x.png"),
    "truncated-header": (data("x.png", lambda e: e.png_bytes()[:12]), "x.png"),
    "bad-crc": (data("x.png", lambda e: e.png_bytes()[:29] + b"\0" * 4 + e.png_bytes()[33:]),
                "x.png"),
    "bomb": (data("x.png", png_claiming(100_000, 100_000)), "decompression bomb"),
    "bomb-warning-size": (data("x.png", png_claiming(10_000, 10_000)), "decompression bomb"),
    "header-lies": (data("x.png", png_claiming(28, 28)[:-12]), "x.png"),
    "zero-width": (data("x.png", png_claiming(0, 28)), "x.png"),
    "checkpoint-as-image": (lambda e: e.ckpt("x.png"), "x.png"),
    "missing": (lambda e: e.p("missing.png"), "missing.png"),
    "directory": (lambda e: e.dir("folder.png"), "directory"),
}  # fmt: skip
for name, (image, match) in IMAGES.items():
    case("image", name, COMPLETE, 1, match, image=image, mask=lambda e: "bottom-half")
case("image", "second-of-two", COMPLETE.replace("{image}", "{image} {bad}"), 1, "x.png",
     bad=data("x.png", "text"), mask=lambda e: "bottom-half")  # fmt: skip


# --- masks for complete --occlude (exit 1, the mask named)

MASKS = {  # name: (the bad mask or mode, what the message names)
    "wrong-size": (lambda e: e.image("m.png", size=(10, 12)), "10x12"),
    "empty": (data("m.png", b""), "m.png"),
    "text": (data("m.png", "white = hidden\n"), "m.png"),
    "truncated": (data("m.png", lambda e: e.png_bytes()[:60]), "m.png"),
    "bomb": (data("m.png", png_claiming(100_000, 100_000)), "decompression bomb"),
    "bomb-warning-size": (data("m.png", png_claiming(10_000, 10_000)), "decompression bomb"),
    "missing": (lambda e: e.p("missing.png"), "missing.png"),
    "directory": (lambda e: e.dir("masks.png"), "directory"),
    "unknown-mode": (lambda e: "lower-half", "lower-half"),
    "random-over-one": (lambda e: "random:1.5", "random:1.5"),
    "random-text": (lambda e: "random:half", "random:half"),
    "random-nan": (lambda e: "random:nan", "random:nan"),
}
for name, (mask, match) in MASKS.items():
    case("mask", name, COMPLETE, 1, match, mask=mask)


# --- checkpoints for eval, sample, complete, export (exit 1, the file named)

CONSUMERS = {  # {x} is the checkpoint
    "eval": "eval {x} --max-images 4 --no-progress",
    "sample": "sample {x} -n 1 --out {tmp}/out/s.png",
    "complete": "complete -c {x} --occlude bottom-half {image} --samples 1 --out {tmp}/out/c",
    "export": "export {x} --format safetensors --out {tmp}/out/m.safetensors",
}


def for_each_consumer(kind: str, name: str, x: Input, match: str) -> None:
    for command, line in CONSUMERS.items():
        case(kind, f"{name}-{command}", line, 1, match, x=x)


CHECKPOINT = {  # name: (the bad checkpoint, what the message names)
    "empty": (data("bad.pt", b""), "empty"),
    "png": (data("bad.pt", lambda e: e.png_bytes()), "PNG"),
    "text": (data("bad.pt", "model: row_lstm\n"), "not a checkpoint"),
    "zip-not-torch": (data("bad.pt", zip_bytes()), "bad.pt"),
    "run-dir-without-checkpoint": (lambda e: e.dir("emptyrun/checkpoints") and e.p("emptyrun"),
                                   "emptyrun"),
    "truncated": (data("bad.pt", lambda e: e.best_pt()[: len(e.best_pt()) // 2]), "bad.pt"),
    "truncated-tail": (data("bad.pt", lambda e: e.best_pt()[:-100]), "bad.pt"),
    "flipped-tensor-byte": (data("bad.pt", lambda e: flip_record_byte(
        e.best_pt(), lambda n: "/data/" in n)), "checksum"),
    "flipped-pickle-byte": (data("bad.pt", lambda e: flip_record_byte(
        e.best_pt(), lambda n: n.endswith("data.pkl"))), "bad.pt"),
    "pickle-payload": (data("bad.pt", lambda e: torch_bytes(
        {"format": "pixelgen-checkpoint", "version": 1, "x": Payload(e.marker)})), "refused"),
    "pickle-payload-raw": (data("bad.pt", lambda e: pickle.dumps(
        {"format": "pixelgen-checkpoint", "x": Payload(e.marker)})), "bad.pt"),
    "foreign-torch-file": (data("bad.pt", lambda e: torch_bytes({"w": torch.ones(3)})),
                           "not a pixelgen checkpoint"),
    "newer-version": (data("bad.pt", lambda e: torch_bytes(
        {"format": "pixelgen-checkpoint", "version": 99})), "newer"),
    "incomplete": (data("bad.pt", lambda e: torch_bytes(
        {"format": "pixelgen-checkpoint", "version": 1})), "bad.pt"),
    "missing": (lambda e: e.p("missing.pt"), "missing.pt"),
}  # fmt: skip
for name, (x, match) in CHECKPOINT.items():
    for_each_consumer("checkpoint", name, x, match)
for command, line in CONSUMERS.items():  # no argument: the latest run, damaged
    line = line.replace("-c {x}", "{latest}").replace("{x}", "{latest}")
    case("checkpoint", f"latest-run-damaged-{command}", line, 1, "checksum",
         latest=lambda e: damaged_run(e, "runs/r") and "")  # fmt: skip
case("checkpoint", "truncated-complete-positional",
     "complete {bad} --occlude center {image} --out {tmp}/out", 1, "bad.pt",
     bad=data("bad.pt", lambda e: e.best_pt()[:1000]))  # fmt: skip
case("checkpoint", "train-resume-damaged", "train quick_rowlstm {tiny} --resume --out {run}", 1,
     "checksum", run=damaged_run)  # fmt: skip
case("checkpoint", "train-resume-nothing", "train quick_rowlstm {tiny} --resume --out {run}", 2,
     "--resume", run=lambda e: e.dir("emptyrun"))  # fmt: skip


# --- exports given where a checkpoint is asked for (exit 1, the file named)

ST = "bad.safetensors"
HPARAMS = '{{"channels": 1, "levels": 2, "hidden": {h}, "layers": 1}}'
EXPORTS = {  # name: (the bad export, what the message names)
    "empty": (data(ST, b""), ST),
    "truncated": (data(ST, lambda e: e.assets.safetensors.read_bytes()[:-1000]), "truncated"),
    "header-only": (data(ST, lambda e: e.assets.safetensors.read_bytes()[:200]), ST),
    "huge-header-length": (data(ST, struct.pack("<Q", 2**62) + b"{}"), ST),
    "header-not-json": (data(ST, struct.pack("<Q", 8) + b"{notjson"), ST),
    "flipped-weight-byte": (data(ST, lambda e: flip_safetensors_byte(
        e.assets.safetensors.read_bytes())), "checksum"),
    "foreign": (data(ST, lambda e: safetensors_save({"w": torch.ones(2, 2)})),
                "not a pixelgen safetensors export"),
    "metadata-hparams-damaged": (lambda e: safetensors_with(e, ST, hparams="{bad"), "metadata"),
    "metadata-hparams-list": (lambda e: safetensors_with(e, ST, hparams="[1]"), "hparams"),
    "metadata-hparams-wrong": (lambda e: safetensors_with(
        e, ST, hparams=HPARAMS.format(h=5)), "do not fit"),
    "metadata-hparams-out-of-range": (lambda e: safetensors_with(
        e, ST, hparams=HPARAMS.format(h=-4)), "hidden"),
    "metadata-unknown-model": (lambda e: safetensors_with(e, ST, model_name="gan"), "gan"),
    "metadata-no-checksum": (lambda e: safetensors_with(e, ST, weights_sha256=None),
                             "weights_sha256"),
    "metadata-step-text": (lambda e: safetensors_with(e, ST, step="many"), "metadata"),
    "metadata-newer-format": (lambda e: safetensors_with(e, ST, format_version="99"), "newer"),
    "torchscript-as-checkpoint": (data("m.ts", lambda e: e.assets.torchscript.read_bytes()),
                                  "TorchScript"),
    "torchscript-truncated": (data("m.ts", lambda e: e.assets.torchscript.read_bytes()[:5000]),
                              "m.ts"),
    "torchscript-flipped": (data("m.ts", lambda e: flip_record_byte(
        e.assets.torchscript.read_bytes(), lambda n: "/data/" in n)), "m.ts"),
    "onnx-garbage": (data("m.onnx", b"\x08\x07" + bytes(range(64))), "not a checkpoint"),
}  # fmt: skip
for name, (x, match) in EXPORTS.items():
    for_each_consumer("export", name, x, match)


def safetensors_save(tensors: dict[str, torch.Tensor]) -> bytes:
    from safetensors.torch import save

    return save(tensors)


# --- the shipped pretrained models, damaged in the install (exit 1, the file named)

for name, damage, match in [
    ("truncated", lambda b: b[:100], "damaged shipped model"),
    ("flipped-weight-byte", flip_safetensors_byte, "checksum"),
]:
    model = shipped(damage)
    for_each_consumer("shipped", name, model, match)
    case("shipped", f"{name}-default-sample", "sample {model} -n 1 --out {tmp}/s.png", 1, match,
         model=lambda e, m=model: m(e) and "")  # fmt: skip
# Listing reads only the metadata, which a flipped weight spares.
case("shipped", "truncated-pretrained", "pretrained {model}", 1, "damaged shipped model",
     model=lambda e: shipped(lambda b: b[:100])(e) and "")  # fmt: skip


# --- outputs that cannot be written (exit 1, the path named); root ignores chmod, so: under
# a regular file, in /proc, in /sys, onto a directory; and a run's own files in the way

UNDER = "{file}/sub"  # a path under a regular file
EVAL = "eval {run} --max-images 4 --no-progress"
OUTPUTS = {  # name: (command line, what the message names)
    "sample-out-under-file": (f"sample {{ckpt}} -n 1 --out {UNDER}/s.png", "file.txt"),
    "sample-out-proc": ("sample {ckpt} -n 1 --out /proc/pg-s.png", "/proc"),
    "sample-out-sys": ("sample {ckpt} -n 1 --out /sys/pg-s.png", "/sys"),
    "sample-out-is-directory": ("sample {ckpt} -n 1 --out {dir}", "Is a directory"),
    "sample-out-dir-under-file": (
        f"sample {{ckpt}} -n 1 --out {{tmp}}/s.png --out-dir {UNDER}", "file.txt"),
    "sample-out-dir-collides": (
        "sample {ckpt} -n 2 --out {tmp}/s.png --out-dir {taken}", "sample_2.png"),
    "complete-out-under-file": (
        f"complete -c {{ckpt}} --occlude center {{image}} --samples 1 --out {UNDER}", "file.txt"),
    "complete-out-proc": (
        "complete -c {ckpt} --occlude center {image} --samples 1 --out /proc/pg-c", "/proc"),
    "complete-out-sys": (
        "complete -c {ckpt} --occlude center {image} --samples 1 --out /sys/pg-c", "/sys"),
    "complete-out-collides": (
        "complete -c {ckpt} --occlude center {image} --samples 2 --out {taken}", "digit_2.png"),
    "eval-json-under-file": (f"{EVAL} --json {UNDER}/r.json", "file.txt"),
    "eval-json-proc": (f"{EVAL} --json /proc/pg-r.json", "/proc"),
    "eval-json-is-directory": (f"{EVAL} --json {{dir}}", "is a directory"),
    "eval-report-under-file": (f"{EVAL} --report {UNDER}", "file.txt"),
    "eval-report-sys": (f"{EVAL} --report /sys/pg-report", "/sys"),
    "eval-record-damaged": (f"{EVAL} {{record}}", "eval.json"),
    "eval-record-not-a-list": (f"{EVAL} {{record}}", "eval.json"),
    "export-out-under-file": (
        f"export {{ckpt}} -f safetensors --out {UNDER}/m.safetensors", "file.txt"),
    "export-out-proc": ("export {ckpt} -f safetensors --out /proc/pg-m.safetensors", "/proc"),
    "export-ts-out-sys": ("export {ckpt} -f torchscript --out /sys/pg-m.ts", "/sys"),
    "export-out-is-directory": ("export {ckpt} -f safetensors --out {dir}", "is a directory"),
    "export-out-is-checkpoint": ("export {ckpt} -f torchscript --out {ckpt}", "good.pt"),
    "train-out-under-file": (f"train quick_rowlstm {{tiny}} --out {UNDER}", "file.txt"),
    "train-out-is-file": ("train quick_rowlstm {tiny} --out {file}", "file.txt"),
    "train-out-proc": ("train quick_rowlstm {tiny} --out /proc/pg-run", "/proc"),
    "train-out-sys": ("train quick_rowlstm {tiny} --out /sys/pg-run", "/sys"),
    "train-out-holds-a-run": ("train quick_rowlstm {tiny} --out {run}", "already holds a run"),
}  # fmt: skip
INPUTS = {
    "dir": lambda e: e.dir("d"),
    "taken": lambda e: e.dir("out/sample_2.png") and e.dir("out/digit_2.png") and e.p("out"),
    "record": lambda e: e.run() and e.write("run/eval.json", '[{"split": ') and "",
}
for name, (line, match) in OUTPUTS.items():
    inputs = dict(INPUTS)
    if name == "eval-record-not-a-list":
        inputs["record"] = lambda e: e.run() and e.write("run/eval.json", "{}") and ""
    case("output", name, line, 2 if name == "train-out-holds-a-run" else 1, match, **inputs)


# ------------------------------------------------------------------------ the test


def snapshot(*roots: Path) -> dict[str, bytes | None]:
    """Every path under ``roots``: file bytes, or None for a directory."""
    seen: dict[str, bytes | None] = {}
    for root in roots:
        for folder, dirs, files in os.walk(root):
            for d in dirs:
                seen[os.path.join(folder, d)] = None
            for f in files:
                path = os.path.join(folder, f)
                seen[path] = Path(path).read_bytes()
    return seen


OUTSIDE = ("/proc/pg-", "/sys/pg-")


def param(c: Case):
    marks = [pytest.mark.xfail(strict=True, reason=c.xfail)] if c.xfail else []
    return pytest.param(c, id=f"{c.kind}-{c.name}", marks=marks)


@pytest.mark.parametrize("c", [param(c) for c in CASES])
def test_hostile_input_is_one_error_line_and_leaves_nothing(
    c, assets, tmp_path, monkeypatch, capsys
):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PIXELGEN_RUNS", str(tmp_path / "runs"))
    monkeypatch.setenv("PIXELGEN_DATA", str(tmp_path / "no-data"))
    monkeypatch.delenv("PIXELGEN_DEBUG", raising=False)
    env = Env(tmp_path, assets, monkeypatch)
    argv = env.fill(c.line, c.inputs)
    before = snapshot(tmp_path, assets.run.parent)

    with warnings.catch_warnings(record=True) as warned:
        warnings.simplefilter("always")  # a warning would print above the one error line
        code = main(argv)
    out, err = capsys.readouterr()

    assert code != 0, err
    assert [str(w.message) for w in warned] == []
    assert "Traceback" not in out + err
    assert "internal error" not in err, err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, err
    assert c.match in errors[0], errors[0]
    assert c.absent is None or c.absent not in errors[0], errors[0]
    assert code == c.code, err
    assert not env.marker.exists(), "a pickle or YAML payload ran"
    after = snapshot(tmp_path, assets.run.parent)
    assert sorted(set(after) - set(before)) == [], "left behind"
    assert sorted(set(before) - set(after)) == [], "removed"
    assert [p for p in before if before[p] != after[p]] == [], "changed"
    for arg in argv:
        if arg.startswith(OUTSIDE):
            assert not Path(arg).exists()


def test_docstring_counts_the_cases():
    """The module docstring's numbers are the table's."""
    stated = {k: int(n) for k, n in re.findall(r"^- (\w+) \((\d+)\)", __doc__, re.M)}
    assert stated == dict(Counter(c.kind for c in CASES))
    assert f"({len(CASES)} in all" in __doc__
    assert not any(c.xfail for c in CASES)  # no known bug left
