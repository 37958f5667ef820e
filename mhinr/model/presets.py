"""The presets and their options: what a fit is asked to do, checked before any work.

* ``paper``: the paper's network (64² heads, α=64, body 4×256), the paper's 2000-step
  Adam schedule, weights stored fp32. Large files: the paper is not a compressor.
* ``compact``: transform-coded heads (model/codec/): per-image colour transform, each
  cell's head stored as quantized, range-coded coefficients in the basis of the body's
  features on the cell. The body is the fixed cosine body (no fit, no bytes: the cells'
  DCT); with a target, cells of 8, 12 and 16 pixels are each coded and the best file kept,
  the quantizer step set to meet the target (model/coefficients.py). Then a small ReLU
  network, the trained stage (model/synthesis.py), is trained on the decoded image for
  up to 60 s on a CPU (`time_budget_s`, `steps`) and kept where it pays for its bytes.
* ``fast``: the cosine codec alone on 16-pixel cells (the best single cell size measured):
  nothing trained, a few seconds.
* ``max``: `compact` that also tries 3×3 and 7×7 restoration filters (the file keeps the
  best) and trains the stage for up to 4 minutes. Until 2026-11-30 `max` trained ReLU
  bodies for 2,500 steps; the fixed body beats the best of them by 14–24 % BD-rate
  (`python -m benchmarks.codec_experiments fixed`), so no preset trains a body unless a
  width, depth or body kind is asked for (then `max` trains it for MAX_STEPS within its
  time budget, default 10 min).
* ``upscale``: not a compressor but an enlarger: an arbitrary-scale multi-head ReLU INR
  (model/upscale.py) trained once, offline, on other photos and shipped with mhinr
  (model/upscale_prior.py); a job trains nothing: it checks the network against Lanczos
  on held-out reductions of the image, and the file holds the image (exactly, or with a
  target coded by the `fast` cosine codec, then enlarged from its decode), the network's
  name and the blend. Until 2026-12-06 each job trained the network on the image's own
  reductions for a minute; the shipped one is better on average at every scale and never
  below Lanczos (docs/upscale.md).

A target is one of ``target_psnr`` (dB), ``max_bytes`` or ``bpp``; without one, each preset
has a default quality (model/ratecontrol.py).
"""

import math
from dataclasses import dataclass

from mhinr.model.codec import Quantization
from mhinr.model.codec.format3 import stage_counts
from mhinr.model.network import BodyKind, ModelKind
from mhinr.model.synthesis import BATCH as STAGE_BATCH
from mhinr.model.synthesis import HIDDEN as STAGE_HIDDEN
from mhinr.model.upscale import MAX_PIXELS as UPSCALE_MAX_PIXELS
from mhinr.model.upscale import MIN_SIDE as UPSCALE_MIN_SIDE

# The trained stage's training budget (model/synthesis.py, model/coefficients.py), seconds a
# target: `compact` and `max` train it unless a trained body was asked for, `fast` never. The
# gain grows with the steps and flattens (benchmarks/results/codec_stage.md); `time_budget_s`
# and `steps` set it. `compact`: 60 s since 2026-12-07 (45 before). On a machine that trains
# ~15,000 steps in 45 s the stage is not yet at its 32,000 (STAGE_STEPS), and 60 s saved
# −0.48 % BD-rate on astronaut, coffee, chelsea and rocket and −0.26 % on four Kodak photos
# (better on 6 of the 8) in same-machine A/Bs (docs/codec.md, "A minute"). A machine that
# reaches the step cap sooner stops there: the time is a ceiling, the steps set the quality
STAGE_SECONDS = {"compact": 60.0, "max": 240.0}
# … and its steps (whichever ends first), so that a GPU does the same work in seconds: about
# what 2 CPU cores trained in that time when a step was 8 crops (synthesis.BATCH); as many
# pixels since a step is fewer crops
STAGE_STEPS = {p: n * 8 // STAGE_BATCH for p, n in {"compact": 8000, "max": 40000}.items()}

PRESETS = ("paper", "compact", "fast", "max", "upscale")
TARGETS = ("target_psnr", "max_bytes", "bpp")

# What each preset does, once, for the API's GET /presets, the web page and the CLI: a line,
# what it trains, how long it takes (2 CPU cores), and the options it takes (others: 422 or
# a weights file, see `Options.unused` and `storage`)
PRESET_INFO: dict[str, dict] = {
    "fast": {
        "summary": "the cosine codec alone",
        "trains": None,
        "time": "a few seconds",
        "takes": [*TARGETS, "seed"],
    },
    "compact": {
        "summary": "the cosine codec, then a small ReLU network (the trained stage) trained on "
        "the decoded image and kept where it makes the file smaller",
        "trains": f"the stage: {stage_counts(3, STAGE_HIDDEN)[0]} weights (more for a larger "
        f"file), up to {STAGE_SECONDS['compact']:.0f} s or {STAGE_STEPS['compact']:,} steps",
        "time": "1–2 minutes",
        "takes": [*TARGETS, "steps", "time_budget_s", "seed"],
    },
    "max": {
        "summary": "compact, also trying larger restoration filters and training the stage longer",
        "trains": f"the stage: up to {STAGE_SECONDS['max'] / 60:.0f} minutes or "
        f"{STAGE_STEPS['max']:,} steps",
        "time": "several minutes",
        "takes": [*TARGETS, "steps", "time_budget_s", "seed"],
    },
    "paper": {
        "summary": "the paper's multi-head ReLU network, its weights stored as they are (a "
        "large file)",
        "trains": "the whole network: 2,000 steps",
        "time": "minutes",
        "takes": [
            *TARGETS,
            "steps",
            "time_budget_s",
            "heads",
            "alpha",
            "width",
            "depth",
            "quantization",
            "seed",
        ],  # fmt: skip
    },
    "upscale": {
        "summary": "keeps the image exactly (with a target: coded by the cosine codec) and "
        "enlarges it with mhinr's upscaler network, trained once on other photos",
        "trains": "nothing: the network is shipped; the job checks it against Lanczos",
        "time": "a second or two",
        "takes": [*TARGETS, "seed"],
    },
}
MIN_SIDE = 11  # smallest side of the codec presets: the SSIM window (model.metrics.ssim)


@dataclass(frozen=True)
class Arch:
    cell: int | None = None  # pixels per cell side (coefficients) …
    heads: tuple[int, int] | None = None  # … or a heads grid (weights)
    width: int = 32
    depth: int = 2
    alpha: int | None = None  # None: α = width
    body: BodyKind = "relu"
    # the fixed body (network.Body's cosine body): no fit, no body bytes; width and depth follow
    # from the cell (a depth-1 body of one unit fewer than a cell's pixels)
    fixed: bool = False


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
        if self.body == "cosine":
            raise ValueError("the cosine body is the codec presets' own: leave body unset")
        if self.quantization not in (None, "fp32", "fp16", "int8"):
            raise ValueError(f"unknown quantization {self.quantization!r}: fp32, fp16 or int8")
        unused = self.unused()
        if unused and self.preset == "fast":
            raise ValueError(
                f"the {self.preset} preset does not use {', '.join(unused)}: it trains nothing "
                "(the cosine codec alone, seconds); compact and max train a stage and take "
                "steps and time_budget_s"
            )
        if unused:
            raise ValueError(
                f"the {self.preset} preset does not use {', '.join(unused)} with steps=0: "
                "steps=0 turns its trained stage off, so nothing is timed"
            )
        if self.preset == "upscale":
            given = [
                name
                for name in (
                    "heads",
                    "alpha",
                    "width",
                    "depth",
                    "body",
                    "steps",
                    "time_budget_s",
                    "quantization",
                )  # fmt: skip
                if getattr(self, name) is not None
            ] + (["model"] if self.model != "multihead" else [])
            if given:
                raise ValueError(
                    f"the upscale preset does not use {', '.join(given)}: it trains nothing "
                    "(its network is the shipped upscaler, trained once on other photos); it "
                    "takes a target and seed"
                )

    def unused(self) -> list[str]:
        """The options given that this preset would ignore: `fast` trains nothing unless a
        trained body (width, depth, body) or a weights file is asked for, so it takes no
        steps or time budget."""
        trains = self.storage != "coefficients" or self.width or self.depth or self.body
        if trains:
            return []
        if self.preset == "fast":
            return [n for n in ("steps", "time_budget_s") if getattr(self, n) is not None]
        if self.steps == 0 and self.time_budget_s is not None:  # no stage: nothing to time
            return ["time_budget_s"]
        return []

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
        arch = weights_arch(opt, h, w)
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


def weights_arch(opt: Options, h: int, w: int) -> dict:
    """The network `weights` storage fits: the paper's by default for its preset, else
    8-pixel cells and a small dense body; explicit options win."""
    paper = opt.preset == "paper"
    heads = opt.heads or ((64, 64) if paper else grid(h, w, 8))
    width = opt.width or (256 if paper else 32)
    return {
        "heads": (min(heads[0], h), min(heads[1], w)),
        "width": width,
        "depth": opt.depth or (4 if paper else 2),
        "alpha": opt.alpha or (min(64, width) if paper else width),
        "body": opt.body or "relu",
    }


# --- the max preset --------------------------------------------------------------------------

# 2,500 steps: 3.3 % fewer bytes than 300 at width 32 (1,000: 2.7 %; kodim23, kodim05,
# kodim19; `python -m benchmarks.codec_experiments longer`); the budget covers all widths
MAX_STEPS = 2500
MAX_BUDGET_S = 600.0


def grid(h: int, w: int, cell: int) -> tuple[int, int]:
    return max(1, math.ceil(h / cell)), max(1, math.ceil(w / cell))
