"""Checked checkpoints: every tensor's checksum is recorded and verified, a bit flipped
anywhere in the weights or the training state is refused with a message naming the entry
and an intact checkpoint, last.pt keeps its predecessor, and --resume falls back to it."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from pixelgen import checkpoint as ck
from pixelgen.config import load_recipe
from pixelgen.errors import CheckpointError
from pixelgen.train import train

TINY = ["model.hidden=4", "model.layers=1", "train.batch_size=4", "train.eval_max_images=4",
        "train.eval_every=2", "train.checkpoint_every=2", "eval.batch_size=4", "sample.n=1",
        "train.optimizer=adam"]  # fmt: skip
QUIET = {"show_progress": False, "log": lambda *a: None}


def run(tmp_path: Path, steps: int, resume: bool = False, log=None) -> Path:
    recipe = load_recipe("quick_rowlstm", [*TINY, f"train.max_steps={steps}"])
    quiet = dict(QUIET, log=log) if log else QUIET
    train(recipe, run_dir=tmp_path / "run", resume=resume, **quiet)
    return tmp_path / "run" / "checkpoints"


def tensor_records(path: Path) -> list[tuple[str, int, int]]:
    """``(name, data offset, size)`` of each tensor record in a checkpoint's zip."""
    out = []
    with zipfile.ZipFile(path) as z, open(path, "rb") as f:
        for info in z.infolist():
            if "/data/" not in info.filename or info.file_size == 0:
                continue
            f.seek(info.header_offset + 26)
            name_len, extra_len = (
                int.from_bytes(f.read(2), "little"),
                int.from_bytes(f.read(2), "little"),
            )
            out.append((info.filename, info.header_offset + 30 + name_len + extra_len,
                        info.file_size))  # fmt: skip
    return out


def flipped(path: Path, offset: int, out: Path) -> Path:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x10
    out.write_bytes(bytes(data))
    return out


def loads_silently(path: Path) -> bool:
    try:
        ck.load_checkpoint(path)
    except CheckpointError:
        return False
    return True


def test_every_flipped_tensor_record_is_refused(tmp_path, monkeypatch):
    folder = run(tmp_path, 4)
    last = folder / "last.pt"
    records = tensor_records(last)
    assert len(records) > 20  # weights, optimizer moments, RNG states
    copies = [flipped(last, off + size // 2, folder / f"flip{k}.pt")
              for k, (_, off, size) in enumerate(records)]  # fmt: skip
    assert not any(loads_silently(p) for p in copies)
    # negative control: without the checksums, some of these flips load silently
    monkeypatch.setattr(ck, "_verify", lambda payload, path: None)
    assert sum(loads_silently(p) for p in copies) > 0


def test_a_damaged_zip_directory_is_a_checkpoint_error(tmp_path):
    """Damage to the zip's central directory, which zipfile reads before anything else,
    is one checkpoint error whatever zipfile raises (NotImplementedError for a version
    field, UnicodeDecodeError for a name flagged UTF-8, ...)."""
    folder = run(tmp_path, 2)
    last = folder / "last.pt"
    data = last.read_bytes()
    entry = data.find(b"PK\x01\x02")  # the first central directory entry
    assert entry > 0
    damaged = []
    # Each field of the first entry's fixed part (versions, flags, method, sizes, lengths)
    for offset in range(entry + 4, entry + 46):
        copy = bytearray(data)
        copy[offset] ^= 0xFF
        damaged.append(folder / f"dir{offset - entry}.pt")
        damaged[-1].write_bytes(bytes(copy))
    for path in damaged:
        try:
            ck.load_checkpoint(path)
        except CheckpointError:
            pass  # loading one that still reads is fine too: the checksums vouch for it


def test_the_error_names_the_entry_and_an_intact_checkpoint(tmp_path):
    folder = run(tmp_path, 4)
    last = folder / "last.pt"
    name, off, size = next(r for r in tensor_records(last) if r[2] >= 64)
    bad = flipped(last, off + size // 2, last)
    with pytest.raises(CheckpointError) as err:
        ck.load_checkpoint(bad)
    message = str(err.value)
    assert "corrupted" in message and "does not match its recorded checksum" in message
    assert ("weights/" in message or "state/" in message) and "\n" not in message
    assert "last.prev.pt is intact" in message


def test_last_keeps_its_predecessor(tmp_path):
    folder = run(tmp_path, 4)
    assert ck.load_checkpoint(folder / "last.pt").step == 4
    assert ck.load_checkpoint(folder / "last.prev.pt").step == 2


def test_resume_falls_back_to_the_previous_checkpoint_with_a_warning(tmp_path):
    folder = run(tmp_path, 4)
    last = folder / "last.pt"
    _, off, size = tensor_records(last)[0]
    flipped(last, off + size // 2, last)
    lines = []
    run(tmp_path, 6, resume=True, log=lines.append)
    assert any(ln.startswith("warning:") and "resuming from" in ln and "(step 2)" in ln
               for ln in lines)  # fmt: skip
    assert ck.load_checkpoint(last).step == 6
    # the damaged file was set aside, not kept as last.prev.pt over the intact one
    assert (folder / "last.damaged.pt").is_file()
    assert ck.load_checkpoint(folder / "last.prev.pt").step == 4


def test_a_changed_plain_value_is_refused(tmp_path):
    import torch

    folder = run(tmp_path, 4)
    payload = torch.load(folder / "last.pt", weights_only=True)
    payload["step"] = 5  # a flipped bit in a plain value: the step, not a tensor
    torch.save(payload, folder / "edited.pt")
    with pytest.raises(CheckpointError, match="plain values"):
        ck.load_checkpoint(folder / "edited.pt")


def test_last_exists_at_every_moment_of_a_save(tmp_path, monkeypatch):
    import pixelgen.io as io

    folder = run(tmp_path, 2)
    last, real = folder / "last.pt", io.os.replace
    seen = []

    def replace(src, dst):
        seen.append(last.exists())
        real(src, dst)

    monkeypatch.setattr(io.os, "replace", replace)
    ckpt = ck.load_checkpoint(last)
    ck.save_checkpoint(last, ckpt, keep_previous=True)
    assert seen and all(seen) and (folder / "last.prev.pt").is_file()


def test_resume_without_last_uses_the_previous_one(tmp_path):
    folder = run(tmp_path, 4)
    (folder / "last.pt").unlink()
    lines = []
    run(tmp_path, 6, resume=True, log=lines.append)
    assert any("resuming from" in ln and "last.prev.pt" in ln for ln in lines)
    assert ck.load_checkpoint(folder / "last.pt").step == 6


@pytest.mark.parametrize(
    ("content", "kind"),
    [(b"", "an empty file"), (b"\x89PNG\r\n\x1a\n....", "a PNG image"),
     (b"\xff\xd8\xff\xe0..", "a JPEG image")],
)  # fmt: skip
def test_a_file_that_is_not_a_checkpoint_says_what_it_is(tmp_path, content, kind):
    path = tmp_path / "x.pt"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match=f"{kind}, not a checkpoint"):
        ck.load_checkpoint(path)
