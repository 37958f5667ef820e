"""Probe: the colour channels' cosines predicted from channel 0's (chroma from luma).

The KLT colour space (codec.colour) decorrelates the channels over the whole image, but not
locally: at an edge the coded channels 1 and 2 move with channel 0 by a factor that changes
from place to place. The decoder decodes the coefficients a row at a time, channel 0 first,
so when it reaches row k of channel c ≥ 1 it already has row k of channel 0 in every cell,
and rows 1 … k−1 of every channel. Here a cell's row-k coefficient of channel c is predicted
as α · e₀ (e₀: channel 0's decoded residual from the constant terms' interpolation, i.e. its
integer times the step), α estimated from what is decoded — the rows before k of the cell
and its eight neighbours: α = Σ e_c e₀ / (Σ e₀² + κ·step²) — so it costs no bits. The
coded integers are the residuals against it. No restoration filter, no stage; the baseline
is the same coder without it (both with RDOQ). BD-rate over the steps.

    python -m benchmarks.cfl_probe --images kodim05,kodim23,astronaut,coffee
"""

import argparse

import numpy as np
import torch
from numpy.lib.stride_tricks import sliding_window_view

from benchmarks.bd_rate import load
from benchmarks.common import bd_rate
from mhinr.model.codec import entropy, postfilter
from mhinr.model.coefficients import SOLVE_STRIDE
from mhinr.model.coefficients import fit_coders
from mhinr.model.metrics import psnr
from mhinr.model.network import assemble
from mhinr.model.presets import Arch, Options


def box(a: np.ndarray, radius: int) -> np.ndarray:
    """[Hy, Hx] → the sum over each cell's (2r+1)² neighbourhood (edges replicated)."""
    if radius == 0:
        return a
    p = np.pad(a, radius, mode="edge")
    return sliding_window_view(p, (2 * radius + 1,) * 2).sum((2, 3))


FILTER = False
THRESHOLD = 1  # the prediction only where channel 0's integer is at least this large


def luma(e: np.ndarray, k: int, step: float) -> np.ndarray:
    """Channel 0's decoded residual of row k where its integer is ≥ THRESHOLD, else 0."""
    return np.where(np.abs(e[k, 0]) >= (THRESHOLD - 0.5) * step, e[k, 0], 0.0)


def alphas(e: np.ndarray, c: int, k: int, kappa: float, step: float, radius: int):
    """α of channel c, row k from rows 1 … k−1 of e [K, C, Hy, Hx] (decoded residuals)."""
    num = box((e[1:k, c] * e[1:k, 0]).sum(0), radius)
    den = box((e[1:k, 0] ** 2).sum(0), radius)
    return np.clip(num / (den + kappa * step * step), -2.0, 2.0)


def decode_residuals(q: np.ndarray, step: float, kappa: float, radius: int) -> np.ndarray:
    """The decoder's view: integers [K, C, Hy, Hx] → decoded residuals from the prediction."""
    e = q * step
    for k in range(2, q.shape[0]):
        for c in range(1, q.shape[1]):
            e[k, c] += alphas(e, c, k, kappa, step, radius) * luma(e, k, step)
    return e


def chroma_from_luma(coder, base, r, step, kappa, radius) -> np.ndarray:
    """The integers with channels ≥ 1 coded against α·e₀, row by row in the decoder's order,
    each row's RDOQ decided with the contexts of the final rows before it (as rd_quantize,
    one pass), so that the encoder's α are the decoder's."""
    q = base.copy()
    e = base * step
    costs = entropy.bit_costs()
    row_scale = entropy.fit_alpha(entropy.zigzag(base), entropy.context_indices(base))
    ctx = entropy._Context(base.shape[1:])
    dz, lam = coder.deadzone, coder.rdoq
    for k in range(1, q.shape[0]):
        for ch in range(1, q.shape[1]):
            a = alphas(e, ch, k, kappa, step, radius) if k >= 2 else 0.0
            rr = r[k, ch] - a * luma(e, k, step) / step
            qq = (np.sign(rr) * np.maximum(np.floor(np.abs(rr) + 0.5 - dz), 0)).astype(np.int64)
            s = np.minimum(row_scale[k, ch] + ctx.terms(k, q[k], ch), entropy.SCALES - 1)
            mag = np.abs(qq)
            down = np.sign(qq) * np.maximum(mag - 1, 0)
            now = costs[s, np.minimum(entropy.zigzag(qq), 127)]
            less = costs[s, np.minimum(entropy.zigzag(down), 127)]
            added = (np.abs(rr) - (mag - 1)) ** 2 - (np.abs(rr) - mag) ** 2
            qq = np.where((mag >= 1) & (added < lam * (now - less)), down, qq)
            q[k, ch] = qq
            e[k, ch] = qq * step + a * luma(e, k, step)
        ctx.update(k, q[k])
    return q


def point(coder, step: float, kappa: float | None, radius: int) -> tuple[int, float]:
    c = len(coder.mode)
    hy, hx = coder.net.cfg.heads
    shape = (-1, c, hy, hx)
    base = coder.quantized(step).numpy().astype(np.int64).reshape(shape)  # RDOQ'd
    coef = coder.coef.numpy().reshape(shape)
    pred = coder.prediction(step).numpy().reshape(shape)
    q = base
    if kappa is not None:
        q = chroma_from_luma(coder, base, (coef - pred) / step, step, kappa, radius)
    e = decode_residuals(q.astype(np.float64), step, kappa, radius) if kappa is not None else q * step
    qt = torch.from_numpy(q.reshape(q.shape[0], -1).astype(np.float32))
    coder.quantized = lambda s: qt
    coder._coded = None
    size = len(coder.encode(step))
    del coder.quantized
    coder._coded = None
    coef_hat = torch.from_numpy((e + pred).reshape(e.shape[0], -1))
    h, w = coder.pixels.shape[1:]
    rec = assemble(coder.basis @ coef_hat, c, hy, hx, *coder.net.cfg.cell)[:, :h, :w]
    rgb = torch.einsum("ij,jhw->ihw", coder.colour.double(), rec) + coder.mean.double()[:, None, None]
    if FILTER:  # the restoration filter the codec would solve (its bytes are on both sides)
        f = postfilter.solve(rgb, coder.pixels, coder.kernel, SOLVE_STRIDE)
        rgb = postfilter.apply(rgb, f)
    return size, psnr(rgb.clamp(0, 1).mul(255).round() / 255, coder.pixels)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", default="kodim05,kodim23,astronaut,coffee")
    ap.add_argument("--kappas", default="1,4")
    ap.add_argument("--radius", type=int, default=1)
    ap.add_argument("--threshold", type=int, default=1)
    ap.add_argument("--filter", action="store_true", help="with the restoration filter")
    ap.add_argument("--steps", default="0.4,0.25,0.16,0.1,0.065,0.04,0.025")
    a = ap.parse_args()
    global THRESHOLD, FILTER
    THRESHOLD, FILTER = a.threshold, a.filter
    torch.set_num_threads(2)
    steps = [float(s) for s in a.steps.split(",")]
    summary: dict[float, list[float]] = {}
    for name in a.images.split(","):
        img = load(name)
        h, w = img.pixels.shape[1:]
        coder = fit_coders(
            img.pixels, img.mode, Options(preset="fast"), True, archs=[Arch(cell=16, fixed=True)]
        )[0]
        coder.post_filter = False
        base = [point(coder, s, None, 0) for s in steps]
        print(name, "plain", " ".join(f"{8 * b / (h * w):.3f}:{q:.2f}" for b, q in base))
        for kappa in [float(x) for x in a.kappas.split(",")]:
            pts = [point(coder, s, kappa, a.radius) for s in steps]
            bd = bd_rate([p[0] for p in pts], [p[1] for p in pts], *zip(*base))
            by = " ".join(f"{8 * b / (h * w):.3f}:{q:.2f}" for b, q in pts)
            print(f"{name} κ={kappa}: BD-rate {bd:+.2f} % | {by}", flush=True)
            summary.setdefault(kappa, []).append(bd)
    for kappa, bds in summary.items():
        print(f"mean κ={kappa}: {np.mean(bds):+.2f} % over {len(bds)}")


if __name__ == "__main__":
    main()
