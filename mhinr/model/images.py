"""Image loading and validation: any common file → float tensor [C, H, W] in [0, 1].

One loader for every mode Pillow gives: L, LA, RGB, RGBA, P (with or without
transparency), 1, I;16 / I, F, CMYK, YCbCr, LAB; EXIF orientation applied; the first frame
of an animation. The pixel count is checked from the header before any pixel is decoded,
so a decompression bomb costs nothing.
"""

import io
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError
from torch import Tensor

from mhinr.model import pixels

DEFAULT_MAX_PIXELS = 16_000_000
FORMATS = ("PNG", "JPEG", "WEBP", "BMP", "TIFF", "GIF")


class ImageError(ValueError):
    """The input is not an image we accept; the message says why, for a person. Its
    subclasses say what kind of refusal it is (a service maps them to answers)."""


class NotAnImage(ImageError):
    """The bytes are no image format we read."""


class ImageTooLarge(ImageError):
    """The image has (or declares) more pixels than allowed."""


@dataclass(frozen=True)
class LoadedImage:
    pixels: Tensor  # [C, H, W] float32 in [0, 1]
    mode: str  # the mode it is rendered back in: L, LA, RGB or RGBA
    source_format: str
    source_mode: str

    @property
    def size(self) -> tuple[int, int]:
        return self.pixels.shape[1], self.pixels.shape[2]

    @property
    def channels(self) -> int:
        return self.pixels.shape[0]


def load_image(source: bytes | str | Path, max_pixels: int = DEFAULT_MAX_PIXELS) -> LoadedImage:
    data = Path(source).read_bytes() if isinstance(source, str | Path) else source
    if not data:
        raise ImageError("the file is empty (0 bytes)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img: Image.Image = Image.open(io.BytesIO(data), formats=FORMATS)
    except UnidentifiedImageError:
        raise NotAnImage(
            f"not an image we can read; accepted formats: {', '.join(FORMATS)}"
        ) from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageTooLarge(f"the image declares too many pixels (limit {max_pixels:,})") from None
    w, h = img.size
    if w < 1 or h < 1:
        raise ImageError(f"the image has no pixels ({w}x{h})")
    if w * h > max_pixels:
        raise ImageTooLarge(
            f"the image is {w}x{h} = {w * h:,} pixels, over the limit of {max_pixels:,}"
        )
    fmt, src_mode = img.format or "unknown", img.mode
    try:
        img.seek(0)  # first frame of an animation
        img.load()
        img = ImageOps.exif_transpose(img)
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise ImageError(f"the {fmt} file is damaged or truncated: {exc}") from None
    array, mode = _to_array(img)
    pixels = torch.from_numpy(np.ascontiguousarray(array.transpose(2, 0, 1)))
    return LoadedImage(pixels, mode, fmt, src_mode)


def _to_array(img: Image.Image) -> tuple[np.ndarray, str]:
    """[H, W, C] float32 in [0, 1] and the output mode."""
    mode = img.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        a: np.ndarray = np.asarray(img.convert("I"), dtype=np.float64)  # 16-bit samples
        peak = 65535.0 if a.max() > 255 or mode.startswith("I;16") else 255.0
        return np.clip(a / peak, 0, 1).astype(np.float32)[..., None], "L"
    if mode == "F":
        a = np.asarray(img, dtype=np.float32)
        hi = float(a.max()) if a.size else 1.0
        return np.clip(a / (hi if hi > 1 else 1.0), 0, 1)[..., None], "L"
    if mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
    elif mode == "PA":
        img = img.convert("RGBA")
    elif mode == "1":
        img = img.convert("L")
    elif mode in ("CMYK", "YCbCr", "LAB", "HSV", "RGBX", "RGBa"):
        img = img.convert("RGB")
    elif mode == "La":
        img = img.convert("LA")
    if img.mode not in ("L", "LA", "RGB", "RGBA"):
        img = img.convert("RGB")
    a = np.asarray(img, dtype=np.float32) / 255.0
    if a.ndim == 2:
        a = a[..., None]
    return a, img.mode


def to_uint8(pixels: Tensor) -> Tensor:
    """[C, H, W] float in [0, 1] → uint8, rounded to nearest."""
    return (pixels.clamp(0, 1) * 255).round().to(torch.uint8)


def to_pil(image_u8: Tensor, mode: str | None = None) -> Image.Image:
    """[C, H, W] uint8 → a Pillow image (L, LA, RGB or RGBA by channel count)."""
    return pixels.to_pil(image_u8.cpu().numpy(), mode)


def pad_edge(pixels: Tensor, rows: int, cols: int) -> Tensor:
    """Edge-replicate `rows` below and `cols` to the right."""
    if rows == 0 and cols == 0:
        return pixels
    return torch.nn.functional.pad(pixels[None], (0, cols, 0, rows), mode="replicate")[0]
