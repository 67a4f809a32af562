"""Ship a training run's best checkpoint as a pretrained model inside the package.

    .venv/bin/python scripts/ship_pretrained.py RUN NAME --threads 1

Evaluates ``RUN/checkpoints/best.pt`` (the lowest validation NLL) on the full test split
of the run's data set and on its first 1,000 images, then writes
``src/pixelgen/pretrained/NAME.safetensors`` with the recipe and these results: test NLL
with its standard error, validation NLL, steps, images seen, training time (the sum of the
logged step times in ``metrics.jsonl``: training steps only, validation excluded), the
validation curve, the machine and the threads the run used (``--cpu`` names the
processors of a run continued on several machines), and whether the weights are
the trained ones or their moving average (``train.ema``). ``tests/test_pretrained.py``
re-evaluates the first 1,000 images against the recorded value.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import torch

import pixelgen
from pixelgen.checkpoint import load_checkpoint
from pixelgen.config import recipe_from_dict
from pixelgen.data import load_split
from pixelgen.evaluate import evaluate
from pixelgen.pretrained import FOLDER, SUFFIX, write_pretrained
from pixelgen.train import read_metrics

FIRST = 1000  # the images tests/test_pretrained.py re-evaluates


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def train_seconds(rows: list[dict], batch: int, step: int) -> float:
    """Time spent in training steps up to ``step``, from the logged rates."""
    total, prev = 0.0, 0
    for r in rows:
        if r["split"] == "train" and r["step"] <= step:
            total += (r["step"] - prev) * batch / r["images_per_s"]
            prev = r["step"]
    return total


def weights_kind(average: dict | None, step: int) -> str:
    """Which weights a checkpoint holds: the trained ones, or their moving average
    (``train.ema``) and the step it began at (one update per step since)."""
    if average is None:
        return "trained"
    return f"moving average (decay {average['decay']}, from step {step - average['count']:,})"


def results_of(run: Path, ckpt, threads: int, recipe_path: str, cpu: str | None = None) -> dict:
    recipe = recipe_from_dict(ckpt.recipe)
    d = recipe.data
    test = load_split(d.name, "test", root=d.root, **d.options())
    model = ckpt.build_model("cpu")
    full = evaluate(model, test, batch_size=64)
    first = evaluate(model, test, batch_size=64, max_images=FIRST)
    rows = read_metrics(run)
    valid = [r for r in rows if r["split"] == "valid" and r["step"] == ckpt.step]
    batch = recipe.train.batch_size
    average = ckpt.state.get("average")
    return {
        "data": test.description.split(":")[0],
        "test_nll_nats": full.nll_nats,
        "test_nll_nats_stderr": full.nll_nats_stderr,
        "test_bits_per_dim": full.bits_per_dim,
        "test_images": full.num_images,
        "test_first_1000_nll_nats": first.nll_nats,
        "valid_nll_nats": valid[-1]["nll_nats"] if valid else None,
        # [images seen, validation NLL] at every validation of the run, for the curves
        "valid_curve": [[r["step"] * batch, r["nll_nats"]] for r in rows if r["split"] == "valid"],
        "valid_images": valid[-1]["num_images"] if valid else None,
        "step": ckpt.step,
        "weights": weights_kind(average, ckpt.step),
        "images_seen": ckpt.step * batch,
        "train_hours": train_seconds(rows, batch, ckpt.step) / 3600,
        "parameters": sum(p.numel() for p in model.parameters()),
        # --cpu: the run's processors, of as many cores as this machine (the case here)
        "machine": f"{cpu or cpu_name()} ({os.cpu_count()} cores), {threads} thread(s), no GPU",
        "torch": torch.__version__,
        "pixelgen": pixelgen.__version__,
        "date": time.strftime("%Y-%m-%d"),
        "reproduce": f"OMP_NUM_THREADS={threads} pixelgen train {recipe_path}",
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run", type=Path)
    ap.add_argument("name")
    ap.add_argument("--threads", type=int, default=int(os.environ.get("OMP_NUM_THREADS", 1)))
    ap.add_argument("--recipe", default=None, help="the recipe the run was trained from")
    ap.add_argument(
        "--cpu",
        default=None,
        help="the processor(s) the run trained on, where not this machine's alone (a run "
        "continued on other machines)",
    )
    args = ap.parse_args()
    torch.set_num_threads(1)
    ckpt = load_checkpoint(args.run / "checkpoints" / "best.pt")
    recipe_path = args.recipe or args.name  # a shipped recipe's name
    results = results_of(args.run, ckpt, args.threads, recipe_path, args.cpu)
    out = FOLDER / f"{args.name}{SUFFIX}"
    write_pretrained(ckpt.build_model("cpu"), ckpt, out, results=results)
    print(json.dumps(results, indent=2))
    print(f"wrote {out} ({out.stat().st_size:,} bytes)", file=sys.stderr)


if __name__ == "__main__":
    main()
