"""Image → .inr bytes: the entry point. It checks the options against the image, then hands
the fit to its storage kind:

* model/coefficients.py: `compact` and `fast` (transform-coded heads, rate control);
* model/weights.py: `paper`, the baselines and explicit networks (stored parameters);
* below: `upscale` (the enlarger; model/upscale.py).

The presets and their options are in model/presets.py, targets and results in
model/ratecontrol.py.
"""

import time
from collections.abc import Callable

from torch import Tensor

from mhinr.model.codec import Coded, encode_upscale
from mhinr.model.codec.colour import colour_transform
from mhinr.model.codec.upscaler import WEIGHT_LEVELS, quantize_weights_, webp_lossless
from mhinr.model.coefficients import compress_coefficients, compress_sweep
from mhinr.model.fit import Progress
from mhinr.model.images import to_uint8
from mhinr.model.plan import plan
from mhinr.model.presets import (
    PRESETS,
    UPSCALE_BUDGET_S,
    UPSCALE_STEPS,
    Options,
    check_options,
    estimate_fit_bytes,
)
from mhinr.model.ratecontrol import Compressed, finish
from mhinr.model.upscale import UpscaleConfig, UpscaleFit, choose_blend, fit_upscaler
from mhinr.model.weights import compress_weights

__all__ = [  # what callers import from here
    "PRESETS",
    "UPSCALE_STEPS",
    "Compressed",
    "Options",
    "check_options",
    "colour_transform",
    "compress",
    "compress_sweep",
    "estimate_fit_bytes",
]


def compress(
    pixels: Tensor,
    mode: str,
    options: Options | None = None,
    progress: Callable[[Progress], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> Compressed:
    """Fit a network to `pixels` ([C, H, W] in [0, 1]) and code it as a .inr file."""
    opt = options or Options()
    plan(opt, (pixels.shape[1], pixels.shape[2]), pixels.shape[0])  # refuses what cannot run
    start = time.perf_counter()
    if opt.storage == "upscale":
        out = _compress_upscale(pixels, mode, opt, progress, should_stop)
    elif opt.storage == "weights":
        out = compress_weights(pixels, mode, opt, progress, should_stop)
    else:
        out = compress_coefficients(pixels, mode, opt, progress, should_stop)
    out.seconds = time.perf_counter() - start
    return out


def upscale_settings(opt: Options, channels: int) -> tuple[UpscaleConfig, UpscaleFit]:
    """The enlarger an upscale job trains, and how long."""
    fit = UpscaleFit(
        steps=opt.steps if opt.steps is not None else UPSCALE_STEPS,
        time_budget_s=opt.time_budget_s or UPSCALE_BUDGET_S,
        seed=opt.seed,
    )
    cfg = UpscaleConfig(
        channels=channels,
        hidden=opt.width or UpscaleConfig.hidden,
        layers=opt.depth or UpscaleConfig.layers,
        seed=opt.seed,
    )
    return cfg, fit


def _compress_upscale(pixels, mode, opt, progress, should_stop) -> Compressed:
    exact = to_uint8(pixels).float() / 255  # the network and the file see the 8-bit image
    cfg, fit = upscale_settings(opt, pixels.shape[0])
    net, info = fit_upscaler(exact, cfg, fit, progress, should_stop, device=opt.device)
    quantize_weights_(net, WEIGHT_LEVELS)  # the weights the file holds: measured as stored
    # the ×2, ×3 and ×4 enlargements of the half-size copy's reductions against it: how
    # much of the network a render keeps against Lanczos at each scale
    held_out = choose_blend(net, exact)
    if held_out is not None:
        net.blend = held_out["blend"]
    h, w = pixels.shape[1:]
    data = encode_upscale(net, Coded(h, w, mode, "upscale", "int8"), levels=WEIGHT_LEVELS)
    image_bytes = len(webp_lossless(to_uint8(pixels).numpy(), mode))
    check = {
        "steps": info["steps"],
        "seconds": round(info["seconds"], 2),
        "image_bytes": image_bytes,  # the image, WebP lossless
        "network_bytes": len(data) - image_bytes,  # the rest: weights, header, blend
        "weight_levels": WEIGHT_LEVELS,
    } | (
        held_out
        or {
            "blend": net.blend,
            "held_out_psnr": None,
            "held_out_lanczos_psnr": None,
            "held_out_blend_psnr": None,
        }
    )
    return finish(data, pixels, {}, train_steps=info["steps"], upscale=check)
