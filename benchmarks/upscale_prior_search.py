"""Candidates for the upscaler's shipped network (the prior, model/upscale_prior.py), each
trained the same short way and scored the same quick way, so that one change at a time can
be compared before a full training run.

A variant changes one thing against `base` (the first prior's recipe): the network's shape
(`features`, `layers`) or the training photos (`pyramid`: each photo also area-reduced by
these factors; `drop`: some left out; `by_area`: each picked as often as its pixels say).
Each is trained `--steps` steps (the shipped priors: 45,000 and 60,000, `PRIORS`) and scored
on 12 photos (8 Kodak, 4 of scikit-image's, all outside the training set) at ×2, ×3 and ×4:
the network's render alone (no blend with Lanczos), the same render as
`benchmarks.upscale`'s `network` column, minus Lanczos's PSNR. Rows go to
results/upscale_prior_search.jsonl; the table of every variant run so far to
results/upscale_prior_search.md.

    python -m benchmarks.upscale_prior_search --variant base pyramid deep   # 8,000 steps each
    python -m benchmarks.upscale_prior_search --variant shipped             # the newest prior
    python -m benchmarks.upscale_prior_search      # the table of the rows so far
    python -m benchmarks.upscale_prior_search --variant deeper_lomiri --steps 45000 \
        --save prior-2026-12-06d                   # how the newest prior was made

Training uses every core this process may use (run it alone): about 30 s a 1,000 steps of
`base` and 45 s of `deeper` on 2 cores (90 s on an EPYC without AVX-512); scoring takes
about 15 s.
"""

import argparse
import json
import time

import numpy as np
import torch
from PIL import Image

from benchmarks.common import RESULTS, machine, md_table, write_result
from benchmarks.upscale import box_down, load, pil_resize
from mhinr.model.metrics import psnr
from mhinr.model.upscale import UpscaleConfig, UpscaleFit, area_resize
from mhinr.model.upscale_prior import (
    PRIOR_NAME,
    PRIORS,
    load_prior,
    prior_file,
    save_prior,
    train_prior,
    training_images,
)

# scikit-image's microscopy, astronomy and printed pages (9 of the 15 remain without them)
NOT_PHOTOS = ("hubble_deep_field.jpg", "retina.jpg", "ihc.png", "cell.png", "text.png",
              "page.png")  # fmt: skip
VARIANTS: dict[str, dict] = {
    "base": {},
    "pyramid": {"pyramid": (0.75, 0.5)},
    "deep": {"layers": 9},
    "wide": {"features": 48},
    "deeper": {"layers": 17},
    "photos": {"drop": NOT_PHOTOS},
    "by_area": {"by_area": True},  # each photo picked as often as its pixels say
    "shipped": {},  # the newest shipped prior as it is (PRIORS): the control
    # against `deeper`: the training pairs (UpscaleFit's fields)
    "deeper_crop48": {"layers": 17, "fit": {"crop": 48}},  # small copies of 48 pixels, not 32
    "deeper_interior": {"layers": 17, "fit": {"margin": 8}},  # no loss within 8 of the border
    "deeper_round": {"layers": 17, "fit": {"round_pairs": True}},  # 8-bit small copies
    # the newest shipped prior trained on (`init`) at a lower learning rate, by L1 as it was
    # trained or by L2 (squared error: what PSNR scores)
    "shipped_more_l1": {"init": True, "fit": {"lr": 2e-4}},
    "shipped_more_l2": {"init": True, "fit": {"lr": 2e-4, "loss": "l2"}},
    # the training photos: the prior's 15 and the 23 of `PHOTO_SETS["wallpapers"]` (against
    # `deeper`), and the 15 of "lomiri" too
    "deeper_wallpapers": {"layers": 17, "sets": ("wallpapers",)},
    "deeper_lomiri": {"layers": 17, "sets": ("wallpapers", "lomiri")},
    # the newest shipped prior trained on at ×3 to ×4 only (a network for large scales)
    "shipped_more_x4": {"init": True, "fit": {"lr": 2e-4, "scales": (3.0, 4.0)}},
    # the newest shipped prior trained on at a lower learning rate on its own 53 photos
    # (2026-12-06, from prior-2026-12-06d, 20,000 steps, 20 min alone on 2 cores: +1.372 /
    # +1.081 / +0.891 dB against d's +1.376 / +1.071 / +0.885 — within noise, not shipped)
    "shipped_more_lomiri": {"init": True, "sets": ("wallpapers", "lomiri"), "fit": {"lr": 2e-4}},
}
IMAGES = ("kodim01", "kodim03", "kodim05", "kodim07", "kodim13", "kodim16", "kodim19",
          "kodim23", "astronaut", "coffee", "rocket", "camera")  # fmt: skip
SCALES = (2, 3, 4)
STREAM = RESULTS / "upscale_prior_search.jsonl"


def variant_images(spec: dict) -> list[torch.Tensor]:
    """The training photos of a variant: the prior's, some left out (`drop`), the
    photos of `PHOTO_SETS` too (`sets`), plus their reductions (`pyramid`)."""
    images = training_images(spec.get("drop", ()), spec.get("sets", ()))
    extra = []
    for f in spec.get("pyramid", ()):
        for im in images:
            _, h, w = im.shape
            extra.append(area_resize(im, round(h * f), round(w * f)))
    return images + extra


def score(net, names=IMAGES, scales=SCALES) -> list[dict]:
    """The network's render alone against Lanczos, per image and scale."""
    rows = []
    for name in names:
        for s in scales:
            true, small = box_down(load(name), s)
            size = tuple(true.shape[1:])
            net.set_image(small.float() / 255)
            net.blend = [1.0, 1.0, 1.0]
            mine = net.render(size)
            lanczos = pil_resize(small, size, Image.Resampling.LANCZOS)
            rows.append({"image": name, "scale": s, "gain": psnr(mine, true) - psnr(lanczos, true)})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--variant", nargs="*", default=[], choices=sorted(VARIANTS),
                    help="none: only rewrite the table from the rows so far")  # fmt: skip
    ap.add_argument("--steps", type=int, default=8_000)
    ap.add_argument("--save", help="also save the (last) variant's network as this prior name "
                    "(model/upscale_<name>.safetensors)")  # fmt: skip
    args = ap.parse_args()
    for name in args.variant:
        spec = VARIANTS[name]
        cfg = UpscaleConfig(**{k: v for k, v in spec.items() if k in ("features", "layers")})
        t = time.perf_counter()
        if name == "shipped":
            net, steps, name = load_prior(), PRIORS[PRIOR_NAME].steps, f"shipped {PRIOR_NAME}"
        else:
            images = variant_images(spec)
            weights = [im[0].numel() for im in images] if spec.get("by_area") else None
            fit = UpscaleFit(**spec.get("fit", {}))
            init = load_prior() if spec.get("init") else None
            net = train_prior(images, args.steps, fit, 2000, cfg=cfg, weights=weights, init=init)
            steps = args.steps
        seconds = time.perf_counter() - t
        if args.save:
            where = prior_file(args.save)
            print(f"{where}: sha256 {save_prior(net, where, args.save)}", flush=True)
        rows = score(net)
        with STREAM.open("a") as f:
            f.write(json.dumps({"variant": name, "steps": steps, "train_s": seconds,
                                "params": net.parameter_count(), "rows": rows}) + "\n")  # fmt: skip
        means = [np.mean([r["gain"] for r in rows if r["scale"] == s]) for s in SCALES]
        print(name, steps, [f"{m:+.3f}" for m in means], f"{seconds:.0f} s", flush=True)
    runs = [json.loads(line) for line in STREAM.read_text().splitlines()]
    table = []
    for run in runs:
        gains = [[r["gain"] for r in run["rows"] if r["scale"] == s] for s in SCALES]
        table.append([run["variant"], run["steps"], run["params"], f"{run['train_s']:.0f}"]
                     + [f"{np.mean(g):+.3f}" for g in gains]
                     + [f"{min(min(g) for g in gains):+.2f}"])  # fmt: skip
    header = ["variant", "steps", "parameters", "training s", "×2 dB over Lanczos", "×3", "×4",
              "worst pair"]  # fmt: skip
    text = (f"# The upscaler's prior: candidates\n\n{machine()}\n\n"
            f"`python -m benchmarks.upscale_prior_search` (see its docstring): the network's "
            f"render alone, mean gain over Lanczos on {', '.join(IMAGES)}.\n\n"
            + md_table(header, table))  # fmt: skip
    print(write_result("upscale_prior_search.md", text))


if __name__ == "__main__":
    main()
