"""The deblocking filter of the cosine codec (format 3, second flags byte, bit 3): at low
rates every cell is coded on its own and its border shows as a step (astronaut at 0.15
bpp: each 16-pixel cell of the face). The decoder smooths each border between two cells
where the step is small enough to be the codec's rather than the picture's, with integer
arithmetic on the decoded 8-bit image (so every machine decodes the same pixels), before
the restoration filter and the trained stage. No side data but its two parameters.

At a border between pixels p0 | q0 (p1, q1 beside them), the step less the gradient on
either side is d/2 with

    d = 3·(q0 − p0) − (q1 − p1)

and, where every channel's |d| ≤ 2·T, it is spread as a linear ramp over the `ramp` (L)
pixels on each side: the i-th pixel from the border (i = 0 nearest) moves by

    round(d · (2L − 2i − 1) / (8L))

toward the other side (p up by it, q down by it). All borders of one direction are
computed from the image before that pass (they do not overlap: L ≤ half a cell); the
vertical borders first, then the horizontal ones on the result. The encoder tries a few
(L, T) and keeps the best for PSNR, or none (model/coefficients.py).

Measured first as a probe (`python -m benchmarks.deblock_probe`,
benchmarks/results/deblock_probe.md): +0.07 … +0.23 dB on `fast` files of 0.15–0.5 bpp.
"""

import numpy as np

# what the encoder tries: the ramp's half-width L (pixels) and the largest step T (levels)
RAMPS = (2, 4)
THRESHOLDS = (32, 255)


def valid(ramp: int, most: int, cell: tuple[int, int]) -> bool:
    """Whether (L, T) is a deblocking a record may hold for cells of `cell` pixels."""
    return 1 <= ramp <= min(cell) // 2 and 1 <= most <= 255


def deblock_u8(image: np.ndarray, cell: tuple[int, int], ramp: int, most: int) -> np.ndarray:
    """uint8 [C, H, W] → uint8 [C, H, W], its cell borders smoothed (module docstring)."""
    x = _pass(image.astype(np.int32), cell[1], ramp, most)  # vertical borders (columns)
    x = _pass(x.transpose(0, 2, 1), cell[0], ramp, most).transpose(0, 2, 1)
    return np.clip(x, 0, 255).astype(np.uint8)


def _pass(x: np.ndarray, n: int, ramp: int, most: int) -> np.ndarray:
    """The borders between columns of `x` [C, H, W] (int32) n apart, smoothed."""
    w = x.shape[2]
    at = np.arange(n, w - max(ramp, 2) + 1, n)  # the first column right of each border
    if not len(at):
        return x
    p0, p1, q0, q1 = x[:, :, at - 1], x[:, :, at - 2], x[:, :, at], x[:, :, at + 1]
    d = 3 * (q0 - p0) - (q1 - p1)
    d = np.where((np.abs(d) <= 2 * most).all(0, keepdims=True), d, 0)
    out = x.copy()
    for i in range(ramp):
        move = (d * (2 * ramp - 2 * i - 1) + 4 * ramp) // (8 * ramp)
        out[:, :, at - 1 - i] += move
        out[:, :, at + i] -= move
    return out


def describe(params: tuple[int, int] | None) -> str:
    """What `mhinr info` says of a file's deblocking."""
    return "none" if params is None else f"ramp {params[0]} px, threshold {params[1]} levels"
