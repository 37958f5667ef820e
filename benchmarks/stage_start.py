"""How the trained stage's start and learning rate decide what it learns (model/synthesis.py).

One `compact` file of an image at a byte target (the stage off), its decode as the stage
sees it; then stages trained from each start, three seeds each, and their gain in dB (the
quantized stage's output against the decode):

* ``torch``: torch's default initialisation on the input in [0, 1] (the first version);
* ``centred``: the input centred (x − ½), torch's initialisation;
* ``zero``: centred, and the first layer's filters made zero-mean with small biases
  (what `synthesis.Stage` does).

    python -m benchmarks.stage_start --image kodim23 --bpp 0.2
    python -m benchmarks.stage_start --starts zero:2e-3,zero:5e-3,zero:1e-2
"""

import argparse

import torch
import torch.nn.functional as F

from benchmarks.bd_rate import load
from mhinr.model import synthesis
from mhinr.model.compress import Options, compress_sweep
from mhinr.model.metrics import psnr
from mhinr.model.render import render

Stage, LR = synthesis.Stage, synthesis.LR


class TorchStart(Stage):
    """torch's default initialisation (output layer still zero), input not centred."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.inner.reset_parameters()

    def forward(self, x):
        h = F.relu(self.inner(F.pad(x, (1, 1, 1, 1), mode="replicate")))
        h = F.relu(self.mix(h))
        return x + self.out(F.pad(h, (1, 1, 1, 1), mode="replicate"))


class CentredStart(Stage):
    """Centred input, torch's default initialisation of the first layer."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.inner.reset_parameters()


STARTS = {"torch": TorchStart, "centred": CentredStart, "zero": Stage}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--image", default="kodim23")
    ap.add_argument("--bpp", type=float, default=0.2)
    ap.add_argument("--seconds", type=float, default=15)
    ap.add_argument("--starts", default="zero:2e-3,centred:5e-3,torch:5e-3")
    args = ap.parse_args()
    torch.set_num_threads(2)
    img = load(args.image)
    h, w = img.size
    target = {"max_bytes": int(args.bpp * h * w / 8)}
    out = compress_sweep(img.pixels, img.mode, Options(preset="compact", steps=0), [target])[0]
    x = render(out.net, (h, w)).float() / 255
    base = psnr(x, img.pixels)
    for spec in args.starts.split(","):
        start, lr = spec.split(":")
        synthesis.Stage, synthesis.LR = STARTS[start], float(lr)
        gains = []
        try:
            for seed in (0, 1, 2):
                net, steps = synthesis.train(x, img.pixels, args.seconds, seed=seed)
                with torch.no_grad():
                    gains.append(psnr(net(x[None])[0].clamp(0, 1), img.pixels) - base)
        finally:
            synthesis.Stage, synthesis.LR = Stage, LR
        print(
            f"{args.image} {args.bpp} bpp, {start} start, lr {lr}: {steps} steps, gains "
            + " ".join(f"{g:+.3f}" for g in gains)
            + " dB",
            flush=True,
        )


if __name__ == "__main__":
    main()
