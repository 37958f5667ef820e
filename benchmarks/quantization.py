"""What fp16 and int8 weights cost: the paper's network on `camera` 256² and on kodim23,
fitted with the paper's recipe and with mhinr's, stored at each precision.

    python -m benchmarks.quantization [--quick]
"""

import argparse
import time

from benchmarks.common import KODAK, camera_pair, machine, md_table, write_result
from mhinr.model.codec import Coded, decode, encode_weights
from mhinr.model.fit import FitConfig, fit
from mhinr.model.images import load_image
from mhinr.model.metrics import psnr
from mhinr.model.network import build_network
from mhinr.model.render import render
from mhinr.model.weights import quantization_aware


def row(name: str, recipe: str, q: str, data: bytes, pixels) -> list:
    c, h, w = pixels.shape
    out = render(decode(data)[0], (h, w))
    r = [name, recipe, q, len(data), 8 * len(data) / (h * w), psnr(out, pixels)]
    print(r, flush=True)
    return r


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    t_all = time.perf_counter()
    steps = 300 if args.quick else 2000
    _, cam = camera_pair()
    kodim = load_image(KODAK / "kodim23.png")
    rows = []
    for name, pixels, mode in (("camera 256²", cam, "L"), ("kodim23", kodim.pixels, "RGB")):
        c, h, w = pixels.shape
        for recipe, cfg in (("paper", FitConfig.paper(steps)), ("mhinr", FitConfig())):
            net = build_network("multihead", (h, w), c, heads=(64, 64), alpha=64)
            fit(net, pixels, cfg)
            for q in ("fp32", "fp16", "int8"):
                coded = Coded(h, w, mode, quantization=q)
                data = encode_weights(net, coded)
                rows.append(row(name, recipe, q, data, pixels))
                if recipe == "mhinr" and q != "fp32":  # what `compress` stores
                    data = quantization_aware(net, coded, pixels, data)
                    rows.append(
                        row(name, "mhinr, heads re-solved on the stored body", q, data, pixels)
                    )
    text = f"""# Weight quantization

`python -m benchmarks.quantization{" --quick" if args.quick else ""}` — {machine()};
{time.perf_counter() - t_all:.0f} s in all.

The paper's network (64² heads, α=64, body 4×256), paper recipe ({steps} Adam steps) or
mhinr's (heads solved, 100 Adam steps, solved again), stored as `weights` at each precision
(int8: one scale per output row; biases fp16), best of LZMA and zstd. PSNR of the decoded
file's render against the image. "heads re-solved on the stored body": what `compress`
stores for least-squares heads below fp32 (body quantized first, heads solved again with
the ridge whose file decodes best).

{md_table(["image", "recipe", "weights", "bytes", "bpp", "PSNR"], rows)}"""
    write_result("quantization_quick.md" if args.quick else "quantization.md", text)


if __name__ == "__main__":
    main()
