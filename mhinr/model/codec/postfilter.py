"""A per-image restoration filter for the coefficient storage (the codec's loop filter).

Quantizing the heads' coefficients leaves errors that look alike all over the image
(blocking at cell borders, ringing): a small linear filter learnt per image undoes a part
of them. The encoder solves, for each output channel, the filter that maps the k×k
neighbourhoods of all channels of the decoded image (plus a bias) to that channel of the
original in the least-squares sense (a Wiener filter, as the adaptive loop filters of video
codecs do), stores it in the file (its taps on a 2^-10 grid, range-coded: ~290 bytes for RGB and
k = 5; fp16, 456 bytes, before 2026-11-30), and the decoder
applies it to the network's native render before any resize. Measured on one `compact`
fit of kodim23 at 7 quantizer steps, bytes counted (BD-rate against no filter): 3×3 per
channel −8.4 %, 5×5 per channel −11.8 %, 7×7 per channel −12.0 %, 5×5 per channel with
separate filters for cell-border and inner pixels −12.8 %, 3×3 across channels −12.5 %,
**5×5 across channels −16.6 %** (this one; benchmarks/codec_ablation.py measures it on
more images).

Memory: the normal equations are summed over bands of rows, so a solve holds one band of
C·k² shifted copies, whatever the image size; the inputs are the same for every output
channel, so one Gram matrix serves all of them.
"""

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

KERNEL = 5
BAND_ROWS = 64
# Tikhonov weight, relative to the Gram matrix's mean diagonal. A decoded image is smooth
# (each cell a few basis functions), so neighbouring taps are nearly collinear and the plain
# least-squares filter has large taps that cancel: float32 products and fp16 storage then
# turn it into noise (kodim16: −2.5 … −7.9 dB at some steps, so the encoder left the filter
# out). 1e-4 keeps the taps small and gains +0.3 … +0.5 dB at every step of 3 Kodak images
# (1e-9 until 2026-11-30; `python -m benchmarks.codec_experiments ridge`)
RIDGE = 1e-4
# the taps are rounded to multiples of 2^-FRACTION_BITS (format 3 files since 2026-11-30
# store them so, range-coded, ~290 bytes for RGB where fp16 took 460; the rounding costs
# < 0.005 dB on kodim06; 2^-8 cost up to 0.2 dB)
FRACTION_BITS = 10


def solve(decoded: Tensor, original: Tensor, k: int = KERNEL, stride: int = 1) -> Tensor:
    """The filters [C, C·k²+1] (for each output channel: the weights of input channel 0's
    k×k taps row-major, then channel 1's, …, then the bias) that map `decoded` to
    `original` (both [C, H, W] in [0, 1]) best. The normal equations are
    summed band by band: float32 products of one band, float64 totals. With `stride` s,
    only the pixels of every s-th row and column are fitted (their neighbourhoods are
    still the full-resolution ones). The taps are rounded to multiples of
    2^-FRACTION_BITS (`to_integers` gives them as integers)."""
    c, h, w = decoded.shape
    p = k // 2
    taps = c * k * k
    x = F.pad(decoded.float()[None], (p, p, p, p), mode="replicate")[0]
    # the k² shifted views of the kept pixels (every `stride`-th row and column)
    shifted = [
        x[:, dy : dy + h : stride, dx : dx + w : stride] for dy in range(k) for dx in range(k)
    ]
    y = original[:, ::stride, ::stride].float()
    h, w = y.shape[1:]
    y = y.reshape(c, -1)
    gram = torch.zeros(taps + 1, taps + 1, dtype=torch.float64)
    rhs = torch.zeros(taps + 1, c, dtype=torch.float64)
    for r0 in range(0, h, BAND_ROWS):
        r1 = min(h, r0 + BAND_ROWS)
        a = torch.empty(taps + 1, (r1 - r0) * w)  # one row per tap: contiguous products
        for j in range(taps):
            ch, tap = divmod(j, k * k)
            a[j].view(r1 - r0, w).copy_(shifted[tap][ch, r0:r1])
        a[-1] = 1
        gram += (a @ a.T).double()
        rhs += (a @ y[:, r0 * w : r1 * w].T).double()
    gram += RIDGE * gram.diagonal().mean() * torch.eye(taps + 1, dtype=torch.float64)
    f = torch.linalg.solve(gram, rhs).T
    return torch.round(f * 2**FRACTION_BITS) / 2**FRACTION_BITS


def to_integers(filters: Tensor) -> np.ndarray | None:
    """The taps as integer multiples of 2^-FRACTION_BITS, or None if they are not such
    multiples of at most 2^20 (a filter read from an older file, in fp16)."""
    scaled = filters.double() * 2**FRACTION_BITS
    ints = torch.round(scaled)
    if not torch.equal(ints, scaled) or ints.abs().max() > 2**20:
        return None
    return ints.numpy().astype(np.int64)


def apply(image: Tensor, filters: Tensor) -> Tensor:
    """`filters` [C, C·k²+1] applied to `image` [C, H, W] in [0, 1] (edges replicated)."""
    c = image.shape[0]
    k = round(((filters.shape[1] - 1) / c) ** 0.5)
    p = k // 2
    x = F.pad(image.float()[None], (p, p, p, p), mode="replicate")
    weight = filters[:, :-1].reshape(c, c, k, k).float()
    return F.conv2d(x, weight, filters[:, -1].float())[0]


def apply_u8(image: Tensor, filters: Tensor, band_rows: int = 256) -> Tensor:
    """The same on a uint8 [C, H, W] image, returning uint8, in bands of rows (with a halo
    as wide as the filter's reach) so that memory stays a few bands whatever the size."""
    c, h, _ = image.shape
    p = round(((filters.shape[1] - 1) / c) ** 0.5) // 2
    out = torch.empty_like(image)
    for r0 in range(0, h, band_rows):
        r1 = min(h, r0 + band_rows)
        a, b = max(0, r0 - p), min(h, r1 + p)
        band = apply(image[:, a:b].float() / 255, filters)[:, r0 - a : r1 - a]
        out[:, r0:r1] = band.clamp(0, 1).mul(255).round().to(torch.uint8)
    return out
