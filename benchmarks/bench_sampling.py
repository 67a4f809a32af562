"""Sampling speed: the fast (cached) sampler against the naive one (one forward pass per
value) and against a single forward pass, per model, at the shipped recipes' sizes.

For each model: its ``quick_*`` recipe on 28x28x1 images (2 levels) and on 32x32x3 (256
levels), and its paper recipes (``mnist_*`` at 28x28x1, ``cifar10_*`` at 32x32x3), all with
a batch of 16 and random weights (speed does not depend on training). Fast sampling is timed
over whole images; naive sampling over its first values only (every value costs one
forward pass, so the time is extrapolated linearly: the "naive timed on" column says how
many values were measured). Forward passes and fast samplings are medians of 5 and 3
(one each for the CIFAR-10 paper models, whose passes take seconds). ``fast / fwd`` is the
fast time over one forward pass of the same batch: the price of generating compared with
scoring.

Run ``python benchmarks/bench_sampling.py [--quick] [--threads N]``; ``run(quick)`` returns
the rows for ``benchmarks/run.py``.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

import pixelgen
from pixelgen.config import load_recipe
from pixelgen.sampling import sample

BATCH = 16
MODELS = {
    "pixelcnn": "pixelcnn",
    "row_lstm": "rowlstm",
    "diagonal_bilstm": "diagonal_bilstm",
    "gated_pixelcnn": "gated_pixelcnn",
}
FORMATS = {"mnist": (1, 2, (28, 28)), "cifar10": (3, 256, (32, 32))}


class _Enough(Exception):
    """Raised from the logits hook to stop naive sampling after the timed values."""


def configs(quick: bool) -> list[tuple[str, str, str]]:
    """``(model, recipe, format)`` to time."""
    out = []
    for model, short in MODELS.items():
        out.append((model, f"quick_{short}", "mnist"))
        if not quick:
            out.append((model, f"quick_{short}", "cifar10"))
            out.append((model, f"mnist_{short}", "mnist"))
            out.append((model, f"cifar10_{short}", "cifar10"))
    return out


def build(recipe: str, fmt: str) -> torch.nn.Module:
    r = load_recipe(recipe)
    channels, levels, _ = FORMATS[fmt]
    torch.manual_seed(0)
    kwargs = r.model.kwargs()
    return pixelgen.create_model(r.model.name, channels=channels, levels=levels, **kwargs).eval()


def time_forward(model: torch.nn.Module, x: torch.Tensor, repeats: int) -> float:
    with torch.no_grad():
        model(x)  # warm-up
        times = []
        for _ in range(repeats):
            t = time.perf_counter()
            model(x)
            times.append(time.perf_counter() - t)
    return statistics.median(times)


def time_naive(model: torch.nn.Module, size: tuple[int, int], values: int) -> float:
    """Seconds for ``values`` naive steps (each one forward pass) on a batch."""
    seen = 0

    def stop(i: int, j: int, c: int, logits: torch.Tensor) -> None:
        nonlocal seen
        seen += 1
        if seen >= values:
            raise _Enough

    t = time.perf_counter()
    try:
        sample(model, BATCH, size, method="naive", on_logits=stop)
    except _Enough:
        pass
    return time.perf_counter() - t


def time_fast(model: torch.nn.Module, size: tuple[int, int]) -> float:
    t = time.perf_counter()
    sample(model, BATCH, size)
    return time.perf_counter() - t


def run(quick: bool, *, threads: int | None = 1) -> list[dict]:
    """One row per configuration; ``threads`` sets torch's intra-op threads (``None``: keep).

    One thread by default: per-pixel steps are small matmuls, and on a shared machine extra
    threads mostly wait on each other.
    """
    if threads is not None:
        torch.set_num_threads(threads)
    rows = []
    for model_name, recipe, fmt in configs(quick):
        channels, levels, size = FORMATS[fmt]
        model = build(recipe, fmt)
        x = torch.randint(0, levels, (BATCH, channels, *size))
        # Medians: of 5 passes and 3 samplings, and of 3 each for a CIFAR-10 paper model,
        # whose pass takes seconds (a single one moved by a third between runs on the
        # shared machine).
        slow = recipe.startswith("cifar10")
        fwd = time_forward(model, x, repeats=3 if slow else 5)
        total = channels * size[0] * size[1]
        # Naive: enough values for a stable rate, but only a few where a pass takes seconds.
        values = min(total, max(2, int(3.0 / max(fwd, 1e-3))), 8 if quick else 64)
        naive = time_naive(model, size, values) * total / values
        fast = statistics.median(time_fast(model, size) for _ in range(3))
        rows.append(
            {
                "model": model_name,
                "recipe": recipe,
                "images": f"{size[0]}x{size[1]}x{channels}/{levels}",
                "batch": BATCH,
                "forward_s": fwd,
                "fast_s": fast,
                "naive_s": naive,
                "naive_timed_values": values,
                "values": total,
                "speedup": naive / fast,
                "fast_over_forward": fast / fwd,
                "threads": torch.get_num_threads(),
            }
        )
    return rows


def table(rows: list[dict]):
    from rich.table import Table

    t = Table(title=f"Sampling a batch of {BATCH}: seconds per batch (images: HxWxC/levels)")
    for col in ("model", "recipe", "images", "forward", "fast", "naive (est.)", "naive timed"):
        t.add_column(col, justify="left" if col in ("model", "recipe", "images") else "right")
    t.add_column("speed-up", justify="right")
    t.add_column("fast/fwd", justify="right")
    for r in rows:
        t.add_row(
            r["model"],
            r["recipe"],
            r["images"],
            f"{r['forward_s']:.3f}",
            f"{r['fast_s']:.2f}",
            f"{r['naive_s']:.1f}",
            f"{r['naive_timed_values']}/{r['values']} values",
            f"{r['speedup']:.0f}x",
            f"{r['fast_over_forward']:.1f}",
        )
    return t


def main() -> None:
    from rich.console import Console

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="only the quick recipes at 28x28")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    args = parser.parse_args()
    rows = run(args.quick, threads=args.threads)
    console = Console()
    if not console.is_terminal:
        console.width = 140  # a log file: no terminal to wrap to
    console.print(table(rows))
    console.print(
        f"torch {torch.__version__}, {rows[0]['threads']} thread(s); naive extrapolated "
        "linearly from its first values (each value is one forward pass)"
    )


if __name__ == "__main__":
    main()
