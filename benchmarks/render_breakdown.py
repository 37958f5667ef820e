"""Where a large render's time goes: the cells' decode at the native size, the restoration
filter and the trained stage, the Lanczos resize, the PNG encoding (the parallel writer of
model/png.py beside Pillow's level-1 writer it replaced above a megapixel).

    python -m benchmarks.render_breakdown [--image kodim23] [--preset fast] [--size 4096]
"""

import argparse
import io
import statistics
import time

import torch

from benchmarks.common import KODAK, machine, md_table, write_result
from mhinr.app.routes.render import encode
from mhinr.model import synthesis
from mhinr.model.codec import decode, postfilter
from mhinr.model.compress import Options, compress
from mhinr.model.images import load_image, to_pil
from mhinr.model.render import output_size, render_grid_u8, resize_u8


def timed(call, repeats: int) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeats):
        t = time.perf_counter()
        out = call()
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1000, out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--image", default="kodim23")
    ap.add_argument("--preset", default="fast")
    ap.add_argument("--size", type=int, default=4096)
    ap.add_argument("--repeats", type=int, default=5)
    a = ap.parse_args()
    torch.set_num_threads(2)
    img = load_image((KODAK / f"{a.image}.png").read_bytes())
    net, coded = decode(compress(img.pixels, img.mode, Options(preset=a.preset)).data)
    h, w = coded.height, coded.width
    out_h, out_w = output_size((h, w), a.size, None, None)
    n = a.repeats
    t_grid, native = timed(lambda: render_grid_u8(net, *net.cfg.cell)[:, :h, :w], n)
    t_filter = t_stage = 0.0
    if net.post_filter is not None:
        t_filter, native = timed(lambda: postfilter.apply_u8(native, net.post_filter), n)
    if net.stage is not None:
        t_stage, native = timed(lambda: synthesis.apply_u8(native, net.stage), n)
    t_resize, big = timed(lambda: resize_u8(native, out_h, out_w, (0, 0, w, h)), n)
    t_png, body = timed(lambda: encode(big, coded.mode, "png"), n)

    def pillow() -> bytes:
        buf = io.BytesIO()
        to_pil(big, coded.mode).save(buf, "PNG", compress_level=1)
        return buf.getvalue()

    t_pillow, old = timed(pillow, n)
    total = t_grid + t_filter + t_stage + t_resize + t_png
    rows = [
        ["decode the cells (native size)", f"{t_grid:.0f} ms", f"{w}x{h}"],
        ["restoration filter", f"{t_filter:.0f} ms", "" if net.post_filter is not None else "none"],
        ["trained stage", f"{t_stage:.0f} ms", "" if net.stage is not None else "none"],
        ["Lanczos resize", f"{t_resize:.0f} ms", f"to {out_w}x{out_h}"],
        ["PNG, parallel writer (model/png.py)", f"{t_png:.0f} ms", f"{len(body):,} bytes"],
        ["**total**", f"**{total:.0f} ms**", ""],
        ["(PNG, Pillow level 1: before)", f"{t_pillow:.0f} ms", f"{len(old):,} bytes"],
    ]
    text = f"""# Where a {a.size}-px render's time goes

`python -m benchmarks.render_breakdown --image {a.image} --preset {a.preset} --size {a.size}`
— {machine()}; in-process, medians of {n}, alone on the cores.

{md_table(["step", "time", "note"], rows)}"""
    print(text)
    write_result(f"render_breakdown_{a.preset}.md", text)


if __name__ == "__main__":
    main()
