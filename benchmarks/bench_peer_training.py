"""pixelgen's PixelCNN training step against pytorch-generative's, at matched sizes: 15
residual blocks, 32 channels reduced to 16 inside each block, a 32-map head, 1x28x28
binary images, batch 16, random weights and images.

One step is the same for both: forward, the NLL (pixelgen's 2-way softmax, the peer's
Bernoulli logit), backward, and an Adam step (learning rate 1e-3, no clipping) in torch's
default implementation; the goal compares these. A third row runs pixelgen's model with
the optimizer as ``pixelgen train`` builds it (``make_optimizer``: Adam fused). The three
alternate, a few steps each per round, in one process, so a change in the machine's load
falls on all. pytorch-generative is not a dependency: point ``--peer`` at
a checkout of its repository, as for ``bench_peer_sampling.py``. Run
``python benchmarks/bench_peer_training.py --peer PATH [--threads 2] [--rounds 15]``; it
prints the median step of each and writes ``benchmarks/results_peer_training.json``,
which ``run.py``'s goal table reads.
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from bench_peer_sampling import peer_model

import pixelgen
from pixelgen.config import load_recipe
from pixelgen.runtime import tune_allocator
from pixelgen.train import make_optimizer

HERE = Path(__file__).resolve().parent
BATCH, SIDE, STEPS = 16, 28, 4


# The NLL of each model's logits: the peer's Bernoulli logit (B, 1, H, W) against float
# images, pixelgen's 2-way softmax (B, 2, 1, H, W) against the integer ones.
PEER_NLL, OUR_NLL = F.binary_cross_entropy_with_logits, F.cross_entropy


def train_step(nll, model: torch.nn.Module, opt: torch.optim.Optimizer, x: torch.Tensor) -> None:
    loss = nll(model(x), x)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()


def seconds_per_step(nll, model, opt, x) -> float:
    t = time.perf_counter()
    for _ in range(STEPS):
        train_step(nll, model, opt, x)
    return (time.perf_counter() - t) / STEPS


def measure(peer_root: Path, threads: int, rounds: int) -> dict:
    tune_allocator()
    torch.set_num_threads(threads)
    peer = peer_model(peer_root).train()
    torch.manual_seed(0)
    ours = pixelgen.create_model("pixelcnn", channels=1, levels=2, hidden=16, layers=15)
    images = torch.randint(0, 2, (BATCH, 1, SIDE, SIDE))
    runs = {
        "peer": (PEER_NLL, peer, images.float()),
        "pixelgen": (OUR_NLL, ours, images),
        "pixelgen_as_trained": (OUR_NLL, copy.deepcopy(ours), images),
    }
    opts = {k: torch.optim.Adam(m.parameters(), lr=1e-3) for k, (_, m, _) in runs.items()}
    recipe = load_recipe("mnist_pixelcnn", ["train.optimizer=adam", "train.lr=1e-3"])
    opts["pixelgen_as_trained"] = make_optimizer(
        recipe, runs["pixelgen_as_trained"][1].parameters()
    )
    times: dict[str, list[float]] = {k: [] for k in runs}
    for k, (nll, model, x) in runs.items():  # warm-up: first-call allocations, kernels
        train_step(nll, model, opts[k], x)
    for _ in range(rounds):
        for k, (nll, model, x) in runs.items():
            times[k].append(seconds_per_step(nll, model, opts[k], x))
    med = {k: statistics.median(v) for k, v in times.items()}
    return {
        "threads": threads,
        "rounds": rounds,
        "steps_per_round": STEPS,
        "batch": BATCH,
        "parameters": {k: sum(p.numel() for p in m.parameters()) for k, (_, m, _) in runs.items()},
        "seconds_per_step": times,
        "median_s": med,
        "images_per_s": {k: BATCH / v for k, v in med.items()},
        "pixelgen_over_peer": med["peer"] / med["pixelgen"],
        "as_trained_over_peer": med["peer"] / med["pixelgen_as_trained"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--peer", type=Path, required=True, help="a pytorch-generative checkout")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--out", type=Path, default=HERE / "results_peer_training.json")
    args = parser.parse_args()
    result = measure(args.peer, args.threads, args.rounds)
    rate = result["images_per_s"]
    print(
        f"batch {BATCH} of 1x{SIDE}x{SIDE}, {args.threads} thread(s), medians of "
        f"{args.rounds} rounds of {STEPS} steps: pytorch-generative {rate['peer']:.1f} img/s, "
        f"pixelgen {rate['pixelgen']:.1f} img/s ({result['pixelgen_over_peer']:.2f}x); with "
        f"its own optimizer {rate['pixelgen_as_trained']:.1f} img/s "
        f"({result['as_trained_over_peer']:.2f}x)"
    )
    args.out.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
