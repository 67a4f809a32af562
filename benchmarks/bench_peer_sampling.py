"""pixelgen's fast PixelCNN sampling against pytorch-generative's ``PixelCNN.sample``, at
matched sizes: 15 residual blocks, 32 channels reduced to 16 inside each block, a 32-map
head, 1x28x28 binary images, 4 images per call, random weights.

pytorch-generative is not a dependency: point ``--peer`` at a checkout of its repository
(the folder holding ``pytorch_generative/``). Only its convolution, base and PixelCNN
modules are loaded, so its other requirements need not be installed. Run
``python benchmarks/bench_peer_sampling.py --peer PATH [--threads 1] [--rounds 3]``; it
prints the medians of alternating rounds (peer, pixelgen native, pixelgen Python steps)
and writes ``benchmarks/results_peer_sampling.json``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import types
from pathlib import Path

import torch

import pixelgen
from pixelgen.nn import native
from pixelgen.runtime import tune_allocator
from pixelgen.sampling import sample

HERE = Path(__file__).resolve().parent
N, SIZE = 4, (28, 28)


def peer_model(root: Path) -> torch.nn.Module:
    """pytorch-generative's PixelCNN at pixelgen's ``mnist_pixelcnn`` size, importing only
    the three modules it needs (its package ``__init__`` pulls in every model)."""
    sys.path.insert(0, str(root))
    for name in ("pytorch_generative", "pytorch_generative.nn", "pytorch_generative.models"):
        pkg = types.ModuleType(name)
        pkg.__path__ = [str(root / name.replace(".", "/"))]
        sys.modules[name] = pkg
    from pytorch_generative.nn.convolution import CausalConv2d

    sys.modules["pytorch_generative.nn"].CausalConv2d = CausalConv2d
    sys.modules["pytorch_generative"].nn = sys.modules["pytorch_generative.nn"]
    from pytorch_generative.models.autoregressive.pixel_cnn import PixelCNN

    torch.manual_seed(0)
    model = PixelCNN(
        in_channels=1, out_channels=1, n_residual=15, residual_channels=16, head_channels=32
    ).eval()
    model(torch.zeros(1, 1, *SIZE))  # it records the image shape on its first call
    return model


def timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--peer", type=Path, required=True, help="a pytorch-generative checkout")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    tune_allocator()
    torch.set_num_threads(args.threads)
    peer = peer_model(args.peer)
    ours = pixelgen.create_model("pixelcnn", channels=1, levels=2, hidden=16, layers=15).eval()
    times: dict[str, list[float]] = {"peer": [], "native": [], "python": []}
    for _ in range(args.rounds):
        times["peer"].append(timed(lambda: peer.sample(N)))
        times["native"].append(timed(lambda: sample(ours, N, SIZE)))
        with native.forced(False):
            times["python"].append(timed(lambda: sample(ours, N, SIZE)))
    med = {k: statistics.median(v) for k, v in times.items()}
    result = {
        "threads": args.threads,
        "rounds": args.rounds,
        "images": N,
        "parameters": {
            "peer": sum(p.numel() for p in peer.parameters()),
            "pixelgen": sum(p.numel() for p in ours.parameters()),
        },
        "seconds": times,
        "median_s": med,
        "native_over_peer": med["peer"] / med["native"],
        "python_steps_over_peer": med["peer"] / med["python"],
    }
    print(
        f"{N} images 1x28x28, {args.threads} thread(s), medians of {args.rounds}: "
        f"pytorch-generative {med['peer']:.2f} s, pixelgen {med['native']:.3f} s "
        f"({result['native_over_peer']:.0f}x), pixelgen with the Python steps "
        f"{med['python']:.3f} s ({result['python_steps_over_peer']:.1f}x)"
    )
    (HERE / "results_peer_sampling.json").write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
