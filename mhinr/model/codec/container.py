"""The .inr container: the bytes around every kind of file, without PyTorch.

Layout (all integers little-endian):

    magic   4 bytes  b"MINR"
    version 1 byte   the oldest format version that reads the file (FORMAT_VERSION the newest)
    coder   1 byte   1 = LZMA (xz), 2 = zstandard, 3 = raw LZMA2, 4 = raw LZMA2 then
                     range-coded coefficients (format 3: u32 length of the LZMA2
                     stream | the stream | the coefficient section, model/codec/entropy.py)
    crc32   4 bytes  of the compressed payload
    payload          formats 1 and 2: coder(u32 header length | header JSON | safetensors
                     bytes); format 3 (the coefficient storage): coder(a binary record,
                     model/codec/format3.py)

Tensors are stored with safetensors, never pickle. A corrupt, truncated, foreign,
newer-version or inconsistent file raises CodecError with a message naming what is wrong.
"""

import json
import lzma
import struct
import zlib
from dataclasses import dataclass
from typing import Literal

import numpy as np

MAGIC = b"MINR"
FORMAT_VERSION = 5  # the newest this code reads; a file says the oldest that reads it
# version 3 is the compact binary record (model/codec/format3.py), the others the JSON container;
# upscale files were version 2 until 2026-12-05 (their image as raw pixels; since then a
# WebP lossless image, which older readers could not read, so they are told to upgrade) and
# version 4 until 2026-12-06 (their own trained weights; since then they name the shipped
# prior instead, model/upscale_prior.py, which older readers do not have)
STORAGE_VERSION = {"weights": 1, "coefficients": 3, "upscale": 5}
UPSCALE_WEIGHTS_VERSION = 4  # an upscale file that holds its network's weights
COMPACT_VERSION = 3
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
    from safetensors.numpy import save as st_save

    blob = st_save({k: np.ascontiguousarray(v) for k, v in tensors.items()})
    head = json.dumps(header, separators=(",", ":"), sort_keys=True).encode()
    raw = struct.pack("<I", len(head)) + head + blob
    candidates = []
    if coder in ("best", "lzma"):
        candidates.append(
            (1, lzma.compress(raw, format=lzma.FORMAT_XZ, preset=9 | lzma.PRESET_EXTREME))
        )
    if coder in ("best", "zstd"):
        import zstandard  # mhinr[fit]: these containers hold trained networks

        candidates.append((2, zstandard.ZstdCompressor(level=22).compress(raw)))
    if coder == "lzma-raw":  # LZMA2 without the xz container's ~60 bytes (upscale files)
        candidates.append((3, lzma_raw(raw)))
    if not candidates:
        raise ValueError(f"unknown coder {coder!r}: best, lzma, lzma-raw or zstd")
    code, payload = min(candidates, key=lambda c: len(c[1]))
    return PREFIX.pack(MAGIC, version, code, zlib.crc32(payload)) + payload


def unpack(data: bytes) -> tuple[dict, dict[str, np.ndarray]]:
    """The JSON header and the tensors of a format 1 or 2 file."""
    version, raw = open_payload(data)
    if version == COMPACT_VERSION:
        raise CodecError(f"format version {version} has a binary header, not a JSON one")
    return parse_json(raw)


def open_payload(data: bytes) -> tuple[int, bytes]:
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


def parse_header(raw: bytes) -> tuple[dict, int]:
    """The JSON header of a format 1, 2 or 4 payload and where its tensors start."""
    if len(raw) < 4:
        raise CodecError("the payload is truncated")
    (hlen,) = struct.unpack_from("<I", raw)
    if hlen > len(raw) - 4:
        raise CodecError("the header is truncated")
    try:
        header = json.loads(raw[4 : 4 + hlen])
    except (ValueError, UnicodeDecodeError) as exc:
        raise CodecError(f"the header or tensors are malformed: {exc}") from None
    if not isinstance(header, dict):
        raise CodecError("the header is not an object")
    return header, 4 + hlen


def parse_json(raw: bytes) -> tuple[dict, dict[str, np.ndarray]]:
    """The JSON header and the tensors (safetensors) of a format 1, 2 or 4 payload."""
    header, start = parse_header(raw)
    from safetensors.numpy import load as st_load  # mhinr[fit]: these files hold networks

    try:
        tensors = st_load(bytes(raw[start:]))
    except ValueError as exc:
        raise CodecError(f"the header or tensors are malformed: {exc}") from None
    except Exception as exc:  # safetensors raises its own SafetensorError
        raise CodecError(f"the tensors are malformed: {exc}") from None
    return header, tensors


def _inflate(coder: str, payload: bytes) -> bytes:
    if coder == "lzma-raw+range":  # the record, then its range-coded section as it is
        if len(payload) < 4:
            raise CodecError("the payload is truncated")
        (n,) = struct.unpack_from("<I", payload)
        if n > len(payload) - 4:
            raise CodecError("the payload is truncated")
        return _inflate("lzma-raw", payload[4 : 4 + n]) + payload[4 + n :]
    if coder in ("lzma", "lzma-raw"):
        if coder == "lzma":
            dec = lzma.LZMADecompressor(format=lzma.FORMAT_XZ)
        else:
            dec = lzma.LZMADecompressor(format=lzma.FORMAT_RAW, filters=LZMA_RAW)
        try:
            raw = dec.decompress(payload, max_length=MAX_PAYLOAD)
        except lzma.LZMAError as exc:
            raise CodecError(f"the payload does not decompress: {exc}") from None
        if not dec.eof:
            raise CodecError("the payload is truncated or larger than the limit")
        return raw
    try:  # zstd: only formats 1 and 2, which hold trained networks (the presets' never are)
        import zstandard
    except ImportError:
        raise CodecError(
            "the file is zstd-coded: decoding it needs pip install 'mhinr[fit]'"
        ) from None
    try:
        raw = zstandard.ZstdDecompressor().stream_reader(payload).read(MAX_PAYLOAD + 1)
    except zstandard.ZstdError as exc:
        raise CodecError(f"the payload does not decompress: {exc}") from None
    if len(raw) > MAX_PAYLOAD:
        raise CodecError("the payload inflates beyond the limit")
    return raw


def lzma_raw(data: bytes) -> bytes:
    """Raw LZMA2 as LZMA_RAW, with a dictionary no larger than the data needs: the same
    stream (LZMA_RAW's decoder reads it), without initialising 16 MiB of match finder for
    a few kilobytes (15 ms → 0.4 ms for a 2 kB record)."""
    size = min(1 << 24, max(1 << 12, 1 << (len(data) - 1).bit_length()))
    return lzma.compress(data, format=lzma.FORMAT_RAW, filters=[dict(LZMA_RAW[0], dict_size=size)])
