"""Format 3, the compact binary record of the coefficient storage, read without PyTorch.

The payload (inflated) is one record, all little-endian:
  COMPACT  height u32, width u32, mode u8, cell rows u8, cell cols u8, body depth u8,
           body width u16, init u8, seed u32, quantizer step f32, body quantization u8,
           coefficient bytes u8 (1, 2 or 4), flags u8 (bit 0: DC prediction, bit 1:
           restoration filter, bit 2: Karhunen–Loève-ordered basis, bit 3: byte planes,
           bit 4: range-coded coefficients, bit 5: median-edge DC prediction, bit 6:
           range-coded restoration filter)
  colour   C×C f32 (rows = output channels), then the C channel means f32
  filter   (flags bit 1) its size k u8, then C×(C·k²+1) f16: the restoration filter;
           with bit 6 instead: k u8, the fraction bits b u8, the coded length u16, then
           the taps ×2^b as integers coded by entropy.encode_values
  flags2   (flags bit 7) a second flags byte, right after the header: bit 0 the stage,
           bit 1 the cosines predicted from the constant terms (`dc_interpolation`),
           bit 2 channels ≥ 1 predicted from channel 0 (`ChromaPredictor`), bit 3 the
           deblocking filter (model/codec/deblock.py), whose ramp u8 and threshold u8
           follow this byte, bit 4 the stage's biases in sixteenths of their row's unit,
           bit 5 the coefficients' context model with frequency parents
           (`FLAG2_FREQUENCY_CONTEXT`)
  stage    (flags2 bit 0) the trained stage (model/synthesis.py): its hidden channels u8,
           its middle layer's dilation u8 (0: 1×1), the coded length u16, its integers
           coded by entropy.encode_values, then one f16 scale per output row of each
           layer (synthesis.quantize_); each row's values are its integers times its
           scale, but for its bias (the row's last value): times the scale / 16 where
           flags2 bit 4 is set, times the scale before
  body     each body parameter in order: int8 matrices as int8 values then one f16 scale
           per row; everything else f16 (fp32 quantization: f32). None with init 2
           ("fixed", files since 2026-11-30): the cosine body (network.Body), whose
           coefficients are the cell's DCT (dct_basis) whatever bit 2 says
  coefficients  zigzag integers [width + 1, C·Hy·Hx] (bit 3: as byte planes, low first;
           else each value's bytes together); with DC prediction, row 0 (each
           cell's constant coefficient) as differences from the cell to its left (the
           first column: from the cell above), as JPEG codes its DC terms. With flags
           bit 4 (coder 4) the same integers range-coded (model/codec/entropy.py) instead, in a
           section the LZMA2 stream does not cover ("coefficient bytes" is then 1), and
           with bit 5 row 0 as residuals of the median edge detector (dc_med_residuals).
           With flags2 bit 1 the other rows are residuals against `dc_interpolation` of
           row 0 (the decoder adds it back); with bit 2 the rows of channels ≥ 1 are
           also residuals against `ChromaPredictor`'s prediction from channel 0
26 bytes of header where the JSON one took ~600 (~300 after LZMA): the heads grid follows
from the size and the cell, the channels from the mode, the rest is the presets' default.

The writer is codec.encode_coefficients; `read` parses a record into a `Record`, which
the PyTorch decoder (codec.decode) and the NumPy one (model/decoder.py) both build from.
"""

import math
import struct
from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from mhinr.model import pixels
from mhinr.model.codec import deblock as deblocking
from mhinr.model.codec import entropy
from mhinr.model.codec.container import MAX_PARAMS, CodecError, Coded
from mhinr.model.codec.entropy import unzigzag

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
# flags bit 4: the coefficients range-coded under a context model (model/codec/entropy.py): 12–27 %
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
# second flags byte, bit 1 (the cosine body only): every cell's cosines but the constant are
# coded as residuals against `dc_interpolation`, the cosines of the constant terms
# interpolated between the cells' centres (files since 2026-12-05)
FLAG2_DC_INTERP = 2
# second flags byte, bit 2 (the cosine body, two channels or more): the coefficients of
# channels ≥ 1 are coded as residuals against `ChromaPredictor`'s prediction from channel 0's
# (files since 2026-12-05)
FLAG2_CHROMA = 4
# second flags byte, bit 3: the decoder smooths the cells' borders (model/codec/deblock.py)
# with the ramp and threshold of the two bytes after this one (files since 2026-12-05)
FLAG2_DEBLOCK = 8
# second flags byte, bit 4 (with bit 0): each row of the stage stores its bias in units of
# its scale / 2^STAGE_BIAS_SHIFT, its weights in units of the scale (files since 2026-12-05;
# before, the bias in the weights' unit). The output layer's bias shifts the decoded
# colour: at the weights' unit (~1/30 of a row's largest weight) its rounding cost up to
# 0.4 dB of the stage's gain (benchmarks/results/stage_quant.md)
FLAG2_STAGE_BIAS = 16
STAGE_BIAS_SHIFT = 4
# second flags byte, bit 5 (the cosine body, range-coded): the coefficients' context model
# is entropy.frequency_model of the cell (each cosine in the context of its parents in
# frequency, the weights fitted anew), not entropy.LEGACY (files since 2026-12-06)
FLAG2_FREQUENCY_CONTEXT = 32
FLAGS2_KNOWN = (
    FLAG2_STAGE | FLAG2_DC_INTERP | FLAG2_CHROMA | FLAG2_DEBLOCK | FLAG2_STAGE_BIAS
    | FLAG2_FREQUENCY_CONTEXT
)  # fmt: skip
MODES = ("L", "LA", "RGB", "RGBA")
INITS = ("paper", "torch", "fixed")
QUANTS = ("fp32", "fp16", "int8")
# what a decoder accepts of a stage (model/synthesis.py makes them far smaller)
MAX_STAGE_HIDDEN = 64
MAX_STAGE_DILATION = 16


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


def dc_interpolation(dc: np.ndarray, step: float, cell: tuple[int, int]) -> np.ndarray:
    """[C, Hy, Hx] constant-term integers → [n, C·Hy·Hx] float64: each cell's cosine
    coefficients (`pixels.dct_order`) of the image that interpolates the cells' means
    between their centres by Catmull-Rom's cubic (edges replicated), the constant's row zero.

    At low rates most cells keep little but their constant term, and a plain decode is a
    mosaic of flat cells; with this prediction a cell whose other coefficients are zero
    decodes to the smooth interpolation instead, and the coefficients that are coded are the
    residual against it. The cubic is separable and reaches two cells each way, so a cell's
    prediction is A·N·Bᵀ for its 5×5 neighbourhood N of means and the DCT A, B of the
    interpolation weights along each axis (`_dct_of_cubic`). Catmull-Rom against bilinear
    interpolation and other kernels: benchmarks/dc_prediction_probe.py."""
    c, hy, hx = dc.shape
    n_y, n_x = cell
    means = dc.astype(np.float64) * (step / math.sqrt(n_y * n_x))  # the cells' mean values
    padded = np.pad(means, ((0, 0), (2, 2), (2, 2)), mode="edge")
    around = sliding_window_view(padded, (5, 5), axis=(1, 2))  # [C, Hy, Hx, 5, 5]
    # A·N·Bᵀ for every cell, as two products (einsum's plain loops took 4.6 s at 4096²)
    half = np.tensordot(around, _dct_of_cubic(n_x), axes=([4], [1]))  # [C, Hy, Hx, 5, n̂x]
    coef = np.tensordot(_dct_of_cubic(n_y), half, axes=([1], [3]))  # [n̂y, C, Hy, Hx, n̂x]
    order = np.array(pixels.dct_order(cell))
    out = coef[order[:, 0], :, :, :, order[:, 1]].reshape(n_y * n_x, c * hy * hx)
    out[0] = 0
    return out


# the chroma prediction's neighbourhood (cells each way) and its ridge, in steps² (measured:
# benchmarks/cfl_probe.py)
CHROMA_RADIUS, CHROMA_RIDGE = 2, 64.0


class ChromaPredictor:
    """The coefficients of channels ≥ 1 (in a colour image's Karhunen–Loève space, the
    chroma) predicted from channel 0's in the same cell and row, as the decoder decodes
    them: a row at a time, channel 0 first, so that when it reaches row k of channel c it
    has row k of channel 0 in every cell and rows 1 … k−1 of all channels. The colour
    transform decorrelates the channels over the whole image; at an edge they still move
    together, by a factor that changes from place to place. The prediction is α · e₀, e₀
    channel 0's decoded residual (its integer times the step), α a local least-squares fit
    on the rows before k of the cell's (2r+1)² neighbourhood, with a ridge:

        α = Σ e_c e₀ / (Σ e₀² + ridge · step²)

    The encoder (entropy.rd_quantize_rows) and the decoders (`chroma_prediction`) run the
    same steps: `term` for a row, then `update` with its decoded values."""

    radius, ridge = CHROMA_RADIUS, CHROMA_RIDGE

    def __init__(self, shape: tuple[int, int, int], step: float):
        self.step = step
        self.num = np.zeros((shape[0] - 1, *shape[1:]))  # Σ e_c e₀ (c ≥ 1) over the rows so far
        self.den = np.zeros(shape[1:])  # Σ e₀²

    def term(self, e0: np.ndarray) -> np.ndarray:
        """[C, Hy, Hx]: the prediction of the next row from channel 0's e₀ [Hy, Hx]
        (channel 0's own: zero)."""
        den = _box(self.den, self.radius) + self.ridge * self.step**2
        alpha = np.clip(_box(self.num, self.radius) / den, -2.0, 2.0)
        return np.concatenate([np.zeros((1, *e0.shape)), alpha * e0])

    def update(self, e: np.ndarray) -> None:
        """Take in a decoded row e [C, Hy, Hx] (prediction included)."""
        self.num += e[1:] * e[0]
        self.den += e[0] ** 2


def _box(a: np.ndarray, r: int) -> np.ndarray:
    """[…, Hy, Hx] → the sum over each cell's (2r+1)² neighbourhood (edges replicated):
    running sums along each axis in turn."""
    n = 2 * r + 1
    for axis in (a.ndim - 2, a.ndim - 1):
        size = a.shape[axis]
        c = np.cumsum(np.take(a, np.clip(np.arange(-r, size + r), 0, size - 1), axis), axis)
        c = np.moveaxis(c, axis, 0)
        out = c[n - 1 :].copy()
        out[1:] -= c[:-n]
        a = np.moveaxis(out, 0, axis)
    return a


def chroma_prediction(
    q: np.ndarray, step: float, pred: ChromaPredictor | None = None
) -> np.ndarray:
    """[K, C, Hy, Hx] integers (rows ≥ 1 of channels ≥ 1 residuals against the prediction)
    → [K, C, Hy, Hx] float64: the `ChromaPredictor` terms the decoder adds (row 0 and
    channel 0: zero). `pred`: a fresh predictor of another kind (benchmarks)."""
    out = np.zeros(q.shape)
    pred = pred or ChromaPredictor(q.shape[1:], step)
    for k in range(1, q.shape[0]):
        e = q[k] * step
        out[k] = pred.term(e[0])
        pred.update(e + out[k])
    return out


def _dct_of_cubic(n: int) -> np.ndarray:
    """[n, 5]: the orthonormal DCT-II (rows: frequencies) of the weights with which the n
    pixels of a cell interpolate the values at the centres of the cells two before … two
    after it (Keys' cubic convolution with a = −½, Catmull-Rom's spline)."""
    offset = (np.arange(n) + 0.5) / n - 0.5  # each pixel's distance from the centre, in cells
    d = np.abs(offset[:, None] - np.arange(-2, 3)[None])
    near = 1.5 * d**3 - 2.5 * d**2 + 1
    far = -0.5 * d**3 + 2.5 * d**2 - 4 * d + 2
    weights = np.where(d <= 1, near, np.where(d < 2, far, 0.0))
    freq = np.arange(n)
    scale = np.sqrt(np.where(freq > 0, 2.0, 1.0) / n)
    dct = scale[:, None] * np.cos(np.pi * (2 * np.arange(n)[None] + 1) * freq[:, None] / (2 * n))
    return dct @ weights


def body_shapes(depth: int, width: int) -> list[tuple[str, tuple[int, ...]]]:
    """The ReLU body's parameters in file order (network.Body's names): each layer's weight
    [width, fan in], then its bias."""
    shapes: list[tuple[str, tuple[int, ...]]] = []
    fan_in = 2
    for i in range(depth):
        shapes += [
            (f"body.net.{2 * i}.weight", (width, fan_in)),
            (f"body.net.{2 * i}.bias", (width,)),
        ]
        fan_in = width
    return shapes


def stage_rows(channels: int, hidden: int, dilation: int = 0) -> list[tuple[int, int]]:
    """(output rows, values a row) of each layer of a trained stage (model/synthesis.py's:
    a 3×3 convolution channels → hidden, a 1×1 one hidden → hidden or, with a dilation, a
    depthwise 3×3, and a 3×3 one hidden → channels), a row being its weights then its bias."""
    return [
        (hidden, channels * 9 + 1),
        (hidden, (9 if dilation else hidden) + 1),
        (channels, hidden * 9 + 1),
    ]


def stage_counts(channels: int, hidden: int, dilation: int = 0) -> tuple[int, int]:
    """(integers, scales) a trained stage of this shape stores."""
    rows = stage_rows(channels, hidden, dilation)
    return sum(r * n for r, n in rows), sum(r for r, _ in rows)


@dataclass
class StageRecord:
    """A trained stage as the file holds it (synthesis.quantize_): integers and fp16 scales."""

    hidden: int
    dilation: int
    ints: np.ndarray  # int64
    scales: np.ndarray  # float16, one per output row of each layer
    bias_shift: int = 0  # a row's bias is its integer × its scale / 2^bias_shift

    def layers(self, channels: int) -> list[np.ndarray]:
        """Each layer's rows [out, values a row] (`stage_rows`) as float64 values: its
        weights, then its bias in its finer unit — what both decoders load."""
        out, i, s = [], 0, 0
        for rows, n in stage_rows(channels, self.hidden, self.dilation):
            q = self.ints[i : i + rows * n].astype(np.float64).reshape(rows, n)
            q[:, -1] *= 2.0**-self.bias_shift  # the bias's unit
            out.append(q * self.scales[s : s + rows].astype(np.float64)[:, None])
            i, s = i + rows * n, s + rows
        return out


@dataclass
class Record:
    """A format 3 record, parsed and checked."""

    coded: Coded  # size, mode, step, colour transform
    cell: tuple[int, int]
    depth: int
    units: int  # the body's width (the cosine body: a cell's pixels less one)
    init: str  # paper, torch or fixed (the cosine body)
    seed: int
    klt: bool  # the coefficients are in the Karhunen–Loève-ordered basis
    body: dict[str, np.ndarray]  # as stored: int8 matrices with their ".scale", else f16/f32
    q: np.ndarray  # the integer coefficients [units + 1, C·Hy·Hx], int64
    post_filter: np.ndarray | None  # [C, C·k²+1] float32
    stage: StageRecord | None
    dc_interp: bool = False  # flags2 bit 1: q's other rows are residuals (`coefficients`)
    chroma: bool = False  # flags2 bit 2: channels ≥ 1 residuals against ChromaPredictor
    deblock: tuple[int, int] | None = None  # flags2 bit 3: the deblocking's (ramp, threshold)
    frequency_context: bool = False  # flags2 bit 5: q was range-coded under frequency_model

    @property
    def heads(self) -> tuple[int, int]:
        return -(-self.coded.height // self.cell[0]), -(-self.coded.width // self.cell[1])

    @property
    def channels(self) -> int:
        return len(self.coded.mode)

    def prediction(self) -> np.ndarray | None:
        """[k, C·Hy·Hx] float64: what the file's coefficients are residuals against
        (`dc_interpolation` of its constant terms, plus `chroma_prediction`), or None."""
        if not (self.dc_interp or self.chroma):
            return None
        assert self.coded.step is not None  # format 3 always has one
        step, shape = self.coded.step, (len(self.q), self.channels, *self.heads)
        out = np.zeros(self.q.shape)
        if self.dc_interp:
            out += dc_interpolation(self.q[0].reshape(shape[1:]), step, self.cell)
        if self.chroma:
            out += chroma_prediction(self.q.reshape(shape), step).reshape(self.q.shape)
        return out

    def coefficients(self) -> np.ndarray:
        """[k, C·Hy·Hx] float64: the cells' coefficients the file decodes to (its integers
        times the step, plus the `prediction` where it has one)."""
        assert self.coded.step is not None  # format 3 always has one
        coef = self.q.astype(np.float64) * self.coded.step
        prediction = self.prediction()
        return coef if prediction is None else coef + prediction

    @property
    def fixed(self) -> bool:
        """The cosine body: no weights, the cells' DCT."""
        return self.init == "fixed"


class _Reader:
    """Takes arrays off the front of a record, refusing to read past its end."""

    def __init__(self, raw: bytes, pos: int):
        self.raw, self.pos = raw, pos

    def take(self, dtype: str, shape: tuple[int, ...]) -> np.ndarray:
        count = math.prod(shape)
        n = count * np.dtype(dtype).itemsize
        if self.pos + n > len(self.raw):
            raise CodecError("the file is truncated")
        out = np.frombuffer(self.raw, dtype, count=count, offset=self.pos).reshape(shape)
        self.pos += n
        return out

    def byte(self) -> int:
        return int(self.take("u1", (1,))[0])

    def u16(self) -> int:
        return int(self.take("<u2", (1,))[0])


def read(raw: bytes) -> Record:
    """The record of an inflated format 3 payload, or CodecError saying what is wrong."""
    if len(raw) < COMPACT.size:
        raise CodecError("the header is truncated")
    h, w, mode, cy, cx, depth, units, init, seed, step, bq, zbytes, flags = COMPACT.unpack_from(raw)
    _check_header(h, w, mode, cy, cx, depth, units, init, bq, zbytes, flags, step)
    coded = Coded(
        h, w, MODES[mode], "coefficients", "int8" if QUANTS[bq] == "int8" else "fp16", step=step
    )
    c = len(coded.mode)
    r = _Reader(raw, COMPACT.size)
    flags2 = r.byte() if flags & FLAG_MORE else 0
    if flags2 & ~FLAGS2_KNOWN:
        raise CodecError(f"unknown flags {flags2:#x} (second byte): a newer mhinr wrote this file")
    if flags2 & FLAG2_STAGE_BIAS and not flags2 & FLAG2_STAGE:
        raise CodecError("the header is invalid: a stage's bias unit without a stage")
    if flags2 & FLAG2_FREQUENCY_CONTEXT and (
        INITS[init] != "fixed" or not flags & FLAG_RANGE_CODED
    ):
        raise CodecError(
            "the header is invalid: a frequency context without range-coded cosine cells"
        )
    deblock = (r.byte(), r.byte()) if flags2 & FLAG2_DEBLOCK else None
    if deblock is not None and not deblocking.valid(*deblock, (cy, cx)):
        raise CodecError(f"the header is invalid: a deblocking of {deblock} on {cy}×{cx} cells")
    coded.colour = r.take("<f4", (c, c)).astype(np.float64).tolist()
    coded.colour_mean = r.take("<f4", (c,)).astype(np.float64).tolist()
    post_filter = _read_filter(r, c, flags) if flags & FLAG_POST_FILTER else None
    shift = STAGE_BIAS_SHIFT if flags2 & FLAG2_STAGE_BIAS else 0
    stage = _read_stage(r, c, shift) if flags2 & FLAG2_STAGE else None
    body: dict[str, np.ndarray] = {}
    for name, shape in body_shapes(depth, units) if INITS[init] != "fixed" else []:
        if QUANTS[bq] == "int8" and len(shape) == 2:
            body[name] = r.take("i1", shape)
            body[name + ".scale"] = r.take("<f2", (shape[0], 1))
        else:
            body[name] = r.take("<f4" if QUANTS[bq] == "fp32" else "<f2", shape)
    heads = (-(-h // cy), -(-w // cx))
    model = context_model(flags2, (cy, cx))
    q = _read_coefficients(r, flags, zbytes, (units + 1, c, heads[0], heads[1]), model)
    if r.pos != len(raw):
        raise CodecError(f"the file has {len(raw) - r.pos} bytes more than its header describes")
    dc_interp = bool(flags2 & FLAG2_DC_INTERP)
    if dc_interp and INITS[init] != "fixed":
        raise CodecError("the header is invalid: DC interpolation without the cosine body")
    chroma = bool(flags2 & FLAG2_CHROMA)
    if chroma and (INITS[init] != "fixed" or c < 2):
        raise CodecError(
            "the header is invalid: a chroma prediction needs the cosine body in colour"
        )
    return Record(
        coded, (cy, cx), depth, units, INITS[init], seed, bool(flags & FLAG_KLT), body, q,
        post_filter, stage, dc_interp, chroma, deblock, bool(flags2 & FLAG2_FREQUENCY_CONTEXT),
    )  # fmt: skip


def _check_header(h, w, mode, cy, cx, depth, units, init, bq, zbytes, flags, step) -> None:
    known = FLAG_DC_PREDICTION | FLAG_POST_FILTER | FLAG_KLT | FLAG_PLANAR | FLAG_RANGE_CODED
    if flags & ~(known | FLAG_DC_MEDIAN | FLAG_FILTER_CODED | FLAG_MORE):
        raise CodecError(f"unknown flags {flags:#x}: a newer mhinr wrote this file")
    if mode >= len(MODES) or init >= len(INITS) or bq >= len(QUANTS) or zbytes not in (1, 2, 4):
        raise CodecError("the header is invalid: an unknown mode, init, quantization or width")
    if min(h, w, cy, cx, depth, units) < 1:
        raise CodecError("the header is invalid: a zero size")
    if INITS[init] == "fixed" and (units != cy * cx - 1 or depth != 1):
        raise CodecError(
            f"the header is invalid: a cosine body is of depth 1 and {cy * cx - 1} units on "
            f"{cy}×{cx} cells, not depth {depth}, width {units}"
        )
    if flags & FLAG_DC_MEDIAN and not flags & FLAG_DC_PREDICTION:
        raise CodecError("the header is invalid: a median-edge DC flag without DC prediction")
    if flags & FLAG_FILTER_CODED and not flags & FLAG_POST_FILTER:
        raise CodecError("the header is invalid: a coded-filter flag without a filter")
    if not (math.isfinite(step) and step > 0):
        raise CodecError("coefficient storage needs a positive quantizer step")
    hy, hx = -(-h // cy), -(-w // cx)
    c = len(MODES[mode])
    params = units * (units + 2 * 128 + 3) * depth + hy * hx * c * (units + 1)
    if params > MAX_PARAMS:
        raise CodecError(f"the architecture has about {params:,} parameters, over the limit")


def _read_filter(r: _Reader, c: int, flags: int) -> np.ndarray:
    k = r.byte()
    if k % 2 == 0 or k > 15:
        raise CodecError(f"the header is invalid: a restoration filter of size {k}")
    shape = (c, c * k**2 + 1)
    if flags & FLAG_FILTER_CODED:
        bits, n = r.byte(), r.u16()
        if bits > 24:
            raise CodecError(f"the header is invalid: a filter of {bits} fraction bits")
        try:
            ints = entropy.decode_values(r.take("u1", (n,)).tobytes(), shape[0] * shape[1])
        except ValueError as exc:
            raise CodecError(f"the restoration filter does not decode: {exc}") from None
        taps = (ints.reshape(shape) / 2.0**bits).astype(np.float32)
    else:
        taps = r.take("<f2", shape).astype(np.float32)
    if not np.isfinite(taps).all():
        raise CodecError("the restoration filter is not finite")
    return taps


def _read_stage(r: _Reader, channels: int, bias_shift: int) -> StageRecord:
    hidden, dilation = r.byte(), r.byte()
    n = r.u16()
    if not 0 < hidden <= MAX_STAGE_HIDDEN or dilation > MAX_STAGE_DILATION:
        raise CodecError(f"the header is invalid: a stage of {hidden} channels, {dilation}")
    count, rows = stage_counts(channels, hidden, dilation)
    try:
        ints = entropy.decode_values(r.take("u1", (n,)).tobytes(), count)
    except ValueError as exc:
        raise CodecError(f"the trained stage does not decode: {exc}") from None
    scales = r.take("<f2", (rows,))
    if not np.isfinite(scales).all() or np.abs(ints).max(initial=0) > 2**20:
        raise CodecError("the trained stage is not finite")
    return StageRecord(hidden, dilation, ints, scales, bias_shift)


def context_model(flags2: int, cell: tuple[int, int]) -> entropy.ContextModel:
    """The context model a file's range-coded coefficients are coded under."""
    if flags2 & FLAG2_FREQUENCY_CONTEXT:
        return entropy.frequency_model(cell)
    return entropy.LEGACY


def _read_coefficients(
    r: _Reader,
    flags: int,
    zbytes: int,
    shape4: tuple[int, int, int, int],
    model: entropy.ContextModel,
) -> np.ndarray:
    """The signed integer coefficients [k, C·Hy·Hx] (int64), their DC terms summed back."""
    k, c, hy, hx = shape4
    shape = (k, c * hy * hx)
    if flags & FLAG_RANGE_CODED:
        try:
            q = entropy.decode(r.raw[r.pos :], shape4, model).reshape(shape)
        except (ValueError, RuntimeError, OverflowError) as exc:
            raise CodecError(f"the coefficients do not decode: {exc}") from None
        r.pos = len(r.raw)
    elif flags & FLAG_PLANAR:  # byte planes, least significant first
        planes = r.take("u1", (zbytes, *shape)).astype(np.uint64)
        q = unzigzag(sum(planes[i] << np.uint64(8 * i) for i in range(zbytes)))
    else:
        q = unzigzag(r.take({1: "u1", 2: "<u2", 4: "<u4"}[zbytes], shape))
    q = np.asarray(q, dtype=np.int64).copy()
    if flags & FLAG_DC_PREDICTION:
        sums = dc_med_sums if flags & FLAG_DC_MEDIAN else dc_sums
        q[0] = sums(q[0].reshape(c, hy, hx)).reshape(-1)
    return q
