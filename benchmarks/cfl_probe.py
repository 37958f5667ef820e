"""Probe: the colour channels' cosines predicted from channel 0's (chroma from luma).

The KLT colour space (codec.colour) decorrelates the channels over the whole image, but not
locally: at an edge the coded channels 1 and 2 move with channel 0 by a factor that changes
from place to place. The decoder decodes the coefficients a row at a time, channel 0 first,
so when it reaches row k of channel c ≥ 1 it already has row k of channel 0 in every cell,
and rows 1 … k−1 of every channel. Here a cell's row-k coefficient of channel c is predicted
as α · e₀ (e₀: channel 0's decoded residual from the constant terms' interpolation, i.e. its
integer times the step), α estimated from what is decoded — the rows before k of the cell
and its neighbours within `--radius` cells: α = Σ e_c e₀ / (Σ e₀² + κ·step²) — so it
costs no bits (the codec's format3.ChromaPredictor, with the probe's radius and ridge). The
coded integers are the residuals against it. No restoration filter, no stage; the baseline
is the same coder without it (both with RDOQ). BD-rate over the steps.

    python -m benchmarks.cfl_probe --images kodim05,kodim23,astronaut,coffee
"""

import argparse

import numpy as np
import torch

from benchmarks.common import bd_rate
from benchmarks.split_probe import decoded, file_bytes, plain_coder
from mhinr.model.codec import entropy, format3, postfilter
from mhinr.model.coefficients import SOLVE_STRIDE
from mhinr.model.metrics import psnr

FILTER = False


class Predictor(format3.ChromaPredictor):
    """The codec's predictor with the probe's neighbourhood (radius), ridge and threshold:
    the prediction only where channel 0's integer is at least `threshold`."""

    threshold = 1

    def term(self, e0: np.ndarray) -> np.ndarray:
        return super().term(np.where(np.abs(e0) >= (self.threshold - 0.5) * self.step, e0, 0.0))


def point(coder, step: float, kappa: float | None, radius: int) -> tuple[int, float]:
    c = len(coder.mode)
    hy, hx = coder.net.cfg.heads
    shape = (-1, c, hy, hx)
    base = coder.quantized(step).numpy().astype(np.int64).reshape(shape)  # RDOQ'd
    coef = coder.coef.numpy().reshape(shape)
    pred = coder.prediction(step).numpy().reshape(shape)
    q, terms = base, np.zeros(base.shape)
    if kappa is not None:
        Predictor.ridge, Predictor.radius = kappa, radius
        q, terms = entropy.rd_quantize_predicted(
            (coef - pred) / step, base, coder.rdoq, coder.deadzone, Predictor(base.shape[1:], step)
        )
    e = q * step + terms  # the encoder's terms are the decoder's (tests/test_codec.py)
    size = file_bytes(coder, q, step)
    rgb = decoded(coder, e + pred, u8=not FILTER)
    if FILTER:  # the restoration filter the codec would solve (its bytes are on both sides)
        f = postfilter.solve(rgb, coder.pixels, coder.kernel, SOLVE_STRIDE)
        rgb = postfilter.apply(rgb, f).clamp(0, 1).mul(255).round() / 255
    return size, psnr(rgb, coder.pixels)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", default="kodim05,kodim23,astronaut,coffee")
    ap.add_argument("--kappas", default="1,4")
    ap.add_argument("--radius", type=int, default=1)
    ap.add_argument("--threshold", type=int, default=1)
    ap.add_argument("--filter", action="store_true", help="with the restoration filter")
    ap.add_argument("--steps", default="0.4,0.25,0.16,0.1,0.065,0.04,0.025")
    a = ap.parse_args()
    global FILTER
    Predictor.threshold, FILTER = a.threshold, a.filter
    torch.set_num_threads(2)
    steps = [float(s) for s in a.steps.split(",")]
    summary: dict[float, list[float]] = {}
    for name in a.images.split(","):
        img, coder = plain_coder(name)  # the probe predicts the chroma by itself
        h, w = img.pixels.shape[1:]
        base = [point(coder, s, None, 0) for s in steps]
        print(name, "plain", " ".join(f"{8 * b / (h * w):.3f}:{q:.2f}" for b, q in base))
        for kappa in [float(x) for x in a.kappas.split(",")]:
            pts = [point(coder, s, kappa, a.radius) for s in steps]
            bd = bd_rate([p[0] for p in pts], [p[1] for p in pts], *zip(*base, strict=True))
            by = " ".join(f"{8 * b / (h * w):.3f}:{q:.2f}" for b, q in pts)
            print(f"{name} κ={kappa}: BD-rate {bd:+.2f} % | {by}", flush=True)
            summary.setdefault(kappa, []).append(bd)
    for kappa, bds in summary.items():
        print(f"mean κ={kappa}: {np.mean(bds):+.2f} % over {len(bds)}")


if __name__ == "__main__":
    main()
