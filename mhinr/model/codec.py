"""The .inr file's contents: networks in and out of its three storage kinds (PyTorch).

The bytes around every file are model/container.py's; the compact record of the coefficient
storage is model/format3.py's (both without PyTorch, as is the NumPy decoder of the cosine
codec, model/decoder.py). The JSON header of formats 1 and 2 holds the architecture
(INRConfig, which includes the seed), the image geometry (size, colour mode; the padding
follows from size and architecture), the storage kind and its quantization. The sparse
connection indices and Fourier matrices are regenerated from the seed (model/prng.py), so
they cost no bytes. Three storage kinds:

* ``weights``: every parameter, as fp32, fp16 or int8 (2-D weights: one scale per output
  row; other tensors fp16). Any network, baselines included.
* ``upscale`` (format version 2; the `upscale` preset, model/upscale.py): the image's own
  8-bit pixels (the upscaler reads them, and renders them exactly at the native size) and
  every parameter of the encoder and body as fp16.
* ``coefficients`` (transform-coded heads; multi-head networks with α = width): the body
  (int8 or fp16) and, per cell and channel, the head's coefficients in an orthonormal basis
  of that cell's features, computed by the decoder from the stored body (Cholesky of the
  features' Gram matrix, constant feature first, so the basis is unique and has no sign
  ambiguity; format 3 files since 2026-11-30 then rotate it into Karhunen–Loève order for
  an AR(1) pixel model, `klt_rotation`). Coefficients are integers: value = q · step.
  Colour images are coded in a per-image decorrelated colour space (KLT; 3×3 matrix and
  mean in the header). Decoding folds basis and colour transform back into ordinary head
  weights, so the decoded model is exactly a multi-head INR.

A corrupt, truncated, foreign, newer-version or inconsistent file raises CodecError with a
message naming what is wrong.
"""

import io
import math
import struct
import zlib
from dataclasses import fields

import numpy as np
import torch

from mhinr.model import entropy, format3, postfilter, synthesis
from mhinr.model.container import (
    COMPACT_VERSION,
    FORMAT_VERSION,
    LZMA_RAW,
    MAGIC,
    MAX_PARAMS,
    PREFIX,
    STORAGE_VERSION,
    CodecError,
    Coded,
    Quantization,
    lzma_raw,
    open_payload,
    pack,
    parse_json,
    unpack,
)
from mhinr.model.entropy import unzigzag, zigzag
from mhinr.model.format3 import (
    COMPACT,
    FLAG2_STAGE,
    FLAG_DC_MEDIAN,
    FLAG_DC_PREDICTION,
    FLAG_FILTER_CODED,
    FLAG_KLT,
    FLAG_MORE,
    FLAG_PLANAR,
    FLAG_POST_FILTER,
    FLAG_RANGE_CODED,
    INITS,
    MODES,
    QUANTS,
    dc_differences,
    dc_med_residuals,
    dc_med_sums,
    dc_sums,
)
from mhinr.model.network import INRConfig, MultiHeadINR, cell_feature_factor, dct_basis
from mhinr.model.upscale import UpscaleConfig, UpscaleINR

# re-exported: the names callers have always taken from here
__all__ = [
    "COMPACT", "FLAG2_STAGE", "FLAG_DC_MEDIAN", "FLAG_DC_PREDICTION", "FLAG_FILTER_CODED",
    "FLAG_KLT", "FLAG_MORE", "FLAG_PLANAR", "FLAG_POST_FILTER", "FLAG_RANGE_CODED",
    "FORMAT_VERSION", "LZMA_RAW", "MAGIC", "PREFIX", "STORAGE_VERSION", "CodecError", "Coded",
    "Quantization", "dc_differences", "dc_med_residuals", "dc_med_sums", "dc_sums", "decode",
    "encode_coefficients", "encode_upscale", "encode_weights", "lzma_raw", "open_payload",
    "pack", "unpack", "zigzag",
]  # fmt: skip


# --- quantization of weights ---------------------------------------------------------------


# int8 matrices use the values −INT8_LEVELS … INT8_LEVELS (the decoder reads any int8)
INT8_LEVELS = 127


def quantize(name: str, t: torch.Tensor, q: Quantization) -> dict[str, np.ndarray]:
    a = t.detach().cpu().float().numpy()
    if q == "fp32":
        return {name: a}
    if q == "fp16" or a.ndim != 2:
        return {name: a.astype(np.float16)}
    scale = np.abs(a).max(axis=1, keepdims=True) / INT8_LEVELS  # one scale per output row
    scale = (
        np.maximum(np.where(scale == 0, 1.0, scale), 2.0**-24).astype(np.float16).astype(np.float32)
    )
    return {name: np.round(a / scale).astype(np.int8), name + ".scale": scale.astype(np.float16)}


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


# --- the transform-coded heads -------------------------------------------------------------


# The correlation of neighbouring pixels in the image model whose Karhunen–Loève order the
# coefficients are kept in (`klt_rotation`). BD-rate of the rotated coding against the
# Cholesky order, one `compact` fit each, filter on (`python -m benchmarks.codec_experiments
# klt --images kodim23,kodim05,chelsea`): ρ = 0.99 −14.9, −8.1, −15.5 %; ρ from 0.9 to
# 0.995 and the grid Laplacian's smoothness order all within 1.6 % of it (the Laplacian
# best by 1.4 on these three), the image's own KLT (which would cost k² numbers) no better.
AR1_RHO = 0.99
_GOLDEN = (math.sqrt(5) - 1) / 2


def ar1_covariance(cell: tuple[int, int], rho: float = AR1_RHO) -> torch.Tensor:
    """[n, n] (float64) covariance ρ^(|Δy|+|Δx|) of a cell's n pixels, in the row-major order
    of network.cell_coordinates."""
    n_y, n_x = cell
    ys = torch.arange(n_y, dtype=torch.float64).repeat_interleave(n_x)
    xs = torch.arange(n_x, dtype=torch.float64).repeat(n_y)
    return rho ** ((ys[:, None] - ys).abs() + (xs[:, None] - xs).abs())


def klt_rotation(basis: torch.Tensor, cell: tuple[int, int]) -> torch.Tensor:
    """[k, k] rotation R (float64) of an orthonormal cell basis [n, k] (constant first) into
    Karhunen–Loève order for pixels with correlation ρ^(|Δy|+|Δx|) (ρ = AR1_RHO): column 0
    stays the constant, the others become the eigenvectors of that covariance within the
    span of the rest, largest variance first. Natural images are close to that model, so
    the coefficients' energy is packed into the first rows (as the DCT packs JPEG's): for
    the same error the quantized coefficients are mostly zeros. The rotation is a function of
    the body alone, so the decoder computes it and the file carries nothing for it. Each
    eigenvector's sign is the one whose image correlates positively with a fixed irregular
    pattern (eigenvectors have no sign of their own)."""
    n_y, n_x = cell
    cov = ar1_covariance(cell)
    rest = basis[:, 1:].double()
    inner = rest.T @ cov @ rest
    _, vecs = torch.linalg.eigh((inner + inner.T) / 2)  # ascending
    vecs = vecs.flip(1)
    pattern = torch.frac(torch.arange(1, n_y * n_x + 1, dtype=torch.float64) * _GOLDEN) - 0.5
    signs = torch.where(pattern @ rest @ vecs < 0, -1.0, 1.0).to(torch.float64)
    rot = torch.eye(basis.shape[1], dtype=torch.float64)
    rot[1:, 1:] = vecs * signs
    return rot


def _cell_transform(net: MultiHeadINR, klt: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """(Φ [n, k], T [k, k]) for the native cell features Φ (network.cell_feature_factor):
    U = Φ T is orthonormal over a cell's n pixels, constant first. T = Lᵀ⁻¹, or with `klt`
    Lᵀ⁻¹ R, R the rotation of Φ Lᵀ⁻¹ into Karhunen–Loève order (`klt_rotation`). The fixed
    (cosine) body is the cell's DCT: U is then `dct_basis` itself, whatever `klt` says."""
    with torch.no_grad():
        phi, chol = cell_feature_factor(net)
    if net.cfg.init == "fixed":  # the cosine body: Φ is the DCT up to float32 rounding
        return phi, torch.linalg.solve(phi, dct_basis(net.cfg.cell))
    eye = torch.eye(chol.shape[0], dtype=torch.float64)
    linv_t = torch.linalg.solve_triangular(chol.T, eye, upper=True)
    if klt:
        linv_t = linv_t @ klt_rotation(phi @ linv_t, net.cfg.cell)
    return phi, linv_t


def cell_basis(net: MultiHeadINR, klt: bool = False) -> torch.Tensor:
    """T [k, k] (`_cell_transform`): head weights [bias, w] = T c for coefficients c."""
    return _cell_transform(net, klt)[1]


def coding_basis(net: MultiHeadINR, klt: bool = False) -> torch.Tensor:
    """U = Φ T [n, k] (`_cell_transform`): the orthonormal basis a cell's pixels are coded
    in, the one the decoder's heads reproduce."""
    phi, transform = _cell_transform(net, klt)
    return phi @ transform


def coefficients_to_heads(
    net: MultiHeadINR,
    coef: torch.Tensor,
    colour: torch.Tensor | None,
    mean: torch.Tensor | None,
    klt: bool = False,
) -> None:
    """Write head weights from coefficients [k, C·Hy·Hx] (coded colour space; with `klt` in
    the Karhunen–Loève-ordered basis) into `net`, folding in the colour transform
    (RGB = colour @ coded + mean)."""
    c = net.cfg.channels
    m = net.cfg.num_heads
    weights = cell_basis(net, klt) @ coef.double()  # [k, C·M]: row 0 the bias, then the units
    if colour is not None:
        w = weights.reshape(-1, c, m)  # [k, C_coded, M]
        w = torch.einsum("ij,kjm->kim", colour.double(), w)  # mix coded channels into RGB
        if mean is not None:
            w[0] += mean.double()[:, None]
        weights = w.reshape(-1, c * m)
    assert net.heads.bias is not None  # coefficient heads have biases (the constant terms)
    with torch.no_grad():
        net.heads.bias.copy_(weights[0].float())
        net.heads.weight.copy_(weights[1:].T.float())  # [O, width]


# --- encode / decode -----------------------------------------------------------------------


def encode_weights(net: MultiHeadINR, coded: Coded, coder: str = "best") -> bytes:
    names = [n for n, _ in net.named_parameters()]
    tensors = quantize_module(net, coded.quantization, names)
    return pack(_header(net, coded), tensors, coder)


def encode_coefficients(
    net: MultiHeadINR,
    coded: Coded,
    q: np.ndarray,
    body_quantization: Quantization,
    coder: str = "best",
    version: int = 3,
    dc_prediction: bool = True,
    post_filter: torch.Tensor | None = None,
    klt: bool = False,
    context_coding: bool = True,
    dc_median: bool = True,
    stage: synthesis.Stage | None = None,
) -> bytes:
    """`q`: integer coefficients [k, C·Hy·Hx]; the body must already hold its quantized
    values (the encoder computes coefficients against exactly the decoder's basis; with
    `klt` the Karhunen–Loève-ordered one, `cell_basis`).
    Format 3 (`_compact_record`) for the networks the presets make; any other network
    (a sine or Fourier body, a non-default grid), or `version=1` (the codec ablation's
    "before"), in the format 1 JSON container. Format 3 codes the cells' constant
    coefficients as differences from their left neighbour's (`dc_prediction`) and can
    carry a restoration filter [C, C·k²+1] (model/postfilter.py) the decoder applies.
    With `context_coding` (and coder "best" or "lzma") the coefficients are also range-coded
    under the context model of model/entropy.py, and the smaller file is kept; that file
    predicts the constant terms by the median edge detector (`dc_median`) rather than
    from the left. A trained `stage` (model/synthesis.py) needs format 3."""
    q = q.astype(np.int64)
    tensors = quantize_module(net, body_quantization, body_names(net))
    compact = version >= 3 and _fits_compact_file(net.cfg, coded)
    if not compact:
        if post_filter is not None or klt or stage is not None:
            raise ValueError("only format 3 carries a restoration filter, a stage or the KLT order")
        tensors["coefficients"] = _zigzag_array(q)  # the JSON container: the values as they are
        return pack(_header(net, coded), tensors, coder)
    if coder not in ("best", "lzma", "zstd"):
        raise ValueError(f"unknown coder {coder!r}: best, lzma or zstd")
    dc_shape = (len(coded.mode), *net.cfg.heads)

    def predicted(dc_predictor) -> np.ndarray:  # q with row 0 as residuals, if predicted
        if not dc_prediction:
            return q
        out = q.copy()
        out[0] = dc_predictor(q[0].reshape(dc_shape)).reshape(-1)
        return out

    range_coded = coder in ("best", "lzma") and context_coding
    planar = coder in ("best", "lzma") and (not range_coded or q.size <= PLANES_TRIED_UP_TO)
    candidates = []
    record = None  # the byte-plane record: for LZMA2 (coder 3) and zstd (coder 2)
    if planar or coder == "zstd":
        planes = dict(tensors, coefficients=_zigzag_array(predicted(dc_differences)))
        record = _compact_record(net, coded, planes, dc_prediction, post_filter, klt, stage=stage)
    if planar:
        assert record is not None
        candidates.append((3, lzma_raw(record)))
    if range_coded:
        median = dc_prediction and dc_median
        head = _compact_record(net, coded, tensors, dc_prediction, post_filter, klt, median, stage)
        head = lzma_raw(head)
        ranged = predicted(dc_med_residuals if median else dc_differences)
        section = entropy.encode(ranged.reshape(len(q), *dc_shape))
        candidates.append((4, struct.pack("<I", len(head)) + head + section))
    if coder == "zstd":  # not tried by "best": it never won, and the NumPy decoder has no zstd
        import zstandard

        assert record is not None
        candidates.append((2, zstandard.ZstdCompressor(level=22).compress(record)))
    code, payload = min(candidates, key=lambda c: len(c[1]))
    return PREFIX.pack(MAGIC, STORAGE_VERSION["coefficients"], code, zlib.crc32(payload)) + payload


# With context coding on, the byte-plane file is also tried for arrays of at most this many
# coefficients (a 160×160 image at width 32): LZMA2 won on a 40×56 image at two of three
# steps, the range coder by 7 % on a 96×128 crop and by 12–27 % on every Kodak-sized file
PLANES_TRIED_UP_TO = 40_000


def fits_compact(cfg: INRConfig, mode: str) -> bool:
    """Whether format 3 can hold a network of this configuration (the presets' kind:
    a ReLU or the cosine body, dense heads with a bias, the grid its cell size gives)."""
    return (
        cfg.body in ("relu", "cosine")
        and cfg.alpha == cfg.width
        and cfg.head_bias
        and cfg.omega0 == INRConfig.omega0
        and cfg.fourier_features == INRConfig.fourier_features
        and cfg.fourier_scale == INRConfig.fourier_scale
        and mode in MODES
        and cfg.channels == len(mode)
        and max(cfg.cell) <= 255
        and cfg.depth <= 255
        and cfg.width <= 65535
        and 0 <= cfg.seed < 2**32
    )


def _fits_compact_file(cfg: INRConfig, coded: Coded) -> bool:
    """Format 3 holds this network and image: `fits_compact`, the grid its size and cell
    give, and a colour transform."""
    heads = (-(-coded.height // cfg.cell[0]), -(-coded.width // cfg.cell[1]))
    return fits_compact(cfg, coded.mode) and cfg.heads == heads and coded.colour is not None


def _zigzag_array(q: np.ndarray) -> np.ndarray:
    """Zigzag integers in the narrowest unsigned type that holds them."""
    z = zigzag(q)
    top = z.max(initial=0)
    return z.astype(np.uint8 if top < 256 else np.uint16 if top < 65536 else np.uint32)


def _compact_record(
    net: MultiHeadINR,
    coded: Coded,
    tensors: dict[str, np.ndarray],
    dc_prediction: bool,
    post_filter: torch.Tensor | None,
    klt: bool,
    dc_median: bool = False,
    stage: synthesis.Stage | None = None,
) -> bytes:
    """The format 3 record: with the zigzag coefficients in `tensors`, as byte planes at
    its end; without them, a range-coded file's record, which ends after the body (the
    coefficient section follows outside the LZMA2 stream; `dc_median`: its row 0 holds
    median-edge residuals)."""
    cfg = net.cfg
    kinds = {tensors[name].dtype for name in body_names(net)}
    body_q = (
        "int8"
        if np.dtype(np.int8) in kinds or not kinds
        else "fp32"
        if np.dtype(np.float32) in kinds
        else "fp16"
    )
    z = tensors.get("coefficients")
    range_coded = z is None
    flags = (
        (FLAG_DC_PREDICTION if dc_prediction else 0)
        | (FLAG_POST_FILTER if post_filter is not None else 0)
        | (FLAG_KLT if klt else 0)
        | (FLAG_RANGE_CODED if range_coded else FLAG_PLANAR)
        | (FLAG_DC_MEDIAN if dc_median else 0)
    )
    colour = (
        np.asarray(coded.colour, "<f4").tobytes() + np.asarray(coded.colour_mean, "<f4").tobytes()
    )
    if post_filter is not None:
        stored, coded_taps = filter_bytes(post_filter, len(coded.mode))
        colour += stored
        flags |= FLAG_FILTER_CODED if coded_taps else 0
    more = b""
    if stage is not None:
        colour += stage_bytes(stage)
        flags |= FLAG_MORE
        more = bytes([FLAG2_STAGE])
    head = COMPACT.pack(
        coded.height,
        coded.width,
        MODES.index(coded.mode),
        *cfg.cell,
        cfg.depth,
        cfg.width,
        INITS.index(cfg.init),
        cfg.seed,
        coded.step,
        QUANTS.index(body_q),
        1 if z is None else z.dtype.itemsize,
        flags,
    )
    head += more
    body = b"".join(_body_bytes(name, tensors) for name in body_names(net))
    if z is None:  # range-coded
        return head + colour + body
    planes = b"".join(
        ((z >> (8 * i)) & 0xFF).astype(np.uint8).tobytes() for i in range(z.dtype.itemsize)
    )
    return head + colour + body + planes


def filter_bytes(post_filter: torch.Tensor, channels: int) -> tuple[bytes, bool]:
    """(a restoration filter's bytes in a format 3 record, whether coded: flags bit 6).
    Taps on the 2^-FRACTION_BITS grid (postfilter.solve's) are range-coded, others fp16."""
    c = channels
    k = round(((post_filter.shape[1] - 1) / c) ** 0.5)
    if post_filter.shape != (c, c * k * k + 1) or k % 2 == 0:
        raise ValueError(f"a restoration filter of shape {tuple(post_filter.shape)}")
    ints = postfilter.to_integers(post_filter)
    if ints is None:
        return bytes([k]) + post_filter.numpy().astype("<f2").tobytes(), False
    taps = entropy.encode_values(ints)
    return struct.pack("<BBH", k, postfilter.FRACTION_BITS, len(taps)) + taps, True


def stage_bytes(stage: synthesis.Stage) -> bytes:
    """A trained stage's bytes in a format 3 record (flags bit 7)."""
    if stage.quantized is None:
        raise ValueError("the stage is not quantized (synthesis.quantize_)")
    ints, scales = stage.quantized
    coded = entropy.encode_values(ints)
    if not 0 < stage.hidden <= format3.MAX_STAGE_HIDDEN or len(coded) > 65535:
        raise ValueError(f"a stage of {stage.hidden} channels, {len(coded)} coded bytes")
    head = struct.pack("<BBH", stage.hidden, stage.dilation, len(coded))
    return head + coded + scales.astype("<f2").tobytes()


def _body_bytes(name: str, tensors: dict[str, np.ndarray]) -> bytes:
    a = tensors[name]
    if a.dtype == np.int8:
        return a.tobytes() + tensors[name + ".scale"].astype("<f2").tobytes()
    return a.astype(a.dtype.newbyteorder("<")).tobytes()


def _decode_compact(raw: bytes) -> tuple[MultiHeadINR, Coded]:
    """The network a format 3 record describes (format3.read parses and checks it)."""
    rec = format3.read(raw)
    cfg = INRConfig(
        heads=rec.heads,
        cell=rec.cell,
        channels=rec.channels,
        width=rec.units,
        depth=rec.depth,
        alpha=rec.units,
        init=rec.init,  # type: ignore[arg-type]
        seed=rec.seed,
        body="cosine" if rec.fixed else "relu",
    )
    net = MultiHeadINR(cfg)
    tensors = dict(rec.body, coefficients=zigzag(rec.q).astype(np.uint64))
    _decode_coefficients(net, rec.coded, tensors, rec.klt)
    if rec.post_filter is not None:
        net.post_filter = torch.from_numpy(rec.post_filter.copy())
    if rec.stage is not None:
        st = rec.stage
        net.stage = synthesis.from_quantized(
            rec.channels, st.hidden, st.dilation, st.ints, st.scales
        )
    return net.eval(), rec.coded


def _header(net: MultiHeadINR, coded: Coded) -> dict:
    return {"arch": net.cfg.to_dict(), "image": coded.__dict__}


def encode_upscale(net: UpscaleINR, coded: Coded, coder: str = "best") -> bytes:
    """The upscaler's parameters (fp16) and its image (uint8 [C, H, W])."""
    if net.image is None:
        raise ValueError("the upscaler has no image to store")
    tensors = {n: p.detach().cpu().numpy().astype(np.float16) for n, p in net.named_parameters()}
    image = net.image.mul(255).round().clamp(0, 255).to(torch.uint8).numpy()
    tensors["image_webp"] = np.frombuffer(_webp_lossless(image, coded.mode), np.uint8)
    if min(net.blend) < 1:  # files since 2026-12-05; without it renders keep all the network
        tensors["blend"] = np.array(net.blend, np.float32)
    header = {"arch": net.cfg.to_dict(), "image": coded.__dict__}
    return pack(header, tensors, coder, version=STORAGE_VERSION["upscale"])


def _config(cls, header: dict, tuples: tuple[str, ...] = ()):
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


def decode(data: bytes) -> tuple[MultiHeadINR | UpscaleINR, Coded]:
    version, raw = open_payload(data)
    if version == COMPACT_VERSION:
        return _decode_compact(raw)
    header, tensors = parse_json(raw)
    try:
        image = dict(header["image"])
        image.pop("extra", None)  # files written before 2026-11-30 carry an empty one
        coded = Coded(**image)
    except (KeyError, TypeError, ValueError) as exc:
        raise CodecError(f"the header is invalid: {exc}") from None
    if coded.storage == "upscale":
        return _decode_upscale(_config(UpscaleConfig, header), tensors, coded), coded
    cfg = _config(INRConfig, header, ("heads", "cell"))
    _check_sizes(cfg, coded)
    net = MultiHeadINR(cfg)
    if coded.storage == "weights":
        load_params(net, [n for n, _ in net.named_parameters()], tensors)
    elif coded.storage == "coefficients":
        _decode_coefficients(net, coded, tensors)
    else:
        raise CodecError(f"unknown storage {coded.storage!r}")
    return net.eval(), coded


def _check_sizes(cfg: INRConfig, coded: Coded) -> None:
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


def _decode_coefficients(
    net: MultiHeadINR, coded: Coded, tensors: dict[str, np.ndarray], klt: bool = False
) -> None:
    cfg = net.cfg
    if cfg.alpha != cfg.width or not cfg.head_bias:
        raise CodecError("coefficient storage needs dense heads with a bias")
    if coded.step is None or not coded.step > 0:
        raise CodecError("coefficient storage needs a positive quantizer step")
    load_params(net, body_names(net), tensors)
    if "coefficients" not in tensors:
        raise CodecError("the file lacks its coefficients")
    z = tensors["coefficients"]
    expected = (cfg.width + 1, cfg.channels * cfg.num_heads)
    if z.shape != expected or z.dtype.kind != "u":
        raise CodecError(f"coefficients of shape {z.shape}, expected {expected}")
    coef = torch.from_numpy(unzigzag(z).astype(np.float64)) * coded.step
    colour = mean = None
    if coded.colour is not None:
        colour = torch.tensor(coded.colour, dtype=torch.float64)
        mean = torch.tensor(coded.colour_mean, dtype=torch.float64)
        if colour.shape != (cfg.channels, cfg.channels) or mean.shape != (cfg.channels,):
            raise CodecError("the colour transform does not match the channels")
    coefficients_to_heads(net, coef, colour, mean, klt)


def _decode_upscale(cfg: UpscaleConfig, tensors: dict[str, np.ndarray], coded: Coded) -> UpscaleINR:
    if coded.mode not in ("L", "LA", "RGB", "RGBA") or len(coded.mode) != cfg.channels:
        raise CodecError(f"colour mode {coded.mode!r} does not match {cfg.channels} channels")
    if max(cfg.features, cfg.hidden) > 1024 or cfg.layers > 64:
        raise CodecError("the upscaler's architecture is over the limits")
    expected = (cfg.channels, coded.height, coded.width)
    if "image_webp" in tensors:  # files since 2026-12-05
        image = _from_webp(tensors["image_webp"], coded.mode, expected)
    else:  # version 2: raw pixels
        image = tensors.get("image")  # type: ignore[assignment]  # checked below
    if image is None or image.dtype != np.uint8 or image.shape != expected:
        raise CodecError(f"the file's image is missing or not uint8 of shape {expected}")
    net = UpscaleINR(cfg)
    load_params(net, [n for n, _ in net.named_parameters()], tensors)
    net.set_image(torch.from_numpy(image.astype(np.float32) / 255))
    blend = tensors.get("blend", np.ones(len(net.blend), np.float32))
    if blend.shape != (len(net.blend),) or not ((blend >= 0) & (blend <= 1)).all():
        raise CodecError(f"the upscaler's blend weights are not {len(net.blend)} numbers in [0, 1]")
    net.blend = blend.astype(float).tolist()
    return net.eval()


# WebP lossless at effort 4 (Pillow's method 4, quality 50): on Kodak images reduced to
# 384×256, 24–28 % fewer bytes than PNG and 38–30 % fewer than the raw pixels with LZMA that
# upscale files held until 2026-12-05, in ~0.15 s (effort 6: 1–3 % smaller, 40× slower;
# `python -m benchmarks.upscale_storage`)
WEBP_LOSSLESS = {"lossless": True, "quality": 50, "method": 4, "exact": True}


def _webp_lossless(image: np.ndarray, mode: str) -> bytes:
    """uint8 [C, H, W] as WebP lossless (grey is stored as RGB, grey with alpha as RGBA; the
    colour under transparent pixels is kept: `exact`)."""
    from mhinr.model.pixels import to_pil

    pil = to_pil(image, mode)
    if mode in ("L", "LA"):
        pil = pil.convert("RGBA" if mode == "LA" else "RGB")
    buf = io.BytesIO()
    pil.save(buf, "WEBP", **WEBP_LOSSLESS)
    return buf.getvalue()


def _from_webp(data: np.ndarray, mode: str, shape: tuple[int, int, int]) -> np.ndarray:
    """The inverse of `_webp_lossless`, refusing an image of another size before decoding
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
