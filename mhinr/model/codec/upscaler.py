"""The upscale storage (the `upscale` preset, model/upscale.py): the JSON container with
the image (WebP lossless since format version 4; raw 8-bit pixels in version 2), the
network and the per-scale blend weights. Since format version 5 (2026-12-06) the network is
the shipped prior (model/upscale_prior.py), which the header names: no weights. Version 2
and 4 files hold their own network's parameters: the encoder's convolution weights as
integers with one fp16 scale per output channel (`WEIGHT_LEVELS`; fp16 before 2026-12-05),
the rest fp16; the same reader reads them all."""

import io

import numpy as np
import torch

from mhinr.model.codec.container import (
    STORAGE_VERSION,
    UPSCALE_WEIGHTS_VERSION,
    CodecError,
    Coded,
    pack,
)
from mhinr.model.codec.format1 import load_params, row_quantize
from mhinr.model.upscale import BLEND_MAX, UpscaleConfig, UpscaleINR
from mhinr.model.upscale_prior import PriorError, load_prior

# the upscaler's weights: integers in −WEIGHT_LEVELS … WEIGHT_LEVELS, one fp16 scale per output
# channel (set by `python -m benchmarks.upscale_quant`, see the results there)
WEIGHT_LEVELS = 7


def weight_tensors(net: UpscaleINR, levels: int | None) -> dict[str, np.ndarray]:
    """The parameters as the file stores them: with `levels`, the encoder's convolution
    weights (47,840 of the 49,251 parameters) as integers in −levels … levels (int8) with
    one fp16 scale per output channel (`row_quantize`), the rest fp16 — the body's three
    small layers read every head and the image, and even ±15 there cost a 52-dB image
    0.1 dB (`benchmarks/results/upscale_quant.md`); without `levels`, all fp16."""
    out: dict[str, np.ndarray] = {}
    for name, p in net.named_parameters():
        a = p.detach().cpu().float().numpy()
        if levels is None or a.ndim < 2 or not name.startswith("encoder."):
            out[name] = a.astype(np.float16)
        else:
            out[name], out[name + ".scale"] = row_quantize(a, levels)
    return out


def quantize_weights_(net: UpscaleINR, levels: int | None) -> None:
    """`net`'s parameters set to what the file will hold (`weight_tensors`), so that
    whatever is measured on it (the held-out blend) is what a decoder renders."""
    load_params(net, [n for n, _ in net.named_parameters()], weight_tensors(net, levels))
    if net.image is not None:
        net.set_image(net.image)  # the encoder's cached heads were the old weights'


# what an upscale file holds besides its image when its network is the prior: the header
# (architecture, image, the prior's name), the blend weights and what LZMA adds to the
# image's incompressible bytes: 290-410 bytes measured on Kodak and chelsea, ×2 and ×4 (a
# byte target leaves the rest to the image)
PRIOR_FILE_BYTES = 500


def encode_upscale(
    net: UpscaleINR,
    coded: Coded,
    coder: str = "lzma-raw",  # the torch-free decoder reads LZMA (zstd is the fit extra's)
    # and names the file's kind from it; raw: without the xz container's ~60 bytes
    levels: int | None = None,
    image_file: bytes | None = None,
) -> bytes:
    """The upscaler and its image (uint8 [C, H, W]) as WebP lossless, or `image_file`: a
    cosine codec file whose native decode is that image (files with a target, since
    2026-12-05). A network that is the prior (`net.prior`) is named in the header; any
    other is stored as its parameters (`weight_tensors` at `levels`: format version 4)."""
    if net.image is None:
        raise ValueError("the upscaler has no image to store")
    header: dict[str, object] = {"arch": net.cfg.to_dict(), "image": coded.__dict__}
    if net.prior is not None:
        tensors: dict[str, np.ndarray] = {}
        header["prior"] = net.prior
        version = STORAGE_VERSION["upscale"]
    else:
        tensors, version = weight_tensors(net, levels), UPSCALE_WEIGHTS_VERSION
    if image_file is not None:
        tensors["image_inr"] = np.frombuffer(image_file, np.uint8)
    else:
        image = net.image.mul(255).round().clamp(0, 255).to(torch.uint8).numpy()
        tensors["image_webp"] = np.frombuffer(webp_lossless(image, coded.mode), np.uint8)
    if any(b != 1 for b in net.blend):  # files since 2026-12-05; without it renders keep all
        # the network
        tensors["blend"] = np.array(net.blend, np.float32)
    return pack(header, tensors, coder, version=version)


def decode_upscale(
    cfg: UpscaleConfig, tensors: dict[str, np.ndarray], coded: Coded, prior: object = None
) -> UpscaleINR:
    """The upscaler of a file: the prior it names (`prior`, format version 5), or the
    parameters it holds."""
    if prior is not None:
        if not isinstance(prior, str):
            raise CodecError("the header's prior is not a name")
        try:
            net = load_prior(prior)
        except PriorError as exc:
            raise CodecError(str(exc)) from None
        if net.cfg != cfg:
            raise CodecError("the file's architecture is not its prior's")
    if coded.mode not in ("L", "LA", "RGB", "RGBA") or (
        prior is None and len(coded.mode) != cfg.channels
    ):
        raise CodecError(f"colour mode {coded.mode!r} does not match {cfg.channels} channels")
    if max(cfg.features, cfg.hidden) > 1024 or cfg.layers > 64:
        raise CodecError("the upscaler's architecture is over the limits")
    expected = (len(coded.mode), coded.height, coded.width)
    if "image_inr" in tensors:  # a target: the image coded by the cosine codec
        image = _from_inr(tensors["image_inr"], coded.mode, expected)
    elif "image_webp" in tensors:  # files since 2026-12-05
        image = _from_webp(tensors["image_webp"], coded.mode, expected)
    else:  # version 2: raw pixels
        image = tensors.get("image")  # type: ignore[assignment]  # checked below
    if image is None or image.dtype != np.uint8 or image.shape != expected:
        raise CodecError(f"the file's image is missing or not uint8 of shape {expected}")
    if prior is None:
        net = UpscaleINR(cfg)
        load_params(net, [n for n, _ in net.named_parameters()], tensors)
    net.set_image(torch.from_numpy(image.astype(np.float32) / 255))
    blend = tensors.get("blend", np.ones(len(net.blend), np.float32))
    if blend.shape != (len(net.blend),) or not ((blend >= 0) & (blend <= BLEND_MAX)).all():
        raise CodecError(
            f"the upscaler's blend weights are not {len(net.blend)} numbers in [0, {BLEND_MAX}]"
        )
    net.blend = blend.astype(float).tolist()
    return net.eval()


# WebP lossless at effort 4 (Pillow's method 4, quality 50): on Kodak images reduced to
# 384×256, 24–28 % fewer bytes than PNG and 38–30 % fewer than the raw pixels with LZMA that
# upscale files held until 2026-12-05, in ~0.15 s (effort 6: 1–3 % smaller, 40× slower;
# `python -m benchmarks.upscale_storage`)
WEBP_LOSSLESS = {"lossless": True, "quality": 50, "method": 4, "exact": True}


def webp_lossless(image: np.ndarray, mode: str) -> bytes:
    """uint8 [C, H, W] as WebP lossless (grey is stored as RGB, grey with alpha as RGBA; the
    colour under transparent pixels is kept: `exact`)."""
    from mhinr.model.pixels import to_pil

    pil = to_pil(image, mode)
    if mode in ("L", "LA"):
        pil = pil.convert("RGBA" if mode == "LA" else "RGB")
    buf = io.BytesIO()
    pil.save(buf, "WEBP", **WEBP_LOSSLESS)
    return buf.getvalue()


def _from_inr(data: np.ndarray, mode: str, shape: tuple[int, int, int]) -> np.ndarray:
    """The native decode of the cosine codec file an upscale file holds as its image."""
    from mhinr.model.codec.inr import decode
    from mhinr.model.network import MultiHeadINR
    from mhinr.model.render import render

    net, coded = decode(data.tobytes())
    if not isinstance(net, MultiHeadINR) or coded.mode != mode:
        raise CodecError("the file's image is not a cosine codec file of its mode")
    if (len(mode), coded.height, coded.width) != shape:
        raise CodecError(
            f"the file's image is {coded.width}x{coded.height}, not {shape[2]}x{shape[1]}"
        )
    return render(net, (coded.height, coded.width)).numpy()


def _from_webp(data: np.ndarray, mode: str, shape: tuple[int, int, int]) -> np.ndarray:
    """The inverse of `webp_lossless`, refusing an image of another size before decoding
    its pixels."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data.tobytes()), formats=["WEBP"]) as im:
            if im.size != (shape[2], shape[1]):
                raise CodecError(f"the file's image is {im.size[0]}x{im.size[1]}, not "
                                 f"{shape[2]}x{shape[1]}")  # fmt: skip
            pixels = np.asarray(im.convert(mode))
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        if isinstance(exc, CodecError):
            raise
        raise CodecError(f"the file's image does not decode: {exc}") from None
    return np.ascontiguousarray(np.moveaxis(pixels.reshape(*shape[1:], -1), -1, 0))
