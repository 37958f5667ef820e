import io
import struct
import zlib

import numpy as np
import pytest
import torch
from PIL import Image

from mhinr.model.images import ImageError, load_image, pad_edge, to_pil, to_uint8


def encode(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def gradient(w: int = 20, h: int = 12) -> np.ndarray:
    x = np.linspace(0, 255, w)[None, :].repeat(h, 0)
    y = np.linspace(0, 255, h)[:, None].repeat(w, 1)
    return np.stack([x, y, 255 - x], -1).astype(np.uint8)


def test_rgb_png_loads_exactly():
    a = gradient()
    img = load_image(encode(Image.fromarray(a), "PNG"))
    assert img.mode == "RGB" and img.size == (12, 20) and img.channels == 3
    assert torch.equal(to_uint8(img.pixels), torch.from_numpy(a).permute(2, 0, 1))


def test_grayscale_and_alpha_modes_keep_their_channels():
    a = gradient()
    assert load_image(encode(Image.fromarray(a).convert("L"), "PNG")).mode == "L"
    la = load_image(encode(Image.fromarray(a).convert("LA"), "PNG"))
    assert la.mode == "LA" and la.channels == 2
    rgba = load_image(encode(Image.fromarray(a).convert("RGBA"), "PNG"))
    assert rgba.mode == "RGBA" and rgba.channels == 4


def test_palette_with_transparency_becomes_rgba():
    p = Image.fromarray(gradient()).convert("P")
    p.info["transparency"] = 0
    img = load_image(encode(p, "PNG", transparency=0))
    assert img.mode == "RGBA" and img.source_mode == "P"


def test_16_bit_png_is_scaled_from_65535():
    a = (np.arange(20 * 12).reshape(12, 20) * 200).astype(np.uint16)
    img = load_image(encode(Image.fromarray(a), "PNG"))
    assert img.mode == "L"
    assert torch.allclose(img.pixels[0], torch.from_numpy(a / 65535).float(), atol=1e-6)


def test_cmyk_jpeg_becomes_rgb():
    img = load_image(encode(Image.fromarray(gradient()).convert("CMYK"), "JPEG", quality=95))
    assert img.mode == "RGB" and img.source_mode == "CMYK"


def test_exif_orientation_is_applied():
    src = Image.fromarray(gradient(20, 12))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise to display
    img = load_image(encode(src, "JPEG", exif=exif.tobytes(), quality=95))
    assert img.size == (20, 12)  # rows and cols swapped: shown upright


def test_first_frame_of_an_animated_gif():
    frames = [Image.new("L", (10, 8), v) for v in (10, 200, 90)]
    data = encode(frames[0], "GIF", save_all=True, append_images=frames[1:])
    img = load_image(data)
    assert img.size == (8, 10)
    assert abs(float(img.pixels.mean()) * 255 - 10) < 2


def test_empty_file_is_refused():
    with pytest.raises(ImageError, match="empty"):
        load_image(b"")


def test_non_image_bytes_are_refused():
    with pytest.raises(ImageError, match="not an image"):
        load_image(b"%PDF-1.4 this is not a picture" * 10)


def test_truncated_png_is_refused():
    data = encode(Image.fromarray(gradient(200, 100)), "PNG")
    with pytest.raises(ImageError, match="damaged or truncated"):
        load_image(data[: len(data) // 2])


def bomb_png(width: int, height: int) -> bytes:
    """A tiny PNG whose header declares width×height pixels."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    idat = zlib.compress(b"\0" * 1000)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def test_decompression_bomb_is_refused_from_the_header():
    data = bomb_png(30000, 30000)
    assert len(data) < 200
    with pytest.raises(ImageError, match="pixels"):
        load_image(data)


def test_pixel_limit_is_checked_before_decoding():
    with pytest.raises(ImageError, match="over the limit"):
        load_image(bomb_png(5000, 5000), max_pixels=1_000_000)


def test_pad_edge_replicates_the_last_row_and_column():
    x = torch.arange(6, dtype=torch.float32).reshape(1, 2, 3)
    p = pad_edge(x, 2, 1)
    assert p.shape == (1, 4, 4)
    assert p[0, 3].tolist() == [3, 4, 5, 5]


def test_to_pil_roundtrip():
    u8 = torch.randint(0, 256, (3, 5, 7), dtype=torch.uint8)
    assert torch.equal(torch.from_numpy(np.array(to_pil(u8))).permute(2, 0, 1), u8)
