"""Quality and cost measures: PSNR and SSIM on 8-bit images, the seam ratio, render FLOPs."""

import math
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from mhinr.model.network import MultiHeadINR


def _as_255(image: Tensor) -> Tensor:
    """uint8 → float64 0..255; float (taken as [0, 1]) → rounded 8-bit values as float64."""
    if image.dtype == torch.uint8:
        return image.double()
    return (image.double().clamp(0, 1) * 255).round()


def psnr(a: Tensor, b: Tensor) -> float:
    """PSNR in dB of two images on the 8-bit scale (inf when identical)."""
    if a.shape != b.shape:
        raise ValueError(f"shapes differ: {tuple(a.shape)} vs {tuple(b.shape)}")
    mse = float(torch.mean((_as_255(a) - _as_255(b)) ** 2))
    return float("inf") if mse == 0 else 10 * math.log10(255.0**2 / mse)


def ssim(a: Tensor, b: Tensor, sigma: float = 1.5, radius: int = 5) -> float:
    """Mean SSIM (Wang et al. 2004; Gaussian 11×11 window, σ 1.5, K1 0.01, K2 0.03) over
    the positions where the window fits and over channels; images [C, H, W] or [H, W]."""
    x, y = _as_255(a), _as_255(b)
    if x.shape != y.shape:
        raise ValueError(f"shapes differ: {tuple(x.shape)} vs {tuple(y.shape)}")
    if x.dim() == 2:
        x, y = x[None], y[None]
    t = torch.arange(-radius, radius + 1, dtype=torch.float64)
    g = torch.exp(-(t**2) / (2 * sigma**2))
    g = g / g.sum()
    c = x.shape[0]
    col = g.reshape(1, 1, -1, 1).expand(c, 1, -1, 1)  # separable: rows, then columns
    row = g.reshape(1, 1, 1, -1).expand(c, 1, 1, -1)

    def blur(z: Tensor) -> Tensor:
        return F.conv2d(F.conv2d(z[None], col, groups=c), row, groups=c)[0]

    mx, my = blur(x), blur(y)
    sxx = blur(x * x) - mx * mx
    syy = blur(y * y) - my * my
    sxy = blur(x * y) - mx * my
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    s = ((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx * mx + my * my + c1) * (sxx + syy + c2))
    return float(s.mean())


def seam_ratio(image: Tensor, cell: tuple[int, int], scale: int) -> float:
    """Mean |difference| of neighbouring pixels across cell borders divided by the same
    measure inside cells at the same phase of the `scale`× lattice (pairs (k−1, k) with k a
    multiple of `scale` but not of the cell size), both axes together. `cell` is the cell's
    size in the image's pixels. 1.0 ≈ no visible grid; the paper's plain render at 2× is ~2.6.
    NaN where it is undefined (one cell, or cells no larger than `scale`).
    """
    x = _as_255(image)
    if x.dim() == 2:
        x = x[None]
    border: list[Tensor] = []
    inside: list[Tensor] = []
    for axis, size in ((1, cell[0]), (2, cell[1])):
        n = x.shape[axis]
        for k in range(scale, n, scale):
            d = (x.select(axis, k) - x.select(axis, k - 1)).abs().flatten()
            (border if k % size == 0 else inside).append(d)
    if not border or not inside:  # a single cell, or cells no larger than the lattice step
        return float("nan")
    return float(torch.cat(border).mean() / torch.cat(inside).mean())


def _linear_layers(net: MultiHeadINR) -> list[tuple[int, int]]:
    return [
        (m.in_features, m.out_features)
        for m in net.body.modules()
        if isinstance(m, torch.nn.Linear)
    ]


def render_flops(
    net: MultiHeadINR, points: int, counting: Literal["paper", "executed"] = "paper"
) -> int:
    """Matrix-product FLOPs (2 per multiply-add) of evaluating `net` on `points` local
    coordinates, i.e. of a render whose cells are sampled `points` times each.

    `paper`: each head output costs 2α (the sparse layer as the paper counts it).
    `executed`: what this implementation runs, a dense product over all `width` units.
    Biases and activations are not counted (as torch's FlopCounterMode does not).
    For a multi-head render of m_y×m_x pixels per cell, points = m_y·m_x; for a single-head
    network, points = every output pixel.
    """
    cfg = net.cfg
    body = sum(2 * i * o for i, o in _linear_layers(net))
    if cfg.body == "fourier":
        body += 2 * 2 * cfg.fourier_features  # the projection coords @ B
    per_out = cfg.alpha if counting == "paper" else cfg.width
    heads = 2 * per_out * net.heads.outputs
    return points * (body + heads)
