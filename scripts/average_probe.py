"""How much a moving average of the weights would give a run, before turning it on.

Continues a copy of a run directory (``--resume``, its recipe and settings) for a number of
steps while keeping one average per decay beside the trained weights, and scores each on
the run's validation images every ``--every`` steps, one JSON line each::

    cp -r training/RUN /tmp/probe
    OMP_NUM_THREADS=1 python scripts/average_probe.py /tmp/probe RECIPE [--set K=V ...] \\
        [--steps 4000] [--decays 0.999 0.9995 0.9998]

The run's own folder is never written: give a copy (the probe writes its checkpoints
nowhere, but ``--resume`` takes the folder's lock and trims its metrics). Each average
starts at the resumed weights with the warm-up of ``train/average.py``, so the decays give
the same figures for the first ``9 / (1 - decay)`` steps (9,000 for 0.999).
"""

from __future__ import annotations

import argparse
import json
import math
import time

import torch

from pixelgen.config import load_recipe
from pixelgen.evaluate import evaluate
from pixelgen.runtime import tune_allocator
from pixelgen.train import setup, train_step
from pixelgen.train.average import WeightAverage
from pixelgen.train.step import next_batch


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run", help="a COPY of the run directory")
    p.add_argument("recipe")
    p.add_argument("--set", action="append", default=[], dest="sets")
    p.add_argument("--steps", type=int, default=4000)
    p.add_argument("--every", type=int, default=1000)
    p.add_argument("--decays", type=float, nargs="+", default=[0.999, 0.9995, 0.9998])
    p.add_argument(
        "--cool-down",
        action="store_true",
        help="the rate falls from its value at the checkpoint to zero over the probe's steps "
        "(a half cosine), as at the end of a schedule",
    )
    args = p.parse_args()
    tune_allocator()
    s = setup(load_recipe(args.recipe, args.sets), run_dir=args.run, resume=True, log=print)
    if args.cool_down:
        n = args.steps
        for group, lr in zip(s.opt.param_groups, s.sched.get_last_lr(), strict=True):
            group["initial_lr"] = lr  # the new schedule scales the rate it starts from
        s.sched = torch.optim.lr_scheduler.LambdaLR(
            s.opt, lambda k: 0.5 * (1 + math.cos(math.pi * min(k, n) / n))
        )
    averages = {d: WeightAverage(s.model, d) for d in args.decays}
    t = s.recipe.train

    def score(model: torch.nn.Module) -> float:
        res = evaluate(model, s.valid_set, batch_size=64, max_images=t.eval_max_images)
        return res.nll_nats

    tic = time.perf_counter()
    for i in range(1, args.steps + 1):
        train_step(s, next_batch(s))
        for avg in averages.values():
            avg.update(s.model)
        if i % args.every == 0 or i == args.steps:
            row = {"steps": i, "step": s.step, "lr": s.sched.get_last_lr()[0]}
            row["trained"] = score(s.model)
            if s.average is not None:  # the run's own average, continued (train.ema set)
                row["run's average"] = score(s.average.module)
            row |= {f"ema {d}": score(avg.module) for d, avg in averages.items()}
            row["seconds"] = round(time.perf_counter() - tic)
            print(json.dumps(row), flush=True)
    if s.lock is not None:
        s.lock.release()


if __name__ == "__main__":
    main()
