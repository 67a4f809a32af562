"""What ``pixelgen.runtime.tune_allocator`` buys: glibc's default allocator against the
tuned one, for the fast and the reference layers at the CIFAR-10 paper sizes.

``python benchmarks/bench_allocator.py`` (about 11 minutes on 2 cores; not part of ``make
bench``, which runs everything tuned) measures each configuration in a fresh process
(``bench_train.measure``: seconds per training and evaluation step, batch 16, peak
memory) once with ``PIXELGEN_MALLOC=default`` and once tuned, prints a table and writes
``benchmarks/results_allocator.json``, which ``readme_tables.py`` renders for the README.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent / "src"), str(HERE)]

import readme_tables  # noqa: E402
from bench_train import measure_in_subprocess  # noqa: E402

CONFIGS = [
    (recipe, impl)
    for recipe in ("cifar10_rowlstm", "cifar10_diagonal_bilstm")
    for impl in ("fast", "reference")
]
MODES = {"default": "default", "tuned": "on"}  # PIXELGEN_MALLOC values


def run(threads: int = 2) -> list[dict]:
    rows = []
    for recipe, impl in CONFIGS:
        row = {"recipe": recipe, "impl": impl}
        for mode, value in MODES.items():
            os.environ["PIXELGEN_MALLOC"] = value  # the child process inherits it
            spec = {
                "recipe": recipe,
                "impl": impl,
                "threads": threads,
                "train_steps": 3,
                "eval_steps": 2,
                "warmup": 1,
            }
            r = measure_in_subprocess(spec, timeout=900)
            if "error" in r:
                row[mode] = {"error": r["error"]}
                continue
            row[mode] = {
                "train_step_s": statistics.median(r["train_s"]),
                "eval_step_s": statistics.median(r["eval_s"]),
                "train_peak_bytes": r["train_peak_bytes"],
                "allocator_tuned": r["allocator_tuned"],
            }
        os.environ.pop("PIXELGEN_MALLOC", None)
        rows.append(row)
        print(json.dumps(row), flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=HERE / "results_allocator.json")
    args = parser.parse_args()
    rows = run(args.threads)
    args.out.write_text(json.dumps({"threads": args.threads, "rows": rows}, indent=1) + "\n")
    print(readme_tables.allocator(rows))


if __name__ == "__main__":
    main()
