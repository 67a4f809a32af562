"""Export (issue 4): every format, for every model with 1 and 3 colours, round-trips the
checkpoint's logits; the files load where they are meant to (safetensors alone, TorchScript
without pixelgen); damaged files are refused with one line; the CLI reports the difference.

Images are 4x3 (height != width, so a transposed size cannot pass) and models have 2
layers, which keeps the unrolled ONNX graphs of the recurrent models small.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
import textwrap

import pytest
import torch

import pixelgen
from conftest import tiny_model
from pixelgen.checkpoint import Checkpoint, save_checkpoint
from pixelgen.errors import CheckpointError, ExportError, PixelgenError
from pixelgen.export import export_checkpoint, load_exported, portable_weights
from pixelgen.export import pipeline as export_pipeline

MODELS = pixelgen.list_models()
FORMATS = ["safetensors", "torchscript", "onnx"]
SUFFIX = {"safetensors": ".safetensors", "torchscript": ".ts", "onnx": ".onnx"}
H, W, LEVELS = 4, 3, 4

# The tests call torch.jit.load directly, as a deployment would.
pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:DeprecationWarning")


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny tensors: threads only add synchronisation, which costs dearly on a busy machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def make_checkpoint(
    tmp_path, name="pixelcnn", channels=1, *, recipe=None, data=None, levels=LEVELS, **model_kw
):
    """A tiny fp32 checkpoint in ``tmp_path`` and the model it was saved from."""
    model = tiny_model(name, channels=channels, levels=levels, **model_kw).float()
    data = (
        data
        if data is not None
        else {
            "height": H,
            "width": W,
            "channels": channels,
            "levels": levels,
        }
    )
    path = tmp_path / f"{name}-{channels}.pt"
    save_checkpoint(
        path,
        Checkpoint(
            model_name=name,
            hparams=model.hparams,
            weights=model.state_dict(),
            recipe=recipe or {},
            data=data,
            step=12,
        ),
    )
    return path, model


def images(model, n, height=H, width=W, seed=7):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, model.levels, (n, model.channels, height, width), generator=g)


def run_outside_pixelgen(fmt, path, x):
    """Logits of ``x`` from the file, read with the format's own library, not pixelgen."""
    if fmt == "safetensors":
        return pixelgen.load_model(path)(x)
    if fmt == "torchscript":
        return torch.jit.load(str(path))(x)
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return torch.from_numpy(session.run(["logits"], {"images": x.numpy()})[0])


# ---------------------------------------------------------------------------- round trips


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("name", MODELS)
def test_export_round_trips_the_logits(tmp_path, name, channels, fmt):
    ckpt, model = make_checkpoint(tmp_path, name, channels)
    out = tmp_path / f"model{SUFFIX[fmt]}"
    report = export_checkpoint(ckpt, fmt, out, batch=4)

    assert report.path == out and out.is_file() and report.format == fmt
    assert report.num_images == 4 and report.max_abs_diff <= report.bound
    assert report.images_source.startswith("random images (data set not found: ")
    assert (report.height, report.width) == (H, W)
    # Batch sizes other than the exporter's example batch (3) and the verification batch.
    with torch.no_grad():
        for n in (5, 1):
            x = images(model, n)
            want = model(x)  # (n, L, C, H, W)
            got = run_outside_pixelgen(fmt, out, x)
            assert got.shape == (n, LEVELS, channels, H, W)
            if fmt == "safetensors":
                assert torch.equal(got, want)  # masks folded in: bit for bit the same
            else:
                torch.testing.assert_close(got, want, atol=1e-5, rtol=0)


def test_safetensors_model_is_size_free_and_described(tmp_path):
    ckpt, model = make_checkpoint(tmp_path, "row_lstm", 3)
    out = tmp_path / "m.safetensors"
    export_checkpoint(ckpt, "safetensors", out)
    loaded = pixelgen.load_model(out)
    assert loaded.model_name == "row_lstm" and loaded.hparams == model.hparams
    assert not loaded.training
    with torch.no_grad():
        x = images(model, 2, height=6, width=7)  # weights carry no image size
        assert torch.equal(loaded(x), model(x))
    info = load_exported(out).info
    assert info["data"] == {"height": H, "width": W, "channels": 3, "levels": LEVELS}
    assert info["step"] == 12 and info["format_version"] == 1


def test_safetensors_reads_with_the_safetensors_library_alone(tmp_path):
    from safetensors import safe_open
    from safetensors.torch import load_file

    ckpt, model = make_checkpoint(tmp_path, "diagonal_bilstm", 3)
    out = tmp_path / "m.safetensors"
    export_checkpoint(ckpt, "safetensors", out)

    tensors = load_file(str(out))
    state = model.state_dict()
    assert set(tensors) == {k for k in state if not k.endswith(".mask")}
    assert all(t.dtype == torch.float32 for t in tensors.values())
    # Masked kernels are stored pre-multiplied; everything else as is.
    assert torch.equal(tensors["input_conv.weight"], model.input_conv.masked_weight())
    assert not torch.equal(tensors["input_conv.weight"], state["input_conv.weight"])
    assert torch.equal(tensors["rnns.0.left.state_to_state"], state["rnns.0.left.state_to_state"])
    with safe_open(str(out), framework="pt") as f:
        meta = f.metadata()
    assert meta["model_name"] == "diagonal_bilstm"
    assert json.loads(meta["hparams"]) == model.hparams
    assert json.loads(meta["data"])["channels"] == 3
    assert meta["pixelgen_version"] == pixelgen.__version__ and meta["format_version"] == "1"


def test_torchscript_loads_without_pixelgen(tmp_path):
    files, expected = {}, {}
    for name in MODELS:
        ckpt, model = make_checkpoint(tmp_path, name, 3)
        out = tmp_path / f"{name}.ts"
        export_checkpoint(ckpt, "torchscript", out, batch=2)
        x = images(model, 6)
        with torch.no_grad():
            expected[name] = {"x": x, "logits": model(x)}
        files[name] = str(out)
    torch.save(expected, tmp_path / "expected.pt")
    script = textwrap.dedent(f"""
        import json, sys
        sys.modules["pixelgen"] = None  # even if it is installed, it must not be used
        try:
            import pixelgen
        except ImportError:
            pass
        else:
            raise SystemExit("pixelgen is importable")
        import torch
        expected = torch.load("expected.pt", weights_only=True)
        result = {{}}
        for name, path in {files!r}.items():
            extra = {{"pixelgen.json": ""}}
            program = torch.jit.load(path, _extra_files=extra)
            e = expected[name]
            diff = (program(e["x"]) - e["logits"]).abs().max().item()
            try:
                program(e["x"][:, :, :-1])
                refused = False
            except Exception as exc:
                refused = "exported for" in str(exc)
            result[name] = {{
                "diff": diff, "refused": refused, "meta": json.loads(extra["pixelgen.json"]),
                "attrs": [program.model_name, program.channels, program.height, program.width,
                          program.levels],
            }}
        print(json.dumps(result))
    """)
    # -I: no PYTHONPATH, no user site, no script directory; cwd has no pixelgen either.
    proc = subprocess.run(
        [sys.executable, "-I", "-c", script],
        cwd=tmp_path,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    for name in MODELS:
        r = result[name]
        assert r["diff"] < 1e-5, (name, r["diff"])
        assert r["refused"], f"{name}: a wrong image size must be refused with a clear message"
        assert r["attrs"] == [name, 3, H, W, LEVELS]
        assert r["meta"]["model_name"] == name and r["meta"]["height"] == str(H)


# ---------------------------------------------------------------------------- damaged files


def _flip_inside_weights(path, model):
    """Flip one byte in the middle of a stored weight tensor (not the header or the graph),
    so that only a checksum can notice."""
    data = bytearray(path.read_bytes())
    conv = model.head.hidden
    for tensor in (conv.masked_weight(), conv.weight, portable_weights(model)["head.out.weight"]):
        raw = tensor.detach().contiguous().numpy().tobytes()
        at = data.find(raw)
        if at >= 0:
            data[at + len(raw) // 2] ^= 0x5A
            path.write_bytes(bytes(data))
            return
    raise AssertionError(f"{path}: weight bytes not found in the file")


def _load(fmt, path):
    return pixelgen.load_model(path) if fmt == "safetensors" else load_exported(path, fmt)


@pytest.mark.parametrize("damage", ["truncated", "corrupted"])
@pytest.mark.parametrize("fmt", FORMATS)
def test_damaged_export_is_refused_with_one_line(tmp_path, fmt, damage):
    ckpt, model = make_checkpoint(tmp_path, "pixelcnn", 3)
    out = tmp_path / f"m{SUFFIX[fmt]}"
    export_checkpoint(ckpt, fmt, out, verify=False)
    _load(fmt, out)  # intact: loads
    if damage == "truncated":
        out.write_bytes(out.read_bytes()[: out.stat().st_size * 2 // 3])
    else:
        _flip_inside_weights(out, model)
    error = CheckpointError if fmt == "safetensors" else ExportError
    with pytest.raises(error) as info:
        _load(fmt, out)
    message = str(info.value)
    assert "\n" not in message and str(out) in message
    if damage == "corrupted":
        assert "corrupted" in message


def test_foreign_safetensors_file_is_refused(tmp_path):
    from safetensors.torch import save_file

    path = tmp_path / "other.safetensors"
    save_file({"w": torch.zeros(2)}, str(path))
    with pytest.raises(CheckpointError, match="not a pixelgen safetensors export"):
        pixelgen.load_model(path)


@pytest.mark.parametrize("fmt", FORMATS)
def test_verification_catches_an_export_that_differs(tmp_path, monkeypatch, fmt):
    write = export_pipeline.WRITERS[fmt]

    def write_perturbed(model, ckpt, out, **kw):
        wrong = copy.deepcopy(model)
        with torch.no_grad():
            wrong.head.out.bias.add_(0.01)  # a 1e-2 error in every logit
        write(wrong, ckpt, out, **kw)

    monkeypatch.setitem(export_pipeline.WRITERS, fmt, write_perturbed)
    ckpt, _ = make_checkpoint(tmp_path)
    out = tmp_path / f"m{SUFFIX[fmt]}"
    with pytest.raises(ExportError, match="does not reproduce the checkpoint") as info:
        export_checkpoint(ckpt, fmt, out)
    assert "\n" not in str(info.value)
    assert not out.exists(), "a file that failed verification must be removed"


def test_missing_onnx_extra_is_one_clear_line(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    ckpt, _ = make_checkpoint(tmp_path)
    out = tmp_path / "m.onnx"
    with pytest.raises(ExportError, match=r"pip install 'pixelgen\[onnx\]'") as info:
        export_checkpoint(ckpt, "onnx", out)
    assert "\n" not in str(info.value) and not out.exists()


def test_refuses_to_overwrite_the_checkpoint(tmp_path):
    ckpt, _ = make_checkpoint(tmp_path)
    before = ckpt.read_bytes()
    with pytest.raises(ExportError, match="checkpoint itself"):
        export_checkpoint(ckpt, "torchscript", ckpt)
    assert ckpt.read_bytes() == before


# ---------------------------------------------------------------------------- test images


def _recipe(data):
    return {"model": {"name": "pixelcnn"}, "data": data, "train": {"max_steps": 1}}


def test_verifies_on_the_test_split_when_the_data_set_is_found(tmp_path):
    from pixelgen.data import load_split

    try:
        load_split("mnist", "test")
    except PixelgenError as exc:  # the shipped MNIST is the data module's business
        pytest.skip(f"shipped MNIST not readable here: {exc}")
    data = {"name": "mnist", "height": 28, "width": 28, "channels": 1, "levels": 256}
    ckpt, _ = make_checkpoint(
        tmp_path, recipe=_recipe({"name": "mnist"}), data=data, levels=256, hidden=4, layers=1
    )
    report = export_checkpoint(ckpt, "torchscript", tmp_path / "m.ts", batch=3)
    assert report.images_source == "test split of mnist"
    assert report.num_images == 3 and (report.height, report.width) == (28, 28)
    assert report.max_abs_diff <= report.bound


def test_falls_back_to_random_images_naming_the_missing_data_set(tmp_path, monkeypatch):
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.chdir(empty)
    monkeypatch.setenv("HOME", str(empty))
    monkeypatch.setenv("PIXELGEN_DATA", str(empty))
    data = {"name": "cifar10", "height": 8, "width": 8, "channels": 3, "levels": 256}
    ckpt, _ = make_checkpoint(
        tmp_path,
        channels=3,
        levels=256,
        recipe=_recipe({"name": "cifar10", "root": str(empty)}),
        data=data,
    )
    report = export_checkpoint(ckpt, "safetensors", tmp_path / "m.safetensors", batch=2)
    assert report.images_source.startswith("random images (data set not found: ")
    assert "cifar" in report.images_source.lower()
    assert report.num_images == 2 and report.max_abs_diff == 0.0


# ---------------------------------------------------------------------------- CLI


@pytest.fixture
def cli(capsys):
    import pixelgen.cli.export  # noqa: F401  (registers the command)
    from pixelgen.cli.app import main

    def run(*args):
        code = main([str(a) for a in args])
        out, err = capsys.readouterr()
        return code, out, err

    return run


@pytest.mark.parametrize("fmt", FORMATS)
def test_cli_exports_and_prints_the_difference(tmp_path, cli, fmt):
    ckpt, _ = make_checkpoint(tmp_path, "row_lstm", 3)
    out = tmp_path / f"m{SUFFIX[fmt]}"
    code, _, err = cli("export", ckpt, "--format", fmt, "--out", out, "--batch", 3)
    assert code == 0, err
    assert out.is_file()
    assert "verified on 3 images" in err and "max |logit difference| = " in err
    assert str(out) in err


def test_cli_uses_the_most_recent_run(tmp_path, monkeypatch, cli):
    runs = tmp_path / "runs"
    (runs / "a" / "checkpoints").mkdir(parents=True)
    ckpt, _ = make_checkpoint(runs / "a" / "checkpoints")
    ckpt.rename(runs / "a" / "checkpoints" / "last.pt")
    monkeypatch.setenv("PIXELGEN_RUNS", str(runs))
    code, _, err = cli(
        "export", "-f", "safetensors", "-o", tmp_path / "m.safetensors", "--no-verify"
    )
    assert code == 0, err
    assert "most recent run" in err and "last.pt" in err and "not verified" in err
    assert (tmp_path / "m.safetensors").is_file()


def test_cli_help_says_what_each_format_holds_and_how_to_load_it(cli):
    code, out, _ = cli("export", "--help")
    assert code == 0
    text = " ".join(out.split())
    for needle in (
        "safetensors.torch.load_file",
        "pixelgen.load_model",
        "torch.jit.load",
        "onnxruntime.InferenceSession",
        "pixelgen[onnx]",
        "--no-verify",
    ):
        assert needle in text, needle


def test_cli_errors_are_one_line(tmp_path, cli):
    code, _, err = cli("export", tmp_path / "nope.pt", "-f", "onnx", "-o", tmp_path / "m.onnx")
    assert code == 1
    assert err.strip().count("\n") == 0 and "nope.pt" in err and "Traceback" not in err
