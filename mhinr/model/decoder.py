"""The cosine codec's decoder and renderer in NumPy and Pillow alone (no PyTorch).

Every file the `fast`, `compact` and `max` presets write is a format 3 record with the fixed
cosine body (model/codec/format3.py): each cell of the image is a sum of its 2-D cosines (its DCT)
with the file's coefficients, in a per-image colour space; then the restoration filter
(model/codec/postfilter.py) and the trained stage (model/synthesis.py), where the file has them,
at the image's own size. That is a matrix product and two small convolutions, which is what
this module does, so that `pip install mhinr` decodes and renders those files without
PyTorch. Files of a trained body (format 3 with a ReLU body, format 1 weights, format 2
upscale files) raise `NeedsPyTorch`; model/codec/inr.py decodes them.

The PyTorch decoder (codec.decode + render.render) gives the same pixels up to float
rounding: both compute in float32, in other orders (tests/test_decoder.py bounds the
difference on committed files of each preset).
"""

import math

import numpy as np

from mhinr.model import pixels
from mhinr.model.codec import container, format3
from mhinr.model.codec.container import CodecError, Coded
from mhinr.model.codec.deblock import deblock_u8
from mhinr.model.codec.deblock import describe as describe_deblocking

DEFAULT_CHUNK_BYTES = 256 * 2**20
INSTALL = "pip install 'mhinr[fit]'"
BAND_BYTES = 32 * 2**20  # the largest convolution temporary (its patches) of a band of rows


class NeedsPyTorch(CodecError):
    """A valid file of a kind this decoder does not decode (a trained body, weights, an
    upscaler): decoding it needs PyTorch."""


class Decoded:
    """A cosine codec file, read and checked; its pixels are computed when asked for."""

    def __init__(self, record: format3.Record, nbytes: int):
        self.record, self.nbytes = record, nbytes
        self.coded: Coded = record.coded
        rec = record
        c, (hy, hx) = rec.channels, rec.heads
        coef = rec.coefficients().reshape(-1, c, hy * hx)
        colour = np.asarray(rec.coded.colour, dtype=np.float64)
        # the coded channels mixed into the output's (output = colour · coded + mean)
        self._weights = np.einsum("ij,kjm->kim", colour, coef).reshape(len(coef), -1)
        self._weights = self._weights.astype(np.float32)
        mean = np.asarray(rec.coded.colour_mean, dtype=np.float32)
        self._mean = np.repeat(mean, hy * hx)  # one per output (c, i, j)
        self._native: np.ndarray | None = None

    @property
    def size(self) -> tuple[int, int]:
        return self.coded.height, self.coded.width

    def grid_u8(self, m_y: int, m_x: int, max_chunk_bytes: int = DEFAULT_CHUNK_BYTES):
        """The whole padded canvas at m_y×m_x points per cell, uint8 [C, Hy·m_y, Hx·m_x]:
        the cells' continuous cosines with the file's coefficients (render.render_grid_u8
        of the decoded network)."""
        rec = self.record
        (hy, hx), c = rec.heads, rec.channels
        basis = pixels.cosines(pixels.cell_coordinates(m_y, m_x), rec.cell).astype(np.float32)
        out = np.empty((c, hy, m_y, hx, m_x), dtype=np.uint8)
        rows = max(1, min(m_y, max_chunk_bytes // max(1, 8 * self._weights.shape[1] * m_x)))
        for r0 in range(0, m_y, rows):
            r1 = min(m_y, r0 + rows)
            vals = basis[r0 * m_x : r1 * m_x] @ self._weights  # [k·m_x, C·Hy·Hx]
            vals += self._mean
            block = vals.reshape(r1 - r0, m_x, c, hy, hx).transpose(2, 3, 0, 4, 1)
            out[:, :, r0:r1] = _to_u8(block)
        return out.reshape(c, hy * m_y, hx * m_x)

    def native(self) -> np.ndarray:
        """uint8 [C, H, W]: the image the file holds at its own size (the cells, then the
        deblocking, the restoration filter, the trained stage)."""
        if self._native is None:
            rec = self.record
            h, w = self.size
            image = self.grid_u8(*rec.cell)[:, :h, :w]
            if rec.deblock is not None:
                image = deblock_u8(image, rec.cell, *rec.deblock)
            if rec.post_filter is not None:
                image = apply_filter_u8(image, rec.post_filter)
            if rec.stage is not None:
                image = apply_stage_u8(image, Stage(rec.channels, rec.stage))
            self._native = np.ascontiguousarray(image)
        return self._native

    def render(self, out_size: tuple[int, int] | None = None, method: str = "resample"):
        """uint8 [C, rows, cols] at `out_size` (render.render's two methods: `resample`, the
        native image resized with Lanczos; `plain`, the cells' cosines sampled at the output's
        resolution, without filter or stage)."""
        h, w = self.size
        out_h, out_w = out_size or (h, w)
        if out_h < 1 or out_w < 1:
            raise ValueError(f"output size must be positive, got {out_h}x{out_w}")
        if method == "resample":
            return pixels.resize_u8(self.native(), out_h, out_w, (0, 0, w, h))
        if method != "plain":
            raise ValueError(f"unknown render method {method!r}: plain or resample")
        m_y, m_x, img_h, img_w = pixels.plain_grid((h, w), (out_h, out_w), self.record.cell)
        canvas = self.grid_u8(m_y, m_x)
        if img_h == out_h and img_w == out_w:
            return np.ascontiguousarray(canvas[:, :out_h, :out_w])
        crop = canvas[:, : math.ceil(img_h), : math.ceil(img_w)]
        return pixels.resize_u8(crop, out_h, out_w, (0, 0, img_w, img_h))

    def parameter_count(self) -> int:
        """The decoded network's parameters (its heads' weights and biases, and the stage's)."""
        rec = self.record
        stage = 0 if rec.stage is None else len(rec.stage.ints)
        return rec.channels * rec.heads[0] * rec.heads[1] * (rec.units + 1) + stage

    def describe(self) -> dict:
        """What `mhinr info` prints (app/cli.py's `describe` of the decoded network)."""
        rec, coded = self.record, self.coded
        stage = "none"
        if rec.stage is not None:
            _, rows = format3.stage_counts(rec.channels, rec.stage.hidden, rec.stage.dilation)
            mults = len(rec.stage.ints) - rows  # every integer but the biases
            stage = f"ReLU, {rec.stage.hidden} channels, {mults} multiplications a pixel"
        return {
            "bytes": self.nbytes,
            "bpp": round(8 * self.nbytes / (coded.height * coded.width), 4),
            "width": coded.width,
            "height": coded.height,
            "mode": coded.mode,
            "storage": coded.storage,
            "quantization": None,  # the cosine body has no weights to quantize
            "step": float(f"{coded.step:.7g}"),
            "heads": list(rec.heads),
            "cell": list(rec.cell),
            "alpha": rec.units,
            "body": "cosine",
            "depth": rec.depth,
            "width_units": rec.units,
            "deblocking": describe_deblocking(rec.deblock),
            "stage": stage,
            "params": self.parameter_count(),
            "seed": rec.seed,
        }


def read(data: bytes) -> Decoded:
    """A cosine codec file, or NeedsPyTorch for another valid kind, or CodecError."""
    version, raw = container.open_payload(data)
    if version != container.COMPACT_VERSION:
        header, _ = container.parse_header(raw)  # no safetensors needed to say what it is
        image = header.get("image")
        storage = str(image.get("storage")) if isinstance(image, dict) else ""
        what = {
            "weights": "a network's weights",
            "upscale": "an upscaler",
            "coefficients": "a trained body (an mhinr file from before 2026-11-30)",
        }.get(storage, f"format {version}")
        raise NeedsPyTorch(f"this file holds {what}: decoding it needs PyTorch: {INSTALL}")
    record = format3.read(raw)
    if not record.fixed:
        raise NeedsPyTorch(
            f"this file's body is a trained ReLU network: decoding it needs PyTorch: {INSTALL}"
        )
    return Decoded(record, len(data))


def _to_u8(values: np.ndarray) -> np.ndarray:
    """float values in [0, 1] (clipped) → uint8, rounded to nearest (half to even, as
    torch.round)."""
    return np.rint(np.clip(values, 0, 1) * 255).astype(np.uint8)


# --- the restoration filter and the trained stage ---------------------------------------------


def _patches(x: np.ndarray, k: int, h: int, w: int, dilation: int = 1) -> np.ndarray:
    """[C·k², h·w]: the k×k neighbourhoods (`dilation` apart) of a padded [C, ·, ·] array,
    channel-major then row-major taps (a convolution's weight layout)."""
    cols = [
        x[:, dy * dilation : dy * dilation + h, dx * dilation : dx * dilation + w]
        for dy in range(k)
        for dx in range(k)
    ]
    return np.stack(cols, axis=1).reshape(-1, h * w)


def _pad(x: np.ndarray, p: int) -> np.ndarray:
    """Replicate the edges of [C, H, W] by p pixels."""
    return np.pad(x, [(0, 0), (p, p), (p, p)], mode="edge") if p else x


def _band_rows(width: int, taps: int) -> int:
    return max(8, BAND_BYTES // max(1, 4 * taps * width))


def apply_filter_u8(image: np.ndarray, taps: np.ndarray) -> np.ndarray:
    """postfilter.apply_u8: the filters [C, C·k²+1] on a uint8 [C, H, W] image (edges
    replicated), in bands of rows with a halo as wide as the filter's reach."""
    c, h, w = image.shape
    k = round(((taps.shape[1] - 1) / c) ** 0.5)
    p = k // 2
    weight, bias = taps[:, :-1].astype(np.float32), taps[:, -1:].astype(np.float32)
    out = np.empty_like(image)
    rows = _band_rows(w, c * k * k)
    for r0 in range(0, h, rows):
        r1 = min(h, r0 + rows)
        a, b = max(0, r0 - p), min(h, r1 + p)
        x = _pad(image[:, a:b].astype(np.float32) / 255, p)
        y = (weight @ _patches(x, k, b - a, w) + bias).reshape(c, b - a, w)
        out[:, r0:r1] = _to_u8(y[:, r0 - a : r1 - a])
    return out


class Stage:
    """The trained stage's layers (synthesis.Stage) as float32 arrays, from the file's
    integers and scales."""

    def __init__(self, channels: int, st: format3.StageRecord):
        self.layers: list[tuple[np.ndarray, np.ndarray]] = []
        for values in st.layers(channels):
            values = values.astype(np.float32)
            self.layers.append((values[:, :-1], values[:, -1:]))  # weights, bias
        self.hidden, self.dilation = st.hidden, st.dilation

    @property
    def reach(self) -> int:
        return 2 + self.dilation

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """[C, h, w] float32 in [0, 1] → the same after the stage (edges replicated)."""
        _, h, w = x.shape
        (w1, b1), (w2, b2), (w3, b3) = self.layers
        hid = np.maximum(w1 @ _patches(_pad(x - 0.5, 1), 3, h, w) + b1, 0)
        hid = hid.reshape(self.hidden, h, w)
        d = self.dilation
        if d:  # each channel on its own over its 3×3 grid, d apart
            taps = _patches(_pad(hid, d), 3, h, w, d).reshape(self.hidden, 9, h * w)
            mixed = np.einsum("ct,ctn->cn", w2, taps) + b2
        else:
            mixed = w2 @ hid.reshape(self.hidden, -1) + b2
        hid = np.maximum(mixed, 0).reshape(self.hidden, h, w)
        # the last 3×3 layer as one product per tap, summed shifted: [C·9, hidden] @ hidden
        # maps, then 9 shifted sums (fewer bytes moved than its 72-row patches)
        c = x.shape[0]
        hp = _pad(hid, 1)
        per_tap = w3.reshape(c, self.hidden, 9).transpose(2, 0, 1).reshape(9 * c, self.hidden)
        maps = (per_tap @ hp.reshape(self.hidden, -1)).reshape(9, c, h + 2, w + 2)
        out = x + b3.reshape(c, 1, 1)
        for t in range(9):
            dy, dx = divmod(t, 3)
            out += maps[t, :, dy : dy + h, dx : dx + w]
        return out


def apply_stage_u8(image: np.ndarray, stage: Stage) -> np.ndarray:
    """synthesis.apply_u8: the stage on a uint8 [C, H, W] image, in bands of rows with a halo
    as wide as its reach."""
    _, h, w = image.shape
    out = np.empty_like(image)
    rows = _band_rows(w, stage.hidden * 9)
    for r0 in range(0, h, rows):
        r1 = min(h, r0 + rows)
        a, b = max(0, r0 - stage.reach), min(h, r1 + stage.reach)
        y = stage(image[:, a:b].astype(np.float32) / 255)
        out[:, r0:r1] = _to_u8(y[:, r0 - a : r1 - a])
    return out
