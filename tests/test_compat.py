"""Files written by earlier pixelgen versions keep loading and computing the same logits.

``tests/fixtures/<version>/`` holds, per model, a training checkpoint (``.pt``) and a
safetensors export written by that version's code (``make_fixtures.py``), with the logits
they gave then on ``images.pt``. Renaming a module or changing a file format must keep
these loading: the state-dict names are an interface.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import pixelgen
from pixelgen.checkpoint import load_checkpoint

FIXTURES = Path(__file__).parent / "fixtures"
CASES = sorted(
    (d.name, p.name.removesuffix(".logits.pt"))
    for d in FIXTURES.iterdir()
    if d.is_dir()
    for p in d.glob("*.logits.pt")
)


def test_every_registered_model_of_version_0_1_0_has_a_fixture():
    assert {m for v, m in CASES if v == "v0_1_0"} == {"pixelcnn", "row_lstm", "diagonal_bilstm"}


@pytest.mark.parametrize(("version", "model"), CASES)
@pytest.mark.parametrize("kind", ["pt", "safetensors"])
def test_old_files_load_and_give_the_same_logits(version, model, kind):
    folder = FIXTURES / version
    images = torch.load(folder / "images.pt", weights_only=True)
    expected = torch.load(folder / f"{model}.logits.pt", weights_only=True)
    net = pixelgen.load_model(folder / f"{model}.{kind}")
    assert net.model_name == model
    with torch.no_grad():
        got = net(images)
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-5)


@pytest.mark.parametrize(("version", "model"), CASES)
def test_old_checkpoints_keep_their_description(version, model):
    ckpt = load_checkpoint(FIXTURES / version / f"{model}.pt")
    assert ckpt.step == 2
    assert ckpt.recipe["model"]["name"] == model
    assert ckpt.data["height"] == 28 and ckpt.data["levels"] == 2
    assert {"optimizer", "scheduler", "rng"} <= set(ckpt.state)
