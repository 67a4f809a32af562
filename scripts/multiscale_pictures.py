"""The README's Multi-Scale PixelRNN pictures (§3.5), from a trained ``multiscale`` run.

    .venv/bin/python scripts/multiscale_pictures.py RUN [--out docs/images]

* ``multiscale_stages.png``: 8 samples (seed 0) as the model draws them: the small image
  first (top row, each of its pixels shown as the 2x2 block it starts), then the full image
  given it (bottom row), whose grid pixels are the small image's;
* ``multiscale_completion.png``: the hidden bottom half of the first two test digits,
  completed four times each (original | occluded view | completions): the unknown grid
  pixels by the small model first, then the rest by the large model given them.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import torch

from pixelgen.config import recipe_from_dict
from pixelgen.data import load_split
from pixelgen.images import save_grid, save_image
from pixelgen.sampling import sample
from pixelgen.sampling.api import complete_images, open_checkpoint


def stages(source, out: Path, n: int = 8) -> Path:
    model = source.checkpoint.build_model()
    full = sample(model, n, source.size, generator=torch.Generator().manual_seed(0))
    r = model.factor
    small = model.subsample(full)  # (n, C, s, s): exactly the first stage's images
    blocks = small.repeat_interleave(r, -2).repeat_interleave(r, -1)[..., : full.shape[-2], :]
    blocks = blocks[..., : full.shape[-1]]  # (n, C, H, W)
    return save_grid(torch.cat([blocks, full]), model.levels, out, nrow=n, scale=4)


def completion(source, out: Path) -> Path:
    d = recipe_from_dict(source.checkpoint.recipe).data
    test = load_split(d.name, "test", root=d.root, **d.options())
    with tempfile.TemporaryDirectory() as tmp:
        paths = [
            save_image(test.image(k), test.levels, Path(tmp) / f"digit{k}.png") for k in (0, 1)
        ]
        done = complete_images(source, paths, occlude="bottom-half", samples=4, out_dir=tmp, seed=0)
        grids = [c.files[0] for c in done]
        from PIL import Image

        images = [Image.open(g).convert("RGB") for g in grids]
        w, h = images[0].width, sum(i.height for i in images)
        canvas = Image.new("RGB", (w, h), "white")
        y = 0
        for image in images:
            canvas.paste(image, (0, y))
            y += image.height
        canvas.save(out)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", help="a multiscale run directory or checkpoint")
    parser.add_argument("--out", type=Path, default=Path("docs/images"))
    args = parser.parse_args()
    source = open_checkpoint(args.run)
    print(stages(source, args.out / "multiscale_stages.png"))
    print(completion(source, args.out / "multiscale_completion.png"))


if __name__ == "__main__":
    main()
