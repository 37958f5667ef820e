"""The CUDA path of `compact`'s trained stage, for a machine with a GPU (never run in CI).

1. `compact` fitted with `device="cuda"` (default quality, and 0.5 bpp) on each image: the
   stage trains on the GPU; each file is written to OUT and decoded on this machine's CPU,
   and its PSNR is compared with the one the encoder reported (the file's own decode).
   The files can then be decoded on another machine (`--decode OUT`) to check that the
   pixels agree across machines.
2. What a GPU's budget buys: stages of several widths and step counts trained on the same
   decodes (0.25 and 1 bpp), each priced — its PSNR gain, its bytes, and the rate it saves
   at the file's own R–D slope (measured between the target's step and a step 20 % finer).

    python -m benchmarks.cuda_check IMAGES_FOLDER OUT_FOLDER [--images kodim23,kodim05]
    python -m benchmarks.cuda_check --decode OUT_FOLDER IMAGES_FOLDER   # on another machine
"""

import argparse
import json
import math
import time
from pathlib import Path

import torch

from mhinr.model import synthesis
from mhinr.model.codec import decode, stage_bytes
from mhinr.model.coefficients import best_coder, fit_coders
from mhinr.model.compress import Options, compress
from mhinr.model.images import load_image
from mhinr.model.metrics import psnr
from mhinr.model.render import render

VARIANTS = ((8, 8000), (8, 30000), (16, 30000), (32, 30000))


def fit_on_cuda(folder: Path, out: Path, names: list[str]) -> list[dict]:
    rows = []
    for name in names:
        img = load_image(folder / f"{name}.png")
        h, w = img.size
        for tag, bpp in (("default", None), ("bpp0.5", 0.5)):
            t = time.perf_counter()
            res = compress(img.pixels, img.mode, Options(preset="compact", bpp=bpp, device="cuda"))
            seconds = time.perf_counter() - t
            (out / f"{name}_{tag}.inr").write_bytes(res.data)
            t = time.perf_counter()
            net, coded = decode(res.data)
            again = psnr(render(net, (h, w)), img.pixels)
            row = {
                "image": name,
                "target": tag,
                "seconds": round(seconds, 2),
                "bytes": res.bytes,
                "psnr_reported": res.psnr,
                "psnr_cpu_decode": again,
                "decode_render_s": round(time.perf_counter() - t, 3),
                "stage": res.stage,
            }
            print(json.dumps(row), flush=True)
            rows.append(row)
    return rows


def sweep(folder: Path, names: list[str], deadline: float) -> list[dict]:
    rows = []
    for name in names:
        img = load_image(folder / f"{name}.png")
        h, w = img.size
        coders = fit_coders(img.pixels, img.mode, Options(preset="compact"), True)
        for bpp in (0.25, 1.0):
            coder, out = best_coder(coders, {"max_bytes": int(bpp * h * w / 8)})
            step = out.coded.step
            finer = len(coder.encode(step * 0.8)), coder.quality(step * 0.8)
            slope = (finer[1] - coder.quality(step)) / math.log2(finer[0] / out.bytes)
            decoded = coder.decoded(step)
            base = psnr(decoded, img.pixels)
            for hidden, steps in VARIANTS:
                if time.perf_counter() > deadline:
                    return rows
                t = time.perf_counter()
                net, taken = synthesis.train(
                    decoded, img.pixels, 600, steps, hidden=hidden, device="cuda"
                )
                secs = time.perf_counter() - t
                with torch.no_grad():
                    gain = psnr(net(decoded[None])[0].clamp(0, 1), img.pixels) - base
                size = len(stage_bytes(net))
                saving = 100 * (1 - 2 ** (-gain / slope)) - 100 * size / out.bytes
                row = {
                    "image": name,
                    "bpp": bpp,
                    "hidden": hidden,
                    "steps": taken,
                    "steps_per_s": round(taken / secs),
                    "gain_db": round(gain, 3),
                    "stage_bytes": size,
                    "file_bytes": out.bytes,
                    "db_per_octave": round(slope, 2),
                    "rate_saved_pct": round(saving, 2),
                }
                print(json.dumps(row), flush=True)
                rows.append(row)
    return rows


def decode_elsewhere(out: Path, folder: Path) -> None:
    for f in sorted(out.glob("*.inr")):
        img = load_image(folder / f"{f.name.split('_')[0]}.png")
        net, coded = decode(f.read_bytes())
        print(f.name, f"{psnr(render(net, (coded.height, coded.width)), img.pixels):.4f}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("folder", type=Path)
    ap.add_argument("out", type=Path)
    ap.add_argument("--images", default="kodim23,kodim05")
    ap.add_argument("--seconds", type=float, default=300, help="the sweep's deadline")
    ap.add_argument("--decode", action="store_true", help="decode OUT's files here")
    args = ap.parse_args()
    if args.decode:
        decode_elsewhere(args.folder, args.out)
        return
    start = time.perf_counter()
    print(torch.cuda.get_device_name(0), torch.__version__, flush=True)
    names = args.images.split(",")
    fits = fit_on_cuda(args.folder, args.out, names)
    rows = sweep(args.folder, names, start + args.seconds)
    (args.out / "cuda_check.json").write_text(json.dumps({"fits": fits, "sweep": rows}, indent=1))


if __name__ == "__main__":
    main()
