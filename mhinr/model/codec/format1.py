"""Formats 1 and 2: the JSON container's networks (model/codec/container.py holds the
bytes around them). The header holds the architecture (INRConfig, which includes the seed),
the image geometry (size, colour mode; the padding follows from size and architecture), the
storage kind and its quantization; the tensors follow. The sparse connection indices and
Fourier matrices are regenerated from the seed (model/prng.py), so they cost no bytes.

* ``weights``: every parameter, as fp32, fp16 or int8 (2-D weights: one scale per output
  row; other tensors fp16). Any network, baselines included.
* ``coefficients`` in this container: files written before format 3, and networks format 3
  cannot hold (transforms.load_coefficients).
"""

from dataclasses import fields

import numpy as np
import torch

from mhinr.model.codec.container import MAX_PARAMS, CodecError, Coded, Quantization, pack
from mhinr.model.network import INRConfig, MultiHeadINR

# int8 matrices use the values −INT8_LEVELS … INT8_LEVELS (the decoder reads any int8)
INT8_LEVELS = 127


def quantize(name: str, t: torch.Tensor, q: Quantization) -> dict[str, np.ndarray]:
    a = t.detach().cpu().float().numpy()
    if q == "fp32":
        return {name: a}
    if q == "fp16" or a.ndim != 2:
        return {name: a.astype(np.float16)}
    ints, scale = row_quantize(a, INT8_LEVELS)
    return {name: ints, name + ".scale": scale}


def row_quantize(a: np.ndarray, levels: int) -> tuple[np.ndarray, np.ndarray]:
    """(integers in −levels … levels as int8, one fp16 scale per output row: axis 0, shaped
    to broadcast against `a`). The scale is rounded to fp16 first, so that the decoder's
    product int · scale is the encoder's."""
    flat = a.reshape(a.shape[0], -1)
    scale = np.abs(flat).max(axis=1, keepdims=True) / levels
    scale = np.maximum(np.where(scale == 0, 1.0, scale), 2.0**-24).astype(np.float16)
    ints = np.clip(np.round(flat / scale.astype(np.float32)), -levels, levels).astype(np.int8)
    return ints.reshape(a.shape), scale.reshape((a.shape[0],) + (1,) * (a.ndim - 1))


def dequantize(name: str, tensors: dict[str, np.ndarray]) -> torch.Tensor:
    if name not in tensors:
        raise CodecError(f"the file lacks tensor {name!r}")
    a = tensors[name]
    if a.dtype == np.int8:
        if name + ".scale" not in tensors:
            raise CodecError(f"the file lacks the scales of {name!r}")
        a = a.astype(np.float32) * tensors[name + ".scale"]
    return torch.from_numpy(np.asarray(a, dtype=np.float32).copy())


def quantize_module(
    net: torch.nn.Module, q: Quantization, names: list[str]
) -> dict[str, np.ndarray]:
    state = net.state_dict()
    out: dict[str, np.ndarray] = {}
    for name in names:
        out.update(quantize(name, state[name], q))
    return out


def load_params(net: torch.nn.Module, names: list[str], tensors: dict[str, np.ndarray]) -> None:
    state = net.state_dict()
    with torch.no_grad():
        for name in names:
            value = dequantize(name, tensors)
            if value.shape != state[name].shape:
                raise CodecError(
                    f"tensor {name!r} has shape {tuple(value.shape)}, the architecture "
                    f"needs {tuple(state[name].shape)}"
                )
            state[name].copy_(value)


def body_names(net: MultiHeadINR) -> list[str]:
    return [n for n, _ in net.named_parameters() if n.startswith("body.")]


def encode_weights(net: MultiHeadINR, coded: Coded, coder: str = "best") -> bytes:
    names = [n for n, _ in net.named_parameters()]
    tensors = quantize_module(net, coded.quantization, names)
    return pack(json_header(net, coded), tensors, coder)


def json_header(net: MultiHeadINR, coded: Coded) -> dict:
    return {"arch": net.cfg.to_dict(), "image": coded.__dict__}


def config_from(cls, header: dict, tuples: tuple[str, ...] = ()):
    """The header's architecture as a `cls` dataclass, or CodecError saying what is wrong."""
    try:
        arch = dict(header["arch"])
        for name in tuples:
            arch[name] = tuple(arch[name])
        known = {f.name for f in fields(cls)}
        if set(arch) - known:
            raise CodecError(f"unknown architecture fields {sorted(set(arch) - known)}")
        return cls(**arch)
    except CodecError:
        raise
    except (KeyError, TypeError, ValueError) as exc:
        raise CodecError(f"the header is invalid: {exc}") from None


def check_sizes(cfg: INRConfig, coded: Coded) -> None:
    hy, hx = cfg.heads
    ch, cw = cfg.canvas
    if not (0 < coded.height <= ch and 0 < coded.width <= cw):
        raise CodecError(
            f"image size {coded.height}x{coded.width} does not fit the canvas {ch}x{cw}"
        )
    if ch - coded.height >= cfg.cell[0] or cw - coded.width >= cfg.cell[1]:
        raise CodecError("the padding is larger than a cell")
    if coded.mode not in ("L", "LA", "RGB", "RGBA") or len(coded.mode) != cfg.channels:
        raise CodecError(f"colour mode {coded.mode!r} does not match {cfg.channels} channels")
    params = cfg.width * (cfg.width + 2 * cfg.fourier_features + 3) * cfg.depth
    params += hy * hx * cfg.channels * (cfg.alpha + 1)
    if params > MAX_PARAMS:
        raise CodecError(f"the architecture has about {params:,} parameters, over the limit")
