"""Probe: a trained ReLU stage on top of a compact decode (development only)."""

import argparse
import math
import time

import numpy as np
import torch
import torch.nn.functional as F

from benchmarks.bd_rate import load
from mhinr.model import entropy
from mhinr.model.compress import Options, compress_sweep
from mhinr.model.metrics import psnr
from mhinr.model.render import render


class Stage(torch.nn.Module):
    def __init__(self, c, hidden, pos, cell):
        super().__init__()
        self.pos, self.cell = pos, cell
        cin = c + (2 if pos else 0)
        self.a = torch.nn.Conv2d(cin, hidden, 3)
        self.b = torch.nn.Conv2d(hidden, hidden, 1)
        self.c = torch.nn.Conv2d(hidden, c, 3)
        torch.nn.init.zeros_(self.c.weight)
        torch.nn.init.zeros_(self.c.bias)

    def forward(self, x, p=None):
        inp = x if p is None else torch.cat([x, p], 1)
        h = F.relu(self.a(F.pad(inp, (1, 1, 1, 1), mode="replicate")))
        h = F.relu(self.b(h))
        return x + self.c(F.pad(h, (1, 1, 1, 1), mode="replicate"))


def pos_maps(h, w, cell):
    ys = ((torch.arange(h) % cell) + 0.5) / cell * 2 - 1
    xs = ((torch.arange(w) % cell) + 0.5) / cell * 2 - 1
    return torch.stack([ys[:, None].expand(h, w), xs[None, :].expand(h, w)])[None]


def quantized_bytes(net, levels=127):
    ints, total = [], 0
    with torch.no_grad():
        for p in net.parameters():
            a = p.detach()
            if a.ndim == 4:
                scale = a.abs().amax(dim=(1, 2, 3), keepdim=True) / levels
                scale = torch.where(scale == 0, torch.ones_like(scale), scale).half().float()
                q = torch.round(a / scale)
                p.copy_(q * scale)
                ints.append(q.flatten().numpy().astype(np.int64))
                total += 2 * scale.numel()
            else:
                q = torch.round(a * 1024)
                p.copy_(q / 1024)
                ints.append(q.numpy().astype(np.int64))
    return total + len(entropy.encode_values(np.concatenate(ints)))


def train(dec, pix, hidden, pos, cell, seconds, crop=128, batch=4, lr=3e-3):
    torch.manual_seed(0)
    c, h, w = dec.shape
    net = Stage(c, hidden, pos, cell)
    pm = pos_maps(h, w, cell) if pos else None
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    t0, step = time.perf_counter(), 0
    while time.perf_counter() - t0 < seconds:
        frac = (time.perf_counter() - t0) / seconds
        for g in opt.param_groups:
            g["lr"] = lr * 0.5 * (1 + math.cos(math.pi * frac))
        ys = torch.randint(0, h - crop + 1, (batch,))
        xs = torch.randint(0, w - crop + 1, (batch,))
        x = torch.stack(
            [dec[:, y : y + crop, x0 : x0 + crop] for y, x0 in zip(ys, xs, strict=True)]
        )
        t = torch.stack(
            [pix[:, y : y + crop, x0 : x0 + crop] for y, x0 in zip(ys, xs, strict=True)]
        )
        p = None
        if pos:
            p = torch.cat(
                [pm[:, :, y : y + crop, x0 : x0 + crop] for y, x0 in zip(ys, xs, strict=True)]
            )
        loss = F.mse_loss(net(x, p), t)
        opt.zero_grad()
        loss.backward()
        opt.step()
        step += 1
    return net, step, pm


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", default="kodim23,kodim05,coffee")
    ap.add_argument("--bpps", default="0.25,0.5,1.0")
    ap.add_argument("--seconds", type=float, default=30)
    ap.add_argument("--variants", default="8:0,16:0,16:1")
    ap.add_argument("--levels", type=int, default=127)
    ap.add_argument("--crop", type=int, default=128)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--lr", type=float, default=3e-3)
    a = ap.parse_args()
    torch.set_num_threads(2)
    bpps = [float(b) for b in a.bpps.split(",")]
    for name in a.images.split(","):
        img = load(name)
        pixels, mode = img.pixels, img.mode
        h, w = pixels.shape[1:]
        outs = compress_sweep(
            pixels,
            mode,
            Options(preset="compact"),
            [{"max_bytes": int(b * h * w / 8)} for b in bpps],
        )
        curve = [(o.bytes, o.psnr) for o in outs]
        for o in outs:
            dec = render(o.net, (h, w)).float() / 255
            cell = o.net.cfg.cell[0]
            base = psnr(dec, pixels)
            for v in a.variants.split(","):
                hid, pos = (int(x) for x in v.split(":"))
                net, steps, pm = train(
                    dec, pixels, hid, pos, cell, a.seconds, a.crop, a.batch, a.lr
                )
                with torch.no_grad():
                    fl = psnr(net(dec[None], pm)[0].clamp(0, 1), pixels)
                    nb = quantized_bytes(net, a.levels)
                    ql = psnr(net(dec[None], pm)[0].clamp(0, 1), pixels)
                # rate the untrained curve needs for ql (log-linear interpolation)
                r = np.interp(ql, [p for _, p in curve], [math.log(b) for b, _ in curve])
                saving = 100 * ((o.bytes + nb) / math.exp(r) - 1)
                print(
                    f"{name} {o.bpp:.3f}bpp cell{cell} base {base:.2f} h{hid} pos{pos} "
                    f"steps {steps} float +{fl - base:.3f} int8 +{ql - base:.3f} "
                    f"bytes {nb} ({100 * nb / o.bytes:.1f}%) rate {saving:+.1f}%",
                    flush=True,
                )


if __name__ == "__main__":
    main()
