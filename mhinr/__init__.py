"""mhinr: images as multi-head ReLU implicit neural representations.

`mhinr.model` (decode, render, fit: needs only torch, numpy, Pillow, safetensors and
zstandard: `pip install mhinr`), `mhinr.worker` and `mhinr.app` (the service: `pip install
mhinr[server]`). Layers depend one way: app → worker → model."""

__version__ = "0.1.0"
