"""Where a `compact` encode's time goes, outside the stage's training: one target of one image,
profiled (cProfile, cumulative), the stage's budget cut short so that the rest shows.

    python -m benchmarks.encode_profile --image kodim23 --bpp 0.5 --stage-seconds 5

Prints the encode's seconds, the stage's share of them, and the functions of the encoder
(model/coefficients.py, model/codec/) by cumulative time.
"""

import argparse
import cProfile
import pstats
import time

import torch

from benchmarks.bd_rate import load
from mhinr.model.compress import Options, compress_sweep


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--image", default="kodim23")
    ap.add_argument("--bpp", type=float, default=0.5)
    ap.add_argument("--stage-seconds", type=float, default=5.0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--rows", type=int, default=30)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    img = load(a.image)
    h, w = img.size
    options = Options(preset="compact", time_budget_s=a.stage_seconds)
    target = {"max_bytes": int(a.bpp * h * w / 8)}
    prof = cProfile.Profile()
    start = time.perf_counter()
    prof.enable()
    (out,) = compress_sweep(img.pixels, img.mode, options, [target])
    prof.disable()
    took = time.perf_counter() - start
    stage = out.stage or {}
    print(
        f"{a.image} at {a.bpp} bpp, {a.threads} thread(s): {took:.1f} s, of which the stage "
        f"(its training and its rounds' searches) {stage.get('seconds', 0):.1f} s"
    )
    stats = pstats.Stats(prof).sort_stats("cumulative")
    stats.print_stats(r"mhinr/model/(coefficients|ratecontrol|codec/)", a.rows)


if __name__ == "__main__":
    main()
