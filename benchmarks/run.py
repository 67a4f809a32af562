"""``make bench``: training and evaluation speed of every model, the optimized layers against
the plain reference ones, FLOP/s against the machine's dense matmul, memory per pixel, the
10,000-image MNIST evaluation, and the sampling and distributed sections when present.

Sections (``--only`` picks one):

* ``train``: for each model at the ``quick_*`` size, the paper's MNIST size (``mnist_*``)
  and the paper's CIFAR-10 size (``cifar10_*``), batch 16, N threads (default 2): training
  and evaluation images/s, FLOPs per image, achieved FLOP/s as a fraction of a 2048x2048
  float32 matmul timed in the same run, peak memory, and the speed-up of the optimized
  layers over ``pixelgen.nn.reference`` (see ``bench_train.py`` for how each is measured;
  the ``quick_*`` and ``mnist_*`` ones are the best of two interleaved rounds) with its
  bound: the speed-up that the optimized model's counted FLOPs would give at the full
  matmul rate, the most any exact float32 implementation of them could reach here.
  The two LSTMs at the ``quick_*`` and ``mnist_*`` sizes also run as ``python``: the fast
  layers with their Python recurrence scans instead of the native ones (``fast`` uses
  the native scans where they are built, see ``pixelgen/nn/native.py``), so that the
  gain of the native scans shows in one run. Then each recurrent layer alone at the
  MNIST and CIFAR-10 paper sizes against its reference and with the Python scans (ms
  forward + backward, and forward), memory per pixel and layer (CIFAR-10 models at
  16x16 and 32x32), and the time to evaluate the binarized MNIST test set
  (10,000 images) with each ``quick_*`` model;
* ``sampling``: ``bench_sampling.run(quick)``, if that file exists;
* ``distributed``: ``bench_distributed.run(quick)``, if that file exists.

Last, the speed goals of the MNIST-size work (:func:`speed_goals`): each goal, the value
measured in this run and whether it is met. Results go to rich tables and to
``benchmarks/results.json``. ``--quick`` is a smoke run
(about a minute): the ``quick_*`` sizes only, fewer steps, 1,000 MNIST test images.
The whole run keeps to ``--budget`` minutes (default 28; 22 on 2026-12-07 with nothing else
running, the sampling section 4.5 of them):
configurations that would start after the training section's share is spent are listed
as skipped. The machine is shared: absolute numbers move with whatever else runs (with
2 threads on 2 busy cores, OpenMP threads spin waiting for each other and small
operations can run many times slower); ratios measured in one run are the figures to
compare, and how many CPUs other processes kept busy at the start and end is recorded.
Every process runs with ``pixelgen.runtime.tune_allocator`` applied, as the command line
does, for the optimized and the reference layers alike.
"""

from __future__ import annotations

import argparse
import importlib
import json
import math
import os
import platform
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent / "src"), str(HERE)]

import torch  # noqa: E402
from bench_train import (  # noqa: E402
    layer_in_subprocess,
    machine_busy_seconds,
    measure_in_subprocess,
    mnist_eval_in_subprocess,
)

MODELS = {
    "pixelcnn": "pixelcnn",
    "row_lstm": "rowlstm",
    "diagonal_bilstm": "diagonal_bilstm",
    "gated_pixelcnn": "gated_pixelcnn",
}
SIZES = ("quick", "mnist", "cifar10")
OPTIONAL = (("bench_sampling", "sampling"), ("bench_distributed", "distributed"))
GOAL_SPEEDUP, GOAL_FRACTION, GOAL_EVAL_S = 3.0, 0.25, 60.0
# The MNIST-size goals: training at this fraction of the matmul rate, and sampling 16
# images in at most this many forward passes of the same 16 (per size and model).
GOAL_MNIST_FRACTION = 0.45
GOAL_SAMPLING = {("cifar10", None): 2.0, ("mnist", "pixelcnn"): 8.0, ("mnist", None): 4.0}
# pixelgen over pytorch-generative: (the key of bench_peer_*.py's file, the goal, its name)
PEER_GOALS = {
    "training": ("pixelgen_over_peer", 1.3, "training"),
    "sampling": ("native_over_peer", 10.0, "fast sampling"),
}
ROUNDS = 2  # rounds of the quick_* and mnist_* configurations (see train_section)
RECURRENT = ("row_lstm", "diagonal_bilstm")


def impls_for(model: str, size: str) -> tuple[str, ...]:
    """The implementations timed for one configuration: the LSTMs at the small sizes also
    with their Python scans (``python``), where the native scans matter."""
    if model in RECURRENT and size in ("quick", "mnist"):
        return ("fast", "python", "reference")
    return ("fast", "reference")


def busy_cpus(seconds: float = 1.0) -> float:
    """CPUs kept busy by other processes over ``seconds``, while this one sleeps (0 where
    ``/proc/stat`` is missing)."""
    busy0, wall0 = machine_busy_seconds(), time.perf_counter()
    time.sleep(seconds)
    return max(0.0, (machine_busy_seconds() - busy0) / (time.perf_counter() - wall0))


def matmul_flops(threads: int, n: int = 2048, repeats: int = 7) -> float:
    """Dense float32 matmul FLOP/s (median of ``repeats``), ``threads`` threads."""
    torch.set_num_threads(threads)
    a, b = torch.randn(n, n), torch.randn(n, n)
    for _ in range(2):
        a @ b
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - t)
    return 2 * n**3 / statistics.median(times)


def steps_for(size: str, impl: str, quick: bool) -> dict:
    """Timed steps: many where a step takes milliseconds (a blip of the shared machine then
    moves the median less), few where it takes seconds (fewest for the CIFAR-10 references,
    up to a minute a step, timed without warm-up steps)."""
    if quick:
        return {"train_steps": 5, "eval_steps": 5, "warmup": 1}
    if size == "cifar10":
        if impl == "reference":
            return {"train_steps": 2, "eval_steps": 2, "warmup": 0}
        return {"train_steps": 3, "eval_steps": 3, "warmup": 1}
    if size == "quick":
        return {"train_steps": 15, "eval_steps": 15, "warmup": 1}
    return {"train_steps": 10, "eval_steps": 10, "warmup": 1}


class Budget:
    """Wall-clock budget: a subprocess gets what is left (never past the deadline), and a
    configuration is skipped, with a note in its row, once less than ``floor`` is left."""

    def __init__(self, seconds: float, floor: float = 20.0) -> None:
        self.deadline, self.floor = time.perf_counter() + seconds, floor

    def left(self) -> float:
        return self.deadline - time.perf_counter()

    def run(self, fn, spec: dict, limit: float, log=None) -> dict:
        """``fn(spec)``; timed again once if other processes kept more than half a CPU
        busy meanwhile and the budget allows (the less disturbed result is kept)."""
        left = self.left()
        if left < self.floor:
            return {**spec, "error": "skipped: the run's time budget is spent"}
        row = fn(spec, timeout=min(limit, left))
        wall = (
            1 + sum(row.get("train_s", [])) + sum(row.get("eval_s", [])) + row.get("seconds", 0.0)
        )  # training rows time steps; evaluation rows, one pass
        busy = row.get("others_busy_cpus", 0.0)
        if busy > 0.5 and "error" not in row and self.left() > max(3 * wall, self.floor):
            if log is not None:
                log(
                    f"{spec.get('recipe')} {spec.get('impl')}: other processes kept "
                    f"{busy:.1f} CPUs busy, timing it again"
                )
            again = fn(spec, timeout=min(limit, self.left()))
            if "error" not in again and again.get("others_busy_cpus", 0.0) < busy:
                again["retried"] = True
                return again
            row["retried"] = True
        return row


def train_section(
    quick: bool, threads: int, log, budget: Budget, sizes: tuple[str, ...] = SIZES
) -> dict:
    """The training section; ``sizes`` (default: all) picks the recipe sizes, and the
    layer, memory and MNIST-evaluation parts run only where their sizes are picked."""
    peak_before = matmul_flops(threads)
    log(f"dense matmul: {peak_before / 1e9:.0f} GFLOP/s ({threads} threads)")
    sizes = ("quick",) if quick else sizes
    rows = _rate_rows(sizes, quick, threads, log, budget)
    layers = _layer_rows(sizes, threads, log, budget)
    memory = _memory_runs(rows, threads, log, budget) if "cifar10" in sizes else []
    evals = _eval_rows(quick, threads, log, budget) if "quick" in sizes else []
    peak_after = matmul_flops(threads)
    peak = max(peak_before, peak_after)  # the machine's rate: a busy moment only lowers it
    _derive(rows, peak)
    return {
        "matmul_flops": {"before": peak_before, "after": peak_after, "used": peak},
        "rows": rows,
        "layers": layers,
        "memory": _memory_rows(memory),
        "mnist_eval": evals,
        "goals": _goals(rows, evals, quick or "cifar10" not in sizes),
    }


def _rate_rows(sizes, quick: bool, threads: int, log, budget: Budget) -> list[dict]:
    """Training and evaluation rates of every recipe of ``sizes``, each implementation."""
    rows = []
    for size in sizes:
        for model, short in MODELS.items():
            recipe = f"{size}_{short}"
            # The quick_* and mnist_* configurations (seconds each) run in ROUNDS
            # interleaved rounds (fast, reference, fast, reference) and keep each one's
            # best: interference on the shared machine only ever slows a round down.
            rounds = 1 if quick or size == "cifar10" else ROUNDS
            pair: dict[str, list[dict]] = {impl: [] for impl in impls_for(model, size)}
            for _ in range(rounds):
                for impl in pair:
                    spec = {
                        "recipe": recipe,
                        "impl": impl,
                        "threads": threads,
                        **steps_for(size, impl, quick),
                    }
                    pair[impl].append(budget.run(measure_in_subprocess, spec, 900, log))
            for tries in pair.values():
                row = _best(tries)
                row["model"], row["size"] = model, size
                rows.append(row)
                log(_progress_line(row))
    return rows


def _layer_rows(sizes, threads: int, log, budget: Budget) -> list[dict]:
    """Each recurrent model's first layer alone, at the MNIST and CIFAR-10 sizes picked."""
    layers = []
    for size in ("mnist", "cifar10"):
        for model, short in MODELS.items():
            if size not in sizes or model in ("pixelcnn", "gated_pixelcnn"):  # none there
                continue
            spec = {
                "recipe": f"{size}_{short}",
                "threads": threads,
                "steps": 3 if size == "cifar10" else 10,
            }
            row = budget.run(layer_in_subprocess, spec, 300)
            row["model"] = model
            layers.append(row)
            if "error" not in row:
                log(
                    f"{spec['recipe']} layer: fast {row['fast_train_ms']:.0f} ms, Python scans "
                    f"{row['py_train_ms']:.0f} ms, reference {row['ref_train_ms']:.0f} ms "
                    "forward + backward"
                )
    return layers


def _memory_runs(rows: list[dict], threads: int, log, budget: Budget) -> list[dict]:
    """Peak training memory of the CIFAR-10 models at 16x16 (measured here) and 32x32
    (the rate rows' own measurement)."""
    memory = []
    for model, short in MODELS.items():
        for side in (16, 32):
            spec = {
                "recipe": f"cifar10_{short}",
                "impl": "fast",
                "threads": threads,
                "train_steps": 1,
                "eval_steps": 1,
                "side": side,
            }
            if side == 32:  # the main run above already measured it
                row = next(r for r in rows if r["recipe"] == spec["recipe"] and r["impl"] == "fast")
            else:
                row = budget.run(measure_in_subprocess, spec, 300)
            memory.append({**row, "model": model})
        log(f"memory {model}: done")
    return memory


def _eval_rows(quick: bool, threads: int, log, budget: Budget) -> list[dict]:
    """The binarized MNIST test set through each quick_* model, both implementations."""
    evals = []
    for model, short in MODELS.items():
        for impl in ("fast", "reference"):
            # The reference is timed on 1,000 images and scaled to the test set.
            n = 1000 if quick or impl == "reference" else None
            spec = {"recipe": f"quick_{short}", "impl": impl, "threads": threads, "max_images": n}
            row = budget.run(mnist_eval_in_subprocess, spec, 600, log)
            row["model"] = model
            evals.append(row)
            seconds = row.get("seconds_for_test_set")
            told = row.get("error", "no time") if seconds is None else f"{seconds:.1f} s"
            log(f"mnist test set, {model} {impl}: {told}")
    return evals


def _best(tries: list[dict]) -> dict:
    """One row from the rounds of a configuration: the training figures of the round that
    trained fastest, the evaluation figures of the one that evaluated fastest (each
    round's rates are kept under ``rounds``)."""
    ok = [t for t in tries if "error" not in t]
    if not ok:
        return tries[0]
    row = dict(max(ok, key=lambda t: t["train_images_per_s"]))
    best_eval = max(ok, key=lambda t: t["eval_images_per_s"])
    for key in ("eval_images_per_s", "eval_s", "eval_peak_bytes"):
        if key in best_eval:
            row[key] = best_eval[key]
    if len(tries) > 1:
        row["rounds"] = [
            {
                "train_images_per_s": t.get("train_images_per_s"),
                "eval_images_per_s": t.get("eval_images_per_s"),
            }
            for t in tries
        ]
    return row


def _progress_line(row: dict) -> str:
    if "error" in row:
        return f"{row['recipe']} {row['impl']}: ERROR {row['error']}"
    return (
        f"{row['recipe']} {row['impl']}: train {row['train_images_per_s']:.2f} img/s, "
        f"eval {row['eval_images_per_s']:.2f} img/s"
    )


def _derive(rows: list[dict], peak: float) -> None:
    """FLOP/s, fraction of the matmul rate, speed-ups over the reference (fast and
    python rows) and of the native scans over the Python ones (fast rows)."""
    for r in rows:
        if "error" in r:
            continue
        r["train_flops_per_s"] = r["train_flops_per_image"] * r["train_images_per_s"]
        r["eval_flops_per_s"] = r["eval_flops_per_image"] * r["eval_images_per_s"]
        r["train_fraction_of_matmul"] = r["train_flops_per_s"] / peak
        r["eval_fraction_of_matmul"] = r["eval_flops_per_s"] / peak
    for r in rows:
        ref = _twin(rows, r, "reference")
        if r["impl"] in ("fast", "python") and ref is not None and "error" not in r:
            r["train_speedup"] = r["train_images_per_s"] / ref["train_images_per_s"]
            r["eval_speedup"] = r["eval_images_per_s"] / ref["eval_images_per_s"]
            # The most any implementation doing the fast layers' matrix products could
            # gain: all of its counted FLOPs at the dense matmul rate, nothing else.
            r["train_speedup_bound"] = peak / r["train_flops_per_image"] / ref["train_images_per_s"]
        py = _twin(rows, r, "python")
        if r["impl"] == "fast" and py is not None and "error" not in r:
            r["native_train_gain"] = r["train_images_per_s"] / py["train_images_per_s"]
            r["native_eval_gain"] = r["eval_images_per_s"] / py["eval_images_per_s"]


def _twin(rows: list[dict], row: dict, impl: str) -> dict | None:
    """The row of the same recipe timed with ``impl``, if it succeeded."""
    return next(
        (
            q
            for q in rows
            if q["recipe"] == row["recipe"] and q["impl"] == impl and "error" not in q
        ),
        None,
    )


def _memory_rows(memory: list[dict]) -> list[dict]:
    """Bytes per pixel (and per layer) from the training peaks at two image sizes."""
    out = []
    for model in MODELS:
        pair = {r["pixels"]: r for r in memory if r["model"] == model and "error" not in r}
        if len(pair) < 2:
            continue
        small, big = pair[min(pair)], pair[max(pair)]
        per_pixel = (big["train_peak_bytes"] - small["train_peak_bytes"]) / (
            16 * (big["pixels"] - small["pixels"])
        )  # batch 16
        out.append(
            {
                "model": model,
                "recipe": big["recipe"],
                "layers": big["layers"],
                "peak_bytes": {
                    small["image"]: small["train_peak_bytes"],
                    big["image"]: big["train_peak_bytes"],
                },
                "growth": big["train_peak_bytes"] / max(small["train_peak_bytes"], 1),
                "pixel_ratio": big["pixels"] / small["pixels"],
                # What does not grow with the image: gradients, optimizer state, workspaces.
                "fixed_bytes": small["train_peak_bytes"] - per_pixel * 16 * small["pixels"],
                "bytes_per_pixel": per_pixel,
                "bytes_per_pixel_per_layer": per_pixel / big["layers"],
            }
        )
    return out


def _goals(rows: list[dict], evals: list[dict], quick: bool) -> list[dict]:
    goals = []
    if not quick:
        for model in ("row_lstm", "diagonal_bilstm"):
            r = _row(rows, "cifar10", model, "fast")
            value = r.get("train_speedup", math.nan) if r else math.nan
            bound = r.get("train_speedup_bound", math.nan) if r else math.nan
            goals.append(
                {
                    "goal": f"{model} CIFAR-10 training >= {GOAL_SPEEDUP:.0f}x reference",
                    "value": f"{value:.2f}x (at most {bound:.2f}x at the matmul rate)",
                    "bound": bound,
                    "met": value >= GOAL_SPEEDUP,
                }
            )
        for model in MODELS:
            r = _row(rows, "cifar10", model, "fast")
            value = r.get("train_fraction_of_matmul", math.nan) if r else math.nan
            goals.append(
                {
                    "goal": f"{model} CIFAR-10 training >= {GOAL_FRACTION:.0%} of matmul",
                    "value": f"{value:.0%}",
                    "met": value >= GOAL_FRACTION,
                }
            )
    for r in evals:
        if r["impl"] != "fast":
            continue
        goal = f"{r['recipe']}: MNIST test set in < {GOAL_EVAL_S:.0f} s"
        value = r.get("seconds_for_test_set")
        if value is None:  # skipped (the budget) or failed: not measured, neither met nor not
            goals.append({"goal": goal, "value": r.get("error", "not measured"), "met": None})
            continue
        timed = "" if r.get("images") == r.get("test_set") else " (scaled)"
        goals.append({"goal": goal, "value": f"{value:.1f} s{timed}", "met": value < GOAL_EVAL_S})
    return goals


def peer_goal(path: Path, what: str) -> dict:
    """A goal against pytorch-generative (``what``: "training" or "sampling"), from the file
    its ``bench_peer_*.py`` wrote where it was run (they need a checkout of the peer, so
    ``make bench`` does not run them)."""
    key, bound, kind = PEER_GOALS[what]
    goal = f"pixelcnn 1x28x28 {kind} >= {bound:g}x pytorch-generative's"
    if not path.is_file():
        return {"goal": goal, "value": f"not measured (bench_peer_{what}.py)", "met": None}
    found = json.loads(path.read_text())
    ratio = found[key]
    value = f"{ratio:.{2 if ratio < 10 else 0}f}x (from {path.name}, not this run"
    if "as_trained_over_peer" in found:  # the goal compares the same optimizer for both
        value += f"; {found['as_trained_over_peer']:.2f}x with the optimizer pixelgen train builds"
    return {"goal": goal, "value": value + ")", "met": ratio >= bound}


def speed_goals(results: dict, peers: Path = HERE) -> list[dict]:
    """The MNIST-size speed goals, from this run's training and sampling rows (and the
    peer comparisons' files in ``peers``): each with the measured value and ``met`` (None
    where it was not measured)."""
    rows = results.get("train", {}).get("rows", [])
    goals = []
    for model in ("row_lstm", "diagonal_bilstm", "pixelcnn"):
        r = _row(rows, "mnist", model, "fast")
        recipe = f"mnist_{MODELS[model]}"
        goal = f"{recipe} training >= {GOAL_MNIST_FRACTION:.0%} of matmul"
        if r is None:
            goals.append({"goal": goal, "value": "not measured in this run", "met": None})
            continue
        value = r["train_fraction_of_matmul"]
        goals.append({"goal": goal, "value": f"{value:.0%}", "met": value >= GOAL_MNIST_FRACTION})
    for model in RECURRENT:
        r = _row(rows, "mnist", model, "fast")
        goal = f"mnist_{MODELS[model]} evaluation gains at least what training gains"
        if r is None or "native_train_gain" not in r:
            goals.append({"goal": goal, "value": "not measured in this run", "met": None})
            continue
        train, ev = r["native_train_gain"], r["native_eval_gain"]
        goals.append(
            {
                "goal": goal,
                "value": f"train {train:.2f}x, eval {ev:.2f}x (native over Python scans)",
                "met": ev >= train,
            }
        )
    for what in PEER_GOALS:
        goals.append(peer_goal(peers / f"results_peer_{what}.json", what))
    sampled = {r["recipe"]: r for r in (results.get("sampling") or {}).get("rows", [])}
    for size in ("mnist", "cifar10"):
        for model in ("pixelcnn", *RECURRENT):
            recipe = f"{size}_{MODELS[model]}"
            bound = GOAL_SAMPLING.get((size, model), GOAL_SAMPLING[(size, None)])
            goal = f"{recipe} sampling 16 images <= {bound:.0f}x one forward pass"
            r = sampled.get(recipe)
            if r is None:
                goals.append({"goal": goal, "value": "not measured in this run", "met": None})
                continue
            value = r["fast_over_forward"]
            goals.append({"goal": goal, "value": f"{value:.1f}x", "met": value <= bound})
    return goals


def _met(met: bool | None) -> str:
    return "n/a" if met is None else "yes" if met else "NO"


def _row(rows: list[dict], size: str, model: str, impl: str) -> dict | None:
    return next(
        (
            r
            for r in rows
            if r["size"] == size and r["model"] == model and r["impl"] == impl and "error" not in r
        ),
        None,
    )


def _others(row: dict) -> str:
    """CPUs other processes kept busy while the row was timed (``*``: timed twice)."""
    return f"{row.get('others_busy_cpus', 0.0):.1f}" + ("*" if row.get("retried") else "")


def _mb(n: float) -> str:
    return f"{n / 2**20:,.0f}"


def train_tables(result: dict):
    """The rich tables of the training section: rates, layers, memory, evaluation, goals."""
    tables = [_rates_table(result)]
    if result.get("layers"):
        tables.append(_layers_table(result["layers"]))
    if result["memory"]:
        tables.append(_memory_table(result["memory"]))
    tables += [_eval_table(result["mnist_eval"]), _goals_table(result["goals"])]
    return tables


def _rates_table(result: dict):
    from rich.table import Table

    peak = result["matmul_flops"]["used"]
    t = Table(
        title=f"Training and evaluation, batch 16 (dense matmul {peak / 1e9:.0f} GFLOP/s; "
        "others: CPUs other processes kept busy meanwhile, * timed twice)"
    )
    cols = [
        "recipe",
        "impl",
        "layers",
        "train img/s",
        "eval img/s",
        "train GFLOP/img",
        "train GFLOP/s",
        "% matmul",
        "train peak MB",
        "steps",
        "speed-up train/eval",
        "native gain train/eval",
        "others",
    ]
    for c in cols:
        left = c in ("recipe", "impl", "layers")
        t.add_column(c, justify="left" if left else "right", no_wrap=left)
    for r in result["rows"]:
        if "error" in r:
            t.add_row(r["recipe"], r["impl"], "", r["error"][:60])
            continue
        speed = (
            f"{r['train_speedup']:.1f}x / {r['eval_speedup']:.1f}x" if "train_speedup" in r else ""
        )
        gain = (
            f"{r['native_train_gain']:.2f}x / {r['native_eval_gain']:.2f}x"
            if "native_train_gain" in r
            else ""
        )
        t.add_row(
            r["recipe"],
            r["impl"],
            str(r["layers"]),
            f"{r['train_images_per_s']:.2f}",
            f"{r['eval_images_per_s']:.1f}",
            f"{r['train_flops_per_image'] / 1e9:.2f}",
            f"{r['train_flops_per_s'] / 1e9:.1f}",
            f"{r['train_fraction_of_matmul']:.0%}",
            _mb(r["train_peak_bytes"]),
            str(r["train_steps"]),
            speed,
            gain,
            _others(r),
        )
    return t


def _layers_table(rows: list[dict]):
    from rich.table import Table

    lt = Table(title="One recurrent layer alone (2h maps in, h out, batch 16): ms per call")
    for c in (
        "recipe",
        "layer",
        "image",
        "h",
        "train fast",
        "train Python scans",
        "train reference",
        "speed-up",
        "eval fast",
        "eval Python scans",
        "eval reference",
        "speed-up ",
    ):
        lt.add_column(c, justify="left" if c in ("recipe", "layer", "image") else "right")
    for r in rows:
        if "error" in r:
            lt.add_row(r["recipe"], r["error"][:60])
            continue
        lt.add_row(
            r["recipe"],
            r["layer"],
            r["image"],
            str(r["hidden"]),
            f"{r['fast_train_ms']:.1f}",
            f"{r['py_train_ms']:.1f}",
            f"{r['ref_train_ms']:.1f}",
            f"{r['ref_train_ms'] / r['fast_train_ms']:.2f}x",
            f"{r['fast_eval_ms']:.1f}",
            f"{r['py_eval_ms']:.1f}",
            f"{r['ref_eval_ms']:.1f}",
            f"{r['ref_eval_ms'] / r['fast_eval_ms']:.2f}x",
        )
    return lt


def _memory_table(rows: list[dict]):
    from rich.table import Table

    m = Table(
        title="Training memory per pixel and image (fast layers, batch 16, peak RSS "
        "at two image sizes; bytes/pixel = growth / (16 images x added pixels))"
    )
    for c in (
        "model",
        "recipe",
        "peak MB (small / large)",
        "x memory for x pixels",
        "fixed MB",
        "bytes/pixel",
        "bytes/pixel/layer",
    ):
        m.add_column(c, justify="left" if c in ("model", "recipe") else "right")
    for r in rows:
        sizes = " / ".join(f"{_mb(v)} ({k})" for k, v in r["peak_bytes"].items())
        m.add_row(
            r["model"],
            r["recipe"],
            sizes,
            f"{r['growth']:.2f}x for {r['pixel_ratio']:.0f}x",
            _mb(r["fixed_bytes"]),
            f"{r['bytes_per_pixel']:,.0f}",
            f"{r['bytes_per_pixel_per_layer']:,.0f}",
        )
    return m


def _eval_table(rows: list[dict]):
    from rich.table import Table

    e = Table(title="Evaluating the binarized MNIST test set with the quick_* models")
    for c in ("recipe", "impl", "images timed", "batch", "seconds", "seconds for 10,000", "others"):
        e.add_column(c, justify="left" if c in ("recipe", "impl") else "right")
    for r in rows:
        if "error" in r:
            e.add_row(r["recipe"], r["impl"], r["error"][:60])
            continue
        e.add_row(
            f"{r['recipe']}",
            r["impl"],
            str(r["images"]),
            str(r["batch_size"]),
            f"{r['seconds']:.1f}",
            f"{r['seconds_for_test_set']:.1f}",
            _others(r),
        )
    return e


def _goals_table(goals: list[dict]):
    from rich.table import Table

    g = Table(title="Goals")
    for c in ("goal", "value", "met"):
        g.add_column(c)
    for r in goals:
        g.add_row(r["goal"], r["value"], _met(r["met"]))
    return g


def speed_goals_table(goals: list[dict]):
    from rich.table import Table

    t = Table(title="Speed goals at the MNIST sizes and for sampling")
    for c in ("goal", "value", "met"):
        t.add_column(c)
    for g in goals:
        t.add_row(g["goal"], g["value"], _met(g["met"]))
    return t


def optional_section(name: str, quick: bool, log) -> dict | None:
    """``benchmarks/<name>.py``'s ``run(quick)`` rows and its table, if the file exists."""
    if not (HERE / f"{name}.py").is_file():
        log(f"{name}: benchmarks/{name}.py not present, skipped")
        return None
    module = importlib.import_module(name)
    t = time.perf_counter()
    try:
        rows = module.run(quick)
    except Exception as exc:  # another section's failure must not lose this run's results
        return {"error": f"{type(exc).__name__}: {exc}", "wall_s": time.perf_counter() - t}
    return {
        "rows": rows,
        "wall_s": time.perf_counter() - t,
        "table": getattr(module, "table", None),
    }


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a short smoke run")
    parser.add_argument("--only", choices=("train", "sampling", "distributed"))
    parser.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    parser.add_argument(
        "--sizes",
        default=",".join(SIZES),
        help="training section: the recipe sizes to time, comma-separated (default: "
        "quick,mnist,cifar10); the layer, memory and MNIST-evaluation parts follow them",
    )
    parser.add_argument("--out", type=Path, default=HERE / "results.json")
    parser.add_argument(
        "--budget",
        type=float,
        default=28.0,
        help="minutes for the whole run (default 28); the training section "
        "stops starting configurations when its share is spent",
    )
    return parser


def main() -> None:
    from rich.console import Console

    parser = _parser()
    args = parser.parse_args()
    console = Console()
    if not console.is_terminal:
        console.width = 160  # a log file: no terminal to wrap to

    def log(msg: str) -> None:
        console.print(f"[dim]{time.strftime('%H:%M:%S')}[/dim] {msg}")

    from pixelgen.runtime import tune_allocator

    start = time.perf_counter()
    busy = busy_cpus()
    results: dict = {
        "allocator_tuned": tune_allocator(),  # as the command line does; see runtime.py
        "torch": torch.__version__,
        "machine": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
        "threads": args.threads,
        "quick": args.quick,
        "busy_cpus_at_start": busy,
    }
    if busy > 0.5:
        log(
            f"[yellow]other processes keep {busy:.1f} of {os.cpu_count()} CPUs busy: threads "
            "wait on each other, and timings can come out several times slower than on an "
            "idle machine[/yellow]"
        )
    others = [n for n, k in OPTIONAL if args.only in (None, k) and (HERE / f"{n}.py").is_file()]
    # Leave the sampling and distributed sections about 4 minutes each of the budget (at
    # most half of it, so that a short --quick budget still times the training section).
    budget = Budget(args.budget * 60 - min(240 * len(others), args.budget * 30))
    if args.only in (None, "train"):
        sizes = tuple(x for x in args.sizes.split(",") if x)
        if not set(sizes) <= set(SIZES):
            parser.error(f"--sizes: each of {', '.join(SIZES)}")
        results["train"] = train_section(args.quick, args.threads, log, budget, sizes)
        results["sizes"] = sizes
        for table in train_tables(results["train"]):
            console.print(table)
    for name, key in OPTIONAL:
        if args.only in (None, key):
            _run_optional(name, key, args.quick, results, console, log)
    results["speed_goals"] = speed_goals(results)
    console.print(speed_goals_table(results["speed_goals"]))
    results["wall_s"] = time.perf_counter() - start
    results["busy_cpus_at_end"] = busy_cpus()
    args.out.write_text(json.dumps(results, indent=1, default=str) + "\n")
    log(
        f"wrote {args.out} ({results['wall_s'] / 60:.1f} min); the machine is shared, so "
        "absolute numbers are noisy: compare ratios measured in one run"
    )


def _run_optional(name: str, key: str, quick: bool, results: dict, console, log) -> None:
    """One optional section (``OPTIONAL``): its table printed, its rows into ``results``."""
    section = optional_section(name, quick, log)
    if section is None:
        return
    make_table = section.pop("table", None)
    if "error" in section:
        log(f"{key}: ERROR {section['error']}")
    elif make_table is not None:
        console.print(make_table(section["rows"]))
    results[key] = section


if __name__ == "__main__":
    main()
