"""Rate control and the result of a compression: targets (PSNR, bytes, bpp), whether a file
meets one, which of two files is better for it, and the measured result of a file.

Every number a result reports is measured on the real bytes, decoded (`finish`).
"""

import math
from dataclasses import dataclass, field
from typing import TypedDict

from torch import Tensor

from mhinr.model.codec import Coded, decode
from mhinr.model.metrics import psnr, render_flops, ssim
from mhinr.model.network import MultiHeadINR
from mhinr.model.presets import Options
from mhinr.model.render import render
from mhinr.model.upscale import UpscaleINR


class Target(TypedDict, total=False):
    """What a file must reach: nothing (the preset's default quality), a PSNR, or a byte
    limit (`bpp` is kept beside the byte limit it was turned into)."""

    psnr: float
    max_bytes: int
    bpp: float


@dataclass
class Compressed:
    data: bytes
    net: MultiHeadINR | UpscaleINR
    coded: Coded
    psnr: float
    ssim: float
    seconds: float
    met: bool | None  # None: no target was given
    target: Target = field(default_factory=lambda: Target())
    train_steps: int | None = None
    # the coefficient codec's trained stage (model/coefficients.py `_staged`): its steps,
    # seconds, bytes, multiplications a pixel and whether the file kept it; None: not tried
    stage: dict | None = None
    # the upscaler's training and held-out check (model/upscale.py); None: not an upscaler
    upscale: dict | None = None

    @property
    def bytes(self) -> int:
        return len(self.data)

    @property
    def bpp(self) -> float:
        return 8 * len(self.data) / (self.coded.height * self.coded.width)

    def render_flops(self) -> int:
        """FLOPs of the network's own part of a native-size render (upscale: one ×2 pixel)."""
        if isinstance(self.net, UpscaleINR):
            return self.net.flops_per_pixel() * self.coded.height * self.coded.width * 4
        return render_flops(self.net, self.net.cfg.cell[0] * self.net.cfg.cell[1])

    def summary(self) -> dict:
        arch: dict[str, object]
        if isinstance(self.net, UpscaleINR):  # one head per pixel; "alpha" = the head size
            cfg = self.net.cfg
            arch = {
                "heads": [self.coded.height, self.coded.width],
                "alpha": cfg.hidden,
                "body": f"upscaler: encoder {cfg.layers}x{cfg.features}, body 2x{cfg.hidden}",
            }
        else:
            icfg = self.net.cfg
            arch = {
                "heads": list(icfg.heads),
                "cell": list(icfg.cell),  # pixels a head covers (rows, columns)
                "alpha": icfg.alpha,
                "body": f"{icfg.body} {icfg.depth}x{icfg.width}",
            }
        return {
            "psnr": _finite(self.psnr),
            "ssim": round(self.ssim, 5),
            "bytes": self.bytes,
            "bpp": round(self.bpp, 4),
            "params": self.net.parameter_count(),
            "seconds": round(self.seconds, 2),
            "width": self.coded.width,
            "height": self.coded.height,
            "storage": self.coded.storage,
            "quantization": self.coded.quantization if self._has_weights() else None,
            **arch,
            "train_steps": self.train_steps,
            "target": self.target or None,
            "met": self.met,
            "target_outcome": self.outcome(),
            "stage": self.stage,
            "upscale": self.upscale,
        }

    def _has_weights(self) -> bool:
        """Whether the file stores quantized weights (the cosine body has none)."""
        return isinstance(self.net, UpscaleINR) or self.net.cfg.body != "cosine"

    def outcome(self) -> str | None:
        """The target's outcome in words (None without a target): met, or what the file
        reached instead and why."""
        t = self.target
        if not t:
            return None
        # the PSNR as the metrics report it (to 0.001 dB), so that the two never disagree
        # in the second decimal (22.42497 would read 22.42 here and 22.425 there)
        db = _finite(self.psnr) or self.psnr
        reached = f"{self.bytes:,} bytes at {db:.2f} dB"
        if "psnr" in t:
            if self.met:
                return f"met: {db:.2f} dB (target {t['psnr']:g} dB) in {self.bytes:,} bytes"
            return (
                f"not met: {db:.2f} dB, below the {t['psnr']:g} dB asked; the best "
                f"quality this preset reaches on this image ({reached})"
            )
        limit = f"{t['max_bytes']:,} bytes" + (f" ({t['bpp']:g} bpp)" if "bpp" in t else "")
        if self.met:
            return f"met: {reached}, within {limit}"
        return (
            f"not met: the smallest file this preset makes of this image is "
            f"{self.bytes:,} bytes ({db:.2f} dB), over the {limit} asked"
        )


def _finite(db: float) -> float | None:
    """PSNR for JSON: None where the decoded image is exact (infinite PSNR)."""
    return round(db, 3) if math.isfinite(db) else None


def target_of(opt: Options, h: int, w: int) -> Target:
    if opt.target_psnr is not None:
        return {"psnr": opt.target_psnr}
    if opt.max_bytes is not None:
        return {"max_bytes": opt.max_bytes}
    if opt.bpp is not None:
        return {"max_bytes": int(opt.bpp * h * w / 8), "bpp": opt.bpp}
    return {}


def meets(target: Target, quality: float, size: int) -> bool | None:
    if "psnr" in target:
        return quality >= target["psnr"]
    if "max_bytes" in target:
        return size <= target["max_bytes"]
    return None


def finish(data: bytes, pixels: Tensor, target: Target, with_ssim: bool = True, **kw) -> Compressed:
    """Decode the real bytes and measure them: every reported number is the file's."""
    net, coded = decode(data)
    out = render(net, (coded.height, coded.width))
    q = psnr(out, pixels)
    s = ssim(out, pixels) if with_ssim else float("nan")
    return Compressed(data, net, coded, q, s, 0.0, meets(target, q, len(data)), target, **kw)


def better(a: Compressed, b: Compressed, target: Target) -> bool:
    if a.met != b.met:
        return bool(a.met)
    if "psnr" in target:  # both met or both missed: fewer bytes if met, else higher quality
        return a.bytes < b.bytes if a.met else a.psnr > b.psnr
    if "max_bytes" in target and not a.met:  # both over the limit: the closer to it
        return a.bytes < b.bytes
    return a.psnr > b.psnr


def boundary(
    g,
    x0: float,
    lo: float,
    hi: float,
    ok_below: bool,
    x_tol: float,
    g_tol: float,
    slope: float,
    max_evals: int = 16,
) -> tuple[float | None, float, int]:
    """Where a decreasing function `g` of x in [lo, hi] crosses zero, from the side where a
    target holds (`ok_below`: g ≥ 0, at x left of the root; else g ≤ 0, right of it): the x
    on that side closest to the root that was evaluated, found by regula falsi on a bracket
    (each new point kept at least a tenth of the bracket from its ends, so the bracket
    shrinks whatever g's shape), the first bracket found by extrapolating from `x0` with
    the slope of the last two points (`slope` at first). It stops when the bracket is
    narrower than `x_tol` or a point on the ok side has |g| ≤ `g_tol`.
    Returns (that x or None if no evaluated point was on the ok side, the end of [lo, hi]
    nearest the root's side when none was, the evaluations made). A smooth g (bytes or PSNR
    against log(step)) takes 3–6 evaluations where bisection of [lo, hi] took 10."""
    left: tuple[float, float] | None = None  # the largest x evaluated with g ≥ 0 …
    right: tuple[float, float] | None = None  # … and the smallest with g < 0
    last: list[tuple[float, float]] = []
    x, evals = min(hi, max(lo, x0)), 0
    while evals < max_evals:
        v = g(x)
        evals += 1
        last = [*last[-1:], (x, v)]
        if v >= 0 and (left is None or x > left[0]):
            left = (x, v)
        if v < 0 and (right is None or x < right[0]):
            right = (x, v)
        ok = left if ok_below else right
        if ok is not None and abs(ok[1]) <= g_tol:
            break
        if left is not None and right is not None:
            width = right[0] - left[0]
            if width <= x_tol:
                break
            guess = left[0] + width * left[1] / (left[1] - right[1])
            x = min(right[0] - width / 10, max(left[0] + width / 10, guess))
            continue
        if len(last) == 2 and last[0][0] != last[1][0] and last[0][1] != last[1][1]:
            slope = min(-1e-3, (last[1][1] - last[0][1]) / (last[1][0] - last[0][0]))
        if (left is None and x <= lo) or (right is None and x >= hi):
            break  # the root lies beyond the range
        step = max(-2.0, min(2.0, -v / slope))  # toward the root, a bounded jump
        step = step if abs(step) > x_tol else (x_tol if v >= 0 else -x_tol)  # g ≥ 0: go right
        x = min(hi, max(lo, x + step))
    ok = left if ok_below else right
    if ok is not None:
        return ok[0], ok[0], evals
    return None, (lo if ok_below else hi), evals
