"""How few bits the upscaler's weights need (issue 24: "a default upscale file smaller than
the input's PNG"). Each image is box-reduced ×2 (as in benchmarks/upscale.py), one upscaler
is fitted to the small copy (a fixed number of steps, so the machine's speed does not
change the result), and its weights are stored each way: fp16 (the files until
2026-12-05), and the encoder's convolution weights (47,840 of the 49,251 parameters; the
body's three small layers stay fp16) as integers in −L … L with one fp16 scale per output
channel (L = 127: int8; 15: 5 bits; 7: 4 bits; 3: 3 bits). For each: the network's bytes
in the file (the file's bytes less its image's WebP: the header and the blend are counted
with the network), the file's bytes, and the ×2 render's PSNR against the original — the
network alone (no blend toward Lanczos) and as the file renders it (the blend chosen again
on the quantized network). The small copy's PNG (optimize) is the size to beat.

    python -m benchmarks.upscale_quant [--images kodim23,kodim07,kodim13,chelsea] [--steps 1200]
"""

import argparse
import copy
import io
import time

import numpy as np
import torch
from PIL import Image

from benchmarks.common import md_table, write_result
from benchmarks.upscale import box_down, load, pil_resize
from mhinr.model.codec import Coded
from mhinr.model.codec.upscaler import encode_upscale, quantize_weights_, webp_lossless
from mhinr.model.metrics import psnr
from mhinr.model.upscale import UpscaleConfig, UpscaleFit, choose_blend, fit_upscaler

LEVELS: list[int | None] = [None, 127, 15, 7, 3]


def png_bytes(small: torch.Tensor) -> int:
    buf = io.BytesIO()
    Image.fromarray(small.permute(1, 2, 0).numpy()).save(buf, "PNG", optimize=True)
    return len(buf.getvalue())


def one(name: str, steps: int) -> list[list]:
    true, small = box_down(load(name), 2)
    size = (true.shape[1], true.shape[2])
    lanczos = psnr(pil_resize(small, size, Image.Resampling.LANCZOS), true)
    t = time.perf_counter()
    # the internal-learning fit (the preset's until 2026-12-06), weights not yet quantized
    fit = UpscaleFit(steps=steps, time_budget_s=3600)
    fitted, _ = fit_upscaler(small.float() / 255, UpscaleConfig(), fit)
    print(f"{name}: fitted in {time.perf_counter() - t:.0f} s", flush=True)
    coded = Coded(small.shape[1], small.shape[2], "RGB", "upscale", "fp16")
    image_bytes = len(webp_lossless(small.numpy(), "RGB"))  # the file's image
    rows = []
    for levels in LEVELS:
        net = copy.deepcopy(fitted)
        quantize_weights_(net, levels)
        net.blend = [1.0, 1.0, 1.0]
        alone = psnr(net.render(size), true)
        held = choose_blend(net, net.image)
        if held is not None:
            net.blend = held["blend"]
        rendered = psnr(net.render(size), true)
        data = encode_upscale(net, coded, levels=levels)
        rows.append([
            name, "fp16" if levels is None else f"±{levels}", f"{len(data) - image_bytes:,}",
            f"{len(data):,}", f"{png_bytes(small):,}", f"{alone - lanczos:+.3f}",
            f"{rendered - lanczos:+.3f}", " ".join(f"{b:.2f}" for b in net.blend),
        ])  # fmt: skip
        print(*rows[-1], sep="  ", flush=True)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", default="kodim23,kodim07,kodim13,chelsea")
    ap.add_argument("--steps", type=int, default=1200)
    a = ap.parse_args()
    torch.set_num_threads(2)
    rows = [r for name in a.images.split(",") for r in one(name, a.steps)]
    head = ["image", "weights", "network bytes", "file bytes", "input PNG", "network vs Lanczos dB",
            "file's render vs Lanczos dB", "blend ×2 ×3 ×4"]  # fmt: skip
    write_result(
        "upscale_quant.md",
        f"""# The upscaler's weights in fewer bits

`python -m benchmarks.upscale_quant --images {a.images} --steps {a.steps}` (one fit an
image, {a.steps} steps, 2 threads; fixed steps, so the numbers do not depend on the
machine's speed or load): each image box-reduced ×2, the
upscaler fitted to the small copy, its weights stored each way; ×2 renders against the
original, in dB over Lanczos's. "network" is the network alone; "file's render" is what
the file renders (the held-out blend toward Lanczos chosen again on the stored weights).

{md_table(head, rows)}
""",
    )


if __name__ == "__main__":
    np.set_printoptions(precision=3)
    main()
