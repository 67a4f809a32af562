"""Scale-out on the CPU: 2-process ``torchrun`` (gloo) training equals one process with the
same global batch (and with gradient accumulation), sharded evaluation is exact, ``--resume``
works under torchrun, a killed rank ends the job promptly with last.pt intact, and the
bf16/fp16/compile options run. Every subprocess uses OMP_NUM_THREADS=1."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import warnings
from datetime import timedelta
from pathlib import Path

import pytest
import torch

from pixelgen import checkpoint as ck
from pixelgen.config import load_recipe
from pixelgen.distributed import Dist, PeerLostError, dist_timeout, init_distributed
from pixelgen.errors import ConfigError
from pixelgen.registry import create_model
from pixelgen.train import Stop, StopSignals, read_metrics, train

ROOT = Path(__file__).resolve().parents[1]
# RMSprop (like Adam) divides out the scale of the gradient, and clipping to a norm would
# too: a strong weight decay and no clipping make a gradient that is summed instead of
# averaged, or scaled by the wrong micro-batch size, change the weights.
TINY = [
    "model.hidden=4",
    "model.layers=1",
    "train.batch_size=4",
    "train.optimizer=rmsprop",
    "train.lr=0.01",
    "train.weight_decay=50",
    "train.grad_clip=null",
    "train.log_every=2",
    "train.eval_every=2",
    "train.checkpoint_every=2",
    "train.eval_max_images=9",
    "eval.batch_size=4",
    "sample.n=1",
]
QUIET = {"show_progress": False, "log": lambda *_: None}
ENV = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": "1"}
ENV.pop("PIXELGEN_DEBUG", None)


def tiny(steps: int, *extra: str, name: str = "quick_pixelcnn"):
    return load_recipe(name, [*TINY, f"train.max_steps={steps}", *extra])


def torchrun(*args: str, nproc: int = 2) -> list[str]:
    return [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc-per-node",
        str(nproc),
        "--standalone",
        *args,
    ]


def pixelgen_train(out: Path, steps: int, *extra: str) -> list[str]:
    sets = [*TINY, f"train.max_steps={steps}", *extra]
    return [
        "-m",
        "pixelgen",
        "train",
        "quick_pixelcnn",
        "--no-progress",
        "--out",
        str(out),
        *[a for s in sets for a in ("--set", s)],
    ]


def run(cmd: list[str], timeout: float = 120) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, env=ENV, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def weights(run_dir: Path) -> dict[str, torch.Tensor]:
    return ck.load_checkpoint(run_dir / "checkpoints" / "last.pt").weights


def assert_close(a: dict, b: dict, tol: float = 1e-5) -> None:
    assert a.keys() == b.keys()
    for k in a:
        assert torch.allclose(a[k], b[k], rtol=0, atol=tol), (k, (a[k] - b[k]).abs().max())


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A 2-process run of 4 steps, and the single-process runs it must match."""
    root = tmp_path_factory.mktemp("ddp")
    run(torchrun(*pixelgen_train(root / "ddp", 4)))
    train(tiny(4), run_dir=root / "single", **QUIET)
    train(tiny(4, "train.accumulate=2"), run_dir=root / "accumulate", **QUIET)
    return root


@pytest.mark.slow
def test_two_processes_match_one_process_with_the_same_global_batch(runs):
    ddp = weights(runs / "ddp")
    single = weights(runs / "single")
    assert ck.load_checkpoint(runs / "ddp/checkpoints/last.pt").step == 4
    assert_close(ddp, single)
    assert_close(ddp, weights(runs / "accumulate"))
    recipe = tiny(4)
    torch.manual_seed(recipe.train.seed)
    start = create_model(recipe.model.name, channels=1, levels=2, **recipe.model.kwargs())
    moved = max((ddp[k] - v).abs().max().item() for k, v in start.state_dict().items())
    assert moved > 1e-3  # the comparison is not between untrained models
    # the training loss of each logged step is the same global-batch mean
    for a, b in zip(read_metrics(runs / "ddp"), read_metrics(runs / "single"), strict=True):
        assert (a["step"], a["split"]) == (b["step"], b["split"])
        assert a["nll_nats"] == pytest.approx(b["nll_nats"], rel=1e-5)


@pytest.mark.slow
def test_only_rank_zero_writes(runs):
    rows = read_metrics(runs / "ddp")
    assert [(r["step"], r["split"]) for r in rows] == [
        (2, "train"),
        (2, "valid"),
        (4, "train"),
        (4, "valid"),
    ]  # once each, not per rank
    files = {p.name for p in (runs / "ddp/checkpoints").iterdir()}
    assert files == {"last.pt", "last.prev.pt", "best.pt"}
    valid = [r for r in rows if r["split"] == "valid"]
    assert all(r["num_images"] == 9 for r in valid)  # 4 + 5 images over two shards


@pytest.mark.slow
def test_sharded_evaluation_equals_one_process(runs, tmp_path):
    """A torchrun script scores the single-process checkpoint over 2 uneven shards."""
    script = tmp_path / "score.py"
    script.write_text(
        "import json, sys\n"
        "from pixelgen import checkpoint as ck\n"
        "from pixelgen.data import load_split\n"
        "from pixelgen.distributed import init_distributed, shutdown\n"
        "from pixelgen.evaluate import evaluate\n"
        "d, dev = init_distributed('cpu')\n"
        "m = ck.load_model(sys.argv[1])\n"
        "data = load_split('binarized_mnist', 'valid')\n"
        "r = evaluate(m, data, batch_size=4, max_images=9, device=dev, dist=d)\n"
        "if d.is_main:\n"
        "    open(sys.argv[2], 'w').write(json.dumps(r.as_dict()))\n"
        "shutdown()\n"
    )
    last = runs / "single/checkpoints/last.pt"
    run(torchrun(str(script), str(last), str(tmp_path / "r.json")))
    sharded = json.loads((tmp_path / "r.json").read_text())

    from pixelgen.data import load_split
    from pixelgen.evaluate import evaluate

    one = evaluate(
        ck.load_model(last), load_split("binarized_mnist", "valid"), batch_size=4, max_images=9
    ).as_dict()
    assert sharded["num_images"] == one["num_images"] == 9
    # float32 forward passes with 1 vs 2 threads differ in the last bits; a shard lost or
    # counted twice moves the mean of 9 images by far more
    for key in ("nll_nats", "bits_per_dim"):
        assert sharded[key] == pytest.approx(one[key], rel=1e-6), key
    # The standard error is a difference of sums of squares over 9 images: last-bit noise
    # in each image's NLL weighs more in it, so its tolerance is wider (still far below a
    # lost shard's effect).
    assert sharded["nll_nats_stderr"] == pytest.approx(one["nll_nats_stderr"], rel=1e-4)


@pytest.mark.slow
def test_resume_under_torchrun_continues_from_the_checkpoint(runs, tmp_path):
    out = tmp_path / "split"
    train(tiny(2), run_dir=out, **QUIET)  # written by one process, resumed by two
    # and with micro-batches: DDP skips the all-reduce (no_sync) until the last one
    proc = run(torchrun(*pixelgen_train(out, 4, "train.accumulate=2"), "--resume"))
    assert "run directory" in proc.stderr
    ckpt = ck.load_checkpoint(out / "checkpoints/last.pt")
    assert ckpt.step == 4 and ckpt.state["world_size"] == 2
    assert_close(ckpt.weights, weights(runs / "single"))
    steps = [(r["step"], r["split"]) for r in read_metrics(out)]
    assert steps == [(2, "train"), (2, "valid"), (4, "train"), (4, "valid")]


@pytest.mark.slow
def test_a_moving_average_under_torchrun_matches_one_process(tmp_path):
    # the average of 2 processes (one per rank, each updating its own) is the average of
    # one process with the same global batch; here also across a resume
    out = tmp_path / "split"
    train(tiny(2, "train.ema=0.5"), run_dir=out, **QUIET)
    run(torchrun(*pixelgen_train(out, 4, "train.ema=0.5"), "--resume"))
    single = train(tiny(4, "train.ema=0.5"), run_dir=tmp_path / "single", **QUIET).run_dir
    a, b = (ck.load_checkpoint(d / "checkpoints/last.pt") for d in (out, single))
    assert a.state["average"] == b.state["average"] == {"decay": 0.5, "count": 4}
    assert_close(a.weights, b.weights)
    assert_close(a.state["train_weights"], b.state["train_weights"])
    assert any(not torch.equal(a.weights[k], v) for k, v in a.state["train_weights"].items())


def _workers(pid: int) -> dict[str, int]:
    """``{RANK: pid}`` of torchrun's worker processes, from /proc."""
    found = {}
    for task in os.listdir(f"/proc/{pid}/task"):
        for child in Path(f"/proc/{pid}/task/{task}/children").read_text().split():
            env = Path(f"/proc/{child}/environ").read_bytes().split(b"\0")
            rank = [e[5:].decode() for e in env if e.startswith(b"RANK=")]
            if rank:
                found[rank[0]] = int(child)
    return found


@pytest.mark.slow
def test_a_mis_scaled_gradient_would_fail_the_comparison(runs, tmp_path, monkeypatch):
    """The negative control of the test above: one process whose gradient is twice the
    mean (a sum over 2 ranks instead of an average) ends far from the 2-process run."""
    real = torch.nn.functional.cross_entropy
    monkeypatch.setattr(torch.nn.functional, "cross_entropy", lambda *a, **k: 2 * real(*a, **k))
    train(tiny(4), run_dir=tmp_path / "summed", **QUIET)
    with pytest.raises(AssertionError):
        assert_close(weights(runs / "ddp"), weights(tmp_path / "summed"))


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="needs Linux /proc")
def test_killing_one_rank_ends_the_job_and_keeps_last_checkpoint(tmp_path):
    out = tmp_path / "killed"
    cmd = torchrun(
        *pixelgen_train(
            out,
            10_000,
            "train.checkpoint_every=1",
            "train.eval_every=100000",
            "train.log_every=100000",
        )
    )
    log = tmp_path / "torchrun.log"
    with open(log, "w") as sink:  # a file, not a pipe: nothing blocks while we poll
        proc = subprocess.Popen(cmd, env=ENV, stdout=sink, stderr=subprocess.STDOUT)
    try:
        last = out / "checkpoints" / "last.pt"
        deadline = time.time() + 90
        while time.time() < deadline and not (last.exists() and ck.load_checkpoint(last).step >= 3):
            assert proc.poll() is None, log.read_text()[-3000:]
            time.sleep(0.1)
        workers = _workers(proc.pid)
        assert set(workers) == {"0", "1"}, workers
        os.kill(workers["1"], signal.SIGKILL)  # at an arbitrary point of a step
        killed = time.time()
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    output = log.read_text()
    assert proc.returncode != 0
    assert time.time() - killed < 60
    # pixelgen's own word from rank 0: the lost peer, or (when torchrun's SIGTERM gets there
    # first) the interrupted run and where it was saved; torchrun's summary does not count
    assert "another process of the job stopped" in output or (
        "interrupted at step" in output and "--resume" in output
    ), output[-3000:]
    assert "internal error" not in output, output[-3000:]
    ckpt = ck.load_checkpoint(out / "checkpoints" / "last.pt")  # loads: not half-written
    assert ckpt.step >= 3
    assert not [p for p in (out / "checkpoints").iterdir() if p.suffix == ".tmp"]


@pytest.mark.parametrize("name", ["quick_pixelcnn", "quick_rowlstm", "quick_diagonal_bilstm"])
def test_bf16_autocast_trains_and_checkpoints_stay_fp32(tmp_path, name):
    extra = (
        "train.max_steps=2",
        "train.eval_max_images=2",
        "train.device=cpu",
        "train.log_every=1",
    )
    bf16 = train(
        load_recipe(name, [*TINY, *extra, "train.precision=bf16"]),
        run_dir=tmp_path / "bf16",
        **QUIET,
    )
    fp32 = train(load_recipe(name, [*TINY, *extra]), run_dir=tmp_path / "fp32", **QUIET)
    assert bf16.step == 2
    ckpt = ck.load_checkpoint(bf16.run_dir / "checkpoints/last.pt")
    assert all(v.dtype == torch.float32 for v in ckpt.weights.values())
    ckpt.build_model("cpu")  # loads on the CPU as it is
    # step 1 starts from the same weights: the same loss, at bf16 resolution, but not the
    # very same number (which would mean autocast did nothing)
    (a, *_), (b, *_) = (
        [r["nll_nats"] for r in read_metrics(run.run_dir) if r["split"] == "train"]
        for run in (bf16, fp32)
    )
    assert a == pytest.approx(b, rel=2e-2) and a != b


def test_fp16_runs_with_a_grad_scaler_or_is_refused_clearly(tmp_path):
    recipe = tiny(2, "train.precision=fp16", "train.eval_max_images=2", "train.device=cpu",
                  "train.log_every=1")  # fmt: skip
    try:
        with warnings.catch_warnings(record=True) as warned:
            warnings.simplefilter("always")
            train(recipe, run_dir=tmp_path / "fp16", **QUIET)
    except ConfigError as exc:
        assert "train.precision" in str(exc)
        return
    # a step the scaler skipped moves the schedule anyway, without a warning in the log
    assert not [w for w in warned if "lr_scheduler" in str(w.message)]
    ckpt = ck.load_checkpoint(tmp_path / "fp16/checkpoints/last.pt")
    assert ckpt.state["scaler"]["scale"] > 1  # the scaler was in use
    assert all(v.dtype == torch.float32 for v in ckpt.weights.values())
    # fp16 really ran: step 1 (same weights, same batch) has the fp32 loss at fp16
    # resolution, but not the very same number
    fp32 = train(tiny(2, "train.eval_max_images=2", "train.device=cpu", "train.log_every=1"),
                 run_dir=tmp_path / "fp32", **QUIET)  # fmt: skip
    (a, *_), (b, *_) = (
        [r["nll_nats"] for r in read_metrics(d) if r["split"] == "train"]
        for d in (tmp_path / "fp16", fp32.run_dir)
    )
    assert a == pytest.approx(b, rel=2e-2) and a != b


@pytest.mark.slow
@pytest.mark.skipif(
    shutil.which("cc") is None and shutil.which("gcc") is None,
    reason="torch.compile (inductor) needs a C compiler",
)
def test_compile_matches_eager(tmp_path):
    extra = ("train.eval_max_images=2", "train.device=cpu")
    compiled = train(tiny(2, "train.compile=true", *extra), run_dir=tmp_path / "c", **QUIET)
    eager = train(tiny(2, *extra), run_dir=tmp_path / "e", **QUIET)
    c = ck.load_checkpoint(compiled.run_dir / "checkpoints/last.pt").weights
    assert not any(k.startswith("_orig_mod") for k in c)  # plain keys: loads without compile
    assert_close(c, weights(eager.run_dir))


def test_dist_timeout_from_the_environment(monkeypatch):
    monkeypatch.delenv("PIXELGEN_DIST_TIMEOUT", raising=False)
    assert dist_timeout() == timedelta(seconds=600)
    monkeypatch.setenv("PIXELGEN_DIST_TIMEOUT", "30")
    assert dist_timeout() == timedelta(seconds=30)
    for bad in ("soon", "0", "-5"):
        monkeypatch.setenv("PIXELGEN_DIST_TIMEOUT", bad)
        with pytest.raises(ConfigError, match="PIXELGEN_DIST_TIMEOUT"):
            dist_timeout()


def test_one_gpu_index_for_all_local_ranks_is_refused(monkeypatch):
    for key, value in {"WORLD_SIZE": "2", "LOCAL_WORLD_SIZE": "2", "LOCAL_RANK": "1"}.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(ConfigError, match="train.device: 'cuda:1'.*one GPU"):
        init_distributed("cuda:1")


def test_guard_reports_a_failed_collective_as_peer_lost():
    with pytest.raises(PeerLostError, match="the barrier failed.*Connection closed by peer"):
        with Dist(rank=0, world_size=2).guard("the barrier"):
            raise RuntimeError("[/x/gloo/pair.cc:553] Connection closed by peer [::1]:4. More")
    with pytest.raises(RuntimeError, match="shape"):  # a single process: nothing to convert
        with Dist().guard("the barrier"):
            raise RuntimeError("shape mismatch")


def test_stop_signal_waits_for_the_end_of_a_protected_block():
    previous = signal.getsignal(signal.SIGTERM)
    signals = StopSignals()
    signals.install()
    try:
        finished = False
        with pytest.raises(Stop):
            with signals.protect():
                os.kill(os.getpid(), signal.SIGTERM)
                time.sleep(0.05)
                finished = True  # not cut short: the update and the step counter go together
        assert finished
        with signals.protect(deliver=False):  # a final save: the signal is dropped
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.05)
        with pytest.raises(Stop):
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(1)
    finally:
        signals.restore()
    assert signal.getsignal(signal.SIGTERM) == previous
