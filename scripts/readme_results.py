"""The README's results from the shipped pretrained models, every figure recomputed:

    .venv/bin/python scripts/readme_results.py [--out docs/images]

Writes, for each shipped model NAME: ``pretrained_NAME_samples.png`` (16 samples, seed
0), ``pretrained_NAME_completions.png`` (the hidden bottom half of the first 6 binarized
MNIST test digits, 4 completions each: original | occluded | completions) and
``pretrained_NAME_heatmap.png`` (mean NLL per pixel over the full test set, from
``pixelgen eval --report``); the same samples and completions of all the models side by
side (``pretrained_samples.png``, ``pretrained_completions.png``); and
``pretrained_valid_curves.png``: the validation NLL of
each model against images seen, with the paper's results as lines. Prints the Markdown
results table and puts it in the README between ``<!-- results-table -->`` and
``<!-- /results-table -->``.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

import torch

from pixelgen import pretrained, sources
from pixelgen.config import load_recipe, recipe_to_dict
from pixelgen.data import load_split
from pixelgen.images import class_grid, completion_grid, occlusion_mask, save_grid
from pixelgen.plots import plot_curves
from pixelgen.report import evaluate_checkpoint
from pixelgen.sampling import complete

#: Table 4 of the paper: test NLL (nats) on binarized MNIST.
PAPER = {"pixelcnn": 81.30, "row_lstm": 80.54, "diagonal_bilstm": 79.20}
LABEL = {"pixelcnn": "PixelCNN", "row_lstm": "Row LSTM", "diagonal_bilstm": "Diagonal BiLSTM"}
HIDDEN = occlusion_mask("bottom-half", (28, 28))  # (28, 28) bool, True where hidden


def pictures(info: pretrained.Pretrained, out: Path, digits: torch.Tensor):
    """Writes one model's pictures; returns its samples ``(16, 1, 28, 28)`` and its
    completions of ``digits`` ``(6, 4, 1, 28, 28)``, both from seed 0."""
    model = sources.read_shipped(info).build_model()
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        samples = model.sample(16, (28, 28), generator=gen)
    save_grid(samples, 2, out / f"pretrained_{info.name}_samples.png", nrow=8, scale=3)
    x = digits.repeat_interleave(4, 0)
    with torch.no_grad():
        filled = complete(model, x, ~HIDDEN, generator=torch.Generator().manual_seed(0))
    filled = filled.view(6, 4, 1, 28, 28)
    grid = out / f"pretrained_{info.name}_completions.png"
    completion_grid(digits, HIDDEN, filled, 2, grid, scale=3)
    with tempfile.TemporaryDirectory() as tmp:
        evaluate_checkpoint(info.name, report_dir=tmp, show_progress=False, log=lambda *a: 0)
        shutil.copy(Path(tmp) / "heatmap.png", out / f"pretrained_{info.name}_heatmap.png")
    return samples, filled


def side_by_side(models: list[pretrained.Pretrained], drawn: list, digits, out: Path) -> None:
    """The shipped models next to each other: ``pretrained_samples.png`` (one row of 8
    samples per model) and ``pretrained_completions.png`` (each digit's hidden half
    completed twice by every model), so a reader can compare what each one learned."""
    labels = [LABEL.get(m.model_name, m.model_name) for m in models]
    rows = torch.stack([samples[:8] for samples, _ in drawn])  # (M, 8, 1, 28, 28)
    class_grid(rows, 2, labels, out / "pretrained_samples.png", scale=3)
    filled = torch.cat([f[:, :2] for _, f in drawn], dim=1)  # (6, 2M, 1, 28, 28)
    names = [label for label in labels for _ in range(2)]
    grid = out / "pretrained_completions.png"
    completion_grid(digits, HIDDEN, filled, 2, grid, scale=4, names=names)


def curves(models: list[pretrained.Pretrained], out: Path) -> None:
    """The validation curves, each model's paper result a dashed line in its colour."""
    series, colour_of, dashed = {}, {}, []
    for m in models:
        points = [(seen / 1000, nll) for seen, nll in m.results["valid_curve"]]
        series[f"{LABEL.get(m.model_name, m.model_name)} (validation)"] = points
    last = max(p[0] for s in series.values() for p in s)
    for n, m in enumerate(models):
        paper = PAPER.get(m.model_name)
        if paper is not None:
            name = f"paper {LABEL[m.model_name]} (test) {paper}"
            series[name], colour_of[name] = [(0, paper), (last, paper)], n
            dashed.append(name)
    plot_curves(
        series,
        out / "pretrained_valid_curves.png",
        title="binarized MNIST",
        xlabel="thousands of training images seen",
        ylabel="NLL, nats",
        dotted=[s for s in series if s not in dashed],
        colour_of=colour_of,
        dashed=dashed,
    )


def reproduce(info: pretrained.Pretrained) -> str:
    """The command that trains ``info`` again: its recorded command, plus a ``--set`` for
    each training setting in which today's recipe of that name differs from the one the
    model was trained with (a recipe retuned after a model shipped)."""
    shipped = sources.read_shipped(info).recipe["train"]
    today = recipe_to_dict(load_recipe(info.name))["train"]
    sets = [f" --set train.{k}={shipped[k]}" for k in sorted(shipped) if shipped[k] != today.get(k)]
    return info.results["reproduce"] + "".join(sets)


def table(models: list[pretrained.Pretrained]) -> str:
    rows = [
        "| model | paper | pixelgen (test NLL, nats) | images seen | training time | machine |"
        " command |",
        "|---|---|---|---|---|---|---|",
    ]
    for m in models:
        r = m.results
        rows.append(
            f"| {LABEL.get(m.model_name, m.model_name)} `{m.name}` "
            f"| {PAPER.get(m.model_name, float('nan')):.2f} "
            f"| **{r['test_nll_nats']:.2f} ± {r['test_nll_nats_stderr']:.2f}** "
            f"| {r['images_seen']:,} ({r['images_seen'] / 50_000:.1f} epochs) "
            f"| {r['train_hours']:.1f} h | {r['machine']} | `{reproduce(m)}` |"
        )
    return "\n".join(rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=Path("docs/images"))
    ap.add_argument("--readme", type=Path, default=Path("README.md"))
    args = ap.parse_args()
    torch.set_num_threads(1)
    models = pretrained.shipped()
    test = load_split("binarized_mnist", "test")
    args.out.mkdir(parents=True, exist_ok=True)
    digits = torch.stack([test[i] for i in range(6)])  # (6, 1, 28, 28)
    drawn = [pictures(info, args.out, digits) for info in models]
    side_by_side(models, drawn, digits, args.out)
    curves(models, args.out)
    text = table(models)
    print(text)
    if args.readme.is_file():
        readme = args.readme.read_text()
        start, end = "<!-- results-table -->\n", "<!-- /results-table -->"
        head, rest = readme.split(start, 1)
        args.readme.write_text(head + start + text + "\n" + end + rest.split(end, 1)[1])


if __name__ == "__main__":
    main()
