"""``pixelgen sample`` and ``pixelgen complete`` end to end on a tiny checkpoint."""

from __future__ import annotations

import pytest
import torch
from PIL import Image

import pixelgen.cli.complete  # noqa: F401  (registers the command)
import pixelgen.cli.sample  # noqa: F401
from conftest import tiny_model
from pixelgen.checkpoint import Checkpoint, save_checkpoint
from pixelgen.cli.app import main
from pixelgen.images import load_image, occlusion_mask, save_image


@pytest.fixture
def ckpt(tmp_path):
    model = tiny_model("row_lstm", levels=2, hidden=4, layers=1).float()
    path = tmp_path / "runs" / "tiny" / "checkpoints" / "last.pt"
    save_checkpoint(
        path,
        Checkpoint(
            "row_lstm",
            hparams=model.hparams,
            weights=model.state_dict(),
            recipe={"sample": {"n": 3, "nrow": 3, "seed": 5}},
            data={"height": 8, "width": 8, "levels": 2, "channels": 1},
        ),
    )
    return path


def size_of(path):
    with Image.open(path) as img:
        return img.size


def test_sample_writes_grid_and_images(tmp_path, ckpt, capsys):
    grid, out_dir = tmp_path / "grid.png", tmp_path / "ims"
    args = ["sample", str(ckpt), "-n", "4", "--nrow", "2", "--out", str(grid)]
    assert main([*args, "--out-dir", str(out_dir), "--device", "cpu"]) == 0
    # 8x8 images are drawn 14x larger (112 pixels): 2 per row, 2 rows, padding 2.
    assert size_of(grid) == (14 * (2 * 8 + 3 * 2),) * 2
    files = sorted(out_dir.glob("sample_*.png"))
    assert [f.name for f in files] == [f"sample_{k}.png" for k in range(1, 5)]
    assert all(size_of(f) == (8, 8) for f in files)
    err = capsys.readouterr().err
    assert str(grid) in err and "4 samples 8x8" in err


def test_sample_defaults_from_recipe_and_latest_run(tmp_path, ckpt, capsys, monkeypatch):
    monkeypatch.setenv("PIXELGEN_RUNS", str(tmp_path / "runs"))
    grid = tmp_path / "g.png"
    assert main(["sample", "--out", str(grid), "--size", "4x6"]) == 0
    err = capsys.readouterr().err
    assert "most recent run" in err and str(ckpt) in err
    assert "seed 5" in err
    # n=3, nrow=3 from the recipe; 4x6 images are drawn ceil(112 / 6) = 19 times larger.
    assert size_of(grid) == (19 * (3 * 6 + 4 * 2), 19 * (4 + 2 * 2))


def test_sample_is_reproducible(tmp_path, ckpt):
    for name in ("a", "b"):
        args = ["sample", str(ckpt), "--seed", "1", "-n", "2", "--out", str(tmp_path / "g.png")]
        assert main([*args, "--out-dir", str(tmp_path / name)]) == 0
    a = load_image(tmp_path / "a" / "sample_1.png", channels=1, levels=2)[0]
    assert torch.equal(a, load_image(tmp_path / "b" / "sample_1.png", channels=1, levels=2)[0])


@pytest.mark.parametrize("mode", ["bottom-half", "random:0.5"])
def test_complete_keeps_known_pixels(tmp_path, ckpt, capsys, mode):
    g = torch.Generator().manual_seed(0)
    images = [torch.randint(0, 2, (1, 8, 8), generator=g) for _ in range(2)]
    paths = [save_image(im, 2, tmp_path / f"in{k}.png") for k, im in enumerate(images)]
    out = tmp_path / "out"
    args = ["complete", "-c", str(ckpt), "--occlude", mode, "--samples", "2", "--out", str(out)]
    assert main([*args, "--seed", "3", *map(str, paths)]) == 0
    known = ~occlusion_mask(mode, (8, 8), seed=3)
    for k, image in enumerate(images):
        width, height = size_of(out / f"in{k}_grid.png")  # at 14x, under a caption row
        assert width == 14 * (4 * 8 + 5 * 2) and 0 < height - 14 * (8 + 2 * 2) < 30
        for s in (1, 2):
            done, _ = load_image(out / f"in{k}_{s}.png", channels=1, levels=2)
            assert torch.equal(done[:, known], image[:, known])
    assert "in1_grid.png" in capsys.readouterr().err


@pytest.mark.parametrize("as_run_dir", [False, True])
def test_complete_takes_the_checkpoint_as_its_first_argument(tmp_path, ckpt, capsys, as_run_dir):
    image = save_image(torch.zeros(1, 8, 8, dtype=torch.long), 2, tmp_path / "a.png")
    first = ckpt.parent.parent if as_run_dir else ckpt
    out = tmp_path / "out"
    args = ["complete", str(first), "--occlude", "bottom-half", "--samples", "1"]
    assert main([*args, "--out", str(out), str(image)]) == 0
    assert (out / "a_grid.png").is_file() and not (out / f"{first.stem}_grid.png").exists()


def test_complete_converts_inputs_with_a_note(tmp_path, ckpt, capsys):
    big = tmp_path / "big.png"
    Image.new("RGB", (16, 16), (200, 200, 200)).save(big)
    args = ["complete", "-c", str(ckpt), "--occlude", "center", "--samples", "1"]
    assert main([*args, "--out", str(tmp_path / "o"), str(big)]) == 0
    err = capsys.readouterr().err
    assert "converted RGB to L" in err and "resized 16x16 to 8x8" in err
    assert size_of(tmp_path / "o" / "big_1.png") == (8, 8)


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), err
    return lines[0]


def test_missing_image_is_a_one_line_error(tmp_path, ckpt, capsys):
    args = ["complete", "-c", str(ckpt), "--occlude", "bottom-half"]
    assert main([*args, "--out", str(tmp_path / "o"), str(tmp_path / "nope.png")]) != 0
    assert "nope.png: no such image file" in one_line_error(capsys)
    assert not (tmp_path / "o").exists()


def test_wrong_size_mask_is_a_one_line_error(tmp_path, ckpt, capsys):
    image = save_image(torch.zeros(1, 8, 8, dtype=torch.long), 2, tmp_path / "x.png")
    mask = tmp_path / "mask.png"
    Image.new("L", (5, 7), 255).save(mask)
    args = ["complete", "-c", str(ckpt), "--occlude", str(mask)]
    assert main([*args, "--out", str(tmp_path / "o"), str(image)]) != 0
    assert "mask is 7x5 but the images are 8x8" in one_line_error(capsys)


def test_bad_options_are_one_line_errors(tmp_path, ckpt, capsys):
    assert main(["sample", str(ckpt), "--method", "slow"]) == 2
    assert "method" in one_line_error(capsys)
    assert main(["sample", str(ckpt), "--size", "big"]) == 2
    assert "--size" in one_line_error(capsys)
    assert main(["sample", str(tmp_path / "none.pt")]) != 0
    assert "none.pt" in one_line_error(capsys)


def test_an_unwritable_output_is_refused_before_any_sampling(tmp_path, ckpt, capsys, monkeypatch):
    import pixelgen.sampling.api as api

    blocker = tmp_path / "file"
    blocker.write_text("")  # a file where the output folder should be
    monkeypatch.setattr(api, "sample", lambda *a, **k: pytest.fail("sampled before checking"))
    monkeypatch.setattr(api, "complete", lambda *a, **k: pytest.fail("completed before checking"))
    code = main(["sample", str(ckpt), "-n", "2", "--out", str(blocker / "grid.png")])
    assert code == 1 and "cannot write the output there" in one_line_error(capsys)
    image = save_image(torch.zeros(1, 8, 8, dtype=torch.long), 2, tmp_path / "a.png")
    code = main(["complete", "-c", str(ckpt), "--occlude", "bottom-half", str(image),
                 "--out", str(blocker / "sub")])  # fmt: skip
    assert code == 1 and "cannot write the output there" in one_line_error(capsys)
