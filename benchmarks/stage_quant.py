"""What storing the trained stage costs it: its gain over the decode it corrects, in float and
as a file holds it, with the biases in the weights' unit (files before 2026-12-05's flags2
bit 4) and in sixteenths of it (today).

For each image and byte target: `compact`'s file without a stage (the best cell size), the
decode the stage is trained on (at the step `coefficients._staged` trains it at), then one
stage a variant and seed, trained a fixed number of steps (so that the machine's speed and
load do not change the result), each measured on that decode:

- *float*: the weights as trained, never rounded (no training through the quantized
  weights; what the network learnt before any storage);
- *bias in the weights' unit*: the file's integers as before flags2 bit 4, trained through
  them for the last `synthesis.QAT_FRACTION` of the steps;
- *bias in sixteenths* (today): the same with each row's bias in units of its scale / 16.

    python -m benchmarks.stage_quant --images coffee,chelsea,astronaut,kodim23 --bpps 0.25,1.0

Writes results/stage_quant.md.
"""

import argparse
import copy
import platform
import sys
import time

import torch

from benchmarks.bd_rate import load
from benchmarks.common import md_table, write_result
from mhinr.model import coefficients as co
from mhinr.model import synthesis
from mhinr.model.codec.compact import stage_bytes
from mhinr.model.compress import Options
from mhinr.model.metrics import psnr
from mhinr.model.ratecontrol import Target


def _decode(name: str, bpp: float) -> tuple[torch.Tensor, torch.Tensor, dict]:
    """(the original, the decode a stage trains on for `compact` at `bpp`, what the file
    without a stage is)."""
    img = load(name)
    h, w = img.size
    target: Target = {"max_bytes": int(bpp * h * w / 8)}
    coders = co.fit_coders(img.pixels, img.mode, Options(preset="compact"), True)
    coder, plain = co.best_coder(coders, target)
    trained = copy.copy(coder)  # as `_staged` trains it: without the restoration filter
    trained.post_filter, trained._coded = False, None
    guess: Target = {"max_bytes": target["max_bytes"] - co.STAGE_BYTES_GUESS}
    step = trained.search(guess, co.DEFAULT_STEP).coded.step
    assert step is not None
    about = {"cell": coder.net.cfg.cell[0], "bytes": plain.bytes, "psnr": plain.psnr}
    return img.pixels, trained.decoded(step), about


def _variant(kind: str, decoded, original, steps: int, seed: int) -> tuple[float, int | None]:
    """(the stage's PSNR on `decoded`, its bytes in a file or None for `float`)."""
    keep = synthesis.BIAS_SHIFT, synthesis.QAT_FRACTION, synthesis.quantize_
    try:
        if kind == "float":
            synthesis.QAT_FRACTION = 0.0
            synthesis.quantize_ = lambda net, levels=synthesis.LEVELS: None  # type: ignore
        else:
            synthesis.BIAS_SHIFT = 0 if kind == "weights' unit" else 4
        net, _ = synthesis.train(decoded, original, 3600.0, steps, seed=seed)
    finally:
        synthesis.BIAS_SHIFT, synthesis.QAT_FRACTION, synthesis.quantize_ = keep
    with torch.no_grad():
        q = psnr(net(decoded[None])[0].clamp(0, 1), original)
    return q, None if kind == "float" else len(stage_bytes(net))


KINDS = ("float", "weights' unit", "sixteenths")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", default="coffee,chelsea,astronaut,kodim23")
    ap.add_argument("--bpps", default="0.25,1.0")
    ap.add_argument("--steps", type=int, default=5000)
    ap.add_argument("--seeds", default="0,1")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    rows, gains = [], {k: [] for k in KINDS}
    for name in args.images.split(","):
        for bpp in map(float, args.bpps.split(",")):
            original, decoded, about = _decode(name, bpp)
            base = psnr(decoded, original)
            for seed in map(int, args.seeds.split(",")):
                row = [name, f"{bpp}", about["cell"], f"{about['psnr']:.2f}", f"{base:.2f}", seed]
                for kind in KINDS:
                    q, size = _variant(kind, decoded, original, args.steps, seed)
                    gains[kind].append(q - base)
                    row.append(f"{q - base:+.3f}" + ("" if size is None else f" ({size} B)"))
                rows.append(row)
                print(row, flush=True)
    rows.append(
        ["**mean**", "", "", "", "", ""] + [f"**{sum(g) / len(g):+.3f}**" for g in gains.values()]
    )
    rows.append(["**worst**", "", "", "", "", ""] + [f"{min(g):+.3f}" for g in gains.values()])
    text = (
        "# The trained stage as a file holds it\n\n"
        f"`python -m benchmarks.stage_quant{''.join(' ' + a for a in sys.argv[1:])}` — "
        f"{platform.machine()}, torch {torch.__version__}, {args.threads} threads; "
        f"{args.steps} training steps a stage; {(time.perf_counter() - t0) / 60:.1f} min.\n\n"
        "Each cell: the stage's PSNR gain (dB) over the decode it corrects (`compact`'s "
        "cosine decode at the step `_staged` trains at, deblocked, without the restoration "
        "filter), and its bytes in the file. *file*: `compact`'s file without a stage (the "
        "restoration filter included), for scale.\n\n"
        + md_table(
            ["image", "bpp", "cell", "file dB", "decode dB", "seed"]
            + ["float", "bias in the weights' unit (before)", "bias in sixteenths (today)"],
            rows,
        )
    )
    write_result("stage_quant.md", text)


if __name__ == "__main__":
    main()
