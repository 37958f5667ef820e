"""Probe: coded latents the trained stage reads (issue 22's "coded latents the stage reads").

For each image and bpp target, the best untrained `compact` file (steps=0); on its decode
without the restoration filter (as `compact`'s stage is trained), two stages one after the
other at the same step count:

* ``base``: today's stage (model/synthesis.py), priced as `benchmarks.stage_probe` prices it;
* ``zK:gN``: the same network whose first layer also reads K latent channels, a grid of one
  value a channel per N×N pixels, bilinearly interpolated to every pixel. The latents are
  learnt with the network under D + λR in the manner of Cool-chic / C3: uniform noise for
  the first part of the steps, then straight-through rounding; R is their code length under
  one Laplace a channel (learnt scale); λ is the file's own R–D slope, so that the training
  trades bytes for dB at the rate the file's quantizer does. The latents are then rounded
  and range-coded (entropy.encode_values, one Laplace table a channel: real bytes).

Rate saved = 1 − 2^(−gain/slope) − Δbytes/bytes, as in stage_probe.

    python -m benchmarks.latent_probe --images kodim05 --bpps 0.25,0.5 --variants base,z2:g16
"""

import argparse
import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from benchmarks.stage_probe import rate_saved, untrained_files
from mhinr.model import synthesis
from mhinr.model.codec import entropy, stage_bytes
from mhinr.model.images import to_uint8
from mhinr.model.metrics import psnr


class LatentStage(torch.nn.Module):
    """The stage's three layers, the first over the image and K interpolated latents."""

    def __init__(self, channels: int, k: int, grid: tuple[int, int], hidden: int, latent_step):
        super().__init__()
        self.channels, self.k, self.hidden = channels, k, hidden
        self.inner = torch.nn.Conv2d(channels + k, hidden, 3)
        self.mix = torch.nn.Conv2d(hidden, hidden, 1)
        self.out = torch.nn.Conv2d(hidden, channels, 3)
        self.z = torch.nn.Parameter(torch.zeros(k, *grid))
        self.log_b = torch.nn.Parameter(torch.zeros(k))  # the Laplace scales, in steps
        self.step = latent_step  # the latents' value a quantizer step stands for
        with torch.no_grad():
            self.inner.weight -= self.inner.weight.mean(dim=(2, 3), keepdim=True)
            assert self.inner.bias is not None and self.out.bias is not None
            self.inner.bias.uniform_(-0.01, 0.01)
            self.out.weight.zero_()
            self.out.bias.zero_()

    def layers(self) -> list[torch.nn.Conv2d]:
        return [self.inner, self.mix, self.out]

    def forward(self, x: Tensor, zq: Tensor, box: tuple[int, int, int, int] | None) -> Tensor:
        """x: [B, C, h, w] crops at `box` offsets … or the whole image (box None, B = 1)."""
        _, _, h_all, w_all = self.full
        up = F.interpolate(
            zq[None] * self.step, size=(h_all, w_all), mode="bilinear", align_corners=False
        )[0]
        if box is None:
            lat = up[None]
        else:
            ys, xs, ch, cw = box
            lat = torch.stack([up[:, a : a + ch, b : b + cw] for a, b in zip(ys, xs, strict=True)])
        inp = torch.cat([x - 0.5, lat], 1)
        h = F.relu(self.inner(F.pad(inp, (1, 1, 1, 1), mode="replicate")))
        h = F.relu(self.mix(h))
        return x + self.out(F.pad(h, (1, 1, 1, 1), mode="replicate"))

    def bits(self, zq: Tensor) -> Tensor:
        """The latents' code length in bits under one discretised Laplace a channel."""
        b = self.log_b.exp()[:, None, None].clamp_min(0.05)
        upper = _laplace_cdf((zq + 0.5) / b)
        lower = _laplace_cdf((zq - 0.5) / b)
        return -torch.log2((upper - lower).clamp_min(1e-9)).sum()


def _laplace_cdf(t: Tensor) -> Tensor:
    return torch.where(t < 0, 0.5 * torch.exp(t.clamp(max=0)), 1 - 0.5 * torch.exp(-t.clamp(min=0)))


def train_latent(x_all, y_all, k, cell, steps, lam, hidden, seed=0, step=0.1):
    """(the net, the rounded latents) trained on D (dB) + lam · bytes."""
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    c, h, w = x_all.shape
    grid = (-(-h // cell), -(-w // cell))
    net = LatentStage(c, k, grid, hidden, step)
    net.full = (1, c, h, w)
    net_params = [p for n, p in net.named_parameters() if n not in ("z", "log_b")]
    opt = torch.optim.Adam(
        [{"params": net_params, "lr": synthesis.LR}, {"params": [net.z, net.log_b], "lr": 2e-2}]
    )
    base_lr = [g["lr"] for g in opt.param_groups]
    crop_y, crop_x = min(synthesis.CROP, h), min(synthesis.CROP, w)
    for i in range(steps):
        frac = i / steps
        for g, lr in zip(opt.param_groups, base_lr, strict=True):
            g["lr"] = lr * 0.5 * (1 + math.cos(math.pi * frac))
        ys = torch.randint(0, h - crop_y + 1, (synthesis.BATCH,), generator=gen).tolist()
        xs = torch.randint(0, w - crop_x + 1, (synthesis.BATCH,), generator=gen).tolist()
        x = torch.stack(
            [x_all[:, a : a + crop_y, b : b + crop_x] for a, b in zip(ys, xs, strict=True)]
        )
        y = torch.stack(
            [y_all[:, a : a + crop_y, b : b + crop_x] for a, b in zip(ys, xs, strict=True)]
        )
        if frac < 0.7:
            zq = net.z + torch.rand_like(net.z) - 0.5
        else:
            zq = net.z + (torch.round(net.z) - net.z).detach()
        out = net(x, zq, (ys, xs, crop_y, crop_x))
        mse = F.mse_loss(out, y)
        loss = 10 * torch.log10(mse) + lam * net.bits(zq) / 8
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    with torch.no_grad():
        zq = torch.round(net.z)
        ints, scales = [], []
        for conv in net.layers():
            values, q, scale = synthesis._quantized_rows(conv, synthesis.LEVELS)
            synthesis._load_rows(conv, values)
            ints.append(q.flatten().numpy().astype(np.int64))
            scales.append(scale.flatten().numpy())
    weight_bytes = len(entropy.encode_values(np.concatenate(ints))) + 2 * sum(map(len, scales))
    latent_bytes = sum(
        len(entropy.encode_values(zq[j].flatten().numpy().astype(np.int64))) for j in range(k)
    )
    return net.eval(), zq, weight_bytes + 4, latent_bytes


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", default="kodim05")
    ap.add_argument("--bpps", default="0.25,0.5")
    ap.add_argument("--steps", type=int, default=6000)
    ap.add_argument("--variants", default="base,z2:g16")
    a = ap.parse_args()
    torch.set_num_threads(2)
    bpps = [float(b) for b in a.bpps.split(",")]
    for name in a.images.split(","):
        img, files = untrained_files(name, bpps)
        pixels = img.pixels
        h = pixels.shape[1]
        for o, slope, filt_bytes, _, before in files:
            x = to_uint8(before).float() / 255
            for v in a.variants.split(","):
                parts = v.split(":")
                opts = {p[0]: float(p[1:]) for p in parts[1:]}
                hidden = int(opts.get("h", synthesis.HIDDEN))
                if parts[0] == "base":
                    net, _ = synthesis.train(x, pixels, 1e9, a.steps, hidden=hidden)
                    with torch.no_grad():
                        q = psnr(
                            synthesis.apply_u8(to_uint8(x), net, band_rows=h).float() / 255, pixels
                        )
                    extra, detail = len(stage_bytes(net)), ""
                else:
                    k, cell = int(parts[0][1:]), int(opts.get("g", 16))
                    lam = slope / (o.bytes * math.log(2))  # dB a byte at this point
                    lam *= opts.get("l", 1.0)
                    net, zq, wb, lb = train_latent(
                        x, pixels, k, cell, a.steps, lam, hidden, step=opts.get("s", 0.1)
                    )
                    with torch.no_grad():
                        y = net(x[None], zq, None)[0]
                        q = psnr(to_uint8(y.clamp(0, 1)).float() / 255, pixels)
                    extra = wb + lb
                    detail = f" (weights {wb} B, latents {lb} B, {zq.abs().mean():.2f} mean |z|)"
                gain = q - o.psnr
                extra -= filt_bytes
                saved = rate_saved(gain, extra, o.bytes, slope)
                print(
                    f"{name} {o.bpp:.3f} bpp cell {o.net.cfg.cell[0]} {o.psnr:.2f} dB "
                    f"({o.bytes} B, {slope:.2f} dB/oct) {v}: {gain:+.3f} dB, {extra:+d} B"
                    f"{detail}, rate saved {saved:+.1f} %",
                    flush=True,
                )


if __name__ == "__main__":
    main()
