"""Training and evaluation speed, FLOPs and peak memory of one model configuration.

A configuration is a shipped recipe's model (``quick_*``, ``mnist_*``, ``cifar10_*``) at
its data set's image format (binarized MNIST 1x28x28 with 2 levels, CIFAR-10 3x32x32 with
256 levels, or another square size for the memory runs), batch 16, random weights and
images, run either with the optimized layers of ``pixelgen.nn`` (``fast``: with the native
recurrence scans of ``pixelgen/nn/native.py`` where they are built, as the command line
runs them), the same layers with the Python scans (``python``, ``PIXELGEN_NATIVE=0``), or
with the plain ones of ``pixelgen.nn.reference`` (``reference``), same weights.

Measured, each in a fresh process (``measure_in_subprocess``) so that peak memory belongs
to that configuration alone:

* evaluation images/s: the no-grad forward pass and the NLL, median over steps after one
  warm-up step (no warm-up for the slowest configurations, see ``run.steps_for``);
* training images/s: forward, backward, gradient clipping and the recipe's optimizer step
  (RMSProp or Adam), median over steps after one warm-up step;
* peak memory: the process's peak resident set size (``VmHWM``, reset before each phase
  through ``/proc/self/clear_refs``) minus its resident size before the first step, over
  the evaluation steps and over the training steps (the training peak includes gradients
  and optimizer state, not the weights, which are resident before);
* FLOPs per image: ``torch.utils.flop_counter.FlopCounterMode`` over one image, forward
  (evaluation) and forward + backward (training). It counts the matrix products and
  convolutions as executed, except that a masked kernel run through ``MaskedConv2d``
  counts its stored rows, not the zero rows below the centre that the fast path adds
  (elementwise work, softmax and the optimizer are not counted). The PixelCNN's residual
  blocks (``nn/residual.py``) run their k x k kernels on the stored rows themselves, with
  kh // 2 extra output rows at the bottom, which count as executed. The reference, which
  also computes the skew padding of the Diagonal BiLSTM and the masked columns of the Row
  LSTM's input-to-state kernel, counts more.

``mnist_eval_in_subprocess`` times ``pixelgen.evaluate`` over the 10,000 binarized MNIST
test images. Run directly (``python benchmarks/bench_train.py --spec JSON``) this file
measures one configuration and prints its result as the last line, JSON.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT / "benchmarks")]

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

BATCH = 16
FORMATS = {"mnist": (1, 2, 28), "cifar10": (3, 256, 32)}  # channels, levels, side


def recipe_format(recipe: str) -> str:
    return "cifar10" if recipe.startswith("cifar10") else "mnist"


def build(recipe: str, impl: str, *, layers: int | None = None) -> torch.nn.Module:
    """The recipe's model (seed 0) with the ``fast`` (also ``python``: the same layers) or
    the ``reference`` layers."""
    import pixelgen
    from pixelgen.config import load_recipe
    from pixelgen.nn.reference import reference_model

    r = load_recipe(recipe)
    channels, levels, _ = FORMATS[recipe_format(recipe)]
    kwargs = r.model.kwargs()
    if layers is not None:
        kwargs["layers"] = layers
    torch.manual_seed(0)
    model = pixelgen.create_model(r.model.name, channels=channels, levels=levels, **kwargs)
    return reference_model(model) if impl == "reference" else model


def _status_bytes(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024  # kB
    raise KeyError(field)


def _reset_peak() -> int:
    """Start a new peak-RSS window (Linux: ``5`` to ``clear_refs`` resets ``VmHWM``);
    returns the resident size now."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:  # not allowed: the window then starts at process start
        pass
    return _status_bytes("VmRSS")


def _peak_bytes() -> int:
    try:
        return _status_bytes("VmHWM")
    except (OSError, KeyError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB


def _flops(fn) -> int:
    from torch.utils.flop_counter import FlopCounterMode

    with _stored_rows(), FlopCounterMode(display=False) as counter:
        fn()
    return int(counter.get_total_flops())


@contextlib.contextmanager
def _stored_rows():
    """Count a masked kernel taller than one row over its stored rows (up to the centre).

    ``MaskedConv2d`` runs such a kernel completed with its zero rows below the centre, so
    that the convolution pads inside the backend (faster than a padded copy); those rows
    are no work, and counting them would raise the fraction of the matmul rate without a
    faster step. The count runs such a kernel as its reference layer does (the stored rows
    over the padded input) instead."""
    from pixelgen.nn import masked
    from pixelgen.nn.reference import RefMaskedConv2d

    fast = masked.MaskedConv2d.forward

    def stored(self, x):
        return (RefMaskedConv2d.forward if self.kernel[0] > 1 else fast)(self, x)

    masked.MaskedConv2d.forward = stored
    try:
        yield
    finally:
        masked.MaskedConv2d.forward = fast


def measure(spec: dict) -> dict:
    """Time one configuration in this process: see the module docstring."""
    from pixelgen.config import load_recipe
    from pixelgen.train import make_optimizer

    torch.set_num_threads(spec["threads"])
    recipe = load_recipe(spec["recipe"])
    model = build(spec["recipe"], spec["impl"], layers=spec.get("layers"))
    channels, levels, side = FORMATS[recipe_format(spec["recipe"])]
    side = spec.get("side") or side
    gen = torch.Generator().manual_seed(0)
    x = torch.randint(0, levels, (BATCH, channels, side, side), generator=gen)
    opt = make_optimizer(recipe, model.parameters())
    clip = recipe.train.grad_clip

    def eval_step(batch: torch.Tensor) -> None:
        with torch.no_grad():
            F.cross_entropy(model(batch), batch, reduction="sum")

    def loss_backward(batch: torch.Tensor) -> None:
        nll = F.cross_entropy(model(batch), batch, reduction="sum")
        (nll / len(batch)).backward()

    def train_step(batch: torch.Tensor) -> None:
        opt.zero_grad(set_to_none=True)
        loss_backward(batch)
        if clip is not None:
            torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
        opt.step()

    def timed(step, n: int, warmup: int) -> list[float]:
        for _ in range(warmup):
            step(x)
        out = []
        for _ in range(n):
            t = time.perf_counter()
            step(x)
            out.append(time.perf_counter() - t)
        return out

    model.eval()
    base = _reset_peak()
    eval_s = timed(eval_step, spec["eval_steps"], warmup=spec.get("warmup", 1))
    eval_peak = _peak_bytes() - base
    model.train()
    _reset_peak()
    train_s = timed(train_step, spec["train_steps"], warmup=spec.get("warmup", 1))
    train_peak = _peak_bytes() - base
    one = x[:1]
    model.eval()
    eval_flops = _flops(lambda: eval_step(one))
    model.train()
    train_flops = _flops(lambda: loss_backward(one))
    return {
        **spec,
        "train_s": train_s,
        "eval_s": eval_s,
        "train_images_per_s": BATCH / statistics.median(train_s),
        "eval_images_per_s": BATCH / statistics.median(eval_s),
        "train_flops_per_image": train_flops,
        "eval_flops_per_image": eval_flops,
        "train_peak_bytes": train_peak,
        "eval_peak_bytes": eval_peak,
        "image": f"{side}x{side}x{channels}/{levels}",
        "pixels": side * side,
        "layers": len(
            getattr(model, "rnns", None)
            or getattr(model, "blocks", None)
            or getattr(model, "layers", [])  # Gated PixelCNN
        ),
        "parameters": sum(p.numel() for p in model.parameters()),
    }


def layer_measure(spec: dict) -> dict:
    """One recurrent layer alone, fast against reference, in this process: milliseconds
    of forward + backward (a fixed random upstream gradient) and of a no-grad forward,
    for the recipe's first recurrent layer (``2h`` maps in, ``h`` out) at its image
    size, batch 16; the fast layer also with the Python scans (``py_*``). The three run
    alternately, step by step, so that all see the same machine; the median of ``steps``
    is kept."""
    from pixelgen.nn import native
    from pixelgen.nn.reference import to_reference

    torch.set_num_threads(spec["threads"])
    model = build(spec["recipe"], "fast")
    fast = model.rnns[0]
    ref = to_reference(copy.deepcopy(fast))
    channels, _, side = FORMATS[recipe_format(spec["recipe"])]
    gen = torch.Generator().manual_seed(0)
    in_maps = model.features
    x = torch.randn(BATCH, in_maps, side, side, generator=gen, requires_grad=True)
    grad = torch.randn(BATCH, fast.hidden, side, side, generator=gen)

    def train_step(layer) -> float:
        t = time.perf_counter()
        layer(x).backward(grad)
        return time.perf_counter() - t

    def eval_step(layer) -> float:
        t = time.perf_counter()
        with torch.no_grad():
            layer(x)
        return time.perf_counter() - t

    native_on = native.enabled()  # built (or found) before the timing starts
    times: dict[str, list[float]] = {
        f"{name}_{phase}": [] for name in ("fast", "py", "ref") for phase in ("train", "eval")
    }
    for step in range(spec["steps"] + 1):  # the first round warms up
        for name, layer in (("fast", fast), ("py", fast), ("ref", ref)):
            with native.forced(name == "fast"):
                train, ev = train_step(layer), eval_step(layer)
            if step:
                times[f"{name}_train"].append(train)
                times[f"{name}_eval"].append(ev)
    ms = {f"{k}_ms": 1e3 * statistics.median(v) for k, v in times.items()}
    return {
        **spec,
        **ms,
        "layer": type(fast).__name__,
        "hidden": fast.hidden,
        "image": f"{side}x{side}x{channels}",
        "in_maps": in_maps,
        "native": native_on,
    }


def mnist_eval(spec: dict) -> dict:
    """Seconds for ``pixelgen.evaluate`` over the binarized MNIST test set."""
    from pixelgen.config import load_recipe
    from pixelgen.data import load_split
    from pixelgen.evaluate import evaluate

    torch.set_num_threads(spec["threads"])
    recipe = load_recipe(spec["recipe"])
    test = load_split("binarized_mnist", "test")
    model = build(spec["recipe"], spec["impl"])
    n = min(spec.get("max_images") or len(test), len(test))
    t = time.perf_counter()
    res = evaluate(model, test, batch_size=recipe.eval.batch_size, max_images=n)
    seconds = time.perf_counter() - t
    return {
        **spec,
        "images": res.num_images,
        "test_set": len(test),
        "batch_size": recipe.eval.batch_size,
        "seconds": seconds,
        "seconds_for_test_set": seconds * len(test) / res.num_images,
        "nll_nats": res.nll_nats,
    }


def machine_busy_seconds() -> float:
    """CPU-seconds all processes have used since boot (``/proc/stat``; 0 elsewhere)."""
    try:
        with open("/proc/stat") as f:
            # user nice system idle iowait irq softirq steal (guest time is already in user)
            values = [int(v) for v in f.readline().split()[1:9]]
    except (OSError, ValueError):
        return 0.0
    idle = values[3] + values[4]  # idle, iowait
    return (sum(values) - idle) / os.sysconf("SC_CLK_TCK")


def _subprocess(spec: dict, timeout: float) -> dict:
    """Run one task in a fresh process; the result also says how many CPUs *other*
    processes kept busy meanwhile (``others_busy_cpus``), so that a configuration timed
    while the shared machine was busy can be told apart and timed again."""
    busy0, wall0 = machine_busy_seconds(), time.perf_counter()
    own0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    result = _run_child(spec, timeout)
    own1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    own = (own1.ru_utime - own0.ru_utime) + (own1.ru_stime - own0.ru_stime)
    wall = time.perf_counter() - wall0
    result["others_busy_cpus"] = max(0.0, (machine_busy_seconds() - busy0 - own) / wall)
    return result


def _run_child(spec: dict, timeout: float) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(ROOT / "src"), str(ROOT / "benchmarks"), env.get("PYTHONPATH", "")]
    )
    env.setdefault("OMP_NUM_THREADS", str(spec["threads"]))
    cmd = [sys.executable, str(Path(__file__).resolve()), "--spec", json.dumps(spec)]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        return {**spec, "error": f"over the {timeout:.0f} s limit"}
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
        return {**spec, "error": f"exit {done.returncode}: {tail[0][:200]}"}
    return json.loads(lines[-1])


def measure_in_subprocess(spec: dict, timeout: float = 600) -> dict:
    """``measure(spec)`` in a fresh Python process; ``{..., "error": ...}`` on failure."""
    return _subprocess({**spec, "task": "measure"}, timeout)


def mnist_eval_in_subprocess(spec: dict, timeout: float = 300) -> dict:
    return _subprocess({**spec, "task": "mnist_eval"}, timeout)


def layer_in_subprocess(spec: dict, timeout: float = 300) -> dict:
    return _subprocess({**spec, "task": "layer"}, timeout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spec", required=True, help="JSON: recipe, impl, threads, steps")
    spec = json.loads(parser.parse_args().spec)
    task = spec.pop("task", "measure")
    if spec.get("impl") == "python":  # the fast layers, their Python recurrence scans
        os.environ["PIXELGEN_NATIVE"] = "0"
    # As the command line does, for both implementations alike.
    from pixelgen.nn import native
    from pixelgen.runtime import tune_allocator

    tuned = tune_allocator()
    native_on = native.enabled()  # built (or found) here, before any timing
    tasks = {"mnist_eval": mnist_eval, "layer": layer_measure, "measure": measure}
    result = tasks[task](spec)
    print(json.dumps({"native": native_on, **result, "allocator_tuned": tuned}))


if __name__ == "__main__":
    main()
