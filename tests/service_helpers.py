"""Helpers for the service tests: images in every awkward format, a settings factory."""

import io
import struct
import zlib

import numpy as np
from PIL import Image

from mhinr.app.settings import ApiSettings


def wait_ready(client, proc, log, timeout: float = 60) -> None:
    """Until `client`'s service answers /readyz with 200; RuntimeError (with the end of
    `log`) if it does not within `timeout` or its process `proc` exits."""
    import time

    import httpx

    deadline = time.monotonic() + timeout
    while True:
        try:
            if client.get("/readyz").status_code == 200:
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline or proc.poll() is not None:
            raise RuntimeError("the service did not start:\n" + log.read_text()[-3000:])
        time.sleep(0.3)


def settings_for(tmp_path, **kw) -> ApiSettings:
    kw.setdefault("redis_url", None)
    return ApiSettings(data_dir=tmp_path / "data", **kw)


def png_bytes(w: int = 40, h: int = 32, mode: str = "RGB", seed: int = 0) -> bytes:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    base = (127 + 100 * np.sin(x / 5.0) * np.cos(y / 7.0)).astype(np.uint8)
    rgb = np.stack([base, np.roll(base, 3, 1), 255 - base], -1)
    rgb = np.clip(rgb.astype(int) + rng.integers(-5, 6, rgb.shape), 0, 255).astype(np.uint8)
    img = Image.fromarray(rgb).convert(mode)
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


def encode(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def bomb_png(width: int = 30000, height: int = 30000) -> bytes:
    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\0" * 1000))
        + chunk(b"IEND", b"")
    )


def awkward_inputs() -> dict[str, tuple[bytes, tuple[int, int], str]]:
    """name → (file bytes, expected (width, height) upright, expected render mode)."""
    base = Image.open(io.BytesIO(png_bytes(36, 28)))
    out = {}
    a16 = (np.arange(28 * 36).reshape(28, 36) * 60).astype(np.uint16)
    out["png16"] = (encode(Image.fromarray(a16), "PNG"), (36, 28), "L")
    pal = base.convert("P")
    out["palette_transparent"] = (encode(pal, "PNG", transparency=0), (36, 28), "RGBA")
    out["grayscale"] = (encode(base.convert("L"), "PNG"), (36, 28), "L")
    out["cmyk_jpeg"] = (encode(base.convert("CMYK"), "JPEG", quality=95), (36, 28), "RGB")
    exif = Image.Exif()
    exif[0x0112] = 6  # display rotated 90° clockwise
    out["exif_rotated"] = (encode(base, "JPEG", exif=exif.tobytes(), quality=95), (28, 36), "RGB")
    frames = [base.convert("P"), base.convert("L").convert("P")]
    out["gif_first_frame"] = (
        encode(frames[0], "GIF", save_all=True, append_images=frames[1:]),
        (36, 28),
        "RGB",
    )
    out["odd_size"] = (png_bytes(37, 23), (37, 23), "RGB")
    out["tall"] = (png_bytes(20, 61), (20, 61), "RGB")
    return out
