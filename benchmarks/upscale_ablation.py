"""One row of the upscaler's ablation: fit with some settings changed, enlarge, compare.

    python -m benchmarks.upscale_ablation --images kodim01,kodim02 --scale 2 \\
        --set '{"lr": 0.002}' [--threads 1] [--views 0,4] [--from-prior]

`--set` takes UpscaleFit fields ("lr", "queries", "batch", "crop", "integer_share",
"scales", "steps", "time_budget_s") and UpscaleConfig fields prefixed "cfg_"
("cfg_hidden", "cfg_features", "cfg_layers"); `--views` the render's self-ensemble
(`model.upscale.turn`: 0-3 the four rotations, the default; 0,4 the image and its mirror).
Defaults: the internal-learning fit the preset made until 2026-12-06 (2,400 steps from a
random start, no time limit here); `--from-prior` starts from the shipped prior instead
(fine-tuning it; `--set '{"steps": 0}'`: the prior as the preset uses it). Input: the
Kodak image cropped to a multiple of the scale and box-averaged by it; PSNR (8-bit RGB) of
the upscaler's render and of Lanczos against the true image. The table in
benchmarks/results/upscale_ablation.md was made with it (two images at a time, one torch
thread each); numbers move by a few hundredths of a dB with the thread count.
"""

import argparse
import json
import time

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from benchmarks.common import KODAK
from mhinr.model.metrics import psnr
from mhinr.model.upscale import INTERNAL_STEPS, VIEWS, UpscaleConfig, UpscaleFit, fit_upscaler
from mhinr.model.upscale_prior import load_prior


def lanczos(u8: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Pillow's Lanczos of uint8 [C, h, w] to `size` (rows, cols)."""
    return torch.from_numpy(
        np.stack(
            [
                np.asarray(
                    Image.fromarray(u8[c].numpy()).resize(size[::-1], Image.Resampling.LANCZOS)
                )
                for c in range(u8.shape[0])
            ]
        )
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", default="kodim01,kodim02")
    ap.add_argument("--scale", type=int, default=2)
    ap.add_argument("--set", default="{}", help="JSON: settings to change")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--views", help="the render's views (model.upscale.turn), e.g. 0,4")
    ap.add_argument("--from-prior", action="store_true", help="start from the shipped prior")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    changes = json.loads(args.set)
    cfg = UpscaleConfig(**{k[4:]: v for k, v in changes.items() if k.startswith("cfg_")})
    fit_kw = {"time_budget_s": 3600, "steps": INTERNAL_STEPS}
    fit_kw |= {k: v for k, v in changes.items() if not k.startswith("cfg_")}
    if "scales" in fit_kw:
        fit_kw["scales"] = tuple(fit_kw["scales"])
    s = args.scale
    for name in args.images.split(","):
        rgb = np.asarray(Image.open(KODAK / f"{name}.png").convert("RGB"))
        true = torch.from_numpy(rgb.copy()).permute(2, 0, 1)
        h, w = true.shape[1] // s * s, true.shape[2] // s * s
        true = true[:, :h, :w]
        small = F.avg_pool2d(true[None].double(), s)[0].round().to(torch.uint8)
        t = time.perf_counter()
        init = load_prior() if args.from_prior else None
        net, info = fit_upscaler(small.float() / 255, cfg, UpscaleFit(**fit_kw), init=init)
        fit_s = time.perf_counter() - t
        views = VIEWS if args.views is None else tuple(int(v) for v in args.views.split(","))
        up = psnr(net.render((h, w), views=views), true)
        base = psnr(lanczos(small, (h, w)), true)
        # in-sample: the same enlargement of the image's own copy (small / s → small), which
        # training saw; far above the true score means the fit learnt its copies too well
        sh, sw = small.shape[1] // s * s, small.shape[2] // s * s
        small = small[:, :sh, :sw]
        copy = F.avg_pool2d(small[None].double(), s)[0].round().to(torch.uint8)
        net.set_image(copy.float() / 255)
        seen = psnr(net.render((sh, sw), views=views), small) - psnr(lanczos(copy, (sh, sw)), small)
        print(
            f"{args.set} {name} x{s}: Lanczos {base:.2f}, upscale {up:.2f} ({up - base:+.2f} dB), "
            f"in-sample {seen:+.2f} dB, {info['steps']} steps, {fit_s:.0f} s"
        )


if __name__ == "__main__":
    main()
