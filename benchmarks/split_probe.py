"""Probe: each 16-pixel cell coded either by its 16×16 cosines or split into four 8×8 ones.

A cell's pixels can be coded in either of two orthonormal bases: the 16×16 DCT (what the
cosine body's 16-pixel cells are) or the *split* basis: the 8×8 DCT of each quadrant, the
four quadrants' coefficients of each frequency (u, v) turned by a 2×2 Haar transform, the
four results put at the 16×16 positions (2u + a, 2v + b) (a, b: the Haar's vertical and
horizontal difference) — so a split cell's coefficient of each row has about the frequency
of the unsplit cell's, and the context coder's rows, scales and contexts apply to both.
Both bases have the same constant (the cell's mean), so the constant terms and their
interpolated prediction (format3.dc_interpolation) do not change; the prediction of a split
cell is the unsplit prediction turned into the split basis (M = Bₛᵀ B₁₆, orthogonal). A
decoder would turn a split cell's decoded coefficients back with Mᵀ into 16×16 cosines: the
decoded model stays exactly the cosine body's multi-head INR.

The encoder decides per cell, by D + λ·R: D the squared quantization error (in steps², the
bases being orthonormal), R the bits of the cell's integers under the context model fitted
on the whole image coded one way (each coefficient's table as the coder would choose it),
λ in steps² a bit. Bytes: the real coder on the mixed integers, plus the split flags'
adaptive binary entropy (contexts: the left and upper cells' flags). No restoration
filter, no stage. BD-rate against all-unsplit (`fast`'s coding without its filter).

    python -m benchmarks.split_probe --images kodim05,kodim23,astronaut,coffee
"""

import argparse
import math

import numpy as np
import torch

from benchmarks.bd_rate import load
from benchmarks.common import bd_rate
from mhinr.model import coefficients
from mhinr.model.codec import entropy
from mhinr.model.coefficients import fit_coders
from mhinr.model.metrics import psnr
from mhinr.model.network import assemble
from mhinr.model.pixels import dct_order
from mhinr.model.presets import Arch, Options


def dct_matrix(n: int) -> np.ndarray:
    """[frequency, pixel] the orthonormal DCT-II."""
    k, x = np.arange(n)[:, None], np.arange(n)[None]
    scale = np.sqrt(np.where(k > 0, 2.0, 1.0) / n)
    return scale * np.cos(np.pi * (2 * x + 1) * k / (2 * n))


def split_axis(n: int) -> np.ndarray:
    """[n, n] one axis of the split basis: row 2u + a is the half-size DCT's frequency u in
    both halves, summed (a = 0) or differenced (a = 1), over √2."""
    d = dct_matrix(n // 2)
    out = np.zeros((n, n))
    for u in range(n // 2):
        out[2 * u, : n // 2], out[2 * u, n // 2 :] = d[u], d[u]
        out[2 * u + 1, : n // 2], out[2 * u + 1, n // 2 :] = d[u], -d[u]
    return out / math.sqrt(2)


def basis_2d(ay: np.ndarray, ax: np.ndarray, cell: int) -> np.ndarray:
    """[pixels (row-major), coefficients in dct_order] from per-axis bases [freq, pixel]."""
    cols = [np.outer(ay[a], ax[b]).ravel() for a, b in dct_order((cell, cell))]
    return np.stack(cols, 1)


def flag_bits(split: np.ndarray) -> float:
    """Adaptive (Krichevsky–Trofimov) binary entropy of the split flags [Hy, Hx], raster
    order, context: the left and upper flags."""
    counts = np.ones((4, 2)) * 0.5
    bits = 0.0
    hy, hx = split.shape
    for y in range(hy):
        for x in range(hx):
            ctx = (int(split[y, x - 1]) if x else 0) + 2 * (int(split[y - 1, x]) if y else 0)
            f = int(split[y, x])
            bits -= math.log2(counts[ctx, f] / counts[ctx].sum())
            counts[ctx, f] += 1
    return bits


def cell_bits(q: np.ndarray) -> np.ndarray:
    """[K, C, Hy, Hx] integers → bits of each under the context model fitted to them."""
    z = entropy.zigzag(q)
    ctx = entropy.context_indices(q)
    alpha = entropy.fit_alpha(z, ctx)
    s = np.minimum(alpha[:, :, None, None] + ctx, entropy.SCALES - 1)
    return entropy.bit_costs()[s, np.minimum(z, 127)]


def quantize(coder, coef: np.ndarray, pred: np.ndarray, step: float, shape) -> tuple:
    """(integers [K, C, Hy, Hx] after RDOQ, the scaled residuals) of one domain."""
    r = (coef - pred) / step
    dz = coder.deadzone
    q = np.sign(r) * np.maximum(np.floor(np.abs(r) + 0.5 - dz), 0)
    r4, q4 = r.reshape(shape), q.reshape(shape).astype(np.int64)
    return entropy.rd_quantize(r4, q4, coder.rdoq, coder.rdoq_passes), r4


def point(coder, m: np.ndarray, step: float, mode: str, lam: float) -> tuple:
    """(bytes, PSNR, fraction split) at `step`; mode: none, all, rd."""
    c = len(coder.mode)
    hy, hx = coder.net.cfg.heads
    shape = (-1, c, hy, hx)
    coef16 = coder.coef.numpy()
    p16 = coder.prediction(step).numpy()
    q16, r16 = quantize(coder, coef16, p16, step, shape)
    if mode == "none":
        split = np.zeros((hy, hx), bool)
    else:
        qs, rs = quantize(coder, m @ coef16, m @ p16, step, shape)
        if mode == "all":
            split = np.ones((hy, hx), bool)
        else:
            d16 = ((r16 - q16) ** 2).sum((0, 1))
            ds = ((rs - qs) ** 2).sum((0, 1))
            split = ds + lam * cell_bits(qs).sum((0, 1)) < d16 + lam * cell_bits(q16).sum((0, 1))
    q = np.where(split, qs, q16) if split.any() else q16
    pred = np.where(split.ravel()[None].repeat(c, 0).ravel()[None], m @ p16, p16)
    coef_hat = q.reshape(q.shape[0], -1) * step + pred
    back = np.where(split.ravel()[None].repeat(c, 0).ravel()[None], m.T @ coef_hat, coef_hat)
    size = file_bytes(coder, q, step)
    if mode == "rd" or mode == "all":
        size += math.ceil(flag_bits(split) / 8)
    return size, psnr(decoded(coder, back), coder.pixels), float(split.mean())


def plain_coder(name: str):
    """(the image, the `fast` coder of its 16-pixel cells without the restoration filter and
    without the codec's chroma prediction: the probes make their own)."""
    img = load(name)
    coefficients.CHROMA_PREDICTION = False
    try:
        arch = Arch(cell=16, fixed=True)
        coder = fit_coders(img.pixels, img.mode, Options(preset="fast"), True, archs=[arch])[0]
    finally:
        coefficients.CHROMA_PREDICTION = True
    coder.post_filter = False
    return img, coder


def file_bytes(coder, q: np.ndarray, step: float) -> int:
    """The length of the coder's file at `step` holding the integers `q` instead of its own."""
    qt = torch.from_numpy(q.reshape(q.shape[0], -1).astype(np.float32))
    coder.quantized = lambda s: qt
    coder._coded = None
    try:
        return len(coder.encode(step))
    finally:
        del coder.quantized
        coder._coded = None


def decoded(coder, coef: np.ndarray, u8: bool = True) -> torch.Tensor:
    """The image [C, H, W] of cell coefficients [k, O]: in [0, 1] rounded to 8 bits, or
    (`u8` False) as computed, float64."""
    c, h, w = coder.pixels.shape
    cells = coder.basis @ torch.from_numpy(coef.reshape(coef.shape[0], -1))
    rec = assemble(cells, c, *coder.net.cfg.heads, *coder.net.cfg.cell)[:, :h, :w]
    mean = coder.mean.double()[:, None, None]
    rgb = torch.einsum("ij,jhw->ihw", coder.colour.double(), rec) + mean
    return rgb.clamp(0, 1).mul(255).round() / 255 if u8 else rgb


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", default="kodim05,kodim23,astronaut,coffee")
    ap.add_argument("--lams", default="0.115")
    ap.add_argument("--steps", default="0.4,0.25,0.16,0.1,0.065,0.04,0.025")
    ap.add_argument("--all", action="store_true", help="also every cell split")
    a = ap.parse_args()
    torch.set_num_threads(2)
    steps = [float(s) for s in a.steps.split(",")]
    b16 = basis_2d(dct_matrix(16), dct_matrix(16), 16)
    bs = basis_2d(split_axis(16), split_axis(16), 16)
    m = bs.T @ b16
    summary = []
    for name in a.images.split(","):
        img, coder = plain_coder(name)
        h, w = img.pixels.shape[1:]
        # the coder's basis is the DCT in dct_order on row-major pixels (signs included)
        assert np.allclose(coder.basis.numpy(), b16, atol=1e-9)
        base = [point(coder, m, s, "none", 0)[:2] for s in steps]
        print(name, "unsplit", " ".join(f"{8 * b / (h * w):.3f}:{q:.2f}" for b, q in base))
        variants = [("rd", float(lam)) for lam in a.lams.split(",")]
        if a.all:
            variants.append(("all", 0.0))
        for mode, lam in variants:
            pts = [point(coder, m, s, mode, lam) for s in steps]
            bd = bd_rate([p[0] for p in pts], [p[1] for p in pts], *zip(*base, strict=True))
            by = " ".join(f"{8 * b / (h * w):.3f}:{q:.2f}/{f:.2f}" for b, q, f in pts)
            print(f"{name} {mode} λ={lam}: BD-rate {bd:+.2f} % | bpp:dB/split {by}", flush=True)
            summary.append((name, mode, lam, bd))
    for mode, lam in sorted({(s[1], s[2]) for s in summary}):
        bds = [s[3] for s in summary if (s[1], s[2]) == (mode, lam)]
        print(f"mean {mode} λ={lam}: {np.mean(bds):+.2f} % over {len(bds)}")


if __name__ == "__main__":
    main()
