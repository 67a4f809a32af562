"""The native recurrence scans against the Python ones, alternating in one process.

``python benchmarks/bench_native.py [--rounds N] [--threads T] [RECIPE ...]`` (default:
``mnist_rowlstm mnist_diagonal_bilstm``, 10 rounds, 1 thread) prints, per recipe, the
median of N interleaved rounds (native, then Python, each round) of: a whole training
step (forward, backward, clipping, the recipe's optimizer) and a no-grad evaluation step,
batch 16 at the recipe's image size, as images/s; the recipe's first recurrent layer alone
(forward + backward, and forward), in ms; and the scans alone (the recurrence with its
input gates given, no convolution or layout copy), forward and backward, in ms. The
allocator is tuned as the command line tunes it. On a shared machine absolute figures
move; the ratios, measured side by side, are the ones to compare.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT / "benchmarks")]

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

BATCH = 16


def _training(recipe: str) -> dict[str, Callable[[], None]]:
    """Whole training and evaluation steps, and the first recurrent layer alone."""
    from bench_train import FORMATS, build, recipe_format

    from pixelgen.config import load_recipe
    from pixelgen.train import make_optimizer

    r = load_recipe(recipe)
    model = build(recipe, "fast")
    opt = make_optimizer(r, model.parameters())
    channels, levels, side = FORMATS[recipe_format(recipe)]
    gen = torch.Generator().manual_seed(0)
    x = torch.randint(0, levels, (BATCH, channels, side, side), generator=gen)
    layer = model.rnns[0]
    lx = torch.randn(BATCH, model.features, side, side, generator=gen, requires_grad=True)
    lg = torch.randn(BATCH, layer.hidden, side, side, generator=gen)

    def train() -> None:
        opt.zero_grad(set_to_none=True)
        (F.cross_entropy(model(x), x, reduction="sum") / BATCH).backward()
        if r.train.grad_clip is not None:
            torch.nn.utils.clip_grad_norm_(model.parameters(), r.train.grad_clip)
        opt.step()

    def evaluate() -> None:
        with torch.no_grad():
            F.cross_entropy(model(x), x, reduction="sum")

    def layer_train() -> None:
        layer(lx).backward(lg)

    def layer_eval() -> None:
        with torch.no_grad():
            layer(lx)

    return {"train": train, "eval": evaluate, "layer_fb": layer_train, "layer_f": layer_eval}


def _scans(recipe: str) -> dict[str, Callable[[], None]]:
    """The recipe's recurrence alone at its paper size: forward and backward scans."""
    from bench_train import FORMATS, recipe_format

    from pixelgen.config import load_recipe
    from pixelgen.nn import diagonal_lstm, native, row_lstm

    r = load_recipe(recipe)
    n, side = r.model.kwargs()["hidden"], FORMATS[recipe_format(recipe)][2]
    gen = torch.Generator().manual_seed(0)
    saved: dict = {}
    if r.model.name == "row_lstm":
        gx = torch.randn(side, 4 * n, BATCH * side, generator=gen)
        w = 0.2 * torch.randn(4 * n, n, 3, generator=gen)
        d_out = torch.randn(side, n, BATCH * side, generator=gen)
        taps_t = row_lstm._taps(w).t()

        def forward() -> None:
            saved["out"] = row_lstm._row_scan(gx, w, side, save=True)

        def backward() -> None:
            _, act, c, tc = saved["out"]
            if native.usable(act):
                native.load().row_backward(d_out, taps_t, act, c, tc, side)
            else:
                row_lstm._row_scan_backward(d_out, taps_t, act, c, tc, side)

        return {"scan_f": forward, "scan_b": backward}
    plan = diagonal_lstm._plan(side, side, torch.device("cpu"))
    gx = torch.randn(2, 4 * n, side * side * BATCH, generator=gen)
    w_ss = 0.2 * torch.randn(2, 4 * n, 2 * n, generator=gen)
    d_states = torch.randn(2, n, plan.padded * BATCH, generator=gen)

    def forward() -> None:
        saved["native"] = native.usable(gx)  # the saved layout differs between the paths
        saved["out"] = diagonal_lstm._diagonal_scan(gx, w_ss, plan, save=True)

    def backward() -> None:
        _, act, tc, c = saved["out"]
        w_t = w_ss.transpose(1, 2)
        if saved["native"]:
            native.load().diagonal_backward(
                d_states, w_t, act, tc, c, *plan.lists(), BATCH, plan.padded
            )
        else:
            diagonal_lstm._diagonal_scan_backward(d_states, w_t, act, tc, c, plan)

    return {"scan_f": forward, "scan_b": backward}


def measure(recipe: str, rounds: int) -> dict[str, float]:
    """Median seconds of each step, native and Python, interleaved (the first round warms
    up): keys ``(name, "native" | "python")``."""
    from pixelgen.nn import native

    steps = {**_training(recipe), **_scans(recipe)}
    times: dict[tuple[str, str], list[float]] = {}
    for i in range(rounds + 1):
        for path in ("native", "python"):
            with native.forced(path == "native"):
                for name, step in steps.items():
                    t = time.perf_counter()
                    step()
                    if i:
                        times.setdefault((name, path), []).append(time.perf_counter() - t)
    return {k: statistics.median(v) for k, v in times.items()}


def report(recipe: str, med: dict) -> str:
    def pair(name: str, rate: bool) -> str:
        a, b = med[name, "native"], med[name, "python"]
        if rate:
            return f"{BATCH / a:.1f} vs {BATCH / b:.1f} img/s ({b / a:.2f}x)"
        return f"{1e3 * a:.1f} vs {1e3 * b:.1f} ms ({b / a:.2f}x)"

    return (
        f"{recipe} (native vs Python scans): train {pair('train', True)}; "
        f"eval {pair('eval', True)}; layer forward + backward {pair('layer_fb', False)}, "
        f"forward {pair('layer_f', False)}; scans forward {pair('scan_f', False)}, "
        f"backward {pair('scan_b', False)}"
    )


def main() -> None:
    from pixelgen.nn import native
    from pixelgen.runtime import tune_allocator

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("recipes", nargs="*", default=["mnist_rowlstm", "mnist_diagonal_bilstm"])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    tune_allocator()
    if native.load() is None:
        sys.exit("the native scans could not be built here: nothing to compare")
    for recipe in args.recipes:
        print(report(recipe, measure(recipe, args.rounds)), flush=True)


if __name__ == "__main__":
    main()
