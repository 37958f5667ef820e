"""The .inr file: networks in and out of its bytes.

* container.py: the bytes around every file (magic, version, CRC, the JSON container);
* format1.py: formats 1 and 2, the JSON container's networks (weights, older coefficients);
* format3.py: format 3, the coefficient storage's compact record, its layout documented
  once, read without PyTorch; compact.py writes it from a network and reads it into one;
* upscaler.py: the upscale storage (the image and the enlarger);
* transforms.py: a cell's basis (Cholesky, Karhunen–Loève order, the cosine body's DCT) and
  coefficients into heads; colour.py: the per-image colour transform;
* entropy.py: the context-modelled range coder of the coefficients (exact integer tables);
* postfilter.py: the linear restoration filter;
* inr.py: `decode`, any file back into its network.

A corrupt, truncated, foreign, newer-version or inconsistent file raises CodecError with a
message naming what is wrong. The names below are imported when first used, so that the
NumPy decoder (model/decoder.py), which imports container, format3 and entropy, does not
import PyTorch.
"""

import importlib
from typing import TYPE_CHECKING

_WHERE = {
    "AR1_RHO": "transforms",
    "COMPACT": "format3",
    "CodecError": "container",
    "Coded": "container",
    "FLAG2_CHROMA": "format3",
    "FLAG2_DC_INTERP": "format3",
    "FLAG2_DEBLOCK": "format3",
    "FLAG2_STAGE": "format3",
    "FLAG_DC_MEDIAN": "format3",
    "FLAG_DC_PREDICTION": "format3",
    "FLAG_FILTER_CODED": "format3",
    "FLAG_KLT": "format3",
    "FLAG_PLANAR": "format3",
    "FLAG_RANGE_CODED": "format3",
    "FORMAT_VERSION": "container",
    "INT8_LEVELS": "format1",
    "LZMA_RAW": "container",
    "PREFIX": "container",
    "Quantization": "container",
    "STORAGE_VERSION": "container",
    "ar1_covariance": "transforms",
    "cell_basis": "transforms",
    "coding_basis": "transforms",
    "dc_differences": "format3",
    "dc_med_residuals": "format3",
    "dc_med_sums": "format3",
    "decode": "inr",
    "dequantize": "format1",
    "encode_coefficients": "compact",
    "encode_upscale": "upscaler",
    "zigzag_array": "compact",
    "Tools": "compact",
    "encode_weights": "format1",
    "filter_bytes": "compact",
    "fits_compact": "compact",
    "klt_rotation": "transforms",
    "open_payload": "container",
    "pack": "container",
    "quantize": "format1",
    "stage_bytes": "compact",
    "unpack": "container",
    "zigzag": "entropy",
}
__all__ = [  # noqa: RUF022
    "Tools",
    "AR1_RHO",
    "COMPACT",
    "CodecError",
    "Coded",
    "FLAG2_CHROMA",
    "FLAG2_DC_INTERP",
    "FLAG2_DEBLOCK",
    "FLAG2_STAGE",
    "FLAG_DC_MEDIAN",
    "FLAG_DC_PREDICTION",
    "FLAG_FILTER_CODED",
    "FLAG_KLT",
    "FLAG_PLANAR",
    "FLAG_RANGE_CODED",
    "FORMAT_VERSION",
    "INT8_LEVELS",
    "LZMA_RAW",
    "PREFIX",
    "Quantization",
    "STORAGE_VERSION",
    "ar1_covariance",
    "cell_basis",
    "coding_basis",
    "dc_differences",
    "dc_med_residuals",
    "dc_med_sums",
    "decode",
    "dequantize",
    "encode_coefficients",
    "encode_upscale",
    "encode_weights",
    "filter_bytes",
    "fits_compact",
    "klt_rotation",
    "open_payload",
    "pack",
    "quantize",
    "stage_bytes",
    "unpack",
    "zigzag",
    "zigzag_array",
]

if TYPE_CHECKING:  # the same names, for type checkers
    from mhinr.model.codec.compact import (
        Tools,
        encode_coefficients,
        filter_bytes,
        fits_compact,
        stage_bytes,
        zigzag_array,
    )
    from mhinr.model.codec.container import (
        FORMAT_VERSION,
        LZMA_RAW,
        PREFIX,
        STORAGE_VERSION,
        CodecError,
        Coded,
        Quantization,
        open_payload,
        pack,
        unpack,
    )
    from mhinr.model.codec.entropy import zigzag
    from mhinr.model.codec.format1 import INT8_LEVELS, dequantize, encode_weights, quantize
    from mhinr.model.codec.format3 import (
        COMPACT,
        FLAG2_CHROMA,
        FLAG2_DC_INTERP,
        FLAG2_DEBLOCK,
        FLAG2_STAGE,
        FLAG_DC_MEDIAN,
        FLAG_DC_PREDICTION,
        FLAG_FILTER_CODED,
        FLAG_KLT,
        FLAG_PLANAR,
        FLAG_RANGE_CODED,
        dc_differences,
        dc_med_residuals,
        dc_med_sums,
    )
    from mhinr.model.codec.inr import decode
    from mhinr.model.codec.transforms import (
        AR1_RHO,
        ar1_covariance,
        cell_basis,
        coding_basis,
        klt_rotation,
    )
    from mhinr.model.codec.upscaler import encode_upscale


def __getattr__(name: str) -> object:
    if name not in _WHERE:
        raise AttributeError(f"module 'mhinr.model.codec' has no attribute {name!r}")
    return getattr(importlib.import_module(f"mhinr.model.codec.{_WHERE[name]}"), name)
