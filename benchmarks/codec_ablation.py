"""The codec's ablation: one mechanism at a time, as a Bjøntegaard-delta rate against the
coding before it, on the same fitted network.

Each image is fitted once with the trained body `compact` used until 2026-11-30 (8×8-pixel
cells, width 32, 300 steps), and coded with the fixed cosine body the presets use now.
Every variant then codes that network at the same seven quantizer steps (0.04 … 0.5), each
point a real file (`CoefficientCoder.encode`) with its PSNR, and the variant's curve is
compared with the reference's (`bd_rate`, PSNR-based, over the range both cover; negative:
fewer bytes for the same PSNR).

    python -m benchmarks.codec_ablation                      # the bd_rate benchmark's 6 images
    python -m benchmarks.codec_ablation --images kodim05,kodim23

Rows (each against the one before it unless it says otherwise):
  container   format 3 (26-byte binary header, raw LZMA2, byte planes) against format 1
              (JSON header, safetensors, xz), without DC prediction, filter or KLT order
  DC          the cells' constant coefficients as differences from their left neighbour's
  filter      the restoration filter (model/codec/postfilter.py), its bytes counted, with DC
  KLT order   the basis rotated into Karhunen–Loève order (codec.klt_rotation), with both
  context coding  the coefficients range-coded under the context model (model/codec/entropy.py)
              instead of LZMA2 on their byte planes, with all three (DC from the left)
  median DC   the constant terms predicted by the median edge detector (left, above,
              above-left) instead of from the left, range-coded
  fixed body  the fixed cosine body (network.Body: no fit, no body bytes, the cells' DCT)
              on 8-pixel cells against the trained body with all six; then 16-pixel cells
              against 8, and against format 1
  deadzone X  rounding offset X towards zero instead of the current default, with all six
              (trained body)
"""

import argparse
import time
from dataclasses import replace

import numpy as np
import torch

from benchmarks.bd_rate import load
from benchmarks.common import bd_rate, machine, md_table, write_result
from mhinr.model.codec import Tools
from mhinr.model.coefficients import DEADZONE, CoefficientCoder, fit_coders
from mhinr.model.compress import Options
from mhinr.model.presets import Arch

STEPS = np.exp(np.linspace(np.log(0.04), np.log(0.5), 7))
IMAGES = "kodim05,kodim23,kodim19,astronaut,coffee,chelsea"
DEADZONES = (0.05, 0.15, 0.2)


def curve(coder: CoefficientCoder, h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """(bpp, PSNR) of real files at each step."""
    bpp = [8 * len(coder.encode(s)) / (h * w) for s in STEPS]
    return np.array(bpp), np.array([coder.quality(s) for s in STEPS])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", default=IMAGES)
    args = ap.parse_args()
    torch.set_num_threads(2)
    t0 = time.perf_counter()
    rows, per_variant = [], {}
    for name in args.images.split(","):
        img = load(name)
        _, h, w = img.pixels.shape
        # the trained body the presets used until 2026-11-30 (an explicit width trains it)
        coder = fit_coders(img.pixels, img.mode, Options(preset="compact", width=32), False)[0]
        fixed = [
            fit_coders(img.pixels, img.mode, Options(preset="compact"), True, archs=[a])[0]
            for a in (Arch(cell=8, fixed=True), Arch(cell=16, fixed=True))
        ]
        filtered, klt = coder.post_filter, coder.tools.klt
        none = Tools(version=1, dc_prediction=False, klt=False, context_coding=False,
                     dc_median=False)  # fmt: skip
        coder.tools, coder.deadzone = none, DEADZONE
        old = curve(coder, h, w)
        coder.tools, coder.post_filter = replace(none, version=3), False
        binary = curve(coder, h, w)
        coder.tools = replace(coder.tools, dc_prediction=True)
        dc = curve(coder, h, w)
        coder.post_filter = filtered
        filt = curve(coder, h, w)
        coder.tools = replace(coder.tools, klt=klt)
        klt_only = curve(coder, h, w)
        coder.tools = replace(coder.tools, context_coding=True)
        ranged = curve(coder, h, w)
        coder.tools = replace(coder.tools, dc_median=True)
        new = curve(coder, h, w)
        result = {
            "container (format 3 vs 1)": bd_rate(*binary, *old),
            "DC prediction": bd_rate(*dc, *binary),
            "restoration filter": bd_rate(*filt, *dc),
            "KLT order": bd_rate(*klt_only, *filt),
            "context coding": bd_rate(*ranged, *klt_only),
            "median DC": bd_rate(*new, *ranged),
            "all six vs format 1": bd_rate(*new, *old),
        }
        cosine8, cosine16 = (curve(c, h, w) for c in fixed)
        result["fixed cosine body (8-px cells) vs the trained"] = bd_rate(*cosine8, *new)
        result["16-px cells vs 8-px (fixed body)"] = bd_rate(*cosine16, *cosine8)
        result["fixed body, 16-px cells, vs format 1 (trained)"] = bd_rate(*cosine16, *old)
        for dz in DEADZONES:
            coder.deadzone = dz
            result[f"deadzone {dz} vs {DEADZONE}"] = bd_rate(*curve(coder, h, w), *new)
        for k, v in result.items():
            per_variant.setdefault(k, []).append(v)
        rows.append([name, f"{old[0].min():.2f}–{old[0].max():.2f}"] + list(result.values()))
        print(name, {k: round(v, 2) for k, v in result.items()}, flush=True)
    means = [float(np.mean(v)) for v in per_variant.values()]
    rows.append(["**mean**", ""] + means)
    text = (
        "# Codec ablation (BD-rate, %, negative = fewer bytes at equal PSNR)\n\n"
        f"`python -m benchmarks.codec_ablation --images {args.images}`; {machine()}; "
        f"{(time.perf_counter() - t0) / 60:.1f} min. One `compact` fit per image; every "
        "variant codes that network at the same 7 quantizer steps; the fixed body's rows code "
        "that body at the same steps.\n\n"
        + md_table(["image", "bpp range"] + list(per_variant), rows)
    )
    print(text)
    write_result("codec_ablation.md", text)


if __name__ == "__main__":
    main()
