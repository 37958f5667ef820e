"""Format 3, the coefficient storage of the presets' networks, written from a network and
read back into one. Its byte layout is documented once, in model/codec/format3.py (which
reads it without PyTorch, for the NumPy decoder too)."""

import struct
import zlib
from dataclasses import dataclass

import numpy as np
import torch

from mhinr.model import synthesis
from mhinr.model.codec import deblock as deblocking
from mhinr.model.codec import entropy, format3, postfilter
from mhinr.model.codec.container import (
    MAGIC,
    PREFIX,
    STORAGE_VERSION,
    Coded,
    Quantization,
    lzma_raw,
    pack,
)
from mhinr.model.codec.entropy import zigzag
from mhinr.model.codec.format1 import body_names, json_header, quantize_module
from mhinr.model.codec.format3 import (
    COMPACT,
    FLAG2_CHROMA,
    FLAG2_DC_INTERP,
    FLAG2_DEBLOCK,
    FLAG2_FREQUENCY_CONTEXT,
    FLAG2_STAGE,
    FLAG2_STAGE_BIAS,
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
    STAGE_BIAS_SHIFT,
    dc_differences,
    dc_med_residuals,
)
from mhinr.model.codec.transforms import load_coefficients
from mhinr.model.network import INRConfig, MultiHeadINR


@dataclass(frozen=True)
class Tools:
    """The coding tools a coefficient file is written with. Every file the presets write
    uses all of them; the codec ablation (benchmarks/codec_ablation.py) turns them on one at
    a time, and the decoder reads every combination (older files)."""

    version: int = 3  # 1: the JSON container (the ablation's "before")
    dc_prediction: bool = True  # format 3: the constant terms as neighbour differences
    klt: bool = False  # format 3: the basis in Karhunen–Loève order (transforms.klt_rotation)
    # format 3: the coefficients also range-coded under the context model of
    # model/codec/entropy.py, the smaller file kept; that file predicts the constant terms
    # by the median edge detector (`dc_median`) rather than from the left
    context_coding: bool = True
    dc_median: bool = True
    # format 3, the cosine body: the cosines coded as residuals against
    # format3.dc_interpolation of the constant terms (the caller's `q` already is; the
    # CoefficientCoder turns it on for the cosine body)
    dc_interp: bool = False
    # format 3, the cosine body in colour: channels ≥ 1 coded as residuals against
    # format3.ChromaPredictor's prediction from channel 0 (the caller's `q` already is)
    chroma: bool = False
    # format 3: the coder tries the deblocking filter (model/codec/deblock.py) at each step
    # and writes the best of its settings where it pays (the second flags byte's bit 3 then
    # says so, as the stage's bit 0 says a stage follows: `flags2` leaves both to the caller)
    deblock: bool = False
    # format 3, the cosine body: the range coder's context model with the cosines' parents
    # in frequency (entropy.frequency_model) instead of entropy.LEGACY (the caller's `q`
    # chosen under it: `context_model`; nothing without `context_coding`)
    frequency_context: bool = False

    @property
    def flags2(self) -> int:
        """The second flags byte's bits these tools set (the stage's is the caller's)."""
        return (
            (FLAG2_DC_INTERP if self.dc_interp else 0)
            | (FLAG2_CHROMA if self.chroma else 0)
            | (FLAG2_FREQUENCY_CONTEXT if self.frequency_context and self.context_coding else 0)
        )

    def context_model(self, cell: tuple[int, int]) -> entropy.ContextModel:
        """The context model these tools code a file of `cell`-pixel cells under."""
        return format3.context_model(self.flags2, cell)


def encode_coefficients(
    net: MultiHeadINR,
    coded: Coded,
    q: np.ndarray,
    body_quantization: Quantization,
    coder: str = "best",
    tools: Tools = Tools(),
    post_filter: torch.Tensor | None = None,
    stage: synthesis.Stage | None = None,
    deblock: tuple[int, int] | None = None,
) -> bytes:
    """`q`: integer coefficients [k, C·Hy·Hx] (with `tools.dc_interp`, all rows but the
    first residuals against format3.dc_interpolation of the first; with `tools.chroma`,
    channels ≥ 1 also against format3.ChromaPredictor's prediction); the body must already
    hold its quantized values (the encoder computes coefficients against exactly the
    decoder's basis; with `tools.klt` the Karhunen–Loève-ordered one, `cell_basis`).
    Format 3 (`_compact_record`) for the presets' networks, with any restoration filter [C,
    C·k²+1], trained `stage` and `deblock` to apply; else (a sine or Fourier body, another
    grid, `tools.version` 1) the format 1 JSON container."""
    q = q.astype(np.int64)
    tensors = quantize_module(net, body_quantization, body_names(net))
    if not _format3(net, coded, tools, post_filter is not None or stage is not None, deblock):
        tensors["coefficients"] = zigzag_array(q)  # the JSON container: the values as they are
        return pack(json_header(net, coded), tensors, coder)
    if coder not in ("best", "lzma", "zstd"):
        raise ValueError(f"unknown coder {coder!r}: best, lzma or zstd")
    dc_prediction, klt = tools.dc_prediction, tools.klt
    dc_shape = (len(coded.mode), *net.cfg.heads)

    def predicted(dc_predictor) -> np.ndarray:  # q with row 0 as residuals, if predicted
        if not dc_prediction:
            return q
        out = q.copy()
        out[0] = dc_predictor(q[0].reshape(dc_shape)).reshape(-1)
        return out

    range_coded = coder in ("best", "lzma") and tools.context_coding
    planar = coder in ("best", "lzma") and (not range_coded or q.size <= PLANES_TRIED_UP_TO)
    candidates = []
    record = None  # the byte-plane record: for LZMA2 (coder 3) and zstd (coder 2)
    if planar or coder == "zstd":
        planes = dict(tensors, coefficients=zigzag_array(predicted(dc_differences)))
        side = (post_filter, klt, False, stage, tools.flags2, deblock)
        record = _compact_record(net, coded, planes, dc_prediction, *side)
        if planar:
            candidates.append((3, lzma_raw(record)))
    if range_coded:
        median = dc_prediction and tools.dc_median
        side = (post_filter, klt, median, stage, tools.flags2, deblock)
        head = lzma_raw(_compact_record(net, coded, tensors, dc_prediction, *side))
        ranged = predicted(dc_med_residuals if median else dc_differences)
        model = tools.context_model(net.cfg.cell)
        section = entropy.encode(ranged.reshape(len(q), *dc_shape), model)
        candidates.append((4, struct.pack("<I", len(head)) + head + section))
    if coder == "zstd":  # not tried by "best": it never won, and the NumPy decoder has no zstd
        import zstandard

        assert record is not None
        candidates.append((2, zstandard.ZstdCompressor(level=22).compress(record)))
    return _smallest(candidates)


def _format3(
    net: MultiHeadINR,
    coded: Coded,
    tools: Tools,
    side_data: bool,
    deblock: tuple[int, int] | None = None,
) -> bool:
    """Whether `encode_coefficients` writes format 3 (else the format 1 JSON container);
    ValueError for tools (or a filter, stage or deblocking: `side_data`) the file could not
    carry."""
    if deblock is not None and not deblocking.valid(*deblock, net.cfg.cell):
        raise ValueError(f"a deblocking of {deblock} on {net.cfg.cell} cells")
    side_data = side_data or deblock is not None
    if tools.dc_interp and net.cfg.init != "fixed":
        raise ValueError("DC interpolation needs the cosine body")
    if tools.chroma and (net.cfg.init != "fixed" or len(coded.mode) < 2):
        raise ValueError("the chroma prediction needs the cosine body in colour")
    if tools.frequency_context and net.cfg.init != "fixed":
        raise ValueError("the frequency context needs the cosine body")
    if tools.version >= 3 and _fits_compact_file(net.cfg, coded):
        return True
    if side_data or tools.klt or tools.flags2:
        raise ValueError(
            "only format 3 carries a restoration filter, a stage, a deblocking, the KLT order or"
            " DC interpolation"
        )
    return False


def _smallest(candidates: list[tuple[int, bytes]]) -> bytes:
    """The smallest of the payloads (coder 2 zstd, 3 LZMA2 byte planes, 4 range-coded),
    with the container's prefix."""
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


def zigzag_array(q: np.ndarray) -> np.ndarray:
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
    flags2: int = 0,
    deblock: tuple[int, int] | None = None,
) -> bytes:
    """The format 3 record: with the zigzag coefficients in `tensors`, as byte planes at
    its end; without them, a range-coded file's record, which ends after the body (the
    coefficient section follows outside the LZMA2 stream; `dc_median`: its row 0 holds
    median-edge residuals)."""
    cfg = net.cfg
    kinds = {tensors[name].dtype for name in body_names(net)}
    body_q = "int8" if np.dtype(np.int8) in kinds or not kinds else "fp16"
    if np.dtype(np.float32) in kinds and np.dtype(np.int8) not in kinds:
        body_q = "fp32"
    z = tensors.get("coefficients")
    range_coded = z is None
    flags = (
        (FLAG_DC_PREDICTION if dc_prediction else 0)
        | (FLAG_POST_FILTER if post_filter is not None else 0)
        | (FLAG_KLT if klt else 0)
        | (FLAG_RANGE_CODED if range_coded else FLAG_PLANAR)
        | (FLAG_DC_MEDIAN if dc_median else 0)
    )
    if not range_coded:  # the context model is the range coder's: byte planes have none
        flags2 &= ~FLAG2_FREQUENCY_CONTEXT
    colour, side_flags, more = _side_data(coded, post_filter, stage, flags2, deblock)
    flags |= side_flags
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


def _side_data(
    coded: Coded,
    post_filter: torch.Tensor | None,
    stage: synthesis.Stage | None,
    flags2: int = 0,
    deblock: tuple[int, int] | None = None,
) -> tuple[bytes, int, bytes]:
    """(the colour transform, the restoration filter and the stage as they follow the
    header, the flags they set, the second flags byte (and the deblocking's two) or
    nothing)."""
    data = (
        np.asarray(coded.colour, "<f4").tobytes() + np.asarray(coded.colour_mean, "<f4").tobytes()
    )
    flags, more = 0, b""
    if post_filter is not None:
        stored, coded_taps = filter_bytes(post_filter, len(coded.mode))
        data += stored
        flags |= FLAG_FILTER_CODED if coded_taps else 0
    if stage is not None:
        data += stage_bytes(stage)
        flags2 |= FLAG2_STAGE | (FLAG2_STAGE_BIAS if stage.bias_shift else 0)
    if deblock is not None:
        flags2 |= FLAG2_DEBLOCK
    if flags2:
        flags |= FLAG_MORE
        more = bytes([flags2, *(deblock or ())])
    return data, flags, more


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
    if stage.bias_shift not in (0, STAGE_BIAS_SHIFT):
        raise ValueError(f"a stage's bias in units of 2^-{stage.bias_shift} of its scale")
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


def decode_compact(raw: bytes) -> tuple[MultiHeadINR, Coded]:
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
    load_coefficients(net, rec.coded, tensors, rec.klt, rec.prediction())
    net.deblock = rec.deblock
    if rec.post_filter is not None:
        net.post_filter = torch.from_numpy(rec.post_filter.copy())
    if rec.stage is not None:
        st = rec.stage
        net.stage = synthesis.from_quantized(
            rec.channels, st.hidden, st.dilation, st.ints, st.scales, st.bias_shift
        )
    return net.eval(), rec.coded
