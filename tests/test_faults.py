"""Faults a careless machine causes: a disk that fills up during a checkpoint write (faked,
and for real on a small tmpfs where the tests run as root), and a run killed with SIGKILL
again and again, which must still end with the uninterrupted run's weights."""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import torch

from pixelgen import checkpoint as ck
from pixelgen import io as pio
from pixelgen.cli import main
from pixelgen.config import load_recipe
from pixelgen.errors import StorageError, TrainingError
from pixelgen.io import atomic_write
from pixelgen.train import train

ROOT = Path(__file__).resolve().parents[1]
TINY = ["model.hidden=4", "model.layers=1", "train.batch_size=4", "train.eval_max_images=4",
        "train.eval_every=3", "train.checkpoint_every=3", "train.log_every=1",
        "eval.batch_size=4", "sample.n=1", "train.optimizer=adam", "train.schedule=cosine",
        "train.warmup_steps=2"]  # fmt: skip
QUIET = {"show_progress": False, "log": lambda *a: None}


def recipe(steps: int, *extra: str):
    return load_recipe("quick_rowlstm", [*TINY, f"train.max_steps={steps}", *extra])


def weights(run: Path) -> dict[str, torch.Tensor]:
    return ck.load_checkpoint(run / "checkpoints" / "last.pt").weights


def leftovers(run: Path) -> list[str]:
    return sorted(p.name for p in run.rglob("*.tmp"))


class _FillsUp:
    """A file whose disk fills up after ``room`` bytes: the rest of a write raises ENOSPC."""

    def __init__(self, f, room: int):
        self.f, self.room = f, room

    def write(self, data) -> int:
        data = bytes(data)
        if len(data) > self.room:
            self.f.write(data[: self.room])
            self.room = 0
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self.room -= len(data)
        return self.f.write(data)

    def __getattr__(self, name):
        return getattr(self.f, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.f.close()


@pytest.fixture
def full_disk(monkeypatch):
    """From now on every atomic write finds the disk full after 1000 bytes."""
    real = os.fdopen
    monkeypatch.setattr(pio.os, "fdopen", lambda fd, mode: _FillsUp(real(fd, mode), 1000))


def test_a_full_disk_keeps_the_old_file_and_says_how_much_was_needed(tmp_path, full_disk):
    path = tmp_path / "x.bin"
    path.write_bytes(b"old")
    with pytest.raises(StorageError) as err:
        atomic_write(path, b"n" * 5000)
    msg = str(err.value)
    assert "No space left on device" in msg and "it needs 5.0 kB" in msg, msg
    assert "is free" in msg and "the previous file is unchanged" in msg, msg
    assert path.read_bytes() == b"old" and list(tmp_path.iterdir()) == [path]


def test_a_failed_write_of_a_new_file_leaves_nothing(tmp_path, full_disk):
    with pytest.raises(StorageError, match="more than 1.0 kB.*nothing was written"):
        atomic_write(tmp_path / "new.bin", lambda f: f.write(b"n" * 5000))
    assert list(tmp_path.iterdir()) == []


def test_a_full_disk_during_a_checkpoint_stops_the_run_and_resume_finishes_it(
    tmp_path, monkeypatch
):
    # The disk fills up while last.pt of step 6 is written (its first save, at step 3, fits).
    real, saves = os.fdopen, []

    def fdopen(fd, mode):
        f = real(fd, mode)
        if Path(os.readlink(f"/proc/self/fd/{fd}")).name.startswith(".last.pt."):
            saves.append(fd)
            if len(saves) == 2:
                return _FillsUp(f, 1000)
        return f

    with monkeypatch.context() as m:
        m.setattr(pio.os, "fdopen", fdopen)
        with pytest.raises(TrainingError) as err:
            train(recipe(9), run_dir=tmp_path / "run", **QUIET)
    msg = str(err.value)
    assert "last.pt" in msg and "No space left on device" in msg and "it needs" in msg, msg
    assert "holds step 3" in msg and "--resume --out" in msg and "\n" not in msg, msg
    assert ck.load_checkpoint(tmp_path / "run" / "checkpoints" / "last.pt").step == 3
    assert leftovers(tmp_path / "run") == []
    # Room again: the run continues and ends exactly where an uninterrupted one does.
    train(recipe(9), run_dir=tmp_path / "run", resume=True, **QUIET)
    train(recipe(9), run_dir=tmp_path / "full", **QUIET)
    a, b = weights(tmp_path / "run"), weights(tmp_path / "full")
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_the_command_line_gives_one_line_and_a_non_zero_exit(
    tmp_path, monkeypatch, capsys, full_disk
):
    sets = [a for s in [*TINY, "train.max_steps=3"] for a in ("--set", s)]
    code = main(["train", "quick_rowlstm", *sets, "--no-progress", "--out", str(tmp_path / "r")])
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.startswith("error:")]
    assert code != 0 and len(lines) == 1 and "Traceback" not in err, err
    assert "No space left on device" in lines[0] and "run it again" in lines[0]
    assert "no checkpoint was written yet" in lines[0]


@pytest.fixture
def small_tmpfs(tmp_path):
    """A 2 MB tmpfs, where the tests run as root and may mount one."""
    where = tmp_path / "disk"
    where.mkdir()
    if os.geteuid() != 0 or not shutil.which("mount"):
        pytest.skip("mounting a tmpfs needs root")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(where)],
                          capture_output=True)  # fmt: skip
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    yield where
    subprocess.run(["umount", "-l", str(where)], check=False)


def test_a_really_full_disk(tmp_path, small_tmpfs):
    # A constant rate, so that a run of 3 steps continued to 6 equals a run of 6.
    const = "train.schedule=constant"
    run = small_tmpfs / "run"
    train(recipe(3, const), run_dir=run, **QUIET)
    filler = small_tmpfs / "filler"
    room = shutil.disk_usage(small_tmpfs).free - 8192  # room for a few metrics lines only
    filler.write_bytes(b"\0" * room)
    with pytest.raises(TrainingError, match="No space left on device") as err:
        train(recipe(6, const), run_dir=run, resume=True, **QUIET)
    assert "holds step 3" in str(err.value), str(err.value)
    assert ck.load_checkpoint(run / "checkpoints" / "last.pt").step == 3
    assert leftovers(run) == []
    filler.unlink()
    train(recipe(6, const), run_dir=run, resume=True, **QUIET)
    train(recipe(6, const), run_dir=tmp_path / "full", **QUIET)
    a, b = weights(run), weights(tmp_path / "full")
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_written_files_get_the_usual_mode(tmp_path, monkeypatch):
    """As open() would make them (0666 less the umask), not mkstemp's 0600; a replaced
    file keeps its mode."""
    monkeypatch.setattr(pio, "_UMASK", 0o022)
    atomic_write(tmp_path / "new.bin", b"x")
    assert (tmp_path / "new.bin").stat().st_mode & 0o777 == 0o644
    (tmp_path / "new.bin").chmod(0o640)
    atomic_write(tmp_path / "new.bin", b"y")
    assert (tmp_path / "new.bin").stat().st_mode & 0o777 == 0o640


def test_all_or_none_puts_back_what_an_earlier_run_wrote(tmp_path):
    from pixelgen.io import all_or_none

    (tmp_path / "a.png").write_bytes(b"old a")
    with pytest.raises(RuntimeError), all_or_none([]):
        atomic_write(tmp_path / "a.png", b"new a")
        atomic_write(tmp_path / "c.png", b"new c")
        raise RuntimeError("the third output cannot be written")
    assert (tmp_path / "a.png").read_bytes() == b"old a"  # restored, not removed
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png"]  # c removed, no backups
    with all_or_none([]):
        atomic_write(tmp_path / "a.png", b"new a")
    assert (tmp_path / "a.png").read_bytes() == b"new a"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png"]
