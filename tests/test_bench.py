"""The benchmark driver's arithmetic (``benchmarks/run.py``) and its Markdown rendering;
the timings themselves are ``make bench``'s job, never a test's."""

from __future__ import annotations

import json
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


def test_an_evaluation_the_budget_skipped_is_not_measured_rather_than_failed():
    skipped = {"recipe": "quick_rowlstm", "impl": "fast", "error": "skipped: budget spent"}
    timed = {"recipe": "quick_pixelcnn", "impl": "fast", "seconds_for_test_set": 4.0}
    timed.update(images=10_000, test_set=10_000)
    goals = {g["goal"]: g for g in bench._goals([], [skipped, timed], quick=True)}
    row = goals["quick_rowlstm: MNIST test set in < 60 s"]
    assert row["met"] is None and row["value"] == "skipped: budget spent"
    assert goals["quick_pixelcnn: MNIST test set in < 60 s"] == {
        "goal": "quick_pixelcnn: MNIST test set in < 60 s", "value": "4.0 s", "met": True
    }  # fmt: skip


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


def _mnist(model: str, impl: str, train: float, eval_: float) -> dict:
    recipe = f"mnist_{bench.MODELS[model]}"
    return {**_row(impl, train, eval_), "recipe": recipe, "model": model, "size": "mnist"}


def test_python_scans_rows_only_for_the_small_lstms():
    assert bench.impls_for("row_lstm", "mnist") == ("fast", "python", "reference")
    assert bench.impls_for("diagonal_bilstm", "quick") == ("fast", "python", "reference")
    assert bench.impls_for("row_lstm", "cifar10") == ("fast", "reference")
    assert bench.impls_for("pixelcnn", "mnist") == ("fast", "reference")


def test_native_gain_and_the_speed_goals(tmp_path):
    rows = [
        _mnist("row_lstm", "fast", 90.0, 300.0),
        _mnist("row_lstm", "python", 60.0, 250.0),
        _mnist("row_lstm", "reference", 45.0, 150.0),
        _mnist("diagonal_bilstm", "fast", 40.0, 160.0),
        _mnist("diagonal_bilstm", "python", 20.0, 60.0),
        _mnist("pixelcnn", "fast", 100.0, 400.0),
    ]
    bench._derive(rows, peak=160e9)  # 1 GFLOP per image: 90 img/s is 56% of the rate
    fast_row = rows[0]
    assert fast_row["native_train_gain"] == pytest.approx(1.5)
    assert fast_row["native_eval_gain"] == pytest.approx(1.2)
    assert rows[1]["train_speedup"] == pytest.approx(60 / 45)  # python rows: vs reference
    assert "native_train_gain" not in rows[1] and "native_train_gain" not in rows[5]
    sampling = {
        "rows": [
            {"model": "row_lstm", "recipe": "mnist_rowlstm", "fast_over_forward": 3.9},
            {"model": "pixelcnn", "recipe": "mnist_pixelcnn", "fast_over_forward": 8.5},
            {"model": "pixelcnn", "recipe": "cifar10_pixelcnn", "fast_over_forward": 1.9},
            {"model": "row_lstm", "recipe": "quick_rowlstm", "fast_over_forward": 30.0},
        ]
    }
    measured = {"train": {"rows": rows}, "sampling": sampling}
    goals = {g["goal"]: g for g in bench.speed_goals(measured, peers=tmp_path / "none")}
    assert goals["mnist_rowlstm training >= 45% of matmul"]["met"] is True
    assert goals["mnist_rowlstm training >= 45% of matmul"]["value"] == "56%"
    assert goals["mnist_diagonal_bilstm training >= 45% of matmul"]["met"] is False  # 25%
    assert goals["mnist_pixelcnn training >= 45% of matmul"]["met"] is True
    row_eval = goals["mnist_rowlstm evaluation gains at least what training gains"]
    assert row_eval["met"] is False and "train 1.50x, eval 1.20x" in row_eval["value"]
    diag_eval = goals["mnist_diagonal_bilstm evaluation gains at least what training gains"]
    assert diag_eval["met"] is True  # 3x against 2x
    assert goals["mnist_rowlstm sampling 16 images <= 4x one forward pass"]["met"] is True
    assert goals["mnist_pixelcnn sampling 16 images <= 8x one forward pass"]["met"] is False
    assert goals["cifar10_pixelcnn sampling 16 images <= 2x one forward pass"]["met"] is True
    missing = goals["cifar10_rowlstm sampling 16 images <= 2x one forward pass"]
    assert missing["met"] is None and missing["value"] == "not measured in this run"
    assert not any(g.startswith("quick_") for g in goals)  # no goal at the quick sizes
    peers = [g for g in goals.values() if "pytorch-generative" in g["goal"]]
    assert len(peers) == 2 and all(g["met"] is None for g in peers)
    for name, key, ratio, met, shown in (
        ("sampling", "native_over_peer", 12.0, True, "12x"),
        ("sampling", "native_over_peer", 9.0, False, "9.00x"),
        ("training", "pixelgen_over_peer", 1.31, True, "1.31x"),
        ("training", "pixelgen_over_peer", 1.16, False, "1.16x"),
    ):
        (tmp_path / f"results_peer_{name}.json").write_text(json.dumps({key: ratio}))
        peer = bench.speed_goals(measured, peers=tmp_path)
        found = [g for g in peer if f"{name} >= " in g["goal"] and "pytorch" in g["goal"]]
        assert [g["met"] for g in found] == [met] and found[0]["value"].startswith(shown)
    (tmp_path / "results_peer_training.json").write_text(
        json.dumps({"pixelgen_over_peer": 1.25, "as_trained_over_peer": 1.33})
    )
    trained = [
        g for g in bench.speed_goals(measured, peers=tmp_path) if "training >= 1.3" in g["goal"]
    ]
    assert trained[0]["met"] is False  # judged on the same optimizer, and says both
    assert (
        trained[0]["value"].startswith("1.25x")
        and "1.33x with the optimizer" in trained[0]["value"]
    )
    empty = bench.speed_goals({}, peers=tmp_path / "none")  # nothing measured, none met
    assert all(g["met"] is None for g in empty) and len(empty) == 13
    text = readme_tables.speed_goals({"speed_goals": list(goals.values())})
    assert "| mnist_rowlstm training >= 45% of matmul | 56% | yes |" in text
    assert "| mnist_pixelcnn sampling 16 images <= 8x one forward pass | 8.5x | **no** |" in text
    assert "| not measured (bench_peer_training.py) | not measured |" in text


def test_native_report_gives_rates_and_ratios():
    import bench_native

    med = {(k, p): t for k in ("train", "eval", "layer_fb", "layer_f", "scan_f", "scan_b")
           for p, t in (("native", 0.2), ("python", 0.3))}  # fmt: skip
    line = bench_native.report("mnist_rowlstm", med)
    assert "train 80.0 vs 53.3 img/s (1.50x)" in line
    assert "scans forward 200.0 vs 300.0 ms (1.50x)" in line


def test_flops_count_a_masked_kernels_stored_rows():
    """The fast path runs a 3x3 mask-B kernel as 3x3 (its bottom row zero); the count
    takes the 2x3 stored rows, and the computation itself is unchanged."""
    import bench_train
    import torch

    from pixelgen.nn.masked import MaskedConv2d
    from pixelgen.nn.masks import channel_groups

    g = channel_groups(4, 1)
    conv = MaskedConv2d(4, 8, 3, mask_type="B", in_groups=g, out_groups=g.repeat(2))
    x = torch.randn(2, 4, 5, 6)
    before = conv(x)
    flops = bench_train._flops(lambda: conv(x))
    assert flops == 2 * 2 * 8 * 4 * 5 * 6 * (2 * 3)  # 2 * N * O * I * H * W * stored taps
    assert torch.equal(conv(x), before)  # the fast path is back after the count
