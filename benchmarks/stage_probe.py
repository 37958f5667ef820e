"""Probe: variants of the trained stage (model/synthesis.py) on `compact` files, priced.

For each image and bpp target, the best untrained `compact` file; then stages trained on
its decode, each variant one at a time:

* ``after``: on the decode after the restoration filter (what `compact` does);
* ``instead``: on the decode without the filter, whose bytes the file then saves;
* ``nN``: N steps of training (a run that a busy machine does not change);
* ``hN``: N hidden channels; ``sN``: N seconds of training; ``lN``: integer weights within
  ±N; ``qF``: the last fraction F of the steps straight-through at the quantized weights;
  ``dN``: the middle layer depthwise 3×3 with dilation N; ``bN``: N crops a step;
  ``w``: the hidden channels the encoder gives a file of this size; ``rF``: Adam's learning
  rate F (synthesis.LR).

Each stage is priced at the file's own R–D slope (dB per doubling of the bytes, between
neighbouring targets): rate saved = 1 − 2^(−gain/slope) − Δbytes/bytes.

    python -m benchmarks.stage_probe --images kodim23,coffee --variants after,instead
"""

import argparse
import math

import torch

from benchmarks.bd_rate import load
from mhinr.model import synthesis
from mhinr.model.codec import entropy, filter_bytes, stage_bytes
from mhinr.model.coefficients import stage_hidden
from mhinr.model.compress import Options, compress_sweep
from mhinr.model.images import to_uint8
from mhinr.model.metrics import psnr
from mhinr.model.render import render


def slope_at(curve: list[tuple[int, float]], i: int) -> float:
    """dB per doubling of the bytes around point i of a (bytes, PSNR) curve."""
    a, b = (i - 1, i) if i == len(curve) - 1 else (i, i + 1)
    return (curve[b][1] - curve[a][1]) / math.log2(curve[b][0] / curve[a][0])


def rate_saved(gain: float, extra: int, nbytes: int, slope: float) -> float:
    """The rate (%) a change saves that gains `gain` dB for `extra` more bytes on a file of
    `nbytes` bytes whose R–D slope is `slope` dB per doubling (positive: fewer bytes at
    equal PSNR)."""
    return 100 * (1 - 2 ** (-gain / slope)) - 100 * extra / nbytes


def priced(net, before, original, o, slope: float, filt_bytes: int, *extra) -> str:
    """A probe's quantized stage variant `net` (called as net(x, *extra), each extra input
    batched) on the 8-bit `before`, priced against the file `o` without a stage as this
    module prices: "gain dB, bytes B: rate saved %" (its bytes: the range-coded integers, a
    4-byte header and fp16 scales)."""
    with torch.no_grad():
        u8 = to_uint8(before).float() / 255
        out = net(u8[None], *(e[None] for e in extra))[0].clamp(0, 1).mul(255).round() / 255
    gain = psnr(out, original) - o.psnr
    ints, scales = net.quantized
    nbytes = 4 + len(entropy.encode_values(ints)) + 2 * len(scales)
    saved = rate_saved(gain, nbytes - filt_bytes, o.bytes, slope)
    return f"{gain:+.3f} dB, {nbytes} B: {saved:+.1f} %"


def scored(net: synthesis.Stage, before: torch.Tensor, original: torch.Tensor) -> float:
    """PSNR of `net` on the 8-bit `before` against `original`, as a decoder applies it."""
    with torch.no_grad():
        whole = synthesis.apply_u8(to_uint8(before), net, band_rows=before.shape[1])
    return psnr(whole.float() / 255, original)


def untrained_files(name: str, bpps: list[float]):
    """Each image's best `compact` files without a stage (steps=0) at the bpp targets, with
    each file's R–D slope, its restoration filter's bytes, and its decode with and without
    the filter: (image, [(file, slope, filter bytes, after, before)])."""
    img = load(name)
    h, w = img.pixels.shape[1:]
    outs = compress_sweep(
        img.pixels,
        img.mode,
        Options(preset="compact", steps=0),
        [{"max_bytes": int(b * h * w / 8)} for b in bpps],
    )
    curve = [(o.bytes, o.psnr) for o in outs]
    files = []
    for i, o in enumerate(outs):
        filt = o.net.post_filter
        filt_bytes = 0 if filt is None else len(filter_bytes(filt, 3)[0])
        after = render(o.net, (h, w)).float() / 255
        o.net.post_filter = None
        before = render(o.net, (h, w)).float() / 255
        o.net.post_filter = filt
        files.append((o, slope_at(curve, i), filt_bytes, after, before))
    return img, files


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", default="kodim23,coffee")
    ap.add_argument("--bpps", default="0.15,0.25,0.5,1.0")
    ap.add_argument("--seconds", type=float, default=30)
    ap.add_argument("--steps", type=int, default=0, help="steps instead of seconds (0: seconds)")
    ap.add_argument("--variants", default="after,instead")
    ap.add_argument(
        "--threads", type=int, default=2, help="torch threads (1: as codec_stage --jobs 2 has)"
    )
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    batch = synthesis.BATCH  # the encoder's crops a step, unless a variant says otherwise
    lr = synthesis.LR
    bpps = [float(b) for b in a.bpps.split(",")]
    if len(bpps) < 2:
        ap.error("--bpps needs two targets at least: a file's R–D slope is read between them")
    for name in a.images.split(","):
        img, files = untrained_files(name, bpps)
        pixels = img.pixels
        h = pixels.shape[1]
        for o, slope, filt_bytes, after, before in files:
            for v in a.variants.split(","):
                hidden, seconds, levels = synthesis.HIDDEN, a.seconds, synthesis.LEVELS
                max_steps = a.steps or None
                if max_steps:
                    seconds = 1e9
                dilation = synthesis.DILATION
                synthesis.QAT_FRACTION = 0.1
                synthesis.BATCH = batch
                synthesis.LR = lr
                parts = v.split(":")
                for p in parts[1:]:
                    value = float(p[1:] or 0)
                    if p == "w":  # the encoder's width for this file
                        hidden = stage_hidden(o.bytes)
                    elif p[0] == "h":
                        hidden = int(value)
                    elif p[0] == "s":
                        seconds = value
                    elif p[0] == "n":  # a step count: the run is the same on a busy machine
                        max_steps, seconds = int(value), 1e9
                    elif p[0] == "l":
                        levels = int(value)
                    elif p[0] == "q":
                        synthesis.QAT_FRACTION = value
                    elif p[0] == "d":
                        dilation = int(value)
                    elif p[0] == "b":  # crops a step
                        synthesis.BATCH = int(value)
                    elif p[0] == "r":
                        synthesis.LR = value
                instead = parts[0] == "instead"
                x = before if instead else after
                net, steps = synthesis.train(
                    x,
                    pixels,
                    seconds,
                    max_steps,
                    hidden=hidden,
                    dilation=dilation,
                    levels=levels,
                )
                with torch.no_grad():
                    whole = synthesis.apply_u8(to_uint8(x), net, band_rows=h)  # one band
                    q = psnr(whole.float() / 255, pixels)
                gain = q - o.psnr
                extra = len(stage_bytes(net)) - (filt_bytes if instead else 0)
                saved = rate_saved(gain, extra, o.bytes, slope)
                print(
                    f"{name} {o.bpp:.3f} bpp cell {o.net.cfg.cell[0]} {o.psnr:.2f} dB "
                    f"(filter {filt_bytes} B, {slope:.2f} dB/oct) {v}: {steps} steps, "
                    f"{gain:+.3f} dB, {extra:+d} B, rate saved {saved:+.1f} %",
                    flush=True,
                )


if __name__ == "__main__":
    main()
