"""What rendering needs besides a network, in NumPy and Pillow alone: output sizes, the
cells' cosines, Lanczos resizing and uint8 images as Pillow images. The PyTorch renderer
(model/render.py) and the NumPy decoder (model/decoder.py) both use these, so the two
give the same pixels."""

import io
import math

import numpy as np
from PIL import Image

from mhinr.model.png import encode_png

MODES = {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}


def output_size(
    image_size: tuple[int, int],
    size: int | None = None,
    width: int | None = None,
    height: int | None = None,
) -> tuple[int, int]:
    """(rows, cols) for a request: `size` is the longer side with the aspect ratio kept, or
    an explicit width and height (one of them alone keeps the aspect ratio)."""
    h, w = image_size
    if size is not None:
        if width is not None or height is not None:
            raise ValueError("give either size or width/height, not both")
        if size < 1:
            raise ValueError(f"size must be at least 1, got {size}")
        if h >= w:
            return size, max(1, round(w * size / h))
        return max(1, round(h * size / w)), size
    if width is None and height is None:
        return h, w
    if width is not None and width < 1 or height is not None and height < 1:
        raise ValueError("width and height must be at least 1")
    if width is None:
        assert height is not None
        width = max(1, round(w * height / h))
    if height is None:
        height = max(1, round(h * width / w))
    return height, width


def plain_grid(
    image_size: tuple[int, int], out_size: tuple[int, int], cell: tuple[int, int]
) -> tuple[int, int, float, float]:
    """The `plain` render's sampling: (m_y, m_x) points per cell, the smallest that gives
    at least the output's resolution, and the canvas rows and columns the image covers at
    that sampling (integers exactly when the output size is aligned to the cells)."""
    (h, w), (out_h, out_w), (n_y, n_x) = image_size, out_size, cell
    m_y, m_x = math.ceil(out_h * n_y / h), math.ceil(out_w * n_x / w)
    return m_y, m_x, h * m_y / n_y, w * m_x / n_x


def to_pil(image_u8: np.ndarray, mode: str | None = None) -> Image.Image:
    """uint8 [C, H, W] → a Pillow image (L, LA, RGB or RGBA by channel count)."""
    c = image_u8.shape[0]
    a = np.moveaxis(image_u8, 0, -1)
    return Image.fromarray(np.ascontiguousarray(a[..., 0] if c == 1 else a), mode or MODES[c])


def resize_u8(
    image: np.ndarray, out_h: int, out_w: int, box: tuple[float, float, float, float]
) -> np.ndarray:
    """Lanczos resize of the `box` (left, top, right, bottom) of a uint8 [C, H, W] image."""
    if box == (0, 0, image.shape[2], image.shape[1]) and (out_h, out_w) == tuple(image.shape[1:]):
        return image
    if image.shape[0] == 3:  # one RGB call: the same pixels as three channels, 20 % faster
        rgb = to_pil(image).resize((out_w, out_h), Image.Resampling.LANCZOS, box=box)
        return np.moveaxis(np.array(rgb), -1, 0)  # a (writable) view of HWC
    # channel by channel: Pillow would premultiply an alpha channel
    channels = [to_pil(image[i : i + 1]) for i in range(image.shape[0])]
    resized = [ch.resize((out_w, out_h), Image.Resampling.LANCZOS, box=box) for ch in channels]
    return np.stack([np.asarray(r) for r in resized])


def cell_coordinates(m_y: int, m_x: int) -> np.ndarray:
    """[m_y·m_x, 2] float64 local (y, x) pixel centres of an m_y×m_x sampling of one cell,
    row-major: u_k = −1 + (2k + 1)/m (a cell's edges are at ±1)."""
    ys = (np.arange(m_y, dtype=np.float64) * 2 + 1) / m_y - 1
    xs = (np.arange(m_x, dtype=np.float64) * 2 + 1) / m_x - 1
    return np.stack(np.meshgrid(ys, xs, indexing="ij"), axis=-1).reshape(-1, 2)


def dct_order(cell: tuple[int, int]) -> list[tuple[int, int]]:
    """The (a, b) frequencies of a cell's 2-D cosines, constant first, in the order of
    rising a/n̂y + b/n̂x, then a (JPEG's diagonals; an exact integer order)."""
    n_y, n_x = cell
    keys = sorted((a * n_x + b * n_y, a, b) for a in range(n_y) for b in range(n_x))
    return [(a, b) for _, a, b in keys]


def cosine_table(cell: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """(π/2 · the frequencies [n, 2], the scales √(c_a/n̂y · c_b/n̂x) [n]) of a cell's
    cosines in `dct_order`, float64 (c = 1 for frequency 0, else 2)."""
    freq = np.array(dct_order(cell), dtype=np.float64)
    norm = np.where(freq > 0, 2.0, 1.0) / np.array(cell, dtype=np.float64)
    return math.pi / 2 * freq, np.sqrt(norm.prod(1))


def cosines(coords: np.ndarray, cell: tuple[int, int]) -> np.ndarray:
    """[P, n] float64: a cell's cosines (`cosine_table`, the constant first) at local
    coordinates [P, 2]; at the pixel centres, the cell's orthonormal DCT-II."""
    freq, norm = cosine_table(cell)
    c = np.cos((coords[:, :, None] + 1) * freq.T[None])  # [P, 2, n]
    return c[:, 0] * c[:, 1] * norm


# PNG's zlib level by size (model/png.py's writer: the Up filter, two deflate pieces on
# threads): up to a megapixel level 4 (kodim23 `compact` at 1024×683 on 2 cores: 685 kB in
# 20 ms, where Pillow's adaptive filters at level 6 took 180 ms for 638 kB; this writer at
# level 6: 653 kB in 70 ms), above it level 1, where encoding would otherwise dominate a render
PNG_LEVELS = ((1_000_000, 4), (None, 1))


def encode(image_u8: np.ndarray, fmt: str, quality: int, mode: str | None = None) -> bytes:
    """uint8 [C, H, W] as a `fmt` file (png, jpeg, webp or avif; `quality` for the lossy
    ones; JPEG drops an alpha channel and has optimized Huffman tables)."""
    fmt = fmt.lower()
    if fmt == "png":
        pixels = image_u8.shape[1] * image_u8.shape[2]
        level = next(lv for limit, lv in PNG_LEVELS if limit is None or pixels <= limit)
        return encode_png(np.moveaxis(image_u8, 0, -1), level)
    img = to_pil(image_u8, mode)
    if fmt == "jpeg" and img.mode in ("LA", "RGBA"):
        img = img.convert(img.mode[:-1])
    buf = io.BytesIO()
    extra = {"optimize": True} if fmt == "jpeg" else {}
    img.save(buf, fmt.upper(), quality=quality, **extra)
    return buf.getvalue()
