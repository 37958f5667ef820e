"""Where the trained stage (model/synthesis.py) starts: a stage trained once, offline, on the
decodes of photos that are neither Kodak nor the benchmark's other photos, shipped beside
this module (one safetensors file a width, `PRIORS`).

The encoder trains each file's stage on the image itself for about a minute; from the
identity (synthesis.Stage's own start) the first several thousand steps go to learning
what every decode needs (undoing blocks and ringing), and the steps still pay at the end of
the budget. Started from a stage that already knows that, the image's own training goes
further in the same steps. The file still holds the whole stage, quantized and priced as
before: a decoder never needs the prior, and a file encoded with or without it decodes the
same way (so a prior can change without a format change). The prior gives the first two
layers (the features); the output layer starts at zero, as Stage's own does, so that the
stage still starts as the identity and is never worse than its input.

Measured (`benchmarks/results/stage_start_probe.md`; 15,000 steps, about the first
training's share of the minute, two seeds): from this prior's features the 16-channel stage
saved +0.65 points more rate than from the identity on average over ten points of four
photos at 0.5–1.5 bpp (better at all ten, +0.13 … +1.20). Priors for 8 channels, tried at
0.25 bpp, gained nothing on average, so there is one for 16 channels only. End to end the
gain did not show (docs/codec.md, "A shipped start, again"), so the encoder uses the prior
only with coefficients.STAGE_FROM_PRIOR (off by default; `benchmarks.codec_stage --prior on`).

The pairs: the photographs of `upscale_prior.PHOTO_SETS` ("lomiri" and "wallpapers", from
Debian's packages), each scaled to 768 pixels on its longer side (Kodak's scale), its
centre 320×224 coded by `compact` without a stage at each rate; the decode the stage
trains on (without the restoration filter) and the photo, at the rates of `RATES` for
its width (the encoder gives 16 channels to larger files: coefficients.stage_hidden).

    python -m mhinr.model.stage_prior [--steps N]     # writes the files, prints their hashes
"""

import argparse
import hashlib
import math
import os
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.numpy import load as st_load
from safetensors.numpy import save as st_save

from mhinr.model import synthesis

HERE = Path(__file__).parent
# the stage's hidden channels → its file beside this module and that file's SHA-256
PRIORS = {
    16: (
        "stage_prior_h16.safetensors",
        "5606c113f2044d0db1222098ebd785628728436936cd0357a9b3ce4dd8654c35",
    )
}
RATES = {16: (0.5, 1.0, 1.5)}  # bits a pixel of the pairs each prior learns from
FEATURES = ("inner.weight", "inner.bias", "mix.weight", "mix.bias")  # what a prior holds
STEPS = 30_000  # each prior's training steps (synthesis.BATCH crops each, Adam, cosine)
CROP = (224, 320)  # the part of each photo coded (rows, columns)


class StagePriorError(ValueError):
    """A shipped prior's bytes are not the ones `PRIORS` names."""


@lru_cache(maxsize=len(PRIORS))
def _tensors(hidden: int) -> dict[str, np.ndarray]:
    name, sha = PRIORS[hidden]
    data = (HERE / name).read_bytes()
    if hashlib.sha256(data).hexdigest() != sha:
        raise StagePriorError(f"{name} is not the stage prior mhinr was built with")
    return st_load(data)


def load(hidden: int, channels: int = 3) -> synthesis.Stage | None:
    """A fresh stage of `hidden` channels with the prior's features and Stage's zero output
    layer (the identity), or None where there is no prior (another width, a grey image:
    the prior is for RGB decodes)."""
    if hidden not in PRIORS or channels != 3:
        return None
    net = synthesis.Stage(channels, hidden)
    tensors = _tensors(hidden)
    with torch.no_grad():
        for key, p in net.named_parameters():
            if key in FEATURES:
                p.copy_(torch.from_numpy(tensors[key].copy()))
    return net


# --- training (offline) -----------------------------------------------------------------------


def _crop(photo: torch.Tensor) -> torch.Tensor:
    """A photo ([3, H, W] in [0, 1]) at Kodak's scale: 768 pixels on its longer side
    (Lanczos), then its centre CROP."""
    from PIL import Image

    u8 = (photo.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    im = Image.fromarray(u8)
    s = 768 / max(im.size)
    im = im.resize((round(im.size[0] * s), round(im.size[1] * s)), Image.Resampling.LANCZOS)
    (ch, cw), (w, h) = CROP, im.size
    im = im.crop(((w - cw) // 2, (h - ch) // 2, (w - cw) // 2 + cw, (h - ch) // 2 + ch))
    return torch.from_numpy(np.asarray(im).copy()).permute(2, 0, 1).float() / 255


def pairs(photo: torch.Tensor, bpps: tuple[float, ...]) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """(decode without the restoration filter, original) at each of `bpps`, for a photo."""
    from mhinr.model.compress import Options, compress_sweep  # (it imports this module)
    from mhinr.model.ratecontrol import Target
    from mhinr.model.render import render

    original = _crop(photo)
    h, w = original.shape[1:]
    targets = [Target(max_bytes=int(b * h * w / 8)) for b in bpps]
    outs = compress_sweep(original, "RGB", Options(preset="compact", steps=0), targets)
    found = []
    for out in outs:
        out.net.post_filter = None
        found.append((render(out.net, (h, w)).float() / 255, original))
    return found


def train(data: list[tuple[torch.Tensor, torch.Tensor]], hidden: int, steps: int) -> dict:
    """A stage of `hidden` channels trained on crops of the (decode, original) pairs `data`
    (each of a step's synthesis.BATCH crops from a pair drawn at random), Adam with
    synthesis.LR decayed by a cosine; its FEATURES."""
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(0)
    net = synthesis.Stage(3, hidden)
    net = net.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    opt = torch.optim.Adam(net.parameters(), lr=synthesis.LR, fused=True)
    for step in range(steps):
        for group in opt.param_groups:
            group["lr"] = synthesis.LR * 0.5 * (1 + math.cos(math.pi * step / steps))
        drawn = torch.randint(0, len(data), (synthesis.BATCH,), generator=gen).tolist()
        crops = [synthesis.random_crops(gen, *data[i]) for i in drawn]
        x = torch.cat([c[0][:1] for c in crops]).contiguous(memory_format=torch.channels_last)
        y = torch.cat([c[1][:1] for c in crops])
        loss = F.mse_loss(net(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return {k: net.state_dict()[k].detach().contiguous().numpy() for k in FEATURES}


def _pairs_of(photo: torch.Tensor, bpps: tuple[float, ...]) -> list:
    torch.set_num_threads(1)  # one photo a core
    return pairs(photo, bpps)


def main() -> None:
    from multiprocessing import Pool

    from mhinr.model.upscale_prior import photo_set

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=STEPS)
    ap.add_argument("--out", type=Path, default=HERE)
    args = ap.parse_args()
    photos = photo_set("lomiri") + photo_set("wallpapers")
    cores = len(os.sched_getaffinity(0))
    torch.set_flush_denormal(True)
    for hidden, (name, _) in PRIORS.items():
        with Pool(cores) as pool:
            found = pool.starmap(_pairs_of, [(p, RATES[hidden]) for p in photos])
        torch.set_num_threads(cores)
        data = [p for per_photo in found for p in per_photo]
        blob = st_save(train(data, hidden, args.steps), metadata={"steps": str(args.steps)})
        (args.out / name).write_bytes(blob)
        print(f"{name}: sha256 {hashlib.sha256(blob).hexdigest()}", flush=True)


if __name__ == "__main__":
    main()
