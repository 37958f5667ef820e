"""Codec variants measured and not kept (or kept with a parameter chosen here): each one a
BD-rate or a size change against the current coding of the same fitted network, so that
the numbers in results/codec_ablation.md's "tried" table can be rerun.

    python -m benchmarks.codec_experiments klt  --images kodim23,coffee,kodim05,chelsea,kodim19
    python -m benchmarks.codec_experiments rdoq --images kodim23,coffee,kodim05
    python -m benchmarks.codec_experiments rdo --images kodim23,coffee,kodim05
    python -m benchmarks.codec_experiments prediction --images kodim23,kodim05,coffee,chelsea
    python -m benchmarks.codec_experiments lzma --images kodim23,kodim05
    python -m benchmarks.codec_experiments cell --images chelsea,kodim23
    python -m benchmarks.codec_experiments planes --images kodim23,kodim05
    python -m benchmarks.codec_experiments fast --threads 2 --images kodim23,kodim05,kodim19,kodim15
    python -m benchmarks.codec_experiments longer --threads 2 --images kodim23,kodim05,kodim19
    python -m benchmarks.codec_experiments body --threads 2 --images kodim23,kodim05
    python -m benchmarks.codec_experiments narrow --images kodim23,kodim05,kodim19,kodim03
    python -m benchmarks.codec_experiments wide --images kodim16,kodim13,kodim06,kodim23
    python -m benchmarks.codec_experiments ridge --images kodim16,kodim06,kodim23,coffee,chelsea
    python -m benchmarks.codec_experiments taps --images kodim16,kodim06,kodim23,coffee,chelsea
    python -m benchmarks.codec_experiments blend --images kodim16,kodim23
    python -m benchmarks.codec_experiments fixed --images kodim18,kodim06,coffee,chelsea
    python -m benchmarks.codec_experiments render --images kodim23,kodim18

klt         the KLT order's image model: AR(1) ρ ∈ {0.9, 0.95, 0.98, 0.99, 0.995}, the grid
            Laplacian's smoothness order, and the image's own KLT (an oracle: it would cost
            its k² numbers), each against the Cholesky order (filter on)
rdo         rate–distortion-optimised quantization under the context model of the range
            coder (rdo_quantize: 0, ⌊|x|⌋ or ⌈|x|⌉, whichever costs least in
            squared error + λ·bits) at four λ, against the deadzone quantizer alone
rdoq        (before the range coder) rate–distortion-optimised zeroing: a coefficient
            becomes 0 unless 2x − 1 > λ·ΔR (x in steps, ΔR the bits a ±1 costs over a 0
            in its row, from the row's share of non-zeros), against the uniform deadzone
prediction  the cells' constant coefficients predicted from the left cell (the current),
            the median edge detector (LOCO-I) or the mean of left and above, and the first
            1 or 3 AC rows predicted the same way: file sizes at three steps
lzma        LZMA2 literal-context settings (lc, lp, pb) and the coefficient array's layout
            (cell-major, channel-major): file sizes at three steps
cell        12- and 16-pixel cells (width 48, 64) against 8-pixel cells (width 32)
planes      the coefficients' bytes value by value (before flags bit 3) against byte planes
            (kept): file sizes at steps 0.3, 0.12, 0.05, 0.03
narrow      width 16 against 24 (`compact`'s narrowest candidate) at 0.1, 0.15 and 0.25 bpp:
            the PSNR difference of the files that fit (dB, positive: width 16 better)
wide        width 64 against 48 (`compact`'s widest default candidate) at 0.5, 0.75, 1, 1.5
            and 2 bpp: the PSNR difference of the files that fit (dB, positive: 64 better)
ridge       the restoration filter's Tikhonov weight (postfilter.RIDGE) 1e-4 against 1e-9
            (until 2026-11-30), and 1e-3, on `compact`'s width 32 (BD-rate, files as coded)
taps        the restoration filter's taps range-coded on the 2^-10 grid (flags bit 6) against
            the same taps as fp16 (before): BD-rate, `compact` width 32
blend       blended heads: each cell's head also evaluated on a margin of m pixels around
            its cell (the body's features extrapolated there) and cross-faded with its
            neighbours' by linear ramps (a partition of unity); the coefficients solved
            jointly by least squares (30 CGLS iterations from the block solution), then
            quantized and range-coded like the block ones: BD-rate against the block
            heads of the same body at m = 1, 2 (without and with the restoration filter)
fixed       the fixed body (the cells' cosines, never trained or stored: its files
            code the cells' DCT) on 8- to 32-pixel cells against the best trained width
            of 16…64 at 0.15 … 1.5 bpp
render      2× renders between the pixels: a halved image coded at 40 dB with the fixed and
            a trained width-32 body, rendered at full size by the network (`plain`) and by
            Lanczos from the native render (`resample`), PSNR against the original
body        the body's int8 matrices with fewer levels (±63, ±31, ±15 instead of ±127, still
            stored as int8: LZMA2 then codes fewer bits a weight) at widths 24, 32, 48
longer      what a longer fit buys (the `max` preset's question): `compact`'s architecture at
            1,000 and 2,500 steps, widths 48 and 64, against width 32 at 300 steps, with the
            seconds of each fit
fast        the `fast` preset's width and training steps (24 and 60 now) against the
            current, with the seconds of each fit (meaningful only alone on the cores)
"""

import argparse
import lzma
import time
import types
from dataclasses import replace

import numpy as np
import torch

from benchmarks import codec_ablation as co_ablation
from benchmarks.bd_rate import load
from benchmarks.codec_ablation import curve
from benchmarks.common import bd_rate
from mhinr.model import codec, network
from mhinr.model import coefficients as co
from mhinr.model.codec import entropy, postfilter
from mhinr.model.compress import Options
from mhinr.model.metrics import psnr
from mhinr.model.presets import Arch


def _fit(name: str):
    """The trained width-32 body the experiments before the fixed body were measured on
    (`compact`'s default until 2026-11-30: 8×8 cells, 300 steps)."""
    img = load(name)
    coder = co.fit_coders(img.pixels, img.mode, Options(preset="compact", width=32), False)[0]
    return img, coder, *img.pixels.shape[1:]


def _rotated(coder, rot: torch.Tensor) -> None:
    """Code `coder` in its Cholesky basis rotated by `rot` (sizes and PSNR are real; such a
    file would not decode, which these measurements do not need)."""
    basis = codec.coding_basis(coder.net) @ rot
    coder._bases[True] = (basis, basis.T @ coder._cells)
    coder._coded = None


def _eig_order(inner: torch.Tensor) -> torch.Tensor:
    _, vecs = torch.linalg.eigh((inner + inner.T) / 2)
    rot = torch.eye(inner.shape[0] + 1, dtype=torch.float64)
    rot[1:, 1:] = vecs.flip(1)
    return rot


def klt(name: str) -> dict:
    img, coder, h, w = _fit(name)
    coder.tools = replace(coder.tools, klt=False)
    base = curve(coder, h, w)
    coder.tools = replace(coder.tools, klt=True)
    plain = codec.coding_basis(coder.net)
    rest = plain[:, 1:]
    n_y, n_x = coder.net.cfg.cell
    out = {}
    for rho in (0.9, 0.95, 0.98, 0.99, 0.995):
        cov = codec.ar1_covariance((n_y, n_x), rho)
        _rotated(coder, _eig_order(rest.T @ cov @ rest))
        out[f"AR(1) {rho}"] = bd_rate(*curve(coder, h, w), *base)
    idx = torch.arange(n_y * n_x).reshape(n_y, n_x)
    lap = torch.zeros(n_y * n_x, n_y * n_x, dtype=torch.float64)
    for a, b in ((idx[:, :-1], idx[:, 1:]), (idx[:-1], idx[1:])):
        a, b = a.reshape(-1), b.reshape(-1)
        lap[a, a] += 1
        lap[b, b] += 1
        lap[a, b] -= 1
        lap[b, a] -= 1
    _rotated(coder, _eig_order(-(rest.T @ lap @ rest)))
    out["smoothness (Laplacian)"] = bd_rate(*curve(coder, h, w), *base)
    coef = plain.T @ coder._cells  # the image's own coefficients
    _rotated(coder, _eig_order(coef[1:] @ coef[1:].T))
    out["the image's own KLT (oracle)"] = bd_rate(*curve(coder, h, w), *base)
    return out


def rdoq(name: str) -> dict:
    img, coder, h, w = _fit(name)
    base = curve(coder, h, w)
    out = {}
    for lam in (0.06, 0.115, 0.2):

        def quantized(self, step, lam=lam):
            x = self.coef / step
            a = x.abs()
            plain = torch.floor(a + 0.5 - self.deadzone).clamp_min(0)
            p = (plain > 0).double().mean(1).clamp(1e-4, 1 - 1e-4)
            extra = (1 - torch.log2(p)) + torch.log2(1 - p)  # bits of ±1 (sign too) − of 0
            thr = 0.5 + lam * extra / 2
            thr[0] = 0.5 + self.deadzone  # the constant row as before
            return torch.sign(x) * torch.where(a > thr[:, None], plain.clamp_min(1), 0 * a)

        coder.quantized = types.MethodType(quantized, coder)
        coder._coded = None
        out[f"λ = {lam}"] = bd_rate(*curve(coder, h, w), *base)
    return out


def rdo(name: str) -> dict:
    img, coder, h, w = _fit(name)
    base = curve(coder, h, w)
    plain = coder.quantized
    shape = (len(coder.coef), len(img.mode), *coder.net.cfg.heads)
    out = {}
    for lam in RDO_LAMBDAS:
        cache = {}

        def quantized(self, step, lam=lam, cache=cache):
            if step not in cache:
                x = (self.coef / step).numpy().reshape(shape)
                q = plain(step).numpy().astype(np.int64).reshape(shape)
                q = rdo_quantize(x, q, lam).reshape(len(q), -1)
                cache[step] = torch.from_numpy(q).double()
            return cache[step]

        coder.quantized = types.MethodType(quantized, coder)
        coder._coded = None
        out[f"λ = {lam}"] = bd_rate(*curve(coder, h, w), *base)
    return out


RDO_LAMBDAS = (0.06, 0.1, 0.15, 0.22)


def rdo_quantize(x: np.ndarray, q: np.ndarray, lam: float, rounds: int = 2) -> np.ndarray:
    """Rate–distortion-optimised quantization: each coefficient from row 1 on (x, in
    quantizer steps, [K, C, Hy, Hx]) becomes whichever of 0, ⌊|x|⌋ and ⌈|x|⌉ (signed)
    minimises (|x| − n)² + lam · bits, its bits from the table the context model gives it
    around the current integers `q` (row 0 is kept). Two rounds: the contexts follow."""
    x = np.asarray(x, np.float64)
    a = np.abs(x)
    lo = np.floor(a)
    cands = np.stack([np.zeros_like(a), lo, lo + 1])  # [3, K, C, Hy, Hx]
    dist = (a - cands) ** 2
    neg = x < 0
    zz = np.where(neg, 2 * cands - 1, 2 * cands).clip(0).astype(np.int64)
    wide = zz[2] >= 128  # beyond the cost table: round to nearest
    nearest = np.where(a - lo < 0.5, lo, lo + 1)
    costs = entropy.bit_costs()
    q = np.asarray(q, np.int64).copy()
    for _ in range(rounds):
        ctx = entropy.context_indices(q)
        alpha = entropy.fit_alpha(entropy.zigzag(q), ctx)
        s = np.minimum(alpha[:, :, None, None].astype(np.int64) + ctx, entropy.SCALES - 1)
        bits = costs[s[None], np.minimum(zz, 127)]
        pick = (dist + lam * bits).argmin(0)
        n = np.where(wide, nearest, np.take_along_axis(cands, pick[None], 0)[0])
        new = np.where(neg, -n, n).astype(np.int64)
        new[0] = q[0]
        q = new
    return q


def _neighbours(a: np.ndarray):
    left, up, ul = (np.zeros_like(a) for _ in range(3))
    left[:, :, 1:], up[:, 1:], ul[:, 1:, 1:] = a[:, :, :-1], a[:, :-1], a[:, :-1, :-1]
    return left, up, ul


def _edges(a: np.ndarray, p: np.ndarray) -> np.ndarray:
    """a − p, the first row predicted from the left and the first column from above."""
    p[:, 0, 1:], p[:, 1:, 0], p[:, 0, 0] = a[:, 0, :-1], a[:, :-1, 0], 0
    return a - p


def _median_edge(a: np.ndarray) -> np.ndarray:
    lf, up, ul = _neighbours(a)
    lo, hi = np.minimum(lf, up), np.maximum(lf, up)
    return _edges(a, np.where(ul >= hi, lo, np.where(ul <= lo, hi, lf + up - ul)))


def _mean_left_above(a: np.ndarray) -> np.ndarray:
    lf, up, _ = _neighbours(a)
    return _edges(a, np.floor((lf + up) / 2).astype(a.dtype))


PREDICTORS = {
    "left": codec.dc_differences,
    "median edge": _median_edge,
    "mean of left and above": _mean_left_above,
}


def _size(coder, img, q, step) -> int:
    coded = codec.Coded(
        *img.pixels.shape[1:], img.mode, "coefficients", "int8", step=step,
        colour=coder.colour.double().tolist(), colour_mean=coder.mean.double().tolist(),
    )  # fmt: skip
    return len(
        codec.encode_coefficients(
            coder.net, coded, q, coder.bq, "lzma", codec.Tools(dc_prediction=False, klt=True)
        )
    )


def prediction(name: str) -> dict:
    img, coder, h, w = _fit(name)
    c, (hy, hx) = len(img.mode), coder.net.cfg.heads
    out = {}
    for step in (0.3, 0.12, 0.05):
        q = coder.quantized(step).numpy().astype(np.int64)
        sizes = {}
        for pname, fn in PREDICTORS.items():
            for rows in (1, 2, 4):
                qq = q.copy()
                for r in range(rows):
                    qq[r] = fn(q[r].reshape(c, hy, hx)).reshape(-1)
                label = pname + ("" if rows == 1 else f" + {rows - 1} AC rows")
                sizes[label] = _size(coder, img, qq, step)
        ref = sizes["left"]
        for k, v in sizes.items():
            out.setdefault(k, []).append(100 * (v / ref - 1))
    return {k: float(np.mean(v)) for k, v in out.items()}


def lzma_settings(name: str) -> dict:
    img, coder, h, w = _fit(name)
    out = {}
    for step in (0.3, 0.12, 0.05):
        raw = codec.open_payload(coder.encode(step))[1]
        q = coder.quantized(step).numpy().astype(np.int64)
        z = codec.zigzag(q)
        ref = len(lzma.compress(raw, format=lzma.FORMAT_RAW, filters=codec.LZMA_RAW))
        for lc, lp, pb in ((0, 0, 0), (1, 0, 0), (2, 0, 0), (4, 0, 0), (0, 0, 2)):
            f = [dict(codec.LZMA_RAW[0], lc=lc, lp=lp, pb=pb)]
            size = len(lzma.compress(raw, format=lzma.FORMAT_RAW, filters=f))
            out.setdefault(f"lc {lc} lp {lp} pb {pb}", []).append(100 * (size / ref - 1))
        if z.max() < 256:  # one byte a value: the array is the record's tail
            k, n = z.shape
            tail = z.astype(np.uint8)
            c = len(img.mode)
            for label, arr in (
                ("cell-major", tail.T),
                ("channel-major", tail.reshape(k, c, n // c).transpose(1, 0, 2)),
            ):
                rec = raw[: len(raw) - z.size] + np.ascontiguousarray(arr).tobytes()
                size = len(lzma.compress(rec, format=lzma.FORMAT_RAW, filters=codec.LZMA_RAW))
                out.setdefault(label, []).append(100 * (size / ref - 1))
    return {k: float(np.mean(v)) for k, v in out.items()}


def cell(name: str) -> dict:
    img = load(name)
    h, w = img.pixels.shape[1:]
    curves = {}
    for arch in (Arch(cell=8, width=32), Arch(cell=12, width=48), Arch(cell=16, width=64)):
        opt = Options(preset="compact")
        coder = co.fit_coders(img.pixels, img.mode, opt, False, archs=[arch])[0]
        curves[f"{arch.cell}-pixel cells, width {arch.width}"] = curve(coder, h, w)
    base = next(iter(curves.values()))
    return {k: bd_rate(*v, *base) for k, v in list(curves.items())[1:]}


def planes(name: str) -> dict:
    img, coder, h, w = _fit(name)
    out = {}
    for step in (0.3, 0.12, 0.05, 0.03):
        raw = codec.open_payload(coder.encode(step))[1]
        z = codec.zigzag_array(coder.quantized(step).numpy().astype(np.int64))
        if coder.tools.dc_prediction:  # the stored array holds the DC differences
            q = coder.quantized(step).numpy().astype(np.int64)
            c, (hy, hx) = len(img.mode), coder.net.cfg.heads
            q[0] = codec.dc_differences(q[0].reshape(c, hy, hx)).reshape(-1)
            z = codec.zigzag_array(q)
        head = raw[: len(raw) - z.nbytes]
        interleaved = head + z.astype(z.dtype.newbyteorder("<")).tobytes()
        sizes = [
            len(lzma.compress(r, format=lzma.FORMAT_RAW, filters=codec.LZMA_RAW))
            for r in (raw, interleaved)
        ]
        out[f"step {step} ({z.dtype.itemsize} byte(s) a value)"] = 100 * (sizes[1] / sizes[0] - 1)
    return out


def _architectures(name: str, preset: str, archs, base: tuple[int, int]) -> dict:
    """Each (width, steps) of `archs` fitted with `preset`'s method: its fit seconds and
    its BD-rate against the `base` (width, steps)."""
    img = load(name)
    h, w = img.pixels.shape[1:]
    curves, out = {}, {}
    for width, steps in archs:
        t = time.perf_counter()
        opt = Options(preset=preset, width=width, steps=steps)
        coder = co.fit_coders(img.pixels, img.mode, opt, False)[0]
        out[f"width {width}, {steps} steps: fit s"] = time.perf_counter() - t
        curves[f"width {width}, {steps} steps"] = curve(coder, h, w)
    ref = curves[f"width {base[0]}, {base[1]} steps"]
    for k, v in curves.items():
        out[k] = bd_rate(*v, *ref)
    return out


def fast(name: str) -> dict:
    return _architectures(
        name, "fast", ((24, 60), (32, 60), (24, 120), (32, 120), (48, 60)), (24, 60)
    )


def longer(name: str) -> dict:
    return _architectures(name, "compact", LONGER, (32, 300))


LONGER = ((32, 300), (32, 1000), (32, 2500), (48, 300), (48, 1000), (64, 1000))


def _widths(name: str, widths: tuple[int, int], bpps: tuple[float, ...]) -> dict:
    """The PSNR of `compact` files at byte targets `bpps` fitted at widths[0] minus at
    widths[1]."""
    img = load(name)
    h, w = img.pixels.shape[1:]
    psnrs = {}
    for width in widths:
        opt = Options(preset="compact", width=width)
        coder = co.fit_coders(img.pixels, img.mode, opt, True)[0]
        for bpp in bpps:
            psnrs[width, bpp] = coder.search({"max_bytes": int(bpp * h * w / 8)}, 0.1).psnr
    return {f"{bpp} bpp: dB": psnrs[widths[0], bpp] - psnrs[widths[1], bpp] for bpp in bpps}


def narrow(name: str) -> dict:
    return _widths(name, (16, 24), NARROW_BPPS)


def wide(name: str) -> dict:
    return _widths(name, (64, 48), WIDE_BPPS)


FIXED_BPPS = (0.15, 0.25, 0.5, 1.0, 1.5)
FIXED_CELLS = (8, 12, 16, 24, 32)


def fixed(name: str) -> dict:
    """The fixed (cosine) body — no fit, no body bytes, the cells' DCT — on 8- to 32-pixel
    cells (the presets use 8, 12 and 16) against the best of the trained widths 16, 24, 32,
    48 and 64 (`compact`'s 300-step fits) at each byte target: the PSNR of the best file that fits
    (fixed cells 8 only, then the best of 8, 12 and 16) minus the trained one's, each
    larger cell's against 8, and the BD-rate of the best fixed (8, 12, 16) against the best
    trained over the five points."""
    img = load(name)
    h, w = img.pixels.shape[1:]
    trained = [Arch(cell=8, width=x) for x in (16, 24, 32, 48, 64)]
    cells = [Arch(cell=x, fixed=True) for x in FIXED_CELLS]
    archs = trained + cells
    coders = co.fit_coders(img.pixels, img.mode, Options(preset="compact"), True, archs=archs)
    points = {}  # (arch, bpp) → (bpp, PSNR) of its file
    for arch, coder in zip(archs, coders, strict=True):
        for bpp in FIXED_BPPS:
            out = coder.search({"max_bytes": int(bpp * h * w / 8)}, 0.1)
            points[arch, bpp] = (out.bpp, out.psnr)

    def best(group, bpp):
        return max((points[a, bpp] for a in group), key=lambda p: p[1])

    res = {}
    for b in FIXED_BPPS:
        top = best(trained, b)[1]
        res[f"{b} bpp: fixed 8 - trained, dB"] = best(cells[:1], b)[1] - top
        res[f"{b} bpp: best fixed - trained, dB"] = best(cells[:3], b)[1] - top
        for arch in cells[1:]:
            res[f"{b} bpp: cell {arch.cell} - cell 8, dB"] = (
                points[arch, b][1] - points[cells[0], b][1]
            )
    curves = [np.array([best(g, b) for b in FIXED_BPPS]).T for g in (cells[:3], trained)]
    res["BD-rate %, best fixed against best trained"] = bd_rate(*curves[0], *curves[1])
    return res


def render(name: str) -> dict:
    """How a file renders between its pixels: the image halved (Lanczos), coded at 40 dB
    with the fixed body (16-pixel cells) and with a trained width-32 body, rendered back at
    the full size by the network itself (`method="plain"`) and by Lanczos from the native
    render (`resample`, the default): PSNR against the full-size original."""
    import io

    from PIL import Image

    from mhinr.model.codec import decode
    from mhinr.model.images import load_image
    from mhinr.model.render import render as render_net

    full = load(name)
    _, h, w = full.pixels.shape
    pil = Image.fromarray(full.pixels.mul(255).round().byte().permute(1, 2, 0).numpy())
    buf = io.BytesIO()
    pil.resize((w // 2, h // 2), Image.Resampling.LANCZOS).save(buf, "PNG")
    half = load_image(buf.getvalue())
    ref = full.pixels[:, : h // 2 * 2, : w // 2 * 2]
    out = {}
    for label, arch in (("fixed", co.FIXED), ("trained 32", Arch(cell=8, width=32))):
        opt = Options(preset="compact")
        (coder,) = co.fit_coders(half.pixels, half.mode, opt, True, archs=[arch])
        net, coded = decode(coder.search({"psnr": 40.0}, 0.1).data)
        for method in ("plain", "resample"):
            big = render_net(net, (coded.height, coded.width), tuple(ref.shape[1:]), method)
            out[f"{label}, {method}: dB"] = psnr(big.float() / 255, ref)
    return out


NARROW_BPPS = (0.1, 0.15, 0.25)
WIDE_BPPS = (0.5, 0.75, 1.0, 1.5, 2.0)


def ridge(name: str) -> dict:
    img, coder, h, w = _fit(name)
    old = postfilter.RIDGE
    curves = {}
    try:
        for value in (1e-9, 1e-4, 1e-3):
            postfilter.RIDGE = value
            coder._coded = None  # the filter is remembered per step
            curves[value] = curve(coder, h, w)
    finally:
        postfilter.RIDGE = old
    return {f"ridge {v:g}": bd_rate(*curves[v], *curves[1e-9]) for v in (1e-4, 1e-3)}


def taps(name: str) -> dict:
    img, coder, h, w = _fit(name)
    coded = curve(coder, h, w)
    old = postfilter.to_integers
    postfilter.to_integers = lambda filters: None  # the codec then stores fp16
    try:
        coder._coded = None
        fp16 = curve(coder, h, w)
    finally:
        postfilter.to_integers = old
    return {"range-coded taps": bd_rate(*coded, *fp16)}


def _blend_operators(coder, m: int):
    """(A, Aᵀ): coefficients [k, C·Hy·Hx] → the blended image [C, Hy·8, Hx·8] with heads
    spread over a margin of m pixels, and its adjoint."""
    import torch.nn.functional as F

    net = coder.net
    n = net.cfg.cell[0]
    c = len(coder.mode)
    hy, hx = net.cfg.heads
    side = n + 2 * m
    t = torch.arange(-m, n + m, dtype=torch.float32)
    axis = (t * 2 + 1) / n - 1  # local coordinates, beyond [-1, 1] on the margin
    gy, gx = torch.meshgrid(axis, axis, indexing="ij")
    with torch.no_grad():
        feats = net.body(torch.stack([gy, gx], -1).reshape(-1, 2)).double()
    phi = torch.cat([torch.ones(len(feats), 1, dtype=torch.float64), feats], 1)
    basis = phi @ codec.cell_basis(net, coder.tools.klt)  # [side², k]
    td = t.double()
    ramp = torch.minimum(((td + m + 0.5) / (2 * m)).clamp(0, 1), ((n + m - 0.5 - td) / (2 * m)))
    window = (ramp.clamp(0, 1)[:, None] * ramp.clamp(0, 1)[None, :]).reshape(-1, 1)
    size = (n * hy + 2 * m, n * hx + 2 * m)
    crop = (slice(None), slice(m, m + n * hy), slice(m, m + n * hx))
    norm = F.fold(window.expand(-1, hy * hx)[None], size, side, stride=n)[0][crop]

    def forward(coef):
        v = ((basis @ coef) * window).reshape(side * side, c, hy * hx).permute(1, 0, 2)
        return F.fold(v, size, side, stride=n)[:, 0][crop] / norm

    def adjoint(img):
        v = F.unfold(F.pad(img / norm, (m, m, m, m))[:, None], side, stride=n)
        return basis.T @ (v.permute(1, 0, 2).reshape(side * side, -1) * window)

    return forward, adjoint


def blend(name: str) -> dict:
    img, coder, h, w = _fit(name)
    c = len(coder.mode)
    hy, hx = coder.net.cfg.heads
    target = network.assemble(coder._cells, c, hy, hx, *coder.net.cfg.cell)
    k = coder.coef.shape[0]

    def rgb(coded):
        out = torch.einsum("ij,jhw->ihw", coder.colour.double(), coded)
        return (out + coder.mean.double()[:, None, None])[:, :h, :w].float()

    def points(forward, coef, filtered):
        pts = []
        for step in co_ablation.STEPS:
            q = coder.quantized(step) if coef is None else quantize(coef / step)
            rec = rgb(forward(q * step))
            z = q.numpy().astype(np.int64).reshape(k, c, hy, hx).copy()
            z[0] = codec.dc_med_residuals(z[0])
            size = len(entropy.encode(z))
            if filtered:
                f = postfilter.solve(rec, img.pixels, stride=2)
                rec = postfilter.apply(rec, f)
                size += len(codec.filter_bytes(f, c)[0])
            pts.append((8 * size / (h * w), float(psnr(rec.clamp(0, 1), img.pixels))))
        return [p[0] for p in pts], [p[1] for p in pts]

    def quantize(x):
        return torch.sign(x) * torch.floor(x.abs() + 0.5 - coder.deadzone).clamp_min(0)

    out = {}
    block = _blend_operators(coder, 0)[0]
    for filtered in (False, True):
        base = points(block, None, filtered)
        for m in (1, 2):
            forward, adjoint = _blend_operators(coder, m)
            x = coder.coef.clone()  # CGLS from the block solution
            r = target - forward(x)
            s = adjoint(r)
            p, gamma = s.clone(), (s * s).sum()
            for _ in range(30):
                q = forward(p)
                a = gamma / (q * q).sum()
                x, r = x + a * p, r - a * q
                s = adjoint(r)
                gamma, old = (s * s).sum(), gamma
                p = s + gamma / old * p
            label = f"margin {m}{', filtered' if filtered else ''}"
            out[label] = bd_rate(*points(forward, x, filtered), *base)
    return out


def body(name: str) -> dict:
    img = load(name)
    h, w = img.pixels.shape[1:]
    out = {}
    for width in (24, 32, 48):
        opt = Options(preset="compact", width=width)
        curves = {}
        for levels in BODY_LEVELS:
            codec.INT8_LEVELS = levels
            try:
                coder = co.fit_coders(img.pixels, img.mode, opt, False)[0]
                curves[levels] = curve(coder, h, w)
            finally:
                codec.INT8_LEVELS = 127
        for levels in BODY_LEVELS[1:]:
            out[f"width {width}, ±{levels}"] = bd_rate(*curves[levels], *curves[127])
    return out


BODY_LEVELS = (127, 63, 31, 15)


def main() -> None:
    ap = argparse.ArgumentParser()
    runs = {
        "klt": klt,
        "rdoq": rdoq,
        "rdo": rdo,
        "prediction": prediction,
        "lzma": lzma_settings,
        "cell": cell,
        "fast": fast,
        "planes": planes,
        "longer": longer,
        "body": body,
        "narrow": narrow,
        "wide": wide,
        "ridge": ridge,
        "taps": taps,
        "blend": blend,
        "fixed": fixed,
        "render": render,
    }
    ap.add_argument("experiment", choices=list(runs))
    ap.add_argument("--images", default="kodim23,coffee")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (fast: 2, alone)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    units = {
        "prediction": "% size",
        "lzma": "% size",
        "planes": "% size",
        "narrow": "dB",
        "wide": "dB",
        "fixed": "dB; the last: % BD-rate",
        "render": "dB",
    }
    unit = units.get(args.experiment, "% BD-rate")
    means: dict[str, list[float]] = {}
    for name in args.images.split(","):
        res = runs[args.experiment](name)
        for k, v in res.items():
            means.setdefault(k, []).append(v)
        print(name, {k: round(v, 2) for k, v in res.items()}, flush=True)
    print(f"mean ({unit}, negative = smaller):")
    for k, v in means.items():
        print(f"  {k}: {np.mean(v):+.2f} ({', '.join(f'{x:+.1f}' for x in v)})")


if __name__ == "__main__":
    main()
