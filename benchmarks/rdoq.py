"""Rate–distortion-optimised quantization (entropy.rd_quantize) against the deadzone
quantizer alone: the `fast` coder of each image coded at the same quantizer steps with each
λ, BD-rate against λ = 0 (PCHIP, PSNR on RGB; negative: fewer bytes at equal PSNR).

    python -m benchmarks.rdoq --images kodim05,kodim23,coffee,astronaut --lams 0.05,0.1,0.2
    python -m benchmarks.rdoq --timing --images kodim23,kodim05
"""

import argparse
import time

import numpy as np
import torch

from benchmarks.bd_rate import load
from benchmarks.common import bd_rate, machine, md_table, write_result
from mhinr.model.coefficients import fit_coders
from mhinr.model.compress import Options


def timing(names: list[str]) -> None:
    """`fast` with and without RDOQ, without a target and at two targets: bytes, PSNR and
    seconds of `compress` in-process (run it alone on the cores)."""
    import mhinr.model.coefficients as coefficients
    from mhinr.model.compress import compress

    rows = []
    for name in names:
        img = load(name)
        for target in ({}, {"bpp": 0.5}, {"target_psnr": 36.0}):
            row = [name, str(target or "none")]
            for lam in (0.0, coefficients.RDOQ_LAMBDA):
                coefficients.RDOQ_LAMBDA, saved = lam, coefficients.RDOQ_LAMBDA
                t = time.perf_counter()
                out = compress(img.pixels, img.mode, Options(preset="fast", **target))
                row.append(f"{out.bytes:,} B, {out.psnr:.2f} dB, {time.perf_counter() - t:.1f} s")
                coefficients.RDOQ_LAMBDA = saved
            rows.append(row)
    text = f"""# `fast` with and without RDOQ: bytes, PSNR, seconds

`python -m benchmarks.rdoq --timing --images {",".join(names)}` — {machine()}; `compress`
in-process, alone on the cores.

{md_table(["image", "target", "without RDOQ", "with RDOQ (default)"], rows)}"""
    print(text)
    write_result("rdoq_timing.md", text)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--timing", action="store_true", help="fast's time with and without")
    ap.add_argument("--images", default="kodim05,kodim23,coffee,astronaut")
    ap.add_argument("--lams", default="0.05,0.1,0.2")
    ap.add_argument("--steps", default="0.02,0.035,0.06,0.1,0.17,0.3,0.5")
    ap.add_argument("--out", default="rdoq.md")
    ap.add_argument("--passes", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(2)
    if a.timing:
        timing(a.images.split(","))
        return
    lams = [float(x) for x in a.lams.split(",")]
    steps = [float(x) for x in a.steps.split(",")]
    rows, start = [], time.perf_counter()
    per_lam: dict[float, list[float]] = {lam: [] for lam in lams}
    for name in a.images.split(","):
        img = load(name)
        (coder,) = fit_coders(img.pixels, img.mode, Options(preset="fast"), search=False)
        coder.rdoq_passes = a.passes
        curves = {}
        for lam in [0.0, *lams]:
            coder.rdoq = lam
            t = time.perf_counter()
            points = [(len(coder.encode(s)), coder.quality(s)) for s in steps]
            curves[lam] = (points, (time.perf_counter() - t) / len(steps))
        base = curves[0.0][0]
        row = [name]
        for lam in lams:
            pts = curves[lam][0]
            d = bd_rate([p[0] for p in pts], [p[1] for p in pts], [p[0] for p in base],
                        [p[1] for p in base])  # fmt: skip
            per_lam[lam].append(d)
            row.append(f"{d:+.2f} %")
        row.append(f"{curves[0.0][1]:.2f} / {curves[lams[-1]][1]:.2f} s")
        rows.append(row)
        print(row, flush=True)
    rows.append(["**mean**", *[f"**{np.mean(v):+.2f} %**" for v in per_lam.values()], ""])
    text = f"""# Rate–distortion-optimised quantization of the coefficients

`python -m benchmarks.rdoq --images {a.images} --lams {a.lams} --passes {a.passes}` — {machine()};
{(time.perf_counter() - start) / 60:.1f} min. The `fast` coder of each image (16-pixel cells,
restoration filter where it pays) coded at steps {a.steps}; BD-rate of each λ against the
deadzone quantizer alone (λ = 0), PSNR of the files' reconstructions.

{md_table(["image", *[f"λ = {lam:g}" for lam in lams], "encode a step: λ = 0 / last"], rows)}"""
    print(text)
    write_result(a.out, text)


if __name__ == "__main__":
    main()
