"""Probe: the cells' cosines predicted from their neighbours' constant terms.

At low rates most cells of a `compact` file keep little more than their constant term: the
decode is a mosaic of flat cells. Here the decoder first reads every cell's constant term,
interpolates them between cell centres (a smooth image, in the coded colour space; the
kernel is the variant), and takes that image's cosine coefficients in each cell as a
prediction; the file codes the cosines' residual against α times it. Where the residual
rounds to zero, the cell decodes to the smooth image instead of a flat block. The codec
took the winner (format3.dc_interpolation); this probe sets the codec's own prediction off
and makes its own.

One coder (cell 16 … or `--cell`), quantizer steps spread over 0.1–2 bpp, no restoration
filter or stage on either side; bytes are the whole file (the same coder and format);
BD-rate of each α against α = 0.

    python -m benchmarks.dc_prediction_probe --images kodim23 --alphas 1 \
        --kinds edgeinf,keys0.75,keys0.5,bspline,gauss0.5,edge4 \
        --steps 0.35,0.25,0.18,0.12,0.08,0.055
"""

import argparse

import numpy as np
import torch
import torch.nn.functional as F

from benchmarks.bd_rate import load
from benchmarks.common import bd_rate
from mhinr.model import coefficients
from mhinr.model.codec import format3
from mhinr.model.coefficients import fit_coders
from mhinr.model.metrics import psnr
from mhinr.model.network import assemble, split_cells
from mhinr.model.presets import Arch, Options


def low_prediction(coder, q: torch.Tensor, step: float, rows: int) -> torch.Tensor:
    """`lowN`: each cell's first N cosines (its mean and coarsest cosines, as decoded)
    averaged over the cell's four quadrants, those half-cell means interpolated by
    Catmull-Rom between the quadrants' centres, the result's cosines with rows 0 … N−1
    zero (those are coded as they are)."""
    basis = coder.basis
    hy, hx = coder.net.cfg.heads
    n_y, n_x = coder.net.cfg.cell
    c = len(coder.mode)
    low = basis[:, :rows] @ (q[:rows].double() * step)  # [n, O]
    image = assemble(low, c, hy, hx, n_y, n_x)  # [C, Hy·n̂y, Hx·n̂x]
    halves = image.reshape(c, 2 * hy, n_y // 2, 2 * hx, n_x // 2).mean((2, 4))
    padded = F.pad(halves[None], (2, 2, 2, 2), mode="replicate")[0]
    around = padded.unfold(1, 5, 1).unfold(2, 5, 1)  # [C, 2Hy, 2Hx, 5, 5]
    wy = torch.from_numpy(_kernel_weights(n_y // 2, "keys0.5"))
    wx = torch.from_numpy(_kernel_weights(n_x // 2, "keys0.5"))
    sub = torch.einsum("ua,chwab,vb->uvchw", wy, around, wx)
    up = sub.permute(2, 3, 0, 4, 1).reshape(c, hy * n_y, hx * n_x)
    p = basis.T @ split_cells(up, hy, hx)
    p[:rows] = 0
    return p


def prediction(coder, q: torch.Tensor, step: float, kind: str = "codec") -> torch.Tensor:
    """[k, O] the cosines of the interpolated constant terms (row 0 zero): `codec`
    (format3.dc_interpolation, what the codec does: Catmull-Rom), `keysA` (cubic
    convolution, a = −A), `bspline`, `gaussS`, `edgeT` (bilinear, but a neighbour whose mean
    differs from the cell's by more than T quantizer steps of the constant counts as the
    cell's own value; `edgeinf`: plain bilinear), `lowN` (`low_prediction`)."""
    basis = coder.basis  # [n, k]
    hy, hx = coder.net.cfg.heads
    n_y, n_x = coder.net.cfg.cell
    c = len(coder.mode)
    if kind.startswith("low"):
        return low_prediction(coder, q, step, int(kind[3:]))
    dc_int = q[0].reshape(c, hy, hx)
    if kind == "codec":
        dc = dc_int.numpy().astype(np.int64)
        return torch.from_numpy(format3.dc_interpolation(dc, step, (n_y, n_x)))
    dc_pixel = dc_int.double() * step * basis[0, 0]
    if kind.startswith("edge"):  # edge-limited bilinear, one cell at a time
        limit = float(kind[4:]) * step * basis[0, 0]
        padded = F.pad(dc_pixel[None], (1, 1, 1, 1), mode="replicate")[0]
        around = padded.unfold(1, 3, 1).unfold(2, 3, 1)  # [C, Hy, Hx, 3, 3]
        centre = dc_pixel[..., None, None]
        around = torch.where((around - centre).abs() > limit, centre, around)
        wy = torch.from_numpy(_weights(n_y))
        wx = torch.from_numpy(_weights(n_x))
    else:  # a separable kernel over ±2 cells: keysA (cubic convolution), bspline, gaussS
        padded = F.pad(dc_pixel[None], (2, 2, 2, 2), mode="replicate")[0]
        around = padded.unfold(1, 5, 1).unfold(2, 5, 1)  # [C, Hy, Hx, 5, 5]
        wy = torch.from_numpy(_kernel_weights(n_y, kind))
        wx = torch.from_numpy(_kernel_weights(n_x, kind))
    cells = torch.einsum("ua,chwab,vb->uvchw", wy, around, wx)  # [ny, nx, C, Hy, Hx]
    up = cells.permute(2, 3, 0, 4, 1).reshape(c, hy * n_y, hx * n_x)
    p = basis.T @ split_cells(up, hy, hx)
    p[0] = 0
    return p


def _kernel_weights(n: int, kind: str) -> np.ndarray:
    """[n, 5] weights of a cell's pixels on the centres of the cells −2 … +2 (rows sum to 1)."""
    offset = (np.arange(n) + 0.5) / n - 0.5
    d = np.abs(offset[:, None] - np.arange(-2, 3)[None])
    if kind.startswith("keys"):
        a = -float(kind[4:])
        k = np.where(
            d <= 1,
            (a + 2) * d**3 - (a + 3) * d**2 + 1,
            np.where(d < 2, a * d**3 - 5 * a * d**2 + 8 * a * d - 4 * a, 0),
        )
    elif kind == "bspline":
        k = np.where(d <= 1, 2 / 3 - d**2 + d**3 / 2, np.where(d < 2, (2 - d) ** 3 / 6, 0))
    elif kind.startswith("gauss"):
        k = np.exp(-0.5 * (d / float(kind[5:])) ** 2)
    else:
        raise ValueError(kind)
    return k / k.sum(1, keepdims=True)


def _weights(n: int) -> np.ndarray:
    offset = (np.arange(n) + 0.5) / n - 0.5
    return np.stack([np.maximum(-offset, 0), 1 - np.abs(offset), np.maximum(offset, 0)], 1)


def curve(coder, steps, alpha, kind="codec"):
    basis, coef = coder._basis()
    key = coder._klt_on
    points = []
    for step in steps:
        coder._bases[key] = (basis, coef)
        coder._rdoq_last = (None, None, None)
        q0 = coder.quantized(step)
        if alpha:
            p = alpha * prediction(coder, q0, step, kind)
            coder._bases[key] = (basis, coef - p)
            coder._rdoq_last = (None, None, None)
            q = coder.quantized(step)
            p = alpha * prediction(coder, q, step, kind)  # from what the file holds
        else:
            q, p = q0, torch.zeros_like(coef)
        data = coder.encode(step)
        cells = basis @ (q * step + p)
        c, h, w = coder.pixels.shape
        hy, hx = coder.net.cfg.heads
        rec = assemble(cells, c, hy, hx, *coder.net.cfg.cell)[:, :h, :w]
        rgb = (
            torch.einsum("ij,jhw->ihw", coder.colour.double(), rec)
            + coder.mean.double()[:, None, None]
        )
        u8 = rgb.clamp(0, 1).mul(255).round() / 255
        points.append((len(data), psnr(u8, coder.pixels)))
    coder._bases[key] = (basis, coef)
    coder._rdoq_last = (None, None, None)
    return points


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", default="kodim05,kodim23")
    ap.add_argument("--alphas", default="0.5,1")
    ap.add_argument("--kinds", default="codec")
    ap.add_argument("--cell", type=int, default=16)
    ap.add_argument("--steps", default="0.4,0.25,0.16,0.1,0.065,0.04,0.025")
    a = ap.parse_args()
    torch.set_num_threads(2)
    steps = [float(s) for s in a.steps.split(",")]
    for name in a.images.split(","):
        img = load(name)
        h, w = img.pixels.shape[1:]
        coefficients.DC_INTERPOLATION = False  # the probe predicts by itself
        coefficients.CHROMA_PREDICTION = False  # (measured before it)
        coder = fit_coders(
            img.pixels,
            img.mode,
            Options(preset="compact", steps=0),
            True,
            archs=[Arch(cell=a.cell, fixed=True)],
        )[0]
        coder.post_filter = False
        base = curve(coder, steps, 0.0)
        print(name, "α=0", " ".join(f"{8 * b / (h * w):.3f}:{q:.2f}" for b, q in base), flush=True)
        for alpha, kind in [(float(x), k) for x in a.alphas.split(",") for k in a.kinds.split(",")]:
            pts = curve(coder, steps, alpha, kind)
            bd = bd_rate(
                [p[0] for p in pts], [p[1] for p in pts], [p[0] for p in base], [p[1] for p in base]
            )
            by = " ".join(f"{8 * b / (h * w):.3f}:{q:+.2f}" for (b, q) in pts)
            print(f"{name} {kind} α={alpha}: BD-rate {bd:+.2f} % | {by}", flush=True)


if __name__ == "__main__":
    main()
