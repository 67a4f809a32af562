"""Data-parallel training speed: images/s for 1 and 2 CPU processes, and (``--gpu``) fp32
against bf16 and eager against ``torch.compile`` on a GPU at the CIFAR-10 paper size.

CPU (``run(quick)``): each configuration is a real ``pixelgen train`` run of a ``quick_*``
recipe (global batch 32) in a subprocess: one process with 1 and with 2 threads, and two
``torchrun`` processes (gloo) with 1 thread each. The rate is the mean of the
``images_per_s`` that ``metrics.jsonl`` logs, leaving out the first window (warm-up);
validation, the sample grid and the checkpoint come after the last window. On a shared
machine the numbers move with whatever else runs.

GPU (``run_gpu``, used by ``benchmarks/gpu_check.sh``): the training step of
``pixelgen.train`` (autocast forward, fp32 cross-entropy, backward, clipping, RMSprop)
on random images of 32x32x3 with 256 levels, for each ``cifar10_*`` recipe's model; each
compiled configuration runs in its own subprocess under a time limit, because compiling
the unrolled recurrent layers can take minutes.

Run ``python benchmarks/bench_distributed.py [--quick]`` (CPU) or
``python benchmarks/bench_distributed.py --gpu [--json PATH]``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODELS = {"pixelcnn": "pixelcnn", "row_lstm": "rowlstm", "diagonal_bilstm": "diagonal_bilstm"}
# (processes, threads per process)
LAYOUTS = [(1, 1), (1, 2), (2, 1)]


def _env(threads: int) -> dict[str, str]:
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT / "src"), env.get("PYTHONPATH")]))
    return env


def train_rate(recipe: str, processes: int, threads: int, steps: int, log_every: int) -> dict:
    """Run ``pixelgen train`` and read its logged images/s (after the first window)."""
    sets = [
        f"train.max_steps={steps}",
        f"train.log_every={log_every}",
        f"train.eval_every={steps}",
        f"train.checkpoint_every={steps}",
        "train.eval_max_images=32",
        "train.device=cpu",
        "sample.n=1",
    ]
    with tempfile.TemporaryDirectory(prefix="pixelgen-bench-") as tmp:
        out = Path(tmp) / "run"
        args = ["-m", "pixelgen", "train", recipe, "--no-progress", "--out", str(out)]
        args += [a for s in sets for a in ("--set", s)]
        if processes > 1:
            launch = [
                sys.executable,
                "-m",
                "torch.distributed.run",
                "--standalone",
                "--nproc-per-node",
                str(processes),
            ]
        else:
            launch = [sys.executable]
        t = time.perf_counter()
        proc = subprocess.run(launch + args, env=_env(threads), capture_output=True, text=True)
        wall = time.perf_counter() - t
        if proc.returncode != 0:
            raise RuntimeError(f"{recipe} x{processes}: {proc.stderr.strip()[-2000:]}")
        rows = [json.loads(ln) for ln in (out / "metrics.jsonl").read_text().splitlines()]
    rates = [r["images_per_s"] for r in rows if r["split"] == "train"][1:]
    return {"images_per_s": statistics.mean(rates), "windows": len(rates), "wall_s": wall}


def run(quick: bool) -> list[dict]:
    """One row per (recipe, processes, threads): images/s and the speed-up over 1x1."""
    recipes = ["quick_pixelcnn"] if quick else [f"quick_{m}" for m in MODELS.values()]
    steps, log_every = (30, 10) if quick else (60, 15)
    rows = []
    for recipe in recipes:
        base = None
        for processes, threads in LAYOUTS:
            r = train_rate(recipe, processes, threads, steps, log_every)
            base = base or r["images_per_s"]
            rows.append(
                {
                    "recipe": recipe,
                    "processes": processes,
                    "threads_per_process": threads,
                    "global_batch": 32,
                    "steps": steps,
                    **r,
                    "speedup": r["images_per_s"] / base,
                }
            )
    return rows


def table(rows: list[dict]):
    from rich.table import Table

    t = Table(title="Training on the CPU: images/s (gloo between processes, global batch 32)")
    for col in ("recipe", "processes", "threads each", "images/s", "speed-up", "windows"):
        t.add_column(col, justify="left" if col == "recipe" else "right")
    for r in rows:
        t.add_row(
            r["recipe"],
            str(r["processes"]),
            str(r["threads_per_process"]),
            f"{r['images_per_s']:.0f}",
            f"{r['speedup']:.2f}x",
            str(r["windows"]),
        )
    return t


# ---------------------------------------------------------------------------- GPU


def gpu_step_rate(
    model_name: str,
    precision: str,
    compile: bool,
    batch: int,
    steps: int,
    warmup: int,
    device: str = "cuda",
) -> dict:
    """Images/s of pixelgen's training step for one ``cifar10_*`` model on ``device``."""
    import torch
    import torch.nn.functional as F

    import pixelgen
    from pixelgen.config import load_recipe
    from pixelgen.train import make_autocast, make_optimizer

    recipe = load_recipe(f"cifar10_{MODELS[model_name]}")
    device = torch.device(device)
    cuda = device.type == "cuda"
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    torch.manual_seed(0)
    model = pixelgen.create_model(
        recipe.model.name, channels=3, levels=256, **recipe.model.kwargs()
    ).to(device)
    net = torch.compile(model) if compile else model
    opt = make_optimizer(recipe, model.parameters())
    scaler = torch.amp.GradScaler(device.type, enabled=precision == "fp16")
    autocast = make_autocast(precision, device)
    x = torch.randint(0, 256, (batch, 3, 32, 32), device=device)  # (B, C, H, W)

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        with autocast():
            logits = net(x)  # (B, 256, 3, 32, 32)
            nll = F.cross_entropy(logits.float(), x, reduction="sum")
        scaler.scale(nll / batch).backward()
        scaler.unscale_(opt)
        torch.nn.utils.clip_grad_norm_(model.parameters(), recipe.train.grad_clip or 1e9)
        scaler.step(opt)
        scaler.update()

    sync()
    t = time.perf_counter()
    step()  # includes compilation
    sync()
    first = time.perf_counter() - t
    for _ in range(warmup):
        step()
    sync()
    t = time.perf_counter()
    for _ in range(steps):
        step()
    sync()
    elapsed = time.perf_counter() - t
    return {
        "model": model_name,
        "precision": precision,
        "compile": compile,
        "batch": batch,
        "images_per_s": steps * batch / elapsed,
        "first_step_s": first,
        "peak_mem_gib": torch.cuda.max_memory_allocated() / 2**30 if cuda else float("nan"),
        "parameters": sum(p.numel() for p in model.parameters()),
    }


def run_gpu(
    batch: int = 16,
    steps: int = 20,
    warmup: int = 3,
    compile_timeout: float = 75,
    compile_precisions: tuple[str, ...] = ("bf16",),
    device: str = "cuda",
    models: tuple[str, ...] = tuple(MODELS),
) -> list[dict]:
    """fp32 and bf16 eager for each model in this process; each compiled configuration in
    a subprocess killed after ``compile_timeout`` seconds (reported as such)."""
    rows = []
    for model_name in models:
        for precision in ("fp32", "bf16"):
            rows.append(gpu_step_rate(model_name, precision, False, batch, steps, warmup, device))
        for precision in compile_precisions:
            rows.append(
                _compiled_in_subprocess(
                    model_name, precision, batch, steps, warmup, compile_timeout, device
                )
            )
    eager = {(r["model"], r["precision"]): r["images_per_s"] for r in rows if not r["compile"]}
    for r in rows:
        base = eager.get((r["model"], "fp32"))
        r["vs_fp32_eager"] = r["images_per_s"] / base if r.get("images_per_s") else None
    return rows


def _compiled_in_subprocess(model_name, precision, batch, steps, warmup, timeout, device) -> dict:
    code = (
        f"import json, sys; sys.path.insert(0, {str(ROOT / 'benchmarks')!r}); "
        "from bench_distributed import gpu_step_rate; "
        f"print('ROW', json.dumps(gpu_step_rate({model_name!r}, {precision!r}, True, "
        f"{batch}, {steps}, {warmup}, {device!r})))"
    )
    row = {"model": model_name, "precision": precision, "compile": True, "batch": batch}
    try:
        proc = subprocess.run(
            [sys.executable, "-c", code],
            env=_env(4),
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        return {**row, "images_per_s": None, "error": f"compile+run over {timeout:.0f} s"}
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("ROW ")]
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1][:200]
        return {**row, "images_per_s": None, "error": tail}
    return json.loads(lines[-1][4:])


def gpu_table(rows: list[dict]):
    from rich.table import Table

    t = Table(title="Training step on the GPU, CIFAR-10 paper models (32x32x3, 256 levels)")
    cols = (
        "model",
        "precision",
        "compile",
        "batch",
        "images/s",
        "vs fp32 eager",
        "first step s",
        "peak GiB",
        "note",
    )
    for col in cols:
        t.add_column(col, justify="left" if col in ("model", "precision", "note") else "right")
    for r in rows:
        ok = r.get("images_per_s") is not None
        t.add_row(
            r["model"],
            r["precision"],
            "yes" if r["compile"] else "no",
            str(r["batch"]),
            f"{r['images_per_s']:.0f}" if ok else "-",
            f"{r['vs_fp32_eager']:.2f}x" if ok and r.get("vs_fp32_eager") else "-",
            f"{r['first_step_s']:.1f}" if ok else "-",
            f"{r['peak_mem_gib']:.1f}" if ok else "-",
            r.get("error", ""),
        )
    return t


def main() -> None:
    from rich.console import Console

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="CPU: quick_pixelcnn only")
    parser.add_argument("--gpu", action="store_true", help="time the CIFAR-10 models on cuda")
    parser.add_argument("--batch", type=int, default=16, help="GPU batch (default 16, as paper)")
    parser.add_argument(
        "--compile-timeout",
        type=float,
        default=75.0,
        help="GPU: seconds allowed to each compiled configuration",
    )
    parser.add_argument("--steps", type=int, default=20, help="GPU: timed steps (default 20)")
    parser.add_argument("--device", default="cuda", help="GPU: device (cpu for a dry run)")
    parser.add_argument("--models", default=",".join(MODELS), help="GPU: comma-separated")
    parser.add_argument("--json", type=Path, help="also write the rows as JSON here")
    args = parser.parse_args()
    console = Console()
    if not console.is_terminal:
        console.width = 140
    if args.gpu:
        import torch

        rows = run_gpu(
            batch=args.batch,
            steps=args.steps,
            compile_timeout=args.compile_timeout,
            device=args.device,
            models=tuple(args.models.split(",")),
        )
        console.print(gpu_table(rows))
        cuda = args.device.startswith("cuda")
        meta = {
            "torch": torch.__version__,
            "device": torch.cuda.get_device_name() if cuda else args.device,
            "tf32_matmul": torch.backends.cuda.matmul.allow_tf32,
            "tf32_cudnn": torch.backends.cudnn.allow_tf32,
        }
    else:
        import torch

        rows = run(args.quick)
        console.print(table(rows))
        meta = {"torch": torch.__version__, "cpus": os.cpu_count()}
    console.print(", ".join(f"{k} {v}" for k, v in meta.items()))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"meta": meta, "rows": rows}, indent=2) + "\n")
        console.print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
