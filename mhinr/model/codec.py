"""The .inr file: a fitted network as a compressed image.

Layout (all integers little-endian):

    magic   4 bytes  b"MINR"
    version 1 byte   FORMAT_VERSION
    coder   1 byte   1 = LZMA (xz), 2 = zstandard, 3 = raw LZMA2, 4 = raw LZMA2 then
                     range-coded coefficients (format 3: u32 length of the LZMA2
                     stream | the stream | the coefficient section, model/entropy.py)
    crc32   4 bytes  of the compressed payload
    payload          coder(u32 header length | header JSON | safetensors bytes)
                     (format 3, the coefficient storage: coder(a binary record), below)

The header (JSON) holds the architecture (INRConfig, which includes the seed), the image
geometry (size, colour mode; the padding follows from size and architecture), the storage
kind and its quantization. The sparse connection indices and Fourier matrices are
regenerated from the seed (model/prng.py), so they cost no bytes. Tensors are stored with
safetensors, never pickle. Two storage kinds:

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

import json
import lzma
import math
import struct
import zlib
from dataclasses import dataclass, fields
from typing import Literal

import numpy as np
import torch
import zstandard
from safetensors.numpy import load as st_load
from safetensors.numpy import save as st_save

from mhinr.model import entropy, postfilter, synthesis
from mhinr.model.entropy import unzigzag, zigzag
from mhinr.model.network import INRConfig, MultiHeadINR, cell_feature_factor, dct_basis
from mhinr.model.upscale import UpscaleConfig, UpscaleINR

MAGIC = b"MINR"
FORMAT_VERSION = 3  # the newest this code reads; a file says the oldest that reads it
STORAGE_VERSION = {"weights": 1, "coefficients": 3, "upscale": 2}
CODERS = {1: "lzma", 2: "zstd", 3: "lzma-raw", 4: "lzma-raw+range"}  # the coder byte
# LZMA2 without the xz container (its headers, index and check cost ~60 bytes a file; the
# crc32 in the prefix covers the payload)
LZMA_RAW = [{"id": lzma.FILTER_LZMA2, "preset": 9 | lzma.PRESET_EXTREME, "dict_size": 1 << 24}]
PREFIX = struct.Struct("<4sBBI")
MAX_PAYLOAD = 1 << 30  # refuse to inflate more than 1 GiB
MAX_PARAMS = 100_000_000

Quantization = Literal["fp32", "fp16", "int8"]


class CodecError(ValueError):
    """The bytes are not a valid .inr file we can read; the message says why."""


@dataclass
class Coded:
    """What a .inr file holds besides the network: the image it renders."""

    height: int
    width: int
    mode: str  # L, LA, RGB or RGBA
    storage: Literal["weights", "coefficients", "upscale"] = "weights"
    quantization: Quantization = "fp32"
    step: float | None = None  # coefficients: the quantizer step
    colour: list[list[float]] | None = None  # coefficients: 3×3 KLT, rows = output channels
    colour_mean: list[float] | None = None


# --- the container ------------------------------------------------------------------------


def pack(
    header: dict, tensors: dict[str, np.ndarray], coder: str = "best", version: int = 1
) -> bytes:
    blob = st_save({k: np.ascontiguousarray(v) for k, v in tensors.items()})
    head = json.dumps(header, separators=(",", ":"), sort_keys=True).encode()
    raw = struct.pack("<I", len(head)) + head + blob
    candidates = []
    if coder in ("best", "lzma"):
        candidates.append(
            (1, lzma.compress(raw, format=lzma.FORMAT_XZ, preset=9 | lzma.PRESET_EXTREME))
        )
    if coder in ("best", "zstd"):
        candidates.append((2, zstandard.ZstdCompressor(level=22).compress(raw)))
    if not candidates:
        raise ValueError(f"unknown coder {coder!r}: best, lzma or zstd")
    code, payload = min(candidates, key=lambda c: len(c[1]))
    return PREFIX.pack(MAGIC, version, code, zlib.crc32(payload)) + payload


def unpack(data: bytes) -> tuple[dict, dict[str, np.ndarray]]:
    """The JSON header and the tensors of a format 1 or 2 file."""
    version, raw = _open(data)
    if version >= 3:
        raise CodecError(f"format version {version} has a binary header, not a JSON one")
    return _parse_json(raw)


def _open(data: bytes) -> tuple[int, bytes]:
    """Check the prefix and the checksum; (format version, inflated payload)."""
    if len(data) < PREFIX.size:
        raise CodecError(f"not an .inr file: only {len(data)} bytes")
    magic, version, code, crc = PREFIX.unpack_from(data)
    if magic != MAGIC:
        raise CodecError("not an .inr file (wrong magic bytes)")
    if version > FORMAT_VERSION:
        raise CodecError(
            f"the file is format version {version}, newer than this mhinr reads "
            f"({FORMAT_VERSION}): upgrade mhinr"
        )
    if version < 1:
        raise CodecError(f"invalid format version {version}")
    if code not in CODERS:
        raise CodecError(f"unknown entropy coder id {code}")
    payload = data[PREFIX.size :]
    if zlib.crc32(payload) != crc:
        raise CodecError("checksum mismatch: the file is corrupt or truncated")
    return version, _inflate(CODERS[code], payload)


def _parse_json(raw: bytes) -> tuple[dict, dict[str, np.ndarray]]:
    if len(raw) < 4:
        raise CodecError("the payload is truncated")
    (hlen,) = struct.unpack_from("<I", raw)
    if hlen > len(raw) - 4:
        raise CodecError("the header is truncated")
    try:
        header = json.loads(raw[4 : 4 + hlen])
        tensors = st_load(bytes(raw[4 + hlen :]))
    except (ValueError, UnicodeDecodeError) as exc:  # json and safetensors errors
        raise CodecError(f"the header or tensors are malformed: {exc}") from None
    except Exception as exc:  # safetensors raises its own SafetensorError
        raise CodecError(f"the tensors are malformed: {exc}") from None
    if not isinstance(header, dict):
        raise CodecError("the header is not an object")
    return header, tensors


def _inflate(coder: str, payload: bytes) -> bytes:
    if coder == "lzma-raw+range":  # the record, then its range-coded section as it is
        if len(payload) < 4:
            raise CodecError("the payload is truncated")
        (n,) = struct.unpack_from("<I", payload)
        if n > len(payload) - 4:
            raise CodecError("the payload is truncated")
        return _inflate("lzma-raw", payload[4 : 4 + n]) + payload[4 + n :]
    try:
        if coder in ("lzma", "lzma-raw"):
            if coder == "lzma":
                dec = lzma.LZMADecompressor(format=lzma.FORMAT_XZ)
            else:
                dec = lzma.LZMADecompressor(format=lzma.FORMAT_RAW, filters=LZMA_RAW)
            raw = dec.decompress(payload, max_length=MAX_PAYLOAD)
            if not dec.eof:
                raise CodecError("the payload is truncated or larger than the limit")
            return raw
        reader = zstandard.ZstdDecompressor().stream_reader(payload)
        raw = reader.read(MAX_PAYLOAD + 1)
        if len(raw) > MAX_PAYLOAD:
            raise CodecError("the payload inflates beyond the limit")
        return raw
    except (lzma.LZMAError, zstandard.ZstdError) as exc:
        raise CodecError(f"the payload does not decompress: {exc}") from None


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
    with torch.no_grad():
        net.heads.bias.copy_(weights[0].float())
        net.heads.weight.copy_(weights[1:].T.float())  # [O, width]


def dc_differences(dc: np.ndarray) -> np.ndarray:
    """[C, Hy, Hx] integers → each minus its left neighbour (first column: minus the one
    above; the first cell as it is)."""
    out = dc.copy()
    out[:, :, 1:] -= dc[:, :, :-1]
    out[:, 1:, 0] -= dc[:, :-1, 0]
    return out


def dc_sums(diff: np.ndarray) -> np.ndarray:
    """The inverse of `dc_differences`."""
    out = diff.copy()
    out[:, :, 0] = np.cumsum(diff[:, :, 0], axis=1)
    return np.cumsum(out, axis=2)


def _med_prediction(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """LOCO-I's median edge detector from the left (a), above (b) and above-left (c)."""
    big, small = np.maximum(a, b), np.minimum(a, b)
    return np.where(c >= big, small, np.where(c <= small, big, a + b - c))


def dc_med_residuals(dc: np.ndarray) -> np.ndarray:
    """[C, Hy, Hx] integers → each minus the median edge detector's prediction from its
    left, upper and upper-left neighbours (first row: minus the left one; first column:
    minus the one above; the first cell as it is)."""
    a, b, c = np.zeros_like(dc), np.zeros_like(dc), np.zeros_like(dc)
    a[:, :, 1:], b[:, 1:], c[:, 1:, 1:] = dc[:, :, :-1], dc[:, :-1], dc[:, :-1, :-1]
    pred = _med_prediction(a, b, c)
    pred[:, 0, 1:] = dc[:, 0, :-1]
    pred[:, 1:, 0] = dc[:, :-1, 0]
    pred[:, 0, 0] = 0
    return dc - pred


def dc_med_sums(res: np.ndarray) -> np.ndarray:
    """The inverse of `dc_med_residuals` (cell by cell in raster order, all channels at
    once)."""
    out = np.zeros_like(res)
    out[:, 0] = np.cumsum(res[:, 0], axis=1)
    out[:, :, 0] = np.cumsum(out[:, :, 0] + np.pad(res[:, 1:, 0], [(0, 0), (1, 0)]), axis=1)
    for y in range(1, res.shape[1]):
        up, row = out[:, y - 1], out[:, y]
        for x in range(1, res.shape[2]):
            row[:, x] = res[:, y, x] + _med_prediction(row[:, x - 1], up[:, x], up[:, x - 1])
    return out


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
    if planar or coder in ("best", "zstd"):
        planes = dict(tensors, coefficients=_zigzag_array(predicted(dc_differences)))
        record = _compact_record(net, coded, planes, dc_prediction, post_filter, klt, stage=stage)
    if planar:
        candidates.append((3, lzma_raw(record)))
    if range_coded:
        median = dc_prediction and dc_median
        head = _compact_record(net, coded, tensors, dc_prediction, post_filter, klt, median, stage)
        head = lzma_raw(head)
        ranged = predicted(dc_med_residuals if median else dc_differences)
        section = entropy.encode(ranged.reshape(len(q), *dc_shape))
        candidates.append((4, struct.pack("<I", len(head)) + head + section))
    if coder in ("best", "zstd"):
        candidates.append((2, zstandard.ZstdCompressor(level=22).compress(record)))
    code, payload = min(candidates, key=lambda c: len(c[1]))
    return PREFIX.pack(MAGIC, STORAGE_VERSION["coefficients"], code, zlib.crc32(payload)) + payload


def lzma_raw(data: bytes) -> bytes:
    """Raw LZMA2 as LZMA_RAW, with a dictionary no larger than the data needs: the same
    stream (LZMA_RAW's decoder reads it), without initialising 16 MiB of match finder for
    a few kilobytes (15 ms → 0.4 ms for a 2 kB record)."""
    size = min(1 << 24, max(1 << 12, 1 << (len(data) - 1).bit_length()))
    return lzma.compress(data, format=lzma.FORMAT_RAW, filters=[dict(LZMA_RAW[0], dict_size=size)])


# With context coding on, the byte-plane file is also tried for arrays of at most this many
# coefficients (a 160×160 image at width 32): LZMA2 won on a 40×56 image at two of three
# steps, the range coder by 7 % on a 96×128 crop and by 12–27 % on every Kodak-sized file
PLANES_TRIED_UP_TO = 40_000


# --- format 3: the compact binary coefficient file --------------------------------------------
#
# The payload (inflated) is one record, all little-endian:
#   COMPACT  height u32, width u32, mode u8, cell rows u8, cell cols u8, body depth u8,
#            body width u16, init u8, seed u32, quantizer step f32, body quantization u8,
#            coefficient bytes u8 (1, 2 or 4), flags u8 (bit 0: DC prediction, bit 1:
#            restoration filter, bit 2: Karhunen–Loève-ordered basis, bit 3: byte planes,
#            bit 4: range-coded coefficients, bit 5: median-edge DC prediction, bit 6:
#            range-coded restoration filter)
#   colour   C×C f32 (rows = output channels), then the C channel means f32
#   filter   (flags bit 1) its size k u8, then C×(C·k²+1) f16: the restoration filter;
#            with bit 6 instead: k u8, the fraction bits b u8, the coded length u16, then
#            the taps ×2^b as integers coded by entropy.encode_values
#   flags2   (flags bit 7) a second flags byte, right after the header: bit 0 the stage
#   stage    (flags2 bit 0) the trained stage (model/synthesis.py): its hidden channels u8,
#            its middle layer's dilation u8 (0: 1×1), the coded length u16, its integers
#            coded by entropy.encode_values, then one f16 scale per output row of each
#            layer (synthesis.quantize_)
#   body     each body parameter in order: int8 matrices as int8 values then one f16 scale
#            per row; everything else f16 (fp32 quantization: f32). None with init 2
#            ("fixed", files since 2026-11-30): the cosine body (network.Body), whose
#            coefficients are the cell's DCT (dct_basis) whatever bit 2 says
#   coefficients  zigzag integers [width + 1, C·Hy·Hx] (bit 3: as byte planes, low first;
#            else each value's bytes together); with DC prediction, row 0 (each
#            cell's constant coefficient) as differences from the cell to its left (the
#            first column: from the cell above), as JPEG codes its DC terms. With flags
#            bit 4 (coder 4) the same integers range-coded (model/entropy.py) instead, in a
#            section the LZMA2 stream does not cover ("coefficient bytes" is then 1), and
#            with bit 5 row 0 as residuals of the median edge detector (dc_med_residuals)
# 26 bytes of header where the JSON one took ~600 (~300 after LZMA): the heads grid follows
# from the size and the cell, the channels from the mode, the rest is the presets' default.

COMPACT = struct.Struct("<IIBBBBHBIfBBB")
FLAG_DC_PREDICTION = 1  # flags bit 0: row 0 of the coefficients holds left-neighbour differences
FLAG_POST_FILTER = 2  # flags bit 1: a restoration filter follows the colour transform
FLAG_KLT = 4  # flags bit 2: coefficients in the Karhunen–Loève-ordered basis (klt_rotation)
# flags bit 3: the coefficients' bytes in planes (every value's low byte, then every value's
# next byte, …) rather than value by value. Where a few values need 16 bits, the high plane
# is nearly all zeros and LZMA codes it in a few bytes, while interleaved zero bytes break
# the low bytes' runs: files 6–9 % smaller at fine steps (kodim23, kodim05), equal when
# every value fits a byte. Files since 2026-11-30 set it.
FLAG_PLANAR = 8
# flags bit 4: the coefficients range-coded under a context model (model/entropy.py): 12–27 %
# fewer bytes than LZMA2 on the byte planes (results/codec_ablation.md). Files since
# 2026-11-30 (this session's second day) use it when it is the smaller.
FLAG_RANGE_CODED = 16
# flags bit 5 (with bits 0 and 4): row 0 holds the constant terms' residuals from the median
# edge detector of LOCO-I (left, above, above-left) instead of left differences: 0.3–6.7 %
# smaller range-coded files (most on smooth images at low rates; kodim23 0.3 → 6.7 %)
FLAG_DC_MEDIAN = 32
# flags bit 6 (with bit 1): the restoration filter's taps as integer multiples of
# 2^-bits, range-coded under one Laplace table (entropy.encode_values), instead of fp16:
# ~290 bytes for RGB where fp16 took 460 (4 % of a 0.15-bpp Kodak file)
FLAG_FILTER_CODED = 64
# flags bit 7: a second flags byte follows the header (files since 2026-12-04; a decoder
# before then refuses them as "unknown flags"), so that the first byte's bits run out
# without a new format version
FLAG_MORE = 128
# second flags byte, bit 0: the trained stage (model/synthesis.py) follows the restoration
# filter
FLAG2_STAGE = 1
MODES = ("L", "LA", "RGB", "RGBA")
INITS = ("paper", "torch", "fixed")
QUANTS = ("fp32", "fp16", "int8")


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
        1 if range_coded else z.dtype.itemsize,
        flags,
    )
    head += more
    body = b"".join(_body_bytes(name, tensors) for name in body_names(net))
    if range_coded:
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
    if not 0 < stage.hidden <= synthesis.MAX_HIDDEN or len(coded) > 65535:
        raise ValueError(f"a stage of {stage.hidden} channels, {len(coded)} coded bytes")
    head = struct.pack("<BBH", stage.hidden, stage.dilation, len(coded))
    return head + coded + scales.astype("<f2").tobytes()


def _body_bytes(name: str, tensors: dict[str, np.ndarray]) -> bytes:
    a = tensors[name]
    if a.dtype == np.int8:
        return a.tobytes() + tensors[name + ".scale"].astype("<f2").tobytes()
    return a.astype(a.dtype.newbyteorder("<")).tobytes()


def _decode_compact(raw: bytes) -> tuple[MultiHeadINR, Coded]:
    if len(raw) < COMPACT.size:
        raise CodecError("the header is truncated")
    h, w, mode, cy, cx, depth, width, init, seed, step, bq, zbytes, flags = COMPACT.unpack_from(raw)
    known = FLAG_DC_PREDICTION | FLAG_POST_FILTER | FLAG_KLT | FLAG_PLANAR | FLAG_RANGE_CODED
    if flags & ~(known | FLAG_DC_MEDIAN | FLAG_FILTER_CODED | FLAG_MORE):
        raise CodecError(f"unknown flags {flags:#x}: a newer mhinr wrote this file")
    if mode >= len(MODES) or init >= len(INITS) or bq >= len(QUANTS) or zbytes not in (1, 2, 4):
        raise CodecError("the header is invalid: an unknown mode, init, quantization or width")
    if min(h, w, cy, cx, depth, width) < 1:
        raise CodecError("the header is invalid: a zero size")
    try:
        cfg = INRConfig(
            heads=(-(-h // cy), -(-w // cx)),
            cell=(cy, cx),
            channels=len(MODES[mode]),
            width=width,
            depth=depth,
            alpha=width,
            init=INITS[init],
            seed=seed,
            body="cosine" if INITS[init] == "fixed" else "relu",
        )
    except ValueError as exc:  # a fixed body of the wrong shape
        raise CodecError(f"the header is invalid: {exc}") from None
    c = cfg.channels
    quant = QUANTS[bq]
    coded = Coded(
        h, w, MODES[mode], "coefficients", "int8" if quant == "int8" else "fp16", step=step
    )
    _check_sizes(cfg, coded)
    pos = COMPACT.size

    def take(dtype: str, shape: tuple[int, ...]) -> np.ndarray:
        nonlocal pos
        n = int(np.prod(shape)) * np.dtype(dtype).itemsize
        if pos + n > len(raw):
            raise CodecError("the file is truncated")
        out = np.frombuffer(raw, dtype, count=int(np.prod(shape)), offset=pos).reshape(shape)
        pos += n
        return out

    flags2 = int(take("u1", (1,))[0]) if flags & FLAG_MORE else 0
    if flags2 & ~FLAG2_STAGE:
        raise CodecError(f"unknown flags {flags2:#x} (second byte): a newer mhinr wrote this file")

    coded.colour = take("<f4", (c, c)).astype(np.float64).tolist()
    coded.colour_mean = take("<f4", (c,)).astype(np.float64).tolist()
    filters = None
    if flags & FLAG_POST_FILTER:
        (k,) = take("u1", (1,))
        if k % 2 == 0 or k > 15:
            raise CodecError(f"the header is invalid: a restoration filter of size {k}")
        shape = (c, c * int(k) ** 2 + 1)
        if flags & FLAG_FILTER_CODED:
            bits, n = take("u1", (1,))[0], int(take("<u2", (1,))[0])
            if bits > 24:
                raise CodecError(f"the header is invalid: a filter of {bits} fraction bits")
            try:
                ints = entropy.decode_values(take("u1", (n,)).tobytes(), shape[0] * shape[1])
            except ValueError as exc:
                raise CodecError(f"the restoration filter does not decode: {exc}") from None
            filters = torch.from_numpy(ints.reshape(shape) / 2.0 ** int(bits)).float()
        else:
            filters = torch.from_numpy(take("<f2", shape).astype(np.float32))
        if not torch.isfinite(filters).all():
            raise CodecError("the restoration filter is not finite")
    stage = _read_stage(take, c) if flags2 & FLAG2_STAGE else None
    net = MultiHeadINR(cfg)
    state = net.state_dict()
    tensors: dict[str, np.ndarray] = {}
    for name in body_names(net):
        shape = tuple(state[name].shape)
        if quant == "int8" and len(shape) == 2:
            tensors[name] = take("i1", shape)
            tensors[name + ".scale"] = take("<f2", (shape[0], 1))
        else:
            tensors[name] = take("<f4" if quant == "fp32" else "<f2", shape)
    shape = (cfg.width + 1, c * cfg.num_heads)
    q = None  # the signed integers, where the storage gives them (else the zigzag `z`)
    if flags & FLAG_RANGE_CODED:
        try:
            q = entropy.decode(raw[pos:], (cfg.width + 1, c, *cfg.heads)).reshape(shape)
        except (ValueError, RuntimeError, OverflowError) as exc:
            raise CodecError(f"the coefficients do not decode: {exc}") from None
        pos = len(raw)
    elif flags & FLAG_PLANAR:  # byte planes, least significant first
        planes = take("u1", (zbytes, *shape)).astype(np.uint32)
        z = sum(planes[i] << (8 * i) for i in range(zbytes))
    else:
        z = take({1: "u1", 2: "<u2", 4: "<u4"}[zbytes], shape)
    if flags & FLAG_DC_MEDIAN and not flags & FLAG_DC_PREDICTION:
        raise CodecError("the header is invalid: a median-edge DC flag without DC prediction")
    if flags & FLAG_FILTER_CODED and not flags & FLAG_POST_FILTER:
        raise CodecError("the header is invalid: a coded-filter flag without a filter")
    if flags & FLAG_DC_PREDICTION:
        q = unzigzag(z) if q is None else q
        sums = dc_med_sums if flags & FLAG_DC_MEDIAN else dc_sums
        q[0] = sums(q[0].reshape(c, *cfg.heads)).reshape(-1)
    tensors["coefficients"] = z if q is None else zigzag(q).astype(np.uint64)
    if pos != len(raw):
        raise CodecError(f"the file has {len(raw) - pos} bytes more than its header describes")
    if not (math.isfinite(step) and step > 0):
        raise CodecError("coefficient storage needs a positive quantizer step")
    _decode_coefficients(net, coded, tensors, bool(flags & FLAG_KLT))
    net.post_filter = filters
    net.stage = stage
    return net.eval(), coded


def _read_stage(take, channels: int) -> synthesis.Stage:
    """The trained stage of a format 3 record (`stage_bytes`), read with `take`."""
    hidden, dilation = (int(v) for v in take("u1", (2,)))
    n = int(take("<u2", (1,))[0])
    if not 0 < hidden <= synthesis.MAX_HIDDEN or dilation > synthesis.MAX_DILATION:
        raise CodecError(f"the header is invalid: a stage of {hidden} channels, {dilation}")
    count, rows = synthesis.parameter_counts(channels, hidden, dilation)
    try:
        ints = entropy.decode_values(take("u1", (n,)).tobytes(), count)
    except ValueError as exc:
        raise CodecError(f"the trained stage does not decode: {exc}") from None
    scales = take("<f2", (rows,))
    if not np.isfinite(scales).all() or np.abs(ints).max(initial=0) > 2**20:
        raise CodecError("the trained stage is not finite")
    return synthesis.from_quantized(channels, hidden, dilation, ints, scales)


def _header(net: MultiHeadINR, coded: Coded) -> dict:
    return {"arch": net.cfg.to_dict(), "image": coded.__dict__}


def encode_upscale(net: UpscaleINR, coded: Coded, coder: str = "best") -> bytes:
    """The upscaler's parameters (fp16) and its image (uint8 [C, H, W])."""
    if net.image is None:
        raise ValueError("the upscaler has no image to store")
    tensors = {n: p.detach().cpu().numpy().astype(np.float16) for n, p in net.named_parameters()}
    tensors["image"] = net.image.mul(255).round().clamp(0, 255).to(torch.uint8).numpy()
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
    version, raw = _open(data)
    if version >= 3:
        return _decode_compact(raw)
    header, tensors = _parse_json(raw)
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
    image = tensors.get("image")
    expected = (cfg.channels, coded.height, coded.width)
    if image is None or image.dtype != np.uint8 or image.shape != expected:
        raise CodecError(f"the file's image is missing or not uint8 of shape {expected}")
    net = UpscaleINR(cfg)
    load_params(net, [n for n, _ in net.named_parameters()], tensors)
    net.set_image(torch.from_numpy(image.astype(np.float32) / 255))
    return net.eval()
