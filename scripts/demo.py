"""`make demo`: the main job end to end on MNIST, through the real command line.

Trains the quick Row LSTM recipe on binarized MNIST (into runs/, where the other commands
look for the latest run), evaluates it on the full test set,
draws samples, completes the bottom half of a few test digits, then does the same samples
and completions with the best shipped pretrained model, so that both what a few minutes
give and what hours give are side by side, and says where it all is. About 4-5 minutes on
2 CPU cores.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

from pixelgen import pretrained
from pixelgen.checkpoint import runs_root

OUT = Path("demo_out")
RECIPE = "quick_rowlstm"


def pixelgen(*args: str) -> None:
    cmd = [sys.executable, "-m", "pixelgen", *args]
    print("\n$ pixelgen " + " ".join(args), flush=True)
    code = subprocess.call(cmd)
    if code != 0:
        sys.exit(f"demo: `pixelgen {' '.join(args)}` failed with exit code {code}")


def write_test_digits(folder: Path, count: int = 4) -> list[str]:
    """A few MNIST test digits as PNG files, the kind of input `complete` takes."""
    from pixelgen.data import load_split
    from pixelgen.images import save_image

    folder.mkdir(parents=True, exist_ok=True)
    test = load_split("mnist", "test")
    paths = []
    for i in range(count):
        path = folder / f"digit_{i}.png"
        save_image(test[i], test.levels, path)
        paths.append(str(path))
    return paths


def main() -> None:
    start = time.perf_counter()
    if OUT.exists():
        shutil.rmtree(OUT)
    # The run goes where every run goes, so that `pixelgen eval --bits-per-dim` and the
    # other commands, given no checkpoint, find it afterwards.
    run = runs_root() / f"{RECIPE}-demo-{time.strftime('%Y%m%d-%H%M%S')}"
    pixelgen("train", RECIPE, "--out", str(run))
    pixelgen("eval", str(run), "--json", str(OUT / "eval.json"))
    pixelgen("sample", str(run), "-n", "16", "--out", str(OUT / "samples.png"))
    digits = write_test_digits(OUT / "inputs")
    pixelgen(
        "complete",
        "--checkpoint",
        str(run),
        "--occlude",
        "bottom-half",
        *digits,
        "--samples",
        "4",
        "--out",
        str(OUT / "completions"),
    )
    best = pretrained.best()
    if best is not None:
        shipped = OUT / "pretrained"
        pixelgen("sample", best.name, "-n", "16", "--out", str(shipped / "samples.png"))
        pixelgen("complete", "--checkpoint", best.name, "--occlude", "bottom-half", *digits,
                 "--samples", "4", "--out", str(shipped / "completions"))  # fmt: skip
    minutes = (time.perf_counter() - start) / 60
    print(f"\ndemo finished in {minutes:.1f} min. Look at:")
    for item in [
        run / "curve.png",
        run / "samples",
        OUT / "samples.png",
        OUT / "completions",
        OUT / "eval.json",
        run / "checkpoints",
        OUT / "pretrained",
    ]:
        print(f"  {item}")


if __name__ == "__main__":
    main()
