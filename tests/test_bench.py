"""The benchmark driver's arithmetic (``benchmarks/run.py``) and its Markdown rendering;
the timings themselves are ``make bench``'s job, never a test's."""

from __future__ import annotations

import math

import pytest
import readme_tables  # benchmarks/ is on pytest's pythonpath (pyproject.toml)
import run as bench


def _row(impl: str, train: float, eval_: float, flops: float = 1e9) -> dict:
    return {
        "recipe": "cifar10_rowlstm",
        "model": "row_lstm",
        "size": "cifar10",
        "impl": impl,
        "train_images_per_s": train,
        "eval_images_per_s": eval_,
        "train_flops_per_image": flops,
        "eval_flops_per_image": flops / 3,
        "train_peak_bytes": 2**30,
    }


def test_best_of_rounds_keeps_each_best_rate():
    a, b = _row("fast", 10.0, 50.0), _row("fast", 12.0, 40.0)
    a["eval_s"], b["eval_s"] = [0.32], [0.4]
    a["train_s"], b["train_s"] = [1.6], [1.33]
    best = bench._best([a, b])
    assert best["train_images_per_s"] == 12.0 and best["train_s"] == [1.33]
    assert best["eval_images_per_s"] == 50.0 and best["eval_s"] == [0.32]
    assert [r["train_images_per_s"] for r in best["rounds"]] == [10.0, 12.0]
    failed = {"recipe": "x", "impl": "fast", "error": "over the limit"}
    assert bench._best([failed, a])["train_images_per_s"] == 10.0
    assert bench._best([failed]) == failed


def test_speedup_and_its_bound():
    fast, ref = _row("fast", 3.0, 9.0, flops=40e9), _row("reference", 2.0, 8.0, flops=50e9)
    bench._derive([fast, ref], peak=160e9)
    assert fast["train_speedup"] == pytest.approx(1.5)
    assert fast["eval_speedup"] == pytest.approx(9 / 8)
    # All of the fast layers' FLOPs at the matmul rate: 4 images/s, against 2.
    assert fast["train_speedup_bound"] == pytest.approx(2.0)
    assert fast["train_fraction_of_matmul"] == pytest.approx(3.0 * 40e9 / 160e9)
    goals = bench._goals([fast, ref], [], quick=False)
    row_goal = next(g for g in goals if g["goal"].startswith("row_lstm CIFAR-10 training >="))
    assert not row_goal["met"] and "at most 2.00x" in row_goal["value"]
    missing = next(g for g in goals if g["goal"].startswith("diagonal_bilstm CIFAR-10 training"))
    assert not missing["met"] and math.isnan(missing["bound"])


def test_markdown_tables_render_every_row():
    fast, ref = _row("fast", 3.0, 9.0, flops=40e9), _row("reference", 2.0, 8.0, flops=50e9)
    bench._derive([fast, ref], peak=160e9)
    result = {"train": {"matmul_flops": {"used": 160e9}, "rows": [fast, ref]}}
    text = readme_tables.train(result)
    lines = text.splitlines()
    assert lines[0].startswith("Dense float32 matmul in the same run: 160 GFLOP/s")
    assert sum(line.startswith("| cifar10_rowlstm") for line in lines) == 2
    assert "1.50× / 1.12× (at most 2.00×)" in text


def test_allocator_table_renders_both_modes():
    run = {"train_step_s": 2.0, "eval_step_s": 1.0, "train_peak_bytes": 2**30}
    rows = [
        {
            "recipe": "cifar10_rowlstm",
            "impl": "fast",
            "default": run,
            "tuned": {**run, "train_step_s": 1.0},
        },
        {"recipe": "cifar10_rowlstm", "impl": "reference", "default": {"error": "x"}, "tuned": run},
    ]
    text = readme_tables.allocator(rows).splitlines()
    assert "2.00 → 1.00 (2.00×)" in text[2] and "1,024 → 1,024" in text[2]
    assert "failed" in text[3]
