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
from mhinr.model.codec.upscaler import PRIOR_FILE_BYTES, webp_lossless
from mhinr.model.coefficients import compress_coefficients, compress_sweep
from mhinr.model.fit import Progress
from mhinr.model.images import to_uint8
from mhinr.model.plan import plan
from mhinr.model.presets import (
    PRESETS,
    Options,
    check_options,
    estimate_fit_bytes,
)
from mhinr.model.ratecontrol import Compressed, Target, finish, target_of
from mhinr.model.render import render
from mhinr.model.upscale import choose_blend
from mhinr.model.upscale_prior import load_prior
from mhinr.model.weights import compress_weights

__all__ = [  # what callers import from here
    "PRESETS",
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


def _upscale_image(pixels, mode, opt, should_stop) -> tuple[Tensor, bytes | None, Target]:
    """What the enlarger enlarges and the file keeps: the 8-bit image exactly (no bytes
    here: the file stores it as WebP lossless), or with a target the `fast` cosine codec's
    file of it for that target (a byte target less the file's header) and its decode."""
    h, w = pixels.shape[1:]
    target = target_of(opt, h, w)
    if not target:
        return to_uint8(pixels).float() / 255, None, target
    image_opt = Options(preset="fast", target_psnr=opt.target_psnr, seed=opt.seed)
    if "max_bytes" in target:  # the header's and blend's bytes come off the byte target
        rest = max(1, target["max_bytes"] - PRIOR_FILE_BYTES)
        image_opt = Options(preset="fast", max_bytes=rest, seed=opt.seed)
    coded = compress_coefficients(pixels, mode, image_opt, None, should_stop)
    return render(coded.net, (h, w)).float() / 255, coded.data, target


def _compress_upscale(pixels, mode, opt, progress, should_stop) -> Compressed:
    """The prior enlarges the image (it trains nothing here: model/upscale_prior.py); the
    held-out check against Lanczos sets how much of it renders keep at each scale."""
    seen, inner, target = _upscale_image(pixels, mode, opt, should_stop)
    start = time.perf_counter()
    net = load_prior()
    net.set_image(seen)
    # the ×2, ×3 and ×4 enlargements of the image's reductions against it: how much of
    # the network a render keeps against Lanczos at each scale
    held_out = choose_blend(net, seen)
    if held_out is not None:
        net.blend = held_out["blend"]
    h, w = pixels.shape[1:]
    coded = Coded(h, w, mode, "upscale", "fp16")
    data = encode_upscale(net, coded, image_file=inner)
    image_bytes = len(inner or webp_lossless(to_uint8(pixels).numpy(), mode))
    check = {
        "prior": net.prior,  # the network: the shipped prior, trained offline
        "seconds": round(time.perf_counter() - start, 2),  # the held-out check's
        "image": "exact" if inner is None else "cosine codec",  # how the file keeps it
        "image_bytes": image_bytes,  # the image: WebP lossless, or the cosine codec's file
        "network_bytes": len(data) - image_bytes,  # the rest: header, blend
    } | (
        held_out
        or {
            "blend": net.blend,
            "held_out_psnr": None,
            "held_out_lanczos_psnr": None,
            "held_out_blend_psnr": None,
        }
    )
    return finish(data, pixels, target, train_steps=None, upscale=check)
