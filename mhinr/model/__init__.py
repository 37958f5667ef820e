"""mhinr.model: the multi-head ReLU implicit neural representation, offline and PyTorch only.

Nothing in this package knows that a web service exists.
"""

from mhinr.model.fit import FitConfig, FitResult, fit
from mhinr.model.images import load_image
from mhinr.model.metrics import psnr, render_flops, seam_ratio, ssim
from mhinr.model.network import INRConfig, MultiHeadINR, build_network
from mhinr.model.render import render

__all__ = [
    "FitConfig",
    "FitResult",
    "INRConfig",
    "MultiHeadINR",
    "build_network",
    "fit",
    "load_image",
    "psnr",
    "render",
    "render_flops",
    "seam_ratio",
    "ssim",
]
