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
swapped in, for the budget of ``scripts/budget.py``: wall-clock time from the first step,
start-up and data loading excluded. Run it on an otherwise idle machine.
Writes ``ablation.json`` and prints the Markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from budget import score, train

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


def model_sets(name: str, hparams: dict) -> list[str]:
    """The ``--set`` items that swap the model into ``quick_pixelcnn``, batch 16."""
    items = {f"model.{k}": str(v).lower() for k, v in hparams.items()}
    return [f"model.name={name}", *(f"{k}={v}" for k, v in items.items()), "train.batch_size=16"]


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
        ran = train(run, "quick_pixelcnn", model_sets(name, hparams), args.seconds, env)
        report = score(run, env, args.test_images)
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
