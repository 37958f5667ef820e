"""A tool of the cosine codec on and off: the cosines predicted from the constant terms
(format3.dc_interpolation, `--tool dc_interpolation`, the default), the chroma from channel
0 (format3.ChromaPredictor, `--tool chroma`), the deblocking filter (codec/deblock.py,
`--tool deblock`) or the frequency context model (entropy.frequency_model, `--tool context`).

For each image, `compact` files at the byte targets with the tool
(coefficients.DC_INTERPOLATION, CHROMA_PREDICTION, DEBLOCKING or FREQUENCY_CONTEXT) and
without it — the same coders, cells, filters and, unless `--steps 0`, the trained stage —
then the BD-rate of "with" against "without" (PCHIP, negative: fewer bytes at equal PSNR)
and each target's PSNR difference.

    python -m benchmarks.dc_interpolation --images kodim05,kodim23 --steps 0
    python -m benchmarks.dc_interpolation --preset fast --out dc_interpolation_fast
    python -m benchmarks.dc_interpolation --tool chroma --preset fast --out chroma_fast
    python -m benchmarks.dc_interpolation --tool deblock --preset fast --out deblock_fast
    python -m benchmarks.dc_interpolation --tool context --preset fast --out context_fast
"""

import argparse
import time

import numpy as np
import torch

from benchmarks.bd_rate import load
from benchmarks.common import bd_rate, machine, md_table, write_result
from mhinr.model import coefficients
from mhinr.model.compress import Options, compress_sweep

IMAGES = "kodim05,kodim13,kodim18,kodim23,astronaut,coffee,chelsea,rocket"
BPPS = (0.15, 0.25, 0.5, 1.0, 1.5)


TOOLS = {  # --tool: (the switch in model/coefficients.py, what it is)
    "dc_interpolation": (
        "DC_INTERPOLATION",
        "Cosines predicted from the constant terms (format3.dc_interpolation)",
    ),
    "chroma": (
        "CHROMA_PREDICTION",
        "The chroma predicted from channel 0 (format3.ChromaPredictor)",
    ),
    "deblock": ("DEBLOCKING", "The deblocking filter at the cells' borders (codec/deblock.py)"),
    "context": (
        "FREQUENCY_CONTEXT",
        "The context model with the cosines' parents in frequency (entropy.frequency_model)",
    ),
}


def sweep(pixels, mode, options, targets, switch: str, on: bool):
    setattr(coefficients, switch, on)
    try:
        return compress_sweep(pixels, mode, options, targets)
    finally:
        setattr(coefficients, switch, True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", default=IMAGES)
    ap.add_argument("--steps", type=int, default=None, help="the stage's steps (0: no stage)")
    ap.add_argument("--out", default="dc_interpolation")
    ap.add_argument("--preset", default="compact", choices=("compact", "fast", "max"))
    ap.add_argument("--tool", default="dc_interpolation", choices=tuple(TOOLS))
    a = ap.parse_args()
    switch, title = TOOLS[a.tool]
    torch.set_num_threads(2)
    t0 = time.perf_counter()
    options = Options(preset=a.preset, steps=a.steps)
    rows, bds, gains = [], [], []
    for name in a.images.split(","):
        img = load(name)
        h, w = img.pixels.shape[1:]
        targets = [{"max_bytes": int(b * h * w / 8)} for b in BPPS]
        off = sweep(img.pixels, img.mode, options, targets, switch, False)
        on = sweep(img.pixels, img.mode, options, targets, switch, True)
        bd = bd_rate([o.bytes for o in on], [o.psnr for o in on],
                     [o.bytes for o in off], [o.psnr for o in off])  # fmt: skip
        diff = [b.psnr - a_.psnr for a_, b in zip(off, on, strict=True)]
        bds.append(bd)
        gains.append(diff)
        cells = " ".join(
            f"{o.net.cfg.cell[0]}/{n.net.cfg.cell[0]}" for o, n in zip(off, on, strict=True)
        )
        rows.append([name, f"{w}x{h}", bd, *diff, cells])
        print(name, f"BD {bd:+.2f} %", " ".join(f"{d:+.3f}" for d in diff), cells, flush=True)
    mean = np.mean(gains, 0).tolist()
    rows.append(["**mean**", "", float(np.mean(bds)), *mean, ""])
    stage = (
        "no stage" if a.steps == 0 or a.preset == "fast" else "the stage as the preset trains it"
    )
    text = (
        f"# {title}\n\n"
        f"`python -m benchmarks.dc_interpolation --images {a.images}"
        f"{'' if a.tool == 'dc_interpolation' else f' --tool {a.tool}'}"
        f"{'' if a.steps is None else f' --steps {a.steps}'}"
        f"{'' if a.preset == 'compact' else f' --preset {a.preset}'}"
        f"{'' if a.out == 'dc_interpolation' else f' --out {a.out}'}` — {machine()}; {stage}; "
        f"{(time.perf_counter() - t0) / 60:.1f} min. BD-rate of `{a.preset}` with the tool "
        "against without (negative: fewer bytes at equal PSNR), then the PSNR difference at "
        "each byte target (same bytes or fewer); cells: without/with.\n\n"
        + md_table(["image", "size", "BD-rate %", *(f"{b} bpp dB" for b in BPPS), "cells"], rows)
    )
    print(text)
    write_result(f"{a.out}.md", text)


if __name__ == "__main__":
    main()
