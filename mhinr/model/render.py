"""Rendering a fitted network at any size.

Two methods:

* ``"plain"`` — the paper's renderer. When the output is an integer multiple of the heads
  grid (m pixels per cell on each axis), the body runs once on the m_y×m_x local grid and
  every head reads those same features: one small body pass plus one matrix product.
  Other sizes render the next larger aligned grid and resample it to the exact size
  (Lanczos, with the exact image box so nothing shifts), which costs at most one extra
  pixel per cell per axis and a resize.
* ``"resample"`` (default) — seam-free. The network renders its native grid (the training
  samples, which the least-squares heads reproduce exactly) and any other size is made
  from those samples with Lanczos resampling. Measured on the paper's 2× experiment
  (benchmarks/paper_generalization.py) the plain render shows the cell grid (border jumps
  ~2.6× the in-cell ones) and loses to bicubic; this method is seam-free and beats bicubic.
  A decoded `compact`/`fast` file's restoration filter (model/codec/postfilter.py) is applied
  to the native samples here, before any resize, and then its trained stage
  (model/synthesis.py), where it has one; `plain` is the network alone.

Both work in chunks of local rows so the largest temporary stays under ``max_chunk_bytes``;
the output itself is uint8.
"""

import math
from typing import Literal

import torch
from torch import Tensor

from mhinr.model import pixels, synthesis
from mhinr.model.codec import postfilter
from mhinr.model.codec.deblock import deblock_u8
from mhinr.model.network import MultiHeadINR, cell_coordinates
from mhinr.model.pixels import output_size
from mhinr.model.upscale import UpscaleINR

__all__ = ["Method", "output_size", "render", "render_grid_u8", "render_kind", "resize_u8"]

Method = Literal["plain", "resample"]
DEFAULT_CHUNK_BYTES = 256 * 2**20


@torch.no_grad()
def render_grid_u8(
    net: MultiHeadINR, m_y: int, m_x: int, max_chunk_bytes: int = DEFAULT_CHUNK_BYTES
) -> Tensor:
    """The whole padded canvas at m_y×m_x pixels per cell, uint8 [C, Hy·m_y, Hx·m_x]."""
    (hy, hx), c = net.cfg.heads, net.cfg.channels
    device = net.heads.weight.device
    out = torch.empty(c, hy, m_y, hx, m_x, dtype=torch.uint8)
    dense = net.heads.dense_weight()
    coords = cell_coordinates(m_y, m_x)
    per_point = 4 * (net.heads.outputs * 2 + 3 * net.cfg.width)
    rows = max(1, min(m_y, max_chunk_bytes // max(1, per_point * m_x)))
    for r0 in range(0, m_y, rows):
        r1 = min(m_y, r0 + rows)
        pts = coords[r0 * m_x : r1 * m_x].to(device)
        vals = net.heads(net.body(pts), dense)  # [k·m_x, C·Hy·Hx]
        block = vals.reshape(r1 - r0, m_x, c, hy, hx).permute(2, 3, 0, 4, 1)  # [C,Hy,k,Hx,m_x]
        out[:, :, r0:r1] = block.clamp(0, 1).mul(255).round().to(torch.uint8).cpu()
    return out.reshape(c, hy * m_y, hx * m_x)


def resize_u8(
    image: Tensor, out_h: int, out_w: int, box: tuple[float, float, float, float]
) -> Tensor:
    """pixels.resize_u8 on a tensor: Lanczos resize of the `box` (left, top, right, bottom)
    of a uint8 [C, H, W] image."""
    out = pixels.resize_u8(image.numpy(), out_h, out_w, box)
    return image if out is image else torch.from_numpy(out)


def resident_bytes(net: MultiHeadINR | UpscaleINR) -> int:
    """The memory a decoded model holds once it has rendered: its parameters and buffers,
    and for an upscaler its image and the heads a render caches (`UpscaleINR.stacked_heads`:
    fp16, one per view, cell and hidden unit)."""
    tensors = [*net.parameters(), *net.buffers()]
    total = sum(t.numel() * t.element_size() for t in tensors)
    if isinstance(net, UpscaleINR) and net.image is not None:
        total += net.image.numel() * net.image.element_size() + net.heads_bytes()
    return total


def render_kind(
    net: MultiHeadINR | UpscaleINR,
    image_size: tuple[int, int],
    out_size: tuple[int, int],
    method: Method = "resample",
) -> str:
    """How `render` makes this size, in a word (the X-Mhinr-Render header): ``decode`` (the
    file decoded at its own size), ``lanczos-of-decode`` (that decode resized with Lanczos),
    ``network`` (the network evaluated on the output's grid: method plain), ``upscaler``
    (the upscale preset's network enlarging) or ``lanczos-of-image`` (an upscale file's
    image reduced)."""
    if isinstance(net, UpscaleINR):
        if out_size == image_size:
            return "decode"
        bigger = out_size[0] > image_size[0] or out_size[1] > image_size[1]
        return "upscaler" if bigger else "lanczos-of-image"
    if method == "plain":
        return "network"
    return "decode" if out_size == image_size else "lanczos-of-decode"


def render(
    net: MultiHeadINR | UpscaleINR,
    image_size: tuple[int, int],
    out_size: tuple[int, int] | None = None,
    method: Method = "resample",
    max_chunk_bytes: int = DEFAULT_CHUNK_BYTES,
) -> Tensor:
    """Render the image of `image_size` (rows, cols; the network may be padded beyond it) at
    `out_size` (rows, cols; default the image's own). Returns uint8 [C, rows, cols].
    An upscaler (the `upscale` preset) has one renderer of its own: `method` does not apply."""
    h, w = image_size
    out_h, out_w = out_size or image_size
    if out_h < 1 or out_w < 1:
        raise ValueError(f"output size must be positive, got {out_h}x{out_w}")
    if isinstance(net, UpscaleINR):
        # small chunks: the body is memory-bound, and 4,096 points stay in cache (3× faster)
        points = min(4096, max(256, max_chunk_bytes // 4096))
        big_h, big_w = max(out_h, h), max(out_w, w)
        big = net.render((big_h, big_w), points) if (big_h, big_w) != (h, w) else None
        if big is None:
            assert net.image is not None  # a one-pixel-a-head network keeps its image
            big = net.image.mul(255).round().clamp(0, 255).to(torch.uint8)
        # smaller on either axis: Lanczos reduction (nothing to invent when shrinking)
        return resize_u8(big, out_h, out_w, (0, 0, big_w, big_h))
    n_y, n_x = net.cfg.cell
    if method == "resample":
        native = render_grid_u8(net, n_y, n_x, max_chunk_bytes)[:, :h, :w]
        if net.deblock is not None:  # the codec's deblocking, before everything else
            native = torch.from_numpy(deblock_u8(native.numpy(), (n_y, n_x), *net.deblock))
        if net.post_filter is not None:  # the codec's restoration filter, at the native size
            native = postfilter.apply_u8(native, net.post_filter)
        if net.stage is not None:  # the trained stage, after the filter
            native = synthesis.apply_u8(native, net.stage)
        return resize_u8(native, out_h, out_w, (0, 0, w, h))
    if method != "plain":
        raise ValueError(f"unknown render method {method!r}: plain or resample")
    m_y, m_x, img_h, img_w = pixels.plain_grid(image_size, (out_h, out_w), (n_y, n_x))
    canvas = render_grid_u8(net, m_y, m_x, max_chunk_bytes)
    if img_h == out_h and img_w == out_w:
        return canvas[:, :out_h, :out_w].contiguous()
    crop = canvas[:, : math.ceil(img_h), : math.ceil(img_w)]
    return resize_u8(crop, out_h, out_w, (0, 0, img_w, img_h))
