"""Models at one fixed budget: each trained on binarized MNIST for the same wall-clock time
on the same threads, then scored on the test set. Two sets:

* ``--models ablation`` (the default): PixelCNN, Gated PixelCNN, Diagonal BiLSTM and the
  complete-context Diagonal BiLSTM at about the same parameter count (62-68k);
* ``--models paper``: the three paper-size models of the ``mnist_*`` recipes (PixelCNN
  15x16, Row LSTM 7x16, Diagonal BiLSTM 7x16), the README's fixed-budget table
  (``--seconds 600 --threads 2``).

    .venv/bin/python scripts/ablation.py [--models paper] [--seconds 1200] [--threads 2]

Each model trains with Adam at 1e-3 (constant, like the quick recipes, because a budget
has no known end for a schedule), batch 16, from ``quick_pixelcnn`` with the model
swapped in; SIGINT ends it at the budget (which saves ``last.pt``), and ``pixelgen eval``
scores that checkpoint. The budget is wall-clock time from the first step (start-up and
data loading excluded): run it on an otherwise idle machine.
Writes ``ablation.json`` and prints the Markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

# (label, model name, hyperparameters): about 65k parameters each on 1x28x28 binary data.
ABLATION = [
    ("PixelCNN (15 blocks, h=20)", "pixelcnn", {"layers": 15, "hidden": 20}),
    ("Gated PixelCNN (15 layers, h=11)", "gated_pixelcnn", {"layers": 15, "hidden": 11}),
    ("Diagonal BiLSTM (7 layers, h=16)", "diagonal_bilstm", {"layers": 7, "hidden": 16}),
    (
        "Diagonal BiLSTM, complete context (7 layers, h=16)",
        "diagonal_bilstm",
        {"layers": 7, "hidden": 16, "complete_context": True},
    ),
]
# The model sections of the mnist_* recipes (both LSTMs with residual and skip connections,
# the builders' defaults).
PAPER = [
    ("PixelCNN (15 blocks, h=16)", "pixelcnn", {"layers": 15, "hidden": 16}),
    ("Row LSTM (7 layers, h=16)", "row_lstm", {"layers": 7, "hidden": 16}),
    ("Diagonal BiLSTM (7 layers, h=16)", "diagonal_bilstm", {"layers": 7, "hidden": 16}),
]
SETS = {"ablation": ABLATION, "paper": PAPER}


def pixelgen(*args: str) -> list[str]:
    return [sys.executable, "-m", "pixelgen", *args]


def train(run: Path, name: str, hparams: dict, seconds: float, env: dict) -> float:
    """Train until ``seconds`` have passed; returns the seconds it ran."""
    sets = {
        "model.name": name,
        **{f"model.{k}": str(v).lower() for k, v in hparams.items()},
        "train.max_steps": "100000000",
        "train.batch_size": "16",
        "train.eval_every": "100000000",  # no validation inside the budget
        "train.checkpoint_every": "500",
        "train.log_every": "100",
    }
    args = ["train", "quick_pixelcnn", "--no-progress", "--out", str(run)]
    args += [a for k, v in sets.items() for a in ("--set", f"{k}={v}")]
    proc = subprocess.Popen(pixelgen(*args), env=env)
    # The budget starts when training does: the run writes recipe.yaml just before its
    # first step, after the imports and the data loading.
    while not (run / "recipe.yaml").exists():
        if proc.poll() is not None:
            raise SystemExit(f"ablation: training {name} failed ({proc.returncode})")
        time.sleep(0.05)
    start = time.perf_counter()
    try:
        proc.wait(timeout=seconds)
        raise SystemExit(f"ablation: training {name} ended by itself ({proc.returncode})")
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGINT)  # saves last.pt at the end of the current step
        proc.wait()
    return time.perf_counter() - start


def score(run: Path, test_images: int | None, env: dict) -> dict:
    out = run / "test.json"
    args = ["eval", str(run / "checkpoints" / "last.pt"), "--split", "test", "--no-progress"]
    args += ["--json", str(out)] + (["--max-images", str(test_images)] if test_images else [])
    subprocess.run(pixelgen(*args), env=env, check=True)
    return json.loads(out.read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", choices=sorted(SETS), default="ablation")
    parser.add_argument("--seconds", type=float, default=1200, help="budget per model")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=None, help="default: runs/MODELS")
    parser.add_argument("--test-images", type=int, default=None, help="default: all 10,000")
    args = parser.parse_args()
    args.out = args.out or Path("runs") / args.models
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads)}
    import pixelgen as pg

    rows = []
    for label, name, hparams in SETS[args.models]:
        run = args.out / f"{name}{'_complete' if hparams.get('complete_context') else ''}"
        if run.exists():
            raise SystemExit(f"ablation: {run} exists; choose another --out")
        try:
            model = pg.create_model(name, channels=1, levels=2, **hparams)
        except pg.PixelgenError as exc:  # e.g. an option this version lacks
            print(f"ablation: skipping {label}: {exc}")
            continue
        params = sum(p.numel() for p in model.parameters())
        ran = train(run, name, hparams, args.seconds, env)
        report = score(run, args.test_images, env)
        rows.append({"model": label, "name": name, "hparams": hparams, "parameters": params,
                     "seconds": round(ran), "step": report.get("step"),
                     "images_seen": (report.get("step") or 0) * 16,
                     "test_nll_nats": report["nll_nats"],
                     "test_nll_stderr": report["nll_nats_stderr"],
                     "test_images": report["num_images"]})  # fmt: skip
    (args.out / "ablation.json").write_text(json.dumps(rows, indent=2) + "\n")
    print(f"\n{args.seconds:.0f} s per model, {args.threads} thread(s), batch 16, Adam 1e-3")
    print("| model | parameters | images seen | test NLL (nats) |")
    print("|---|---|---|---|")
    for r in rows:
        print(f"| {r['model']} | {r['parameters']:,} | {r['images_seen']:,} | "
              f"{r['test_nll_nats']:.2f} ± {r['test_nll_stderr']:.2f} |")  # fmt: skip


if __name__ == "__main__":
    main()
