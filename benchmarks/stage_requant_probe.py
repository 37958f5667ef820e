"""Probe: the coefficients quantized for what the trained stage will make of them.

Today the encoder quantizes the cosine coefficients (deadzone, then RDOQ under the context
model) as if the decode were the end, and then trains the stage on that decode. Overfitted
codecs (Cool-chic, C3) train their latents through the synthesis instead. This probe tries
the first-order version of that with the codec's own quantizer (`CoefficientCoder.for_stage`,
which `compact` and `max` use since 2026-12-06): with the stage S trained on
the decode d, the squared error after the stage, ‖S(d) − o‖², changes with the decode like
‖d − t‖² does near d, where

    t = d − β · Jᵀ (S(d) − o)        (J: S's Jacobian at d; β = 1 is the Gauss–Newton step)

(with S the identity, t = o: today's quantizer). So the coefficients of t (their AC rows;
the constant terms stay the image's, which the decoder's DC prediction reads) are handed to
the same quantizer — the deadzone, RDOQ's λ·bits test and the chroma rows — in place of the
image's, at the same step: a coefficient the stage would restore anyway costs bits for
little and RDOQ drops it; one whose error the stage amplifies is kept. Then the stage is
trained further on the new decode. The baseline gets the same further training on its own
decode, so the columns differ in the quantizer's target alone.

Each cell: the file with its stage (bytes, PSNR) and, for each β, the change in bytes and in
PSNR and the rate saved at the file's own R–D slope (positive: fewer bytes at equal PSNR).

    python -m benchmarks.stage_requant_probe --images kodim23,coffee --bpps 0.25 --betas 0.5,1,1x2

(`1x2`: β = 1, two rounds: t again from the first round's decode and its further-trained
stage, the stage trained again on the second decode; `1s`: t's coefficients only where
they are smaller than the image's, `for_stage`'s shrink.)
"""

import argparse
import copy
import time
from collections.abc import Iterator
from dataclasses import dataclass

import torch

from benchmarks.bd_rate import load
from benchmarks.common import md_table, write_result
from benchmarks.stage_probe import rate_saved, slope_at
from mhinr.model import synthesis
from mhinr.model.coefficients import CoefficientCoder, best_coder, fit_coders, stage_hidden
from mhinr.model.compress import Options


def tuned(
    coder: CoefficientCoder, stage: synthesis.Stage, step: float, steps: int, lr: float = 1.0
):
    """(bytes, PSNR) of `coder`'s file at `step` with `stage` trained `steps` more steps on
    its decode (`lr`: Adam's rate, × synthesis.LR)."""
    net, _ = synthesis.train(
        coder.decoded(step), coder.pixels, 1e9, steps, init=stage, lr=synthesis.LR * lr
    )
    coder.stage, coder._coded = net, None
    return len(coder.encode(step)), coder.quality(step)


@dataclass
class Point:
    """One image and bpp target of the probes: the untrained file's coder with the stage in
    place of its restoration filter (`base`), that stage trained, the file's step and R–D
    slope, the baseline's (bytes, PSNR) after its further training, and the row's first
    cells."""

    base: CoefficientCoder
    stage: synthesis.Stage
    step: float
    slope: float
    tuned: tuple[int, float]
    row: list[str]


def staged_points(images: str, bpps: list[float], steps: int, tune: int) -> Iterator[Point]:
    """For each image (comma-separated) and bpp target: the best untrained `compact` file,
    its stage trained `steps` steps on its decode without the restoration filter and `tune`
    more (the baseline the probes' columns are measured against)."""
    for name in images.split(","):
        img = load(name)
        h, w = img.pixels.shape[1:]
        coders = fit_coders(img.pixels, img.mode, Options(preset="compact", steps=0), True)
        plain = [best_coder(coders, {"max_bytes": int(b * h * w / 8)}) for b in bpps]
        curve = [(o.bytes, o.psnr) for _, o in plain]
        for i, (coder, out) in enumerate(plain):
            step = out.coded.step
            assert step is not None
            base = copy.copy(coder)  # the stage in place of the restoration filter, as `_staged`
            base.post_filter, base._coded = False, None
            hidden = stage_hidden(out.bytes)
            stage, _ = synthesis.train(base.decoded(step), base.pixels, 1e9, steps, hidden)
            b0, q0 = tuned(copy.copy(base), stage, step, tune)
            row = [name, f"{out.bpp:.3f}", str(out.net.cfg.cell[0]), f"{b0} B, {q0:.2f} dB"]
            yield Point(base, stage, step, slope_at(curve, i), (b0, q0), row)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--images", default="kodim23,coffee,kodim05")
    ap.add_argument("--bpps", default="0.15,0.25,0.5,1.0")
    ap.add_argument("--betas", default="0.5,1")
    ap.add_argument("--steps", type=int, default=4000, help="the stage's first training")
    ap.add_argument("--tune", type=int, default=1000, help="its further training on each decode")
    ap.add_argument("--out", default="stage_requant_probe")
    a = ap.parse_args()
    torch.set_num_threads(2)
    t0 = time.perf_counter()
    bpps = [float(b) for b in a.bpps.split(",")]
    # β, β×rounds (t recomputed from each round's decode and further-trained stage) or βs
    # (`for_stage`'s shrink)
    betas = [
        (float(b.rstrip("s").split("x")[0]), int(b.split("x")[1]) if "x" in b else 1, "s" in b)
        for b in a.betas.split(",")
    ]
    names = a.betas.split(",")
    rows = []
    for p in staged_points(a.images, bpps, a.steps, a.tune):
        base, stage, step, (b0, q0), row = p.base, p.stage, p.step, p.tuned, p.row
        for beta, rounds, shrink in betas:
            other, net = base, stage
            for _ in range(rounds):  # t again from the last round's decode and stage
                other = other.for_stage(net, step, shrink, beta)
                b1, q1 = tuned(other, net, step, a.tune)
                assert other.stage is not None
                net = other.stage
            saved = rate_saved(q1 - q0, b1 - b0, b0, p.slope)
            row.append(f"{b1 - b0:+d} B, {q1 - q0:+.3f} dB: {saved:+.1f} %")
        print(row, flush=True)
        rows.append(row)
    write_result(
        f"{a.out}.md",
        f"""# The coefficients quantized for the stage (first order)

`python -m benchmarks.stage_requant_probe --images {a.images} --bpps {a.bpps} --betas
{a.betas} --steps {a.steps} --tune {a.tune}`: {(time.perf_counter() - t0) / 60:.1f} min, 2
threads. Each row: the best untrained `compact` file for the bpp target, its stage trained
{a.steps} steps (in place of the restoration filter) and {a.tune} more on the decode; then,
for each β, the AC coefficients quantized at the same step for t = d − β·Jᵀ(S(d) − o)
instead of the image, the stage trained {a.tune} more steps on that decode: bytes and dB
against the first, and the rate saved at the file's own R–D slope (positive: fewer bytes).

{md_table(["image", "bpp", "cell", "file with its stage", *[f"β = {b}" for b in names]], rows)}
""",
    )


if __name__ == "__main__":
    main()
