"""The command line: thin commands, one-line errors with exit codes, no tracebacks."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from pixelgen.cli import main

ROOT = Path(__file__).resolve().parents[1]
TINY = [
    "--set",
    "model.hidden=4",
    "--set",
    "model.layers=1",
    "--set",
    "train.batch_size=4",
    "--set",
    "train.max_steps=2",
    "--set",
    "train.eval_max_images=8",
    "--set",
    "sample.n=2",
    "--no-progress",
]


def run(args, capsys):
    code = main(args)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def trained(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PIXELGEN_RUNS", str(tmp_path / "runs"))
    code, _, err = run(["train", "quick_rowlstm", *TINY], capsys)
    assert code == 0, err
    return tmp_path / "runs"


def test_train_then_eval_latest_run_with_json(trained, tmp_path, capsys):
    out_json = tmp_path / "r.json"
    code, out, err = run(
        ["eval", "--bits-per-dim", "--max-images", "16", "--json", str(out_json), "--no-progress"],
        capsys,
    )
    assert code == 0, err
    assert "using the most recent run" in err and "bits/dim" in err
    report = json.loads(out_json.read_text())
    assert set(report) >= {
        "split",
        "num_images",
        "nll_nats",
        "bits_per_dim",
        "nll_nats_stderr",
        "checkpoint",
        "model",
        "data",
    }
    assert report["num_images"] == 16 and report["split"] == "test"
    assert report["bits_per_dim"] == pytest.approx(report["nll_nats"] / (784 * 0.6931471805599453))
    run_dir = next(trained.iterdir())
    assert json.loads((run_dir / "eval.json").read_text())[-1]["nll_nats"] == report["nll_nats"]


@pytest.mark.parametrize(
    "args,code,message",
    [
        (["train", "no_such_recipe"], 2, "no such recipe"),
        (["train", "quick_rowlstm", "--set", "train.lerning_rate=1"], 2, "did you mean 'train.lr'"),
        (["train", "quick_rowlstm", "--set", "train.batch_size=big"], 2, "train.batch_size"),
        (["train", "quick_rowlstm", "--set", "train.lr=-1"], 2, "train.lr"),
        (["train", "quick_rowlstm", "--set", "model.name=row_lstn"], 2, "did you mean 'row_lstm'"),
        (["eval", "/nonexistent/ckpt.pt"], 1, "no such checkpoint"),
        (["eval", "--split", "bogus", "/nonexistent"], 2, "--split"),
    ],
)
def test_bad_input_is_one_line_error(args, code, message, capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("PIXELGEN_RUNS", str(tmp_path / "runs"))
    got, out, err = run(args, capsys)
    assert got == code
    assert message in err
    assert "Traceback" not in err + out
    assert len(err.strip().splitlines()) <= 2  # one message (rich may wrap long lines)


def test_eval_without_runs_or_shipped_models_says_how_to_get_one(tmp_path, monkeypatch, capsys):
    from pixelgen import pretrained

    monkeypatch.setenv("PIXELGEN_RUNS", str(tmp_path / "empty"))
    monkeypatch.setattr(pretrained, "FOLDER", tmp_path / "no_shipped_models")
    code, _, err = run(["eval"], capsys)
    assert code == 1 and "train one first" in err


def test_models_and_recipes_listings(capsys):
    code, _, err = run(["models"], capsys)
    assert code == 0 and all(n in err for n in ("pixelcnn", "row_lstm", "diagonal_bilstm"))
    code, _, err = run(["recipes"], capsys)
    assert code == 0 and "mnist_rowlstm" in err and "quick_pixelcnn" in err


def test_recipes_schema_is_json_on_stdout(capsys):
    from pixelgen.config import recipe_schema

    code, out, err = run(["recipes", "--schema"], capsys)
    assert code == 0 and not err.strip()
    schema = json.loads(out)
    assert schema == json.loads(json.dumps(recipe_schema()))
    assert "lr" in schema["$defs"]["TrainConfig"]["properties"]


def test_python_dash_m_and_help_document_every_command():
    out = subprocess.run(
        [sys.executable, "-m", "pixelgen", "--help"],
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(ROOT / "src"), "PATH": ""},
    )
    assert out.returncode == 0
    for command in ("train", "eval", "models", "recipes"):
        assert command in out.stdout


def test_debug_variable_shows_traceback(tmp_path, monkeypatch):
    env = {"PYTHONPATH": str(ROOT / "src"), "PIXELGEN_DEBUG": "1", "PATH": ""}
    out = subprocess.run(
        [sys.executable, "-m", "pixelgen", "eval", str(tmp_path / "x.pt")],
        capture_output=True,
        text=True,
        env=env,
    )
    assert out.returncode != 0 and "Traceback" in out.stderr


def test_version_and_completion_options(capsys):
    import pixelgen

    code = main(["--version"])
    out, _ = capsys.readouterr()
    assert code == 0 and out.strip() == f"pixelgen {pixelgen.__version__}"
    assert main(["--help"]) == 0
    out, _ = capsys.readouterr()
    assert "--install-completion" in out and "--version" in out
