"""``pixelgen runs`` and ``pixelgen plot`` through the command line, on one tiny trained run
copied into the states a run can be in."""

from __future__ import annotations

import json
import shutil

import pytest
from PIL import Image

from pixelgen import checkpoint as ck
from pixelgen.cli import main
from pixelgen.cli.app import console
from pixelgen.plots import COLOURS
from pixelgen.runs import holds_lock, list_runs
from pixelgen.train.lock import RunLock

TINY = [
    *("--set", "model.hidden=4", "--set", "model.layers=1", "--set", "train.batch_size=4"),
    *("--set", "train.max_steps=2", "--set", "train.eval_max_images=8", "--set", "sample.n=2"),
    "--no-progress",
]


def run(args, capsys):
    code = main(args)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One finished tiny run, then evaluated once (so that it has an eval.json)."""
    root = tmp_path_factory.mktemp("runs")
    run_dir = root / "quick_rowlstm-20260101-120000"
    assert main(["train", "quick_rowlstm", *TINY, "--out", str(run_dir)]) == 0
    assert main(["eval", str(run_dir), "--max-images", "8", "--no-progress"]) == 0
    return run_dir


@pytest.fixture
def root(trained, tmp_path):
    """A runs folder holding the run in every state, and a folder that is no run."""
    root = tmp_path / "runs"
    root.mkdir()
    for name in ("finished", "stopped", "damaged", "running"):
        shutil.copytree(trained, root / name)
    # stopped: the same checkpoint, but its recipe asks for 10 steps
    last = root / "stopped" / "checkpoints" / "last.pt"
    c = ck.load_checkpoint(last)
    c.recipe["train"]["max_steps"] = 10
    ck.save_checkpoint(last, c)
    # damaged: last.pt cut short
    last = root / "damaged" / "checkpoints" / "last.pt"
    last.write_bytes(last.read_bytes()[:1000])
    (root / "notes").mkdir()
    return root


def test_runs_lists_every_state_with_its_numbers(root, trained, capsys):
    lock = RunLock(root / "running")
    lock.acquire()  # this live process trains "running"
    try:
        code, out, err = run(["runs", str(root), "--json"], capsys)
    finally:
        lock.release()
    assert code == 0, err
    runs = {r["path"].rsplit("/", 1)[-1]: r for r in json.loads(out)}
    assert set(runs) == {"finished", "stopped", "damaged", "running"}  # not "notes"
    assert {k: r["state"] for k, r in runs.items()} == {
        "finished": "finished",
        "stopped": "stopped",
        "damaged": "damaged",
        "running": "running",
    }
    f = runs["finished"]
    assert (f["recipe"], f["model"], f["data"]) == ("quick_rowlstm", "row_lstm", "binarized_mnist")
    assert (f["step"], f["total"], f["images_seen"]) == (2, 2, 8)
    valid = [r for r in _metrics(trained) if r["split"] == "valid"]
    assert f["best_valid_nats"] == min(r["nll_nats"] for r in valid)
    assert f["best_valid_bits_per_dim"] == pytest.approx(f["best_valid_nats"] / (784 * 0.693147))
    evals = json.loads((trained / "eval.json").read_text())
    assert f["test"]["nll_nats"] == evals[-1]["nll_nats"] and f["test"]["num_images"] == 8
    assert runs["stopped"]["total"] == 10 and runs["stopped"]["problems"] == []
    assert "last.pt" in runs["damaged"]["problems"][0]
    assert runs["damaged"]["model"] == "row_lstm"  # from best.pt, which is intact


def test_runs_table_and_the_damaged_reason(root, capsys, monkeypatch):
    monkeypatch.setenv("PIXELGEN_RUNS", str(root))  # the default ROOT
    monkeypatch.setattr(console, "_width", 200)  # a wide terminal: no folded names
    code, out, err = run(["runs"], capsys)
    assert code == 0 and out == ""
    for word in ("quick_rowlstm", "row_lstm", "2/2", "8 images", "finished", "stopped", "damaged"):
        assert word in err
    assert err.count("running") == 1  # its directory; nobody holds the lock now
    problem = [ln for ln in err.splitlines() if ln.startswith("damaged:")]
    assert (
        len(problem) == 1 and "last.pt" in problem[0] and "not a readable checkpoint" in problem[0]
    )


def test_a_narrow_terminal_gets_whole_names_in_lines_instead_of_the_table(
    root, capsys, monkeypatch
):
    monkeypatch.setattr(console, "_width", 60)
    code, out, err = run(["runs", str(root)], capsys)
    assert code == 0 and "───" not in err  # no table rule
    lines = err.splitlines()
    runs = list_runs(root)
    assert len(runs) == 4
    for r in runs:  # each run's recipe, state and whole directory on its first line
        assert f"{r.recipe or '?'}  {r.state}  {r.path}" in lines
    assert "best valid" in err and "nats (" in err


def test_runs_never_checks_tensor_checksums(root, capsys, monkeypatch):
    def refuse(t):
        raise AssertionError("a tensor checksum was computed")

    monkeypatch.setattr(ck, "_digest", refuse)
    code, out, err = run(["runs", str(root), "--json"], capsys)
    assert code == 0, err
    assert len(json.loads(out)) == 4


def test_runs_of_an_empty_or_missing_root(tmp_path, capsys, monkeypatch):
    code, out, err = run(["runs", str(tmp_path)], capsys)
    assert code == 0 and err.count("\n") == 1 and "no runs under" in err
    monkeypatch.setenv("PIXELGEN_RUNS", str(tmp_path / "never"))
    code, out, err = run(["runs"], capsys)  # the default root before any training
    assert code == 0 and err.count("\n") == 1 and "pixelgen train" in err
    code, out, err = run(["runs", str(tmp_path / "typo")], capsys)
    assert code == 1 and err.count("\n") == 1 and "no such folder" in err


def test_lock_is_tested_without_taking_it(trained, tmp_path):
    run_dir = tmp_path / "r"
    shutil.copytree(trained, run_dir)
    lock = RunLock(run_dir)
    lock.acquire()
    assert holds_lock(run_dir)
    assert holds_lock(run_dir)  # looking twice takes nothing
    lock.release()
    # The lock file still names this (live) process, but nobody holds the lock.
    assert (run_dir / ".lock").read_text().strip().isdigit()
    assert not holds_lock(run_dir)


def test_plot_draws_every_run_on_one_figure(root, tmp_path, capsys):
    out = tmp_path / "curves.png"
    args = ["plot", str(root / "finished"), str(root / "stopped"), "--out", str(out)]
    code, _, err = run(args, capsys)
    assert code == 0, err
    assert "validation NLL (nats) of 2 runs against images seen: finished, stopped" in err
    with Image.open(out) as img:
        colours = {c for _, c in img.convert("RGB").getcolors(1 << 20)}
    assert COLOURS[0] in colours and COLOURS[1] in colours  # one line colour per run
    code, _, err = run([*args, "--x", "step", "--bits-per-dim"], capsys)
    assert code == 0 and "(bits/dim) of 2 runs against step" in err


def test_plot_takes_a_run_name_under_the_runs_root(root, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("PIXELGEN_RUNS", str(root))
    code, _, err = run(["plot", "finished", "--out", str(tmp_path / "c.png")], capsys)
    assert code == 0 and "of 1 run against" in err


@pytest.mark.parametrize(
    "case,message",
    [
        ("no_valid", "no validation records"),
        ("unwritable", "cannot write the output there"),
        ("missing", "no such run directory"),
        ("bad_x", "--x: must be images or step"),
    ],
)
def test_plot_errors_are_one_line(root, tmp_path, capsys, case, message):
    run_dir, out, extra = root / "finished", tmp_path / "c.png", []
    if case == "no_valid":
        lines = (run_dir / "metrics.jsonl").read_text().splitlines()
        train_only = [ln for ln in lines if '"valid"' not in ln]
        (run_dir / "metrics.jsonl").write_text("\n".join(train_only) + "\n")
    elif case == "unwritable":
        (tmp_path / "file").write_text("")
        out = tmp_path / "file" / "c.png"
    elif case == "missing":
        run_dir = tmp_path / "nope"
    else:
        extra = ["--x", "epochs"]
    code, _, err = run(["plot", str(run_dir), "--out", str(out), *extra], capsys)
    assert code != 0 and err.count("\n") == 1 and message in err, err
    assert not out.exists()


def _metrics(run_dir):
    return [json.loads(ln) for ln in (run_dir / "metrics.jsonl").read_text().splitlines() if ln]
