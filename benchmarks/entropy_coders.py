"""LZMA against zstandard on real .inr payloads: the same header and tensors packed with
each coder, for `fast` coefficient files and `paper`-style weight files.

    python -m benchmarks.entropy_coders [--images 3]
"""

import argparse
import time

from benchmarks.common import KODAK, machine, md_table, write_result
from mhinr.model.codec import pack, unpack
from mhinr.model.compress import Options, compress
from mhinr.model.images import load_image


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", type=int, default=3)
    args = ap.parse_args()
    t_all = time.perf_counter()
    rows = []
    for path in sorted(KODAK.glob("kodim*.png"))[: args.images]:
        img = load_image(path)
        for label, opt in (
            ("fast (coefficients)", Options(preset="fast")),
            (
                "64² heads, α=64, 4×256, fp16 weights",
                Options(preset="paper", steps=20, quantization="fp16"),
            ),
        ):
            header, tensors = unpack(compress(img.pixels, img.mode, opt).data)
            sizes = {}
            for coder in ("lzma", "zstd"):
                t = time.perf_counter()
                sizes[coder] = (len(pack(header, tensors, coder)), time.perf_counter() - t)
            lz, zs = sizes["lzma"][0], sizes["zstd"][0]
            rows.append(
                [
                    path.stem,
                    label,
                    lz,
                    zs,
                    f"{100 * (zs - lz) / zs:+.1f} %",
                    f"{sizes['lzma'][1]:.2f}",
                    f"{sizes['zstd'][1]:.2f}",
                ]
            )
            print(rows[-1], flush=True)
    text = f"""# Entropy coders for .inr payloads

`python -m benchmarks.entropy_coders --images {args.images}` — {machine()};
{time.perf_counter() - t_all:.0f} s in all.

LZMA (xz, preset 9 extreme) against zstandard (level 22) on the same header + safetensors
payload. "LZMA saves": how much smaller the LZMA file is than the zstd one. The codec
writes whichever is smaller (coefficient files: LZMA).

{md_table(["image", "file", "LZMA bytes", "zstd bytes", "LZMA saves", "LZMA s", "zstd s"], rows)}"""
    write_result("entropy_coders.md", text)


if __name__ == "__main__":
    main()
