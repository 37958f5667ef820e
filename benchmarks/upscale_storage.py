"""How an upscale file could store its image losslessly: the bytes of today's storage (raw
8-bit pixels, LZMA), of PNG (Pillow, optimize) and of WebP lossless (Pillow: libwebp, exact,
at two efforts), on Kodak images reduced to 384×256 (box) — the next step of issue 24's
"a default upscale file smaller than the input's PNG". Each is checked to decode exactly.

    python -m benchmarks.upscale_storage [--images kodim23,kodim05,kodim13]
"""

import argparse
import io
import lzma
import time

import numpy as np
from PIL import Image

from benchmarks.common import KODAK, md_table, write_result


def sizes(im: Image.Image) -> dict[str, tuple[int, float]]:
    """(bytes, seconds) of each storage of `im`, each checked to decode exactly."""
    a = np.asarray(im)
    out = {}
    t = time.perf_counter()
    raw = lzma.compress(np.moveaxis(a, -1, 0).tobytes(), preset=9 | lzma.PRESET_EXTREME)
    out["raw 8-bit + LZMA (today)"] = (len(raw), time.perf_counter() - t)
    for label, fmt, options in (
        ("PNG (optimize)", "PNG", {"optimize": True}),
        ("WebP lossless, method 4", "WEBP", {"lossless": True, "quality": 50, "method": 4}),
        ("WebP lossless, method 6", "WEBP", {"lossless": True, "quality": 100, "method": 6}),
    ):
        t = time.perf_counter()
        buf = io.BytesIO()
        im.save(buf, fmt, exact=True, **options) if fmt == "WEBP" else im.save(buf, fmt, **options)
        took = time.perf_counter() - t
        back = np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert(im.mode))
        assert np.array_equal(back, a), label
        out[label] = (len(buf.getvalue()), took)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", default="kodim23,kodim05,kodim13")
    a = ap.parse_args()
    rows, labels = [], None
    for name in a.images.split(","):
        im = Image.open(KODAK / f"{name}.png").convert("RGB").resize((384, 256), Image.BOX)
        got = sizes(im)
        labels = list(got)
        rows.append([name] + [f"{got[k][0]:,} ({got[k][1]:.2f} s)" for k in labels])
        print(*rows[-1], sep="  ")
    table = md_table(["image (384×256)"] + labels, rows)
    write_result(
        "upscale_storage.md",
        f"""# An upscale file's image, stored losslessly

`python -m benchmarks.upscale_storage --images {a.images}`: bytes (seconds to encode) of
each lossless storage of the image; every one decodes to the same pixels. Today's upscale
file stores raw 8-bit pixels with LZMA, beside its network in fp16 (98 kB).

{table}
""",
    )


if __name__ == "__main__":
    main()
