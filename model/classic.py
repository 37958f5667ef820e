"""The classic codecs a user would otherwise use, for comparison: JPEG and WebP (Pillow)."""

import io
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from model.images import to_pil
from model.metrics import psnr, ssim


@dataclass(frozen=True)
class ClassicResult:
    format: str
    quality: int
    bytes: int
    psnr: float
    ssim: float


def encode_classic(image_u8: Tensor, fmt: str, quality: int) -> bytes:
    """`fmt` JPEG or WEBP at a Pillow quality 1–100 (alpha dropped for JPEG)."""
    img = to_pil(image_u8)
    if fmt == "JPEG" and img.mode in ("LA", "RGBA"):
        img = img.convert(img.mode[:-1])
    buf = io.BytesIO()
    # each at its best: JPEG with optimized Huffman tables, WebP's slowest, best method
    best = {"optimize": True} if fmt == "JPEG" else {"method": 6}
    img.save(buf, fmt, quality=quality, **best)
    return buf.getvalue()


def measure(image_u8: Tensor, fmt: str, quality: int, with_ssim: bool = True) -> ClassicResult:
    data = encode_classic(image_u8, fmt, quality)
    dec = np.array(Image.open(io.BytesIO(data)).convert(to_pil(image_u8).mode))
    back = torch.from_numpy(dec if dec.ndim == 3 else dec[..., None]).permute(2, 0, 1)
    if back.shape[0] != image_u8.shape[0]:  # JPEG without the alpha channel: compare colour
        image_u8 = image_u8[: back.shape[0]]
    s = ssim(back, image_u8) if with_ssim else float("nan")
    return ClassicResult(fmt, quality, len(data), psnr(back, image_u8), s)


def at_bytes(image_u8: Tensor, fmt: str, max_bytes: int) -> ClassicResult | None:
    """The highest quality whose file is no larger than `max_bytes` (None if even quality 1
    is larger): 'the JPEG of the same byte size'."""
    lo, hi, best = 1, 100, None
    while lo <= hi:
        q = (lo + hi) // 2
        size = len(encode_classic(image_u8, fmt, q))
        if size <= max_bytes:
            best, lo = q, q + 1
        else:
            hi = q - 1
    return None if best is None else measure(image_u8, fmt, best)
