"""Render ``benchmarks/results.json`` as the Markdown tables of the README's "Speed" section.

``python benchmarks/readme_tables.py [results.json]`` prints them (and the allocator table
of ``bench_allocator.py`` from ``results_allocator.json`` beside it, when present); the
README's tables are pasted from this output, so that none of their figures is copied by
hand.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _table(head: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def _mib(n: float) -> str:
    return f"{n / 2**20:,.0f} MiB"


def train(result: dict) -> str:
    t = result["train"]
    rows = []
    for r in t["rows"]:
        if "error" in r:
            rows.append([r["recipe"], r["impl"], r["error"], "", "", "", "", "", ""])
            continue
        speed = ""
        if "train_speedup" in r:
            speed = (
                f"{r['train_speedup']:.2f}× / {r['eval_speedup']:.2f}× "
                f"(at most {r['train_speedup_bound']:.2f}×)"
            )
        gain = ""
        if "native_train_gain" in r:
            gain = f"{r['native_train_gain']:.2f}× / {r['native_eval_gain']:.2f}×"
        rows.append(
            [
                r["recipe"],
                r["impl"],
                f"{r['train_images_per_s']:.1f}",
                f"{r['eval_images_per_s']:.1f}",
                f"{r['train_flops_per_image'] / 1e9:.2f}",
                f"{r['train_fraction_of_matmul']:.0%}",
                _mib(r["train_peak_bytes"]),
                speed,
                gain,
            ]
        )
    head = [
        "recipe",
        "impl",
        "train img/s",
        "eval img/s",
        "GFLOP/image (train)",
        "% of matmul (train)",
        "peak train memory",
        "speed-up vs reference, train / eval (bound)",
        "native scans over Python scans, train / eval",
    ]
    peak = t["matmul_flops"]["used"] / 1e9
    return f"Dense float32 matmul in the same run: {peak:.0f} GFLOP/s.\n\n" + _table(head, rows)


def layers(result: dict) -> str:
    rows = [
        [
            r["recipe"],
            r["layer"],
            r["image"],
            str(r["hidden"]),
            f"{r['fast_train_ms']:.1f} / {r['py_train_ms']:.1f} / {r['ref_train_ms']:.1f}",
            f"{r['ref_train_ms'] / r['fast_train_ms']:.2f}×",
            f"{r['fast_eval_ms']:.1f} / {r['py_eval_ms']:.1f} / {r['ref_eval_ms']:.1f}",
            f"{r['ref_eval_ms'] / r['fast_eval_ms']:.2f}×",
        ]
        for r in result["train"]["layers"]
        if "error" not in r
    ]
    head = [
        "recipe",
        "layer",
        "image",
        "h",
        "forward + backward ms (fast / Python scans / reference)",
        "speed-up",
        "forward ms (fast / Python scans / reference)",
        "speed-up",
    ]
    return _table(head, rows)


def memory(result: dict) -> str:
    rows = []
    for r in result["train"]["memory"]:
        small, big = sorted(r["peak_bytes"].items(), key=lambda kv: kv[1])
        rows.append(
            [
                r["model"],
                _mib(small[1]),
                _mib(big[1]),
                f"{r['growth']:.1f}×",
                f"{r['bytes_per_pixel_per_layer']:,.0f}",
            ]
        )
    return _table(["model", "16×16", "32×32", "growth", "bytes per pixel per layer"], rows)


def mnist_eval(result: dict) -> str:
    rows = [
        [r["recipe"], r["impl"], f"{r['images']:,}", f"{r['seconds_for_test_set']:.1f}"]
        for r in result["train"]["mnist_eval"]
        if "error" not in r
    ]
    return _table(["recipe", "impl", "images timed", "seconds for 10,000"], rows)


def _met(met: bool | None) -> str:
    return "not measured" if met is None else "yes" if met else "**no**"


def goals(result: dict) -> str:
    rows = [[g["goal"], g["value"], _met(g["met"])] for g in result["train"]["goals"]]
    return _table(["goal", "value", "met"], rows)


def speed_goals(result: dict) -> str:
    rows = [[g["goal"], g["value"], _met(g["met"])] for g in result["speed_goals"]]
    return _table(["goal", "value", "met"], rows)


def sampling(result: dict) -> str:
    rows = [
        [
            r["model"],
            r["recipe"],
            r["images"],
            f"{r['forward_s']:.3f}",
            f"{r['fast_s']:.2f}",
            f"{r['naive_s']:.1f} (from {r['naive_timed_values']} of {r['values']})",
            f"{r['speedup']:.0f}×",
            f"{r['fast_over_forward']:.1f}",
        ]
        for r in result["sampling"]["rows"]
    ]
    head = [
        "model",
        "recipe",
        "image",
        "one forward (s)",
        "fast (s)",
        "naive (s, extrapolated from N values)",
        "speed-up",
        "fast / forward",
    ]
    return _table(head, rows)


def distributed(result: dict) -> str:
    rows = [
        [r["recipe"], f"{r['processes']} × {r['threads_per_process']}", f"{r['images_per_s']:.0f}"]
        for r in result["distributed"]["rows"]
    ]
    return _table(["recipe", "processes × threads", "images/s"], rows)


def allocator(rows: list[dict]) -> str:
    """``bench_allocator.py``'s rows: each configuration with glibc's default allocator and
    tuned."""
    out = []
    for r in rows:
        a, b = r.get("default", {}), r.get("tuned", {})
        if "train_step_s" not in a or "train_step_s" not in b:
            out.append([r["recipe"], r["impl"], "failed", "", ""])
            continue
        out.append(
            [
                r["recipe"],
                r["impl"],
                f"{a['train_step_s']:.2f} → {b['train_step_s']:.2f} "
                f"({a['train_step_s'] / b['train_step_s']:.2f}×)",
                f"{a['eval_step_s']:.2f} → {b['eval_step_s']:.2f} "
                f"({a['eval_step_s'] / b['eval_step_s']:.2f}×)",
                f"{a['train_peak_bytes'] / 2**20:,.0f} → {b['train_peak_bytes'] / 2**20:,.0f}",
            ]
        )
    head = [
        "recipe",
        "impl",
        "train step (s): glibc default → tuned",
        "eval step (s): default → tuned",
        "peak train memory (MiB): default → tuned",
    ]
    return _table(head, out)


def main() -> None:
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else HERE / "results.json"
    result = json.loads(path.read_text())
    print(
        f"torch {result['torch']}, {result['cpus']} CPUs, {result['threads']} threads, "
        f"{result['wall_s'] / 60:.1f} min, allocator tuned: {result.get('allocator_tuned')}\n"
    )
    for name, fn in [
        ("train", train),
        ("layers", layers),
        ("memory", memory),
        ("mnist_eval", mnist_eval),
        ("goals", goals),
        ("speed_goals", speed_goals),
        ("sampling", sampling),
        ("distributed", distributed),
    ]:
        try:
            print(f"<!-- {name} -->\n{fn(result)}\n")
        except KeyError as exc:
            print(f"<!-- {name}: missing {exc} -->\n")
    alloc = path.with_name("results_allocator.json")
    if alloc.is_file():
        rows = json.loads(alloc.read_text())["rows"]
        print(f"<!-- allocator -->\n{allocator(rows)}\n")


if __name__ == "__main__":
    main()
