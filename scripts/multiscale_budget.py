"""The Multi-Scale PixelRNN (§3.5) against a single-scale model of about its size, both
trained on binarized MNIST for the same wall-clock time on the same threads, then scored
on the test set (the README's multi-scale table and its sample grids).

    OMP_NUM_THREADS=1 .venv/bin/python scripts/multiscale_budget.py --seconds 300 --threads 1

* ``quick_multiscale``: a Row LSTM (2 layers, h=16) of the 14x14 subsample and a
  conditional Row LSTM (2 layers, h=16) of the 28x28 image given it (55,604 parameters);
* ``quick_rowlstm`` with 5 layers: a Row LSTM (5 layers, h=16, 53,346 parameters).

Both train as their recipe says (Adam at a constant 1e-3, batch 32) with no validation
inside the budget; SIGINT ends each at the budget (which saves ``last.pt``), ``pixelgen
eval`` scores that checkpoint on the whole test set (the multi-scale report with both
parts), and ``pixelgen sample`` draws a grid of 16 (seed 0). The budget is wall-clock
time from the first step (start-up and data loading excluded). Writes
``OUT/budget.json`` and the grids, and prints the Markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
from pathlib import Path

from budget import pixelgen, score, train

# (label, recipe, --set items, parameters)
MODELS = [
    (
        "Multi-Scale PixelRNN: Row LSTM 2x16 at 14x14, conditional Row LSTM 2x16 at 28x28",
        "quick_multiscale",
        [],
    ),
    ("Row LSTM (5 layers, h=16)", "quick_rowlstm", ["model.layers=5"]),
]


def grid(run: Path, out: Path, env: dict) -> None:
    args = ["sample", str(run / "checkpoints" / "last.pt"), "-n", "16", "--nrow", "4"]
    subprocess.run(pixelgen(*args, "--seed", "0", "--out", str(out)), env=env, check=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=300, help="budget per model")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=Path("runs") / "multiscale_budget")
    args = parser.parse_args()
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads)}
    rows = []
    for label, recipe, sets in MODELS:
        run = args.out / recipe
        if run.exists():
            raise SystemExit(f"multiscale_budget: {run} exists; choose another --out")
        ran = train(run, recipe, sets, args.seconds, env)
        report = score(run, env)
        grid(run, args.out / f"{recipe}_samples.png", env)
        batch = 32  # both recipes' train.batch_size
        rows.append({"model": label, "recipe": recipe, "set": sets, "seconds": round(ran),
                     "step": report["step"], "images_seen": report["step"] * batch,
                     "nll_nats": report["nll_nats"], "stderr": report["nll_nats_stderr"],
                     "bits_per_dim": report["bits_per_dim"], "parts": report.get("parts"),
                     "num_images": report["num_images"]})  # fmt: skip
    (args.out / "budget.json").write_text(json.dumps(rows, indent=2) + "\n")
    print("| model | images seen | test NLL (nats) | parts (nats) |")
    print("|---|---|---|---|")
    for r in rows:
        parts = r["parts"] or {}
        shown = ", ".join(f"{k} {v['nll_nats']:.2f}" for k, v in parts.items()) or "—"
        nll = f"{r['nll_nats']:.2f} ± {r['stderr']:.2f}"
        print(f"| {r['model']} | {r['images_seen']:,} | {nll} | {shown} |")


if __name__ == "__main__":
    main()
