"""Probe: a deblocking filter at the cosine codec's cell borders, decoder-side, no bytes.

At low rates a `fast` or `compact` file shows its cells as blocks (astronaut at 0.15 bpp:
every 16-pixel cell of the face), and that is where AVIF is ahead (results/gap_by_rate.md:
−0.3 to −0.4 dB at 0.15–0.5 bpp on average, +0.25 to +0.7 at 1–1.5). Here each border
between two cells is smoothed across: the step between the two pixels beside it, less the
gradient on either side, is spread as a linear ramp over L pixels on each side, where the
step (its largest channel) is at most T levels (larger steps are taken for edges of the
picture). The encoder would try a few (L, T) and send the best in a byte; the grid below is
that search. Measured on `fast` files (no stage): the decode before the restoration filter,
deblocked or not, then a restoration filter solved again on it (postfilter.solve; its ~290
bytes are not priced here: the file at 0.15 bpp leaves it out because they do not pay).

    python -m benchmarks.deblock_probe --images astronaut,kodim05,kodim23,coffee
"""

import argparse

import numpy as np
import torch

from benchmarks.bd_rate import load
from benchmarks.common import machine, write_result
from mhinr.model.codec import postfilter
from mhinr.model.compress import Options, compress_sweep
from mhinr.model.render import render


def deblock(x: np.ndarray, n: int, ramp: int, most: float, axis: int) -> np.ndarray:
    """`x` [C, H, W] (0 … 255, float) with the borders of its n-pixel cells along `axis`
    (2: the vertical borders, 1: the horizontal ones) smoothed (module docstring)."""
    x = np.moveaxis(x, axis, 2).copy()
    w = x.shape[2]
    share = (1 - (np.arange(ramp) + 0.5) / ramp) / 2  # nearest pixel first
    for b in range(n, w - ramp + 1, n):
        if b < max(ramp, 2):
            continue
        p0, p1, q0, q1 = x[:, :, b - 1], x[:, :, b - 2], x[:, :, b], x[:, :, b + 1]
        step = (q0 - p0) - ((p0 - p1) + (q1 - q0)) / 2
        step = np.where(np.abs(step).max(0, keepdims=True) <= most, step, 0)
        for i in range(ramp):
            x[:, :, b - 1 - i] += step * share[i]
            x[:, :, b + i] -= step * share[i]
    return np.moveaxis(x, 2, axis)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(10 * np.log10(255**2 / ((a - b) ** 2).mean()))


def filtered(decoded: np.ndarray, original: np.ndarray) -> np.ndarray:
    """`decoded` after a restoration filter solved for it (as the encoder would)."""
    f = postfilter.solve(
        torch.from_numpy(decoded / 255).float(), torch.from_numpy(original / 255).float()
    )
    u8 = torch.from_numpy(np.clip(np.round(decoded), 0, 255).astype(np.uint8))
    return postfilter.apply_u8(u8, f).numpy().astype(float)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", default="astronaut,kodim05,kodim23,coffee")
    ap.add_argument("--bpps", default="0.15,0.25,0.5")
    ap.add_argument("--out", default="deblock_probe")
    a = ap.parse_args()
    torch.set_num_threads(2)
    bpps = [float(b) for b in a.bpps.split(",")]
    rows = []
    for name in a.images.split(","):
        img = load(name)
        h, w = img.pixels.shape[1:]
        original = (np.asarray(img.pixels) * 255).round().astype(float)
        targets = [{"max_bytes": int(b * h * w / 8)} for b in bpps]
        for o in compress_sweep(img.pixels, img.mode, Options(preset="fast"), targets):
            net, n = o.net, o.net.cfg.cell[0]
            kept, net.post_filter = net.post_filter, None
            decoded = render(net, (h, w)).numpy().astype(float)
            net.post_filter = kept
            plain, refit = psnr(decoded, original), psnr(filtered(decoded, original), original)
            best_raw, best = (-9.0, 0, 0), (-9.0, 0, 0)
            for ramp in sorted({2, 4, n // 2}):
                for most in (8, 16, 32, 255):
                    d = deblock(deblock(decoded, n, ramp, most, 2), n, ramp, most, 1)
                    best_raw = max(best_raw, (psnr(d, original) - plain, ramp, most))
                    best = max(best, (psnr(filtered(d, original), original) - refit, ramp, most))
            rows.append(
                f"| {name} | {o.bpp:.3f} | {n} | {o.psnr:.2f} | {'no' if kept is None else 'yes'}"
                f" | {plain:.2f} | {best_raw[0]:+.3f} (L {best_raw[1]}, T {best_raw[2]})"
                f" | {refit:.2f} | {best[0]:+.3f} (L {best[1]}, T {best[2]}) |"
            )
            print(rows[-1], flush=True)
    text = "\n".join(
        [
            "# A deblocking filter at the cell borders (probe)",
            "",
            f"`python -m benchmarks.deblock_probe --images {a.images} --bpps {a.bpps}`"
            f" — {machine()}."
            " `fast` files; dB against the original (RGB). *deblocked*: the best (L, T) of the"
            " grid on the decode without a restoration filter; *then filtered*: a filter solved"
            " again after deblocking, against one solved on the plain decode (unpriced: see the"
            " module docstring).",
            "",
            "| image | bpp | cell | file dB | file has a filter | decode without filter"
            " | deblocked | with a filter solved on it | deblocked, then filtered |",
            "|---|---|---|---|---|---|---|---|---|",
            *rows,
        ]
    )
    write_result(f"{a.out}.md", text + "\n")


if __name__ == "__main__":
    main()
