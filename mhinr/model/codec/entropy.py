"""Context-adaptive range coding of the quantized cell coefficients (format 3, flags bit 4).

The coefficients are in Karhunen–Loève order (codec.klt_rotation): row 0 holds each cell's
constant term (as a residual from its neighbours', codec.dc_med_residuals), and the rows
after it fall in energy.
How large a coefficient is likely to be depends on where it is — its row and channel — and
on what was already decoded around it: the earlier, coarser rows of its own cell (a textured
cell stays textured), the same in its four neighbours, and, for the second and later colour
channels, the same coefficient in channel 0. Each coefficient is modelled as a Laplace
variable quantized with the encoder's deadzone, its scale

    b = 2 ** (s / 8 - 5),  s = α[row, channel] + round(8 · log2(1 + m))

where m mixes those magnitudes with fixed weights (`ContextModel`), and α (one number per
row and channel, fitted per file to minimise the coded size, ~4 bits each) scales the row.
Files of the cosine body since 2026-12-06 (`frequency_model`) also read each cosine's
parents in frequency — for the cosine (a, b), the cell's (a − 1, b) and (a, b − 1), their
sum in the four neighbouring cells, and the grandparents (a − 1, b − 1), (a − 2, b),
(a, b − 2) — which say more than the cell's average over all its earlier rows: an edge
puts its energy along one direction of frequencies. On the same integers that codes 3.6 %
fewer bits on eight held-out photos (0.7–7.1 % a point; `python -m
benchmarks.context_probe`); with the quantizer's rate–distortion decisions made under it,
`fast` needs 8.1 % fewer bytes at equal PSNR (results/context_fast.md). The model reads
only rows already decoded, so the decoder decodes a whole row of a channel at a time
(vectorised); the symbols are range-coded with `constriction`, grouped by scale. The
constant terms are coded last, in the context of their cell's and its neighbours' first
AC rows (an edge between two cells shows in both).

Everything the decoder computes to choose a probability table is integer arithmetic on
decoded values, and the tables are integer frequencies computed once with Python's scalar
`math` (not vectorised code, whose last bits vary with the CPU), so an encoder and a
decoder on different machines agree bit for bit.

Measured (``python -m benchmarks.codec_ablation``): see results/codec_ablation.md.

Layout of the coded section: the range coder's 32-bit words, little-endian; they code α
first (K·C values, row-major, as differences from the row before), then the rows.
Symbols are zigzag integers (0, −1, 1, −2, … ↦ 0, 1, 2, 3, …); a table of scale s covers
|q| ≤ N_s and codes larger values as an escape followed by the excess in Exp-Golomb form
(its bit count, then its bits in 16-bit pieces, uniformly).
"""

import hashlib
import math
from dataclasses import dataclass
from functools import cache, lru_cache

import constriction
import numpy as np

from mhinr.model import pixels

SCALES = 120  # scale indices s: b = 2^(s/8 − 5), from 1/32 to ~940 quantizer steps
CONTEXTS = 80  # the context term round(8·log2(1 + m)) is capped at 10 octaves
DEADZONE = 0.1  # the quantizer's rounding offset the tables assume (coefficients.DEADZONE)
ONE = 1024  # the fixed-point unit of the context magnitudes
# the constant terms' context: the sum of |q| of rows 1 … LOW_ROWS of the own cell and of the
# four neighbours (`ContextModel` weighs them)
LOW_ROWS = 3
# the parents' magnitudes are kept as int32, clipped here: any term of a weight ≥ 1 that
# reaches it already puts the context at its last index (ONE · 2^16 / 16 is beyond the
# last threshold, ~ONE · 979), so the clipping changes no table
RELATIVE_CLIP = 1 << 16
MAX_EXCESS_BITS = 40
# α is coded first, as differences from the row before (the first row from ALPHA_FIRST)
# under one fixed table: about 4 bits each instead of a byte (mean |difference| 3–4)
ALPHA_FIRST, ALPHA_SCALE = 48, 54
_THRESHOLDS = np.array(
    [math.ceil(ONE * (2 ** ((j - 0.5) / 8) - 1)) for j in range(1, CONTEXTS + 1)], np.int64
)
_PRECISION = 1 << 24


def _scale(s: int) -> float:
    return 2.0 ** (s / 8 - 5)


@cache
def _span(s: int) -> int:
    """N_s: the largest |q| a table codes directly (beyond it the tail is below 2^-20)."""
    return max(2, min(2048, math.ceil(14 * _scale(s)) + 1))


@cache
def _frequencies(s: int) -> np.ndarray:
    """Integer frequencies of the zigzag symbols 0 … 2·N_s and the escape 2·N_s + 1."""
    b, n_max = _scale(s), _span(s)
    tail = [math.exp(-(n - 0.5 + DEADZONE) / b) for n in range(1, n_max + 2)]  # P(|q| ≥ n)
    p = [1.0 - tail[0]]
    for n in range(1, n_max + 1):
        p += [0.5 * (tail[n - 1] - tail[n])] * 2  # −n, then +n
    p.append(tail[n_max])  # the escape
    return np.array([math.floor(x * _PRECISION) + 1 for x in p], np.float64)


@cache
def _model(s: int):
    return constriction.stream.model.Categorical(_frequencies(s), perfect=False)


@cache
def _table(s: int):
    """(the model of scale s, its escape symbol)."""
    return _model(s), 2 * _span(s) + 1


@cache
def bit_costs() -> np.ndarray:
    """[SCALES, 128] bits of zigzag symbols 0 … 127 under each table (the α search's
    estimate: larger symbols are counted as 127)."""
    out = np.empty((SCALES, 128))
    for s in range(SCALES):
        f = _frequencies(s)
        bits = -np.log2(f / f.sum())
        esc = len(f) - 1
        z = np.arange(128)
        out[s] = np.where(z < esc, bits[np.minimum(z, esc - 1)], bits[esc] + 8)
    return out


@cache
def _shifted_costs() -> np.ndarray:
    """[α, context, symbol] bits, with s = min(α + context, SCALES − 1)."""
    s = np.minimum(np.arange(SCALES)[:, None] + np.arange(CONTEXTS + 1)[None, :], SCALES - 1)
    return bit_costs()[s]


def zigzag(q: np.ndarray) -> np.ndarray:
    """Signed integers → 0, 1, 2, 3, … for 0, −1, 1, −2, … (the .inr files' coding)."""
    return np.where(q >= 0, 2 * q, -2 * q - 1)


def unzigzag(z: np.ndarray) -> np.ndarray:
    """The inverse of `zigzag`, as int64."""
    z = z.astype(np.int64)
    return (z >> 1) ^ -(z & 1)


def _neighbour_sum(a: np.ndarray) -> np.ndarray:
    """[C, Hy, Hx] → the sum of each cell's four neighbours (edges replicated)."""
    out = np.empty_like(a)  # above, below, left, right: slices, not a padded copy (faster)
    out[:, 1:], out[:, :1] = a[:, :-1], a[:, :1]
    out[:, :-1] += a[:, 1:]
    out[:, -1:] += a[:, -1:]
    out[:, :, 1:] += a[:, :, :-1]
    out[:, :, :1] += a[:, :, :1]
    out[:, :, :-1] += a[:, :, 1:]
    out[:, :, -1:] += a[:, :, -1:]
    return out


@dataclass(frozen=True)
class ContextModel:
    """How the context term mixes what was decoded before a coefficient: integer weights in
    sixteenths of the magnitudes they multiply (m = Σ weight · magnitude // 16).

    AC rows: `own`, the decaying average of |q| of the cell's earlier rows (each row
    multiplies it by decay[0] / decay[1]); `neighbours`, the same summed over the four
    neighbouring cells; `channel0`, channel 0's |q| at the same place (channels ≥ 1). With a
    `cell` (the cosine body, whose row k is the cosine of frequency (a, b) =
    pixels.dct_order(cell)[k]): `parents`, the sum of |q| of the cell's cosines (a − 1, b) and
    (a, b − 1), which come before it (a cell with an edge has large coefficients along the
    edge's direction of frequencies, and the parents are the nearest of them); and
    `parents_neighbours`, the same summed over the four neighbouring cells; `grandparents`,
    the sum of |q| of its cosines (a − 1, b − 1), (a − 2, b) and (a, b − 2). Row 0 (the
    constant terms, coded last): `dc_own` and `dc_neighbours` times the sum of |q| of rows
    1 … LOW_ROWS of the cell and of its four neighbours."""

    own: int
    neighbours: int
    channel0: int
    decay: tuple[int, int]
    dc_own: int
    dc_neighbours: int
    parents: int = 0
    parents_neighbours: int = 0
    grandparents: int = 0
    cell: tuple[int, int] | None = None

    def relatives(self) -> tuple[tuple[tuple[int, ...], tuple[int, ...]], ...]:
        """For each row k, (the AC rows of its parents, of its grandparents); none without
        a `cell`."""
        return () if self.cell is None else _relatives(self.cell)


# the weights of every file before format3.FLAG2_FREQUENCY_CONTEXT: fitted on kodim23, kodim05
# and coffee at four steps (a per-file fit gained 1–3 % more), before the cosine body
LEGACY = ContextModel(own=80, neighbours=12, channel0=8, decay=(7, 10), dc_own=16, dc_neighbours=12)


def frequency_model(cell: tuple[int, int]) -> ContextModel:
    """The context model of the cosine body's files since format3.FLAG2_FREQUENCY_CONTEXT:
    the parents' terms, and the weights fitted anew (coordinate descent on the context
    model's estimated bits over kodim02, 07, 08, 12, 17 and 22 at four (cell, step) points
    each; `python -m benchmarks.context_probe`)."""
    return ContextModel(
        own=40, neighbours=0, channel0=8, decay=(15, 16), dc_own=4, dc_neighbours=4,
        parents=24, parents_neighbours=8, grandparents=16, cell=cell,
    )  # fmt: skip


@cache
def _relatives(cell: tuple[int, int]) -> tuple[tuple[tuple[int, ...], tuple[int, ...]], ...]:
    order = pixels.dct_order(cell)
    index = {ab: k for k, ab in enumerate(order)}

    def rows(ab: list[tuple[int, int]]) -> tuple[int, ...]:  # the AC rows among them
        return tuple(index[p] for p in ab if min(p) >= 0 and index[p] >= 1)

    return tuple(
        (rows([(a - 1, b), (a, b - 1)]), rows([(a - 1, b - 1), (a - 2, b), (a, b - 2)]))
        for a, b in order
    )


class _Context:
    """The context term of each coefficient of one row, from the rows before it."""

    def __init__(self, shape: tuple[int, int, int], model: ContextModel):
        self.model = model
        self.relatives = model.relatives()
        self.own = np.zeros(shape, np.int64)  # decaying average of |q| of rows 1 … k−1
        self.low = np.zeros(shape, np.int64)  # sum of |q| of rows 1 … LOW_ROWS
        self.rows: dict[int, np.ndarray] = {}  # |q| of the rows coded (relatives only)

    def terms(self, k: int, row: np.ndarray | None, c: int) -> np.ndarray:
        """Context indices [Hy, Hx] for channel c of row k; `row` is row k decoded so far
        (channel 0 is used for c ≥ 1). Row 0 (the constant terms) comes last (`order`)."""
        return np.searchsorted(_THRESHOLDS, self.magnitudes(k, row, c, c + 1)[0], side="right")

    def magnitudes(self, k: int, row: np.ndarray | None, c0: int, c1: int) -> np.ndarray:
        """The mixed magnitudes [c1 − c0, Hy, Hx] of channels c0 … c1 − 1 of row k, whose
        context indices `terms` looks up."""
        w = self.model
        if k == 0:
            m = w.dc_own * self.low[c0:c1] + w.dc_neighbours * _neighbour_sum(self.low[c0:c1])
        else:
            m = w.own * self.own[c0:c1] + w.neighbours * _neighbour_sum(self.own[c0:c1])
            parents, grandparents = self.relatives[k] if self.relatives else ((), ())
            if parents:
                p = self._sum(parents, c0, c1)
                m += ONE * (w.parents * p + w.parents_neighbours * _neighbour_sum(p))
            if grandparents and w.grandparents:
                m += ONE * w.grandparents * self._sum(grandparents, c0, c1)
        if c1 > 1:
            assert row is not None  # channel 0 of this row, decoded first
            m[max(0, 1 - c0) :] += w.channel0 * ONE * np.abs(row[0])
        return m // 16

    def _sum(self, rows: tuple[int, ...], c0: int, c1: int) -> np.ndarray:
        """Σ |q| of the coded `rows` (at least one), channels c0 … c1 − 1."""
        out = self.rows[rows[0]][c0:c1].astype(np.int64)
        for j in rows[1:]:
            out += self.rows[j][c0:c1]
        return out

    def update(self, k: int, row: np.ndarray) -> None:
        """Take in row k (all channels) once it is coded."""
        if k >= 1:
            keep, whole = self.model.decay
            self.own = (keep * self.own + (whole - keep) * ONE * np.abs(row)) // whole
            if self.relatives:
                self.rows[k] = np.minimum(np.abs(row), RELATIVE_CLIP).astype(np.int32)
        if 1 <= k <= LOW_ROWS:
            self.low = self.low + ONE * np.abs(row)


def order(k_rows: int) -> list[int]:
    """The rows in coding order: the AC rows, then the constant terms, whose context is the
    cell's and its neighbours' first AC rows (an edge between cells shows in both)."""
    return list(range(1, k_rows)) + [0]


def context_indices(q: np.ndarray, model: ContextModel = LEGACY) -> np.ndarray:
    """[K, C, Hy, Hx] context indices of all coefficients (the encoder's view: every
    channel of a row at once, one lookup for them all)."""
    ctx = _Context(q.shape[1:], model)
    m = np.empty(q.shape, np.int64)
    for k in order(q.shape[0]):
        m[k] = ctx.magnitudes(k, q[k], 0, q.shape[1])
        ctx.update(k, q[k])
    return np.searchsorted(_THRESHOLDS, m, side="right")


def table_indices(
    q: np.ndarray, model: ContextModel, alpha: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """([K, C, Hy, Hx] the table each integer of `q` is coded with: its row's scale α plus
    its context term, as the encoder estimates it; [K, C] the α, fitted to `q` unless
    given)."""
    ctx = context_indices(q, model)
    if alpha is None:
        alpha = fit_alpha(zigzag(q), ctx)
    return np.minimum(alpha[:, :, None, None] + ctx, SCALES - 1), alpha


@cache
def magnitude_bits() -> np.ndarray:
    """[SCALES, 64] bits of an integer of magnitude 0 … 63 under each table (`bit_costs`,
    the mean of its two signs)."""
    costs = bit_costs()
    out = costs[:, 0:128:2].copy()  # zigzag(a) = 2a
    out[:, 1:] = 0.5 * (out[:, 1:] + costs[:, 1:127:2])  # zigzag(−a) = 2a − 1
    return out


def rd_quantize(
    scaled: np.ndarray,
    q: np.ndarray,
    lam: float,
    passes: int = 2,
    model: ContextModel = LEGACY,
) -> np.ndarray:
    """Rate–distortion-optimised quantization of the AC rows: `scaled` [K, C, Hy, Hx] are
    the coefficients over the step, `q` their integers (the deadzone quantizer's). Each
    nonzero AC integer moves one step towards zero where the squared error it adds (in
    steps²) is less than `lam` times the bits this model says it saves, with each
    coefficient's table as the context model would choose it from the integers before the
    pass (`passes` times: a pass changes the contexts the next one sees). Row 0 (the
    constant terms, coded as predictions' residuals) is left as it is."""
    q = q.copy()
    a_c = np.abs(scaled)
    costs = bit_costs()
    s, alpha = table_indices(q, model)  # the row scales α: once (the coder refits them)
    for i in range(passes):
        if i:
            s, _ = table_indices(q, model, alpha)
        z = zigzag(q)
        a = np.abs(q)
        down = np.sign(q) * np.maximum(a - 1, 0)
        bits_now = costs[s, np.minimum(z, 127)]
        bits_down = costs[s, np.minimum(zigzag(down), 127)]
        added = (a_c - (a - 1)) ** 2 - (a_c - a) ** 2  # squared error, in steps²
        take = (a >= 1) & (added < lam * (bits_now - bits_down))
        take[0] = False
        if not take.any():
            break
        q = np.where(take, down, q)
    return q


def rd_quantize_predicted(
    scaled: np.ndarray,
    q: np.ndarray,
    lam: float,
    deadzone: float,
    predictor,
    model: ContextModel = LEGACY,
) -> tuple[np.ndarray, np.ndarray]:
    """`q` [K, C, Hy, Hx] with the AC rows of channels ≥ 1 quantized again as residuals
    against `predictor` (format3.ChromaPredictor), row by row in the decoder's order, so
    that each row's prediction is made from the rows the decoder will have: `scaled` are the
    coefficients over the step before that prediction, q's channel 0 and row 0 stay. Each
    row is rounded with the deadzone, then (λ > 0) its nonzero integers move one step
    towards zero as `rd_quantize` moves them (one pass), each table chosen from the final
    rows before it. Returns (the integers, the prediction [K, C, Hy, Hx] the decoder will
    add: format3.chroma_prediction of them)."""
    q = q.copy()
    terms = np.zeros(q.shape)
    step = predictor.step
    costs = bit_costs()
    alpha = fit_alpha(zigzag(q), context_indices(q, model))  # the row scales, once
    ctx = _Context(q.shape[1:], model)
    for k in range(1, q.shape[0]):
        term = terms[k] = predictor.term(q[k, 0] * step)
        for c in range(1, q.shape[1]):
            r = scaled[k, c] - term[c] / step
            a_c = np.abs(r)
            qc = (np.sign(r) * np.maximum(np.floor(a_c + 0.5 - deadzone), 0)).astype(np.int64)
            if lam:
                s = np.minimum(alpha[k, c] + ctx.terms(k, q[k], c), SCALES - 1)
                a = np.abs(qc)
                down = np.sign(qc) * np.maximum(a - 1, 0)
                saved = (
                    costs[s, np.minimum(zigzag(qc), 127)] - costs[s, np.minimum(zigzag(down), 127)]
                )
                added = (a_c - (a - 1)) ** 2 - (a_c - a) ** 2
                qc = np.where((a >= 1) & (added < lam * saved), down, qc)
            q[k, c] = qc
        predictor.update(q[k] * step + term)
        ctx.update(k, q[k])
    return q, terms


def fit_alpha(z: np.ndarray, ctx: np.ndarray) -> np.ndarray:
    """[K, C] α minimising the estimated bits of each row and channel."""
    k, c = z.shape[:2]
    per_row = (CONTEXTS + 1) * 128
    rows = np.arange(k * c, dtype=np.int64).reshape(k, c, 1, 1)
    flat = (rows * per_row + ctx * 128 + np.minimum(z, 127)).ravel()
    # the (row, context, symbol) triples that occur, counted: a few tens of thousands of the
    # K·C·81·128 possible (a histogram of them all, then only its nonzero bins summed)
    counts = np.bincount(flat, minlength=k * c * per_row)
    seen = np.flatnonzero(counts.astype(bool))
    weighted = np.take(_costs_by_cell(), seen % per_row, axis=0)  # [seen, α]
    weighted *= counts[seen][:, None]
    row = seen // per_row  # sorted: each row's triples are one run
    starts = np.flatnonzero(np.r_[True, row[1:] != row[:-1]])
    bits = np.zeros((k * c, SCALES))
    bits[row[starts]] = np.add.reduceat(weighted, starts, axis=0)
    return bits.argmin(1).reshape(k, c)


@cache
def _costs_by_cell() -> np.ndarray:
    """[context · 128 + symbol, α] bits (`_shifted_costs`, laid out for `fit_alpha`)."""
    return np.ascontiguousarray(_shifted_costs().reshape(SCALES, -1).T)


# the last ((shape, digest of the integers), section): replaced whole, read once, so threads
# coding at once never see another's section
_last: tuple = (None, b"")


def encode(q: np.ndarray, model: ContextModel = LEGACY) -> bytes:
    """[K, C, Hy, Hx] integers (row 0 already as DC differences) → the coded section. The
    last one is remembered (the encoder codes the same integers with and without a
    restoration filter)."""
    q = np.ascontiguousarray(q, np.int64)
    key = (q.shape, model, hashlib.blake2b(q.data, digest_size=16).digest())
    global _last
    last = _last
    if last[0] == key:
        return last[1]
    section = _encode(q, model)
    _last = (key, section)
    return section


def _encode(q: np.ndarray, model: ContextModel) -> bytes:
    z = zigzag(q)
    ctx = context_indices(q, model)
    alpha = fit_alpha(z, ctx)
    enc = constriction.stream.queue.RangeEncoder()
    uniform = constriction.stream.model.Uniform()
    _put(enc, uniform, zigzag(_alpha_differences(alpha)).ravel(), ALPHA_SCALE)
    # each row and channel in coding order, its symbols grouped by scale (ascending), in
    # raster order within a group: one stable sort of each row's scales (8-bit keys: a
    # radix sort), then one `encode` a group
    rows = order(q.shape[0])
    s = np.minimum(alpha[rows][:, :, None, None] + ctx[rows], SCALES - 1)
    s = s.reshape(-1, s[0, 0].size).astype(np.uint8)
    perm = np.argsort(s, axis=1, kind="stable")
    s = np.take_along_axis(s, perm, 1).ravel()
    zs = np.take_along_axis(z[rows].reshape(len(s) // perm.shape[1], -1), perm, 1).ravel()
    cut = np.ones(len(s), bool)  # where a group starts: a new row, or a new scale
    cut[1:] = s[1:] != s[:-1]
    cut[:: perm.shape[1]] = True
    starts = np.flatnonzero(cut)
    esc = (2 * np.array([_span(v) for v in range(SCALES)]) + 1)[s]
    clipped = np.minimum(zs, esc).astype(np.int32)
    escaped = np.flatnonzero(zs >= esc)
    ends = np.r_[starts[1:], len(s)]
    has_escape = np.zeros(len(starts), bool)
    if len(escaped):
        has_escape[np.searchsorted(starts, escaped, side="right") - 1] = True
    groups = zip(starts.tolist(), ends.tolist(), s[starts].tolist(), has_escape, strict=True)
    for a, b, v, escapes in groups:
        enc.encode(clipped[a:b], _model(v))
        if escapes:
            _encode_excess(enc, uniform, zs[a:b][zs[a:b] >= esc[a]] - esc[a])
    return enc.get_compressed().astype("<u4").tobytes()


def _alpha_differences(alpha: np.ndarray) -> np.ndarray:
    """α [K, C] as differences from the row before (row 0: from ALPHA_FIRST)."""
    a = alpha.astype(np.int64)
    return np.diff(a, axis=0, prepend=np.full((1, a.shape[1]), ALPHA_FIRST))


def _put(enc, uniform, z: np.ndarray, s: int) -> None:
    """Code zigzag symbols `z` with the table of scale `s` (escapes: their excess after)."""
    esc = 2 * _span(s) + 1
    enc.encode(np.minimum(z, esc).astype(np.int32), _model(s))
    excess = z[z >= esc] - esc
    if len(excess):
        _encode_excess(enc, uniform, excess)


def _get(dec, uniform, n: int, s: int, escapes: list[int]) -> np.ndarray:
    """The inverse of `_put`: n zigzag symbols. `escapes` holds how many escaped values
    the section may still have (each costs a Python loop: a crafted file must not make
    every value one)."""
    model, esc = _table(s)
    try:
        z = dec.decode(model, n)
    except AssertionError:  # constriction's word for data that ran out
        raise ValueError("the coefficient section is truncated or corrupt") from None
    if z.max() < esc:
        return z
    z = z.astype(np.int64)
    where = np.nonzero(z == esc)[0].tolist()
    escapes[0] -= len(where)
    if escapes[0] < 0:
        raise ValueError("the coefficient section is corrupt: too many escaped values")
    for i in where:
        z[i] += _decode_excess(dec, uniform)
    return z


def _encode_excess(enc, uniform, excess: np.ndarray) -> None:
    for r in excess.tolist():
        v = r + 1
        nb = v.bit_length() - 1
        sizes, values = [MAX_EXCESS_BITS], [nb]
        rest, left = v - (1 << nb), nb
        while left > 0:
            piece = min(16, left)
            sizes.append(1 << piece)
            values.append(rest & ((1 << piece) - 1))
            rest >>= piece
            left -= piece
        sizes = [max(2, x) for x in sizes]
        enc.encode(np.array(values, np.int32), uniform, np.array(sizes, np.int32))


def _decode_excess(dec, uniform) -> int:
    try:
        (nb,) = dec.decode(uniform, np.array([MAX_EXCESS_BITS], np.int32))
    except AssertionError:
        raise ValueError("the coefficient section is truncated or corrupt") from None
    if nb > 34:
        raise ValueError("an escaped coefficient of more than 34 bits")
    rest, shift, left = 0, 0, int(nb)
    while left > 0:
        piece = min(16, left)
        try:
            (bits,) = dec.decode(uniform, np.array([max(2, 1 << piece)], np.int32))
        except AssertionError:
            raise ValueError("the coefficient section is truncated or corrupt") from None
        rest |= int(bits) << shift
        shift += piece
        left -= piece
    return (1 << int(nb)) + rest - 1


def encode_values(v: np.ndarray) -> bytes:
    """A few signed integers (a restoration filter's taps) under one Laplace table, the
    scale that codes them smallest near the one their mean magnitude suggests: its index
    (a byte), then the range coder's words. The last call is remembered (the encoder
    prices a filter and then stores it)."""
    return _encode_values(np.ascontiguousarray(v, np.int64).tobytes())


@lru_cache(maxsize=1)
def _encode_values(data: bytes) -> bytes:
    v = np.frombuffer(data, np.int64)
    z = zigzag(v)
    uniform = constriction.stream.model.Uniform()
    guess = round(8 * (math.log2(max(np.abs(v).mean(), 1 / 32)) + 5))
    best: tuple[int, np.ndarray] | None = None
    for s in range(max(0, guess - 4), min(SCALES, guess + 5)):
        enc = constriction.stream.queue.RangeEncoder()
        _put(enc, uniform, z, s)
        words = enc.get_compressed()
        if best is None or len(words) < len(best[1]):
            best = (s, words)
    assert best is not None  # the range holds at least one scale
    return bytes([best[0]]) + best[1].astype("<u4").tobytes()


def decode_values(data: bytes, n: int) -> np.ndarray:
    """The inverse of `encode_values`: n signed integers (ValueError if they do not
    decode)."""
    if not data or (len(data) - 1) % 4 or data[0] >= SCALES:
        raise ValueError("the coded values are truncated or corrupt")
    dec = constriction.stream.queue.RangeDecoder(np.frombuffer(data[1:], "<u4").astype(np.uint32))
    uniform = constriction.stream.model.Uniform()
    return unzigzag(_get(dec, uniform, n, data[0], [n]))


def decode(
    data: bytes, shape: tuple[int, int, int, int], model: ContextModel = LEGACY
) -> np.ndarray:
    """The coded section → [K, C, Hy, Hx] integers (row 0 as DC differences). Raises
    ValueError on a section that does not match the shape."""
    k_rows, channels, hy, hx = shape
    if len(data) % 4:
        raise ValueError("the coefficient section is truncated")
    words = np.frombuffer(data, "<u4").astype(np.uint32)
    dec = constriction.stream.queue.RangeDecoder(words)
    uniform = constriction.stream.model.Uniform()
    # a real file escapes a value with probability ~e^-14 under its table (α is fitted to
    # the values); 1 in 16 is far beyond any, and bounds a crafted file's work
    escapes = [1024 + k_rows * channels * hy * hx // 16]
    diffs = unzigzag(_get(dec, uniform, k_rows * channels, ALPHA_SCALE, escapes))
    alpha = ALPHA_FIRST + np.cumsum(diffs.reshape(k_rows, channels), axis=0)
    if alpha.min() < 0 or alpha.max() >= SCALES:
        raise ValueError("the coefficient section is corrupt: a row scale out of range")
    q = np.empty(shape, np.int64)
    ctx = _Context((channels, hy, hx), model)
    for k in order(k_rows):
        for c in range(channels):
            s = np.minimum(alpha[k, c] + ctx.terms(k, q[k], c).ravel(), SCALES - 1)
            # the cells grouped by scale, rising, each group in raster order (the encoder's)
            by_scale = np.argsort(s, kind="stable")
            scales, counts = np.unique(s[by_scale], return_counts=True)
            groups = [
                _get(dec, uniform, n, v, escapes)
                for v, n in zip(scales.tolist(), counts.tolist(), strict=True)
            ]
            zs = np.empty(hy * hx, np.int64)
            zs[by_scale] = np.concatenate(groups)
            q[k, c] = unzigzag(zs).reshape(hy, hx)
        ctx.update(k, q[k])
    return q
