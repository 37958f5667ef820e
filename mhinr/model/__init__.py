"""mhinr.model: the multi-head ReLU implicit neural representation, offline.

Nothing in this package knows that a web service exists. Decoding and rendering the cosine
codec's files needs only NumPy and Pillow (model/decoder.py, `pip install mhinr`); fitting,
and decoding trained networks, PyTorch (`pip install 'mhinr[fit]'`). The names below are
imported when first used, so that importing a NumPy-only module of this package does not
import PyTorch. `fit` and `render` are modules of this package (`from mhinr.model.fit
import fit`, `from mhinr.model.render import render`): a lazy name cannot share a
submodule's name.
"""

import importlib

_WHERE = {
    "FitConfig": "fit",
    "FitResult": "fit",
    "load_image": "images",
    "psnr": "metrics",
    "render_flops": "metrics",
    "seam_ratio": "metrics",
    "ssim": "metrics",
    "INRConfig": "network",
    "MultiHeadINR": "network",
    "build_network": "network",
}
__all__ = sorted(_WHERE)


def __getattr__(name: str):
    if name not in _WHERE:
        raise AttributeError(f"module 'mhinr.model' has no attribute {name!r}")
    return getattr(importlib.import_module(f"mhinr.model.{_WHERE[name]}"), name)
