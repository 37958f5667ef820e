"""The classic codecs a user would otherwise use, for comparison: JPEG, WebP and AVIF
(Pillow), and JPEG XL where pillow-jxl-plugin is installed (the server extra), each at its
best setting that a per-job comparison can afford."""

import io
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from mhinr.model.images import to_pil
from mhinr.model.metrics import psnr, ssim

try:  # registers "JXL" with Pillow
    import pillow_jxl  # noqa: F401

    HAS_JXL = True
except ImportError:  # the decoder-only install: no JPEG XL comparison
    HAS_JXL = False


@dataclass(frozen=True)
class ClassicResult:
    format: str
    quality: int
    bytes: int
    psnr: float
    ssim: float
    subsampling: str | None = None  # JPEG's chroma subsampling: "4:2:0" or "4:4:4"


SUBSAMPLING = {"4:4:4": 0, "4:2:0": 2}  # Pillow's codes
MAX_QUALITY = {"JXL": 99}  # pillow-jxl-plugin 1.3.8 refuses quality 100 (lossless is a flag)


def encode_classic(
    image_u8: Tensor, fmt: str, quality: int, subsampling: str | None = None
) -> bytes:
    """`fmt` JPEG, WEBP, AVIF or JXL at a Pillow quality 1–100 (alpha dropped for JPEG); JPEG's
    chroma `subsampling` "4:2:0" (Pillow's default) or "4:4:4"."""
    img = to_pil(image_u8)
    if fmt == "JPEG" and img.mode in ("LA", "RGBA"):
        img = img.convert(img.mode[:-1])
    buf = io.BytesIO()
    # each at its best: JPEG with optimized Huffman tables, WebP's slowest, best method;
    # AVIF at libavif's speed 6 (Pillow's default): speed 4 saves ~5 % of the bytes on
    # kodim23 for 7x the time (1 s an encode, ~7 encodes a search), too slow for every job
    # JPEG XL at libjxl's default effort 7 (0.15 s an encode of a Kodak image)
    settings: dict[str, dict[str, object]] = {
        "JPEG": {"optimize": True},
        "WEBP": {"method": 6},
        "AVIF": {"speed": 6},
        "JXL": {"effort": 7},
    }
    best = dict(settings[fmt])
    if fmt == "JPEG" and subsampling is not None:
        best["subsampling"] = SUBSAMPLING[subsampling]
    img.save(buf, fmt, quality=quality, **best)
    return buf.getvalue()


def measure(
    image_u8: Tensor,
    fmt: str,
    quality: int,
    with_ssim: bool = True,
    subsampling: str | None = None,
) -> ClassicResult:
    data = encode_classic(image_u8, fmt, quality, subsampling)
    dec = np.array(Image.open(io.BytesIO(data)).convert(to_pil(image_u8).mode))
    back = torch.from_numpy(dec if dec.ndim == 3 else dec[..., None]).permute(2, 0, 1)
    if back.shape[0] != image_u8.shape[0]:  # JPEG without the alpha channel: compare colour
        image_u8 = image_u8[: back.shape[0]]
    s = ssim(back, image_u8) if with_ssim else float("nan")
    return ClassicResult(fmt, quality, len(data), psnr(back, image_u8), s, subsampling)


def at_bytes(image_u8: Tensor, fmt: str, max_bytes: int) -> ClassicResult | None:
    """The highest quality whose file is no larger than `max_bytes` (None if even quality 1
    is larger): 'the JPEG of the same byte size'. JPEG at its best: of 4:2:0 and 4:4:4
    chroma, the one with the higher PSNR at that size."""
    options = list(SUBSAMPLING) if fmt == "JPEG" else [None]
    found = [r for sub in options if (r := _at_bytes(image_u8, fmt, max_bytes, sub))]
    return max(found, key=lambda r: r.psnr, default=None)


def _at_bytes(
    image_u8: Tensor, fmt: str, max_bytes: int, subsampling: str | None
) -> ClassicResult | None:
    lo, hi, best = 1, MAX_QUALITY.get(fmt, 100), None
    while lo <= hi:
        q = (lo + hi) // 2
        size = len(encode_classic(image_u8, fmt, q, subsampling))
        if size <= max_bytes:
            best, lo = q, q + 1
        else:
            hi = q - 1
    return None if best is None else measure(image_u8, fmt, best, subsampling=subsampling)
