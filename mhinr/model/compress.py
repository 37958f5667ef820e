"""Image → .inr bytes: presets, the fit, quantization and rate control.

Presets (measured on Kodak by benchmarks/rate_distortion.py; see the README):

* ``paper``: the paper's network (64² heads, α=64, body 4×256), the paper's 2000-step
  Adam schedule, weights stored fp32. Large files: the paper is not a compressor.
* ``compact``: transform-coded heads (model/codec.py) on 8×8-pixel cells, a depth-2 ReLU
  body trained by variable projection, int8 body, per-image colour transform; the
  architecture is searched over a few widths and the quantizer step set to meet the target.
* ``fast``: the compact method with one architecture and a short fit (a few seconds).
* ``upscale``: not a compressor but an enlarger: an arbitrary-scale INR trained on the
  image's own downscaled copies (model/upscale.py); the file holds the image and the network.

A target is one of ``target_psnr`` (dB), ``max_bytes`` or ``bpp``; without one, each preset
has a default quality. The result says whether the target was met.
"""

import copy
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np
import torch
from torch import Tensor

from mhinr.model.codec import (
    Coded,
    Quantization,
    decode,
    dequantize,
    encode_coefficients,
    encode_upscale,
    encode_weights,
    quantize,
)
from mhinr.model.fit import (
    FitConfig,
    Progress,
    fit,
    fit_projection,
    prepare_target,
    projection_basis,
    solve_heads,
)
from mhinr.model.images import to_uint8
from mhinr.model.metrics import psnr, render_flops, ssim
from mhinr.model.network import (
    BodyKind,
    ModelKind,
    MultiHeadINR,
    assemble,
    build_network,
    split_cells,
)
from mhinr.model.render import render
from mhinr.model.upscale import MAX_PIXELS as UPSCALE_MAX_PIXELS
from mhinr.model.upscale import MIN_SIDE as UPSCALE_MIN_SIDE
from mhinr.model.upscale import UpscaleConfig, UpscaleFit, UpscaleINR, fit_upscaler

PRESETS = ("paper", "compact", "fast", "upscale")
MIN_SIDE = 11  # smallest side of the codec presets: the SSIM window (model.metrics.ssim)
DEFAULT_STEP = 0.1  # coefficient quantizer step without a target (≈ 35 dB on Kodak)
DEADZONE = 0.2  # rounding offset towards zero: cheaper zeros for a little more error


@dataclass(frozen=True)
class Arch:
    cell: int | None = None  # pixels per cell side (coefficients) …
    heads: tuple[int, int] | None = None  # … or a heads grid (weights)
    width: int = 32
    depth: int = 2
    alpha: int | None = None  # None: α = width
    body: BodyKind = "relu"


@dataclass(frozen=True)
class Options:
    preset: str = "compact"
    model: ModelKind = "multihead"
    heads: tuple[int, int] | None = None
    alpha: int | None = None
    width: int | None = None
    depth: int | None = None
    body: BodyKind | None = None
    steps: int | None = None
    target_psnr: float | None = None
    max_bytes: int | None = None
    bpp: float | None = None
    time_budget_s: float | None = None
    quantization: Quantization | None = None
    seed: int = 0
    device: str = "cpu"  # where the fit runs; coding is always on the CPU

    def __post_init__(self) -> None:
        if self.preset not in PRESETS:
            raise ValueError(f"unknown preset {self.preset!r}: {', '.join(PRESETS)}")
        if sum(x is not None for x in (self.target_psnr, self.max_bytes, self.bpp)) > 1:
            raise ValueError("give at most one of target_psnr, max_bytes and bpp")
        for name in ("alpha", "width", "depth", "max_bytes"):
            v = getattr(self, name)
            if v is not None and v < 1:
                raise ValueError(f"{name} must be at least 1, got {v}")
        if self.steps is not None and self.steps < 0:
            raise ValueError(f"steps must be 0 or more, got {self.steps}")
        if self.heads is not None and min(self.heads) < 1:
            raise ValueError("heads must be at least 1 on each axis")
        if self.alpha is not None and self.width is not None and self.alpha > self.width:
            raise ValueError(f"alpha={self.alpha} cannot exceed width={self.width}")
        if (
            self.bpp is not None
            and self.bpp <= 0
            or self.target_psnr is not None
            and self.target_psnr <= 0
        ):
            raise ValueError("targets must be positive")
        if self.quantization not in (None, "fp32", "fp16", "int8"):
            raise ValueError(f"unknown quantization {self.quantization!r}: fp32, fp16 or int8")
        if self.preset == "upscale":
            if self.target_psnr is not None or self.max_bytes is not None or self.bpp is not None:
                raise ValueError("the upscale preset stores the image exactly: it takes no target")
            given = [
                name
                for name in ("heads", "alpha", "quantization", "body")
                if getattr(self, name) is not None
            ] + (["model"] if self.model != "multihead" else [])
            if given:
                raise ValueError(
                    f"the upscale preset takes steps, width (head size), depth (encoder "
                    f"layers), time_budget_s and seed, not {', '.join(given)}"
                )

    @property
    def storage(self) -> str:
        """Weights for the paper's preset, a baseline, or an explicit sparse-heads network."""
        if self.preset == "upscale":
            return "upscale"
        explicit_sparse = self.heads is not None or (
            self.alpha is not None and self.alpha != self.width
        )
        if (
            self.preset == "paper"
            or self.model != "multihead"
            or explicit_sparse
            or self.quantization
        ):
            return "weights"
        return "coefficients"


@dataclass
class Compressed:
    data: bytes
    net: MultiHeadINR | UpscaleINR
    coded: Coded
    psnr: float
    ssim: float
    seconds: float
    met: bool | None  # None: no target was given
    target: dict = field(default_factory=dict)
    train_steps: int | None = None

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
        cfg = self.net.cfg
        if isinstance(self.net, UpscaleINR):  # one head per pixel; "alpha" = the head size
            arch = {
                "heads": [self.coded.height, self.coded.width],
                "alpha": cfg.hidden,
                "body": f"upscaler: encoder {cfg.layers}x{cfg.features}, body 2x{cfg.hidden}",
                "train_steps": self.train_steps,
            }
        else:
            arch = {
                "heads": list(cfg.heads),
                "alpha": cfg.alpha,
                "body": f"{cfg.body} {cfg.depth}x{cfg.width}",
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
            "quantization": self.coded.quantization,
            **arch,
            "target": self.target or None,
            "met": self.met,
        }


def _finite(db: float) -> float | None:
    """PSNR for JSON: None where the decoded image is exact (infinite PSNR)."""
    return round(db, 3) if math.isfinite(db) else None


def check_options(opt: Options, image_size: tuple[int, int], channels: int) -> None:
    """Raise ValueError (with the reason) if `opt` cannot fit an image of this size, before
    any work is queued."""
    h, w = image_size
    if opt.storage != "upscale" and min(h, w) < MIN_SIDE:
        raise ValueError(
            f"the {opt.preset} preset needs an image of at least {MIN_SIDE}x{MIN_SIDE} pixels "
            f"(its quality is measured with an {MIN_SIDE}-pixel SSIM window), got {w}x{h}"
        )
    if opt.storage == "upscale":
        if min(h, w) < UPSCALE_MIN_SIDE:
            raise ValueError(
                f"the upscale preset needs an image of at least {UPSCALE_MIN_SIDE}x"
                f"{UPSCALE_MIN_SIDE} pixels, got {w}x{h}"
            )
        if h * w > UPSCALE_MAX_PIXELS:
            raise ValueError(
                f"the upscale preset enlarges images of up to {UPSCALE_MAX_PIXELS:,} pixels "
                f"(1920x1080 fits), got {w}x{h}: larger images need no enlarging network"
            )
    if opt.storage == "weights":
        arch = _weights_arch(opt, h, w)
        if arch["alpha"] > arch["width"]:
            raise ValueError(f"alpha={arch['alpha']} cannot exceed the width {arch['width']}")
        if opt.heads and (opt.heads[0] > h or opt.heads[1] > w):
            raise ValueError(f"heads {opt.heads[0]}x{opt.heads[1]} exceed the image's {h}x{w}")


# A fit's peak memory (worker RSS growth, 2-core CPU, torch 2.13): 0.39 → 1.57 MP RGB added
# 403 MB (fast), 379 (compact), 315 (paper), 258 (upscale): about 350 bytes a pixel, on top
# of about 300 MB at the smallest sizes (issue 8 saw 5.1 GB for 16 MP: the same slope).
FIT_BASE_BYTES = 300 * 2**20
FIT_BYTES_PER_PIXEL = 350


def estimate_fit_bytes(image_size: tuple[int, int], channels: int) -> int:
    """The memory a fit of an image of this size is expected to peak at (any preset)."""
    h, w = image_size
    return FIT_BASE_BYTES + h * w * FIT_BYTES_PER_PIXEL * max(channels, 3) // 3


def _weights_arch(opt: Options, h: int, w: int) -> dict:
    """The network `weights` storage fits: the paper's by default for its preset, else
    8-pixel cells and a small dense body; explicit options win."""
    paper = opt.preset == "paper"
    heads = opt.heads or ((64, 64) if paper else _grid(h, w, 8))
    width = opt.width or (256 if paper else 32)
    return {
        "heads": (min(heads[0], h), min(heads[1], w)),
        "width": width,
        "depth": opt.depth or (4 if paper else 2),
        "alpha": opt.alpha or (min(64, width) if paper else width),
        "body": opt.body or "relu",
    }


def compress(
    pixels: Tensor,
    mode: str,
    options: Options | None = None,
    progress: Callable[[Progress], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> Compressed:
    """Fit a network to `pixels` ([C, H, W] in [0, 1]) and code it as a .inr file."""
    opt = options or Options()
    check_options(opt, tuple(pixels.shape[1:]), pixels.shape[0])
    start = time.perf_counter()
    if opt.storage == "upscale":
        out = _compress_upscale(pixels, mode, opt, progress, should_stop)
    elif opt.storage == "weights":
        out = _compress_weights(pixels, mode, opt, progress, should_stop)
    else:
        out = _compress_coefficients(pixels, mode, opt, progress, should_stop)
    out.seconds = time.perf_counter() - start
    return out


def _target(opt: Options, h: int, w: int) -> dict:
    if opt.target_psnr is not None:
        return {"psnr": opt.target_psnr}
    if opt.max_bytes is not None:
        return {"max_bytes": opt.max_bytes}
    if opt.bpp is not None:
        return {"max_bytes": int(opt.bpp * h * w / 8), "bpp": opt.bpp}
    return {}


def _meets(target: dict, quality: float, size: int) -> bool | None:
    if "psnr" in target:
        return quality >= target["psnr"]
    if "max_bytes" in target:
        return size <= target["max_bytes"]
    return None


def _finish(data: bytes, pixels: Tensor, target: dict, with_ssim: bool = True, **kw) -> Compressed:
    """Decode the real bytes and measure them: every reported number is the file's."""
    net, coded = decode(data)
    out = render(net, (coded.height, coded.width))
    q = psnr(out, pixels)
    s = ssim(out, pixels) if with_ssim else float("nan")
    return Compressed(data, net, coded, q, s, 0.0, _meets(target, q, len(data)), target, **kw)


# --- the upscaler ---------------------------------------------------------------------------

# 2,400 steps: 53 s on 2 CPU cores for any input size (benchmarks/upscale.py --timing); the
# budget ends the fit on a slower machine, so training stays within a minute anywhere
UPSCALE_STEPS = 2400
UPSCALE_BUDGET_S = 60.0


def _compress_upscale(pixels, mode, opt, progress, should_stop) -> Compressed:
    exact = to_uint8(pixels).float() / 255  # the network and the file see the 8-bit image
    budget = opt.time_budget_s or UPSCALE_BUDGET_S
    fit = UpscaleFit(
        steps=opt.steps if opt.steps is not None else UPSCALE_STEPS,
        time_budget_s=budget,
        seed=opt.seed,
    )
    cfg = UpscaleConfig(
        channels=pixels.shape[0],
        hidden=opt.width or UpscaleConfig.hidden,
        layers=opt.depth or UpscaleConfig.layers,
        seed=opt.seed,
    )
    net, info = fit_upscaler(exact, cfg, fit, progress, should_stop, device=opt.device)
    h, w = pixels.shape[1:]
    data = encode_upscale(net, Coded(h, w, mode, "upscale", "fp16"))
    return _finish(data, pixels, {}, train_steps=info["steps"])


# --- weights storage: the paper's preset and any explicit network --------------------------


def _compress_weights(pixels, mode, opt, progress, should_stop) -> Compressed:
    c, h, w = pixels.shape
    paper = opt.preset == "paper"
    net = build_network(opt.model, (h, w), c, seed=opt.seed, **_weights_arch(opt, h, w))
    if paper:
        cfg = FitConfig.paper(opt.steps if opt.steps is not None else 2000)
    elif opt.model == "multihead":
        cfg = FitConfig(steps=opt.steps if opt.steps is not None else 100)
    else:  # baselines: Adam only (SIREN wants a smaller learning rate)
        cfg = FitConfig(
            steps=opt.steps if opt.steps is not None else 500,
            lr=1e-4 if opt.model == "siren" else 1e-3,
        )
    cfg = replace(cfg, time_budget_s=opt.time_budget_s, target_psnr=opt.target_psnr)
    fit(net.to(opt.device), pixels.to(opt.device), cfg, progress, should_stop)
    net.cpu()
    target = _target(opt, h, w)
    choices: list[Quantization] = (
        [opt.quantization] if opt.quantization else ["fp32", "fp16", "int8"]
    )
    coded = Coded(h, w, mode, "weights")
    solved = cfg.solve_heads and net.cfg.num_heads > 1
    best = None
    for q in choices:  # highest precision first: keep the first that meets the target
        data = encode_weights(net, replace(coded, quantization=q))
        if solved and q != "fp32":
            data = _quantization_aware(net, replace(coded, quantization=q), pixels, data)
        best = _finish(data, pixels, target)
        if best.met is not False:
            break
    return best


QA_RIDGES = (1e-9, 1e-6, 1e-5)


def _quantization_aware(net: MultiHeadINR, coded: Coded, pixels: Tensor, plain: bytes) -> bytes:
    """Least-squares heads are fitted to exact features and can have large, outlier-heavy
    weights that int8 rows round badly (kodim23, 96-pixel cells: 35.6 dB → 24.7). So: store
    the body at the target precision, solve the heads again against that body, with a
    ridge that trades a little fit for smaller weights, and keep whichever file decodes
    best (benchmarks/quantization.py measures it)."""
    q = coded.quantization
    candidate = copy.deepcopy(net)
    with torch.no_grad():
        for name, p in candidate.named_parameters():
            if name.startswith("body."):
                p.copy_(dequantize(name, quantize(name, p, q)))
    target = prepare_target(candidate, pixels)
    best, best_psnr = plain, _finish(plain, pixels, {}, with_ssim=False).psnr
    for ridge in QA_RIDGES:
        solve_heads(candidate, target, ridge=ridge)
        data = encode_weights(candidate, coded)
        quality = _finish(data, pixels, {}, with_ssim=False).psnr
        if quality > best_psnr:
            best, best_psnr = data, quality
    return best


def _grid(h: int, w: int, cell: int) -> tuple[int, int]:
    return max(1, math.ceil(h / cell)), max(1, math.ceil(w / cell))


# --- coefficient storage: compact and fast -------------------------------------------------


def _candidates(opt: Options, search: bool) -> list[Arch]:
    """The architectures to fit: `fast` one; `compact` three widths when there is a target
    to meet (`search`), else the one that is best at the default quality."""
    if opt.preset == "fast":
        archs = [Arch(cell=8, width=24)]
    elif search:
        archs = [Arch(cell=8, width=24), Arch(cell=8, width=32), Arch(cell=8, width=48)]
    else:
        archs = [Arch(cell=8, width=32)]
    if opt.width or opt.depth or opt.body:
        base = archs[0]
        archs = [
            replace(
                base,
                width=opt.width or base.width,
                depth=opt.depth or base.depth,
                body=opt.body or base.body,
            )
        ]
    return archs


def _compress_coefficients(pixels, mode, opt, progress, should_stop) -> Compressed:
    return compress_sweep(
        pixels, mode, opt, [_target(opt, *pixels.shape[1:])], progress, should_stop
    )[0]


def compress_sweep(
    pixels: Tensor,
    mode: str,
    options: Options,
    targets: list[dict],
    progress: Callable[[Progress], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> list[Compressed]:
    """Coefficient storage at several targets ({"psnr": dB} | {"max_bytes": n} | {}) with one
    fit per candidate architecture: the best candidate for each target."""
    c, h, w = pixels.shape
    start = time.perf_counter()
    colour, mean = colour_transform(pixels)
    coded_pixels = torch.einsum("ji,jhw->ihw", colour, pixels - mean[:, None, None])
    steps = (
        options.steps if options.steps is not None else (60 if options.preset == "fast" else 300)
    )
    archs = _candidates(options, search=any(targets))

    def rgb_progress(p: Progress) -> None:  # previews back in the image's own colours
        if progress is None:
            return
        coded = p.image
        if coded is not None:
            p = replace(
                p,
                image=lambda: (
                    torch.einsum("ij,jhw->ihw", colour, coded()) + mean[:, None, None]
                ).clamp(0, 1),
            )
        progress(p)

    budget = None if options.time_budget_s is None else options.time_budget_s / len(archs)
    coders = []
    for arch in archs:
        if coders and should_stop is not None and should_stop():
            break
        net = build_network(
            "multihead",
            (h, w),
            c,
            heads=_grid(h, w, arch.cell),
            width=arch.width,
            depth=arch.depth,
            alpha=arch.width,
            body=arch.body,
            seed=options.seed,
            init="torch",
        )  # random biases: a well-conditioned basis
        cfg = FitConfig(steps=steps, lr=3e-3, time_budget_s=budget)
        net.to(options.device)
        fit_projection(net, coded_pixels.to(options.device), cfg, rgb_progress, should_stop)
        net.cpu()
        coders.append(_CoefficientCoder(net, coded_pixels, pixels, mode, colour, mean))
    fit_seconds = time.perf_counter() - start
    outs = []
    for target in targets:
        best = None
        for coder in coders:
            out = coder.search(target, DEFAULT_STEP)
            if best is None or _better(out, best, target):
                best = out
        best.seconds = fit_seconds
        outs.append(best)
    return outs


def _better(a: Compressed, b: Compressed, target: dict) -> bool:
    if a.met != b.met:
        return bool(a.met)
    if "psnr" in target:  # both met or both missed: fewer bytes if met, else higher quality
        return a.bytes < b.bytes if a.met else a.psnr > b.psnr
    return a.psnr > b.psnr


def colour_transform(pixels: Tensor) -> tuple[Tensor, Tensor]:
    """Per-image decorrelating transform (KLT): orthonormal [C, C] (columns = principal
    axes, strongest first) and the channel means. Coded = colourᵀ (pixel − mean)."""
    flat = pixels.reshape(pixels.shape[0], -1).double()
    mean = flat.mean(1)
    if pixels.shape[0] == 1:
        return torch.ones(1, 1), mean.float()
    cov = torch.cov(flat)
    _, vecs = torch.linalg.eigh(cov)
    vecs = vecs.flip(1)
    vecs = vecs * torch.where(vecs.sum(0) < 0, -1.0, 1.0)  # a sign convention, for readability
    return vecs.float(), mean.float()


class _CoefficientCoder:
    """Quantizes a body-trained network's cell coefficients with a step and codes them."""

    def __init__(
        self,
        net: MultiHeadINR,
        coded_pixels: Tensor,
        pixels: Tensor,
        mode: str,
        colour: Tensor,
        mean: Tensor,
        body_quantization: Quantization = "int8",
    ):
        self.net, self.pixels, self.mode = net, pixels, mode
        self.colour, self.mean, self.bq = colour, mean, body_quantization
        self._quantize_body()
        cells = split_cells(prepare_target(net, coded_pixels).double(), *net.cfg.heads)  # [n, O]
        with torch.no_grad():
            self.basis = projection_basis(net)  # [n, k], orthonormal columns (the decoder's)
        self.coef = self.basis.T @ cells  # [k, O]: coefficients in the orthonormal basis

    def _quantize_body(self) -> None:
        with torch.no_grad():
            for name, p in self.net.named_parameters():
                if name.startswith("body."):
                    p.copy_(dequantize(name, quantize(name, p, self.bq)))

    def quantized(self, step: float) -> Tensor:
        c = self.coef / step
        return torch.sign(c) * torch.floor(c.abs() + 0.5 - DEADZONE).clamp_min(0)

    def encode(self, step: float) -> bytes:
        h, w = self.pixels.shape[1:]
        quant = "int8" if self.bq == "int8" else "fp16"
        coded = Coded(
            h,
            w,
            self.mode,
            "coefficients",
            quant,
            step=float(step),
            colour=self.colour.double().tolist(),
            colour_mean=self.mean.double().tolist(),
        )
        q = self.quantized(step).numpy().astype(np.int64)
        return encode_coefficients(self.net, coded, q, self.bq, coder="lzma")

    def quality(self, step: float) -> float:
        """PSNR of the reconstruction at `step`, computed from the coefficients directly (the
        decoder's float32 render may differ in the last rounding of a few pixels)."""
        cells = self.basis @ (self.quantized(step) * step)  # [n, O], coded colour space
        c, h, w = self.pixels.shape
        hy, hx = self.net.cfg.heads
        n_y, n_x = self.net.cfg.cell
        coded = assemble(cells, c, hy, hx, n_y, n_x)[:, :h, :w]
        rgb = (
            torch.einsum("ij,jhw->ihw", self.colour.double(), coded)
            + self.mean.double()[:, None, None]
        )
        return psnr(rgb, self.pixels)

    def search(self, target: dict, default_step: float) -> Compressed:
        """The coarsest step that meets a PSNR target, or the finest whose file fits a byte
        budget: bisection on log(step), quality and size both falling as the step grows.
        Quality is computed from the coefficients, size by coding; the chosen file is then
        decoded and measured, and a PSNR target missed by rounding is met with a finer step."""
        if not target:
            return _finish(self.encode(default_step), self.pixels, target)
        by_psnr = "psnr" in target

        def ok(step: float) -> bool:
            if by_psnr:
                return self.quality(step) >= target["psnr"]
            return len(self.encode(step)) <= target["max_bytes"]

        lo, hi = math.log(1e-3), math.log(2.0)  # finest, coarsest
        good = None
        for _ in range(10):
            mid = (lo + hi) / 2
            if ok(math.exp(mid)):
                good = mid
                lo, hi = (mid, hi) if by_psnr else (lo, mid)
            else:
                lo, hi = (lo, mid) if by_psnr else (mid, hi)
        if good is None:  # unreachable: the closest we can get
            return _finish(self.encode(math.exp(lo if by_psnr else hi)), self.pixels, target)
        step = math.exp(good)
        out = _finish(self.encode(step), self.pixels, target)
        for _ in range(4):
            if out.met:
                break
            step *= 0.97
            out = _finish(self.encode(step), self.pixels, target)
        return out
