"""The `upscale` preset: an arbitrary-scale multi-head ReLU INR that enlarges an image.

The image is cut into cells of one pixel each. A small convolutional encoder turns the
image into one code per cell (the cell's head, `hidden` numbers); a shared body decodes a
point from a head, the point's offset from the cell centre (in the image's pixels) and the
output pixel size (1/scale), as LIIF does (Chen et al. 2021). Every point is decoded from
the four cells around it and the four results are blended with bilinear weights, so the
rendered image is continuous in position: no seams at cell borders. The body predicts a
residual over bicubic interpolation of the image, scaled by min(1, scale − 1): at the
native size the residual is zero and the render reproduces the image exactly, and between
×1 and ×2 the network fades in continuously.

The preset's network is trained once, offline, on other photos and shipped with mhinr
(model/upscale_prior.py, `train_prior`); a job trains nothing. The training pairs are made
from a photo itself: a random crop, flipped/rotated, area-averaged down by a random factor
in [1.2, 4] (the same degradation a sensor's pixel integration gives), and the body learns
to predict the crop's pixels from its smaller copy. `fit_upscaler` trains on the user's
image alone the same way (internal learning, ZSSR, Shocher et al. 2018: the preset's method
until 2026-12-06, kept for the benchmarks' comparisons and fine-tuning experiments); every
200 steps it checks how well it enlarges the image's half-size copy from its quarter-size
copy (content one octave coarser than any training pair) and keeps the weights that did
best (early stopping).

A render is the mean of the enlargements of the image turned by 0°, 90°, 180° and 270°
(a self-ensemble over the rotations; the training saw rotated crops, so all four are equally
good guesses and their errors partly cancel; the result is exactly equivariant: the render
of a turned image is the turned render). Cost: the encoder runs once per view (its last
layer already holds each cell's share of the body's first layer); a render evaluates the
body 16× per output pixel (`flops_per_pixel`), in chunks small enough to stay in cache, all
views in one matrix product (`_ViewsBody`).
Sizes below the native one are Lanczos reductions of the image (nothing has to be invented
when shrinking).
"""

import copy
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mhinr.model.fit import Progress, mse_to_psnr

MIN_SCALE, MAX_SCALE = 1.2, 4.0  # training pairs' downscale factors
MIN_SIDE = 12  # smallest image side the preset accepts (its smallest copy must have pixels)
# the internal-learning fit the upscale preset made until 2026-12-06 (2,400 steps: 53 s on 2
# CPU cores), which the benchmarks still compare with the prior (model/upscale_prior.py)
INTERNAL_STEPS = 2400
MAX_PIXELS = 2_100_000  # largest image it enlarges (1920×1080 fits): heads are kept in memory
BAND_POINTS = 65_536  # output points a render converts at once (its body works in chunks)
VIEWS = (0, 1, 2, 3)  # the self-ensemble of a render: the image turned by 0°, 90°, 180°, 270°


@dataclass(frozen=True)
class UpscaleConfig:
    channels: int = 3
    features: int = 32  # encoder channels
    layers: int = 5  # encoder 3×3 convolutions before the head layer
    hidden: int = 32  # head size = width of the body
    seed: int = 0

    def __post_init__(self) -> None:
        if min(self.channels, self.features, self.layers, self.hidden) < 1:
            raise ValueError("channels, features, layers and hidden must be at least 1")

    def to_dict(self) -> dict:
        return asdict(self)


class Encoder(nn.Module):
    """Image [B, C, h, w] → heads [B, hidden, h, w]: 3×3 convolutions with a residual path."""

    def __init__(self, cfg: UpscaleConfig):
        super().__init__()
        f = cfg.features
        self.inp = nn.Conv2d(cfg.channels, f, 3, padding=1, padding_mode="replicate")
        self.convs = nn.ModuleList(
            nn.Conv2d(f, f, 3, padding=1, padding_mode="replicate") for _ in range(cfg.layers - 1)
        )
        self.out = nn.Conv2d(f + cfg.channels, cfg.hidden, 3, padding=1, padding_mode="replicate")

    def forward(self, image: Tensor) -> Tensor:
        # channels-last: oneDNN's convolutions run ~25 % faster so on CPU (fit and backward)
        x = (image - 0.5).contiguous(memory_format=torch.channels_last)
        h = F.relu(self.inp(x))
        for i in range(0, len(self.convs) - 1, 2):  # pairs of convolutions as residual blocks
            h = h + self.convs[i + 1](F.relu(self.convs[i](h)))
            h = F.relu(h) if i + 2 < len(self.convs) else h
        if len(self.convs) % 2:
            h = F.relu(self.convs[-1](h))
        return self.out(torch.cat([h, x], 1))  # channels-last: see `cells`


def cells(heads: Tensor) -> Tensor:
    """An encoder output [D, h, w] as one row per cell, [h·w, D]: a view of the
    channels-last output (no copy), so the body's row gathers read contiguous rows."""
    return heads.permute(1, 2, 0).reshape(-1, heads.shape[0])


class Body(nn.Module):
    """(head's first-layer share a, offset δ, pixel size c) → colour residual [N, C]."""

    def __init__(self, cfg: UpscaleConfig):
        super().__init__()
        d = cfg.hidden
        self.offset = nn.Linear(3, d, bias=False)  # (δy, δx, c) → the rest of layer one
        self.mid = nn.Linear(d, d)
        self.last = nn.Linear(d, cfg.channels)

    def hidden(self, a: Tensor, local: Tensor) -> Tensor:
        # in place: the body is memory-bound, and fresh buffers cost page faults
        return F.relu(self.mid(F.relu(a + self.offset(local), inplace=True)), inplace=True)

    def forward(self, a: Tensor, local: Tensor) -> Tensor:
        return self.last(self.hidden(a, local))


class UpscaleINR(nn.Module):
    """Encoder (heads per cell) + shared body. `image` is the picture it was trained on."""

    def __init__(self, cfg: UpscaleConfig):
        super().__init__()
        self.cfg = cfg
        self.encoder = Encoder(cfg)
        self.body = Body(cfg)
        gen = torch.Generator().manual_seed(cfg.seed)
        for p in self.parameters():  # a reproducible draw of PyTorch's default scheme
            bound = 1 / math.sqrt(p[0].numel()) if p.dim() > 1 else 0.01
            with torch.no_grad():
                p.uniform_(-bound, bound, generator=gen)
        with torch.no_grad():
            self.body.last.weight.mul_(0.1)  # start near bicubic
            self.body.last.bias.zero_()
        self.image: Tensor | None = None  # [C, H, W] in [0, 1], set by fit or decode
        # how much of the network's enlargement a render keeps against Lanczos's at ×2, ×3
        # and ×4 (1: all of it, 0: Lanczos alone; at most BLEND_MAX), chosen on held-out
        # pairs (`choose_blend`) and stored in the file
        self.blend = [1.0] * len(BLEND_SCALES)
        # the name of the prior this network is (model/upscale_prior.py: files then name it
        # instead of holding weights), or None for a network trained on its image
        self.prior: str | None = None
        self._heads: dict[int, Tensor] = {}  # cached encoder outputs, one per view
        # a render's (`stacked_heads`), by channel group and views
        self._stacked: dict[tuple[int, tuple[int, ...]], Tensor] = {}

    def parameter_count(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def set_image(self, image: Tensor) -> None:
        self.image, self._heads, self._stacked = image, {}, {}

    def groups(self) -> list[tuple[int, ...]]:
        """The image's channels as the network sees them (`channel_groups`)."""
        if self.image is None:
            raise ValueError("the upscaler has no image")
        return channel_groups(self.image.shape[0], self.cfg.channels)

    def network_input(self, image: Tensor) -> Tensor:
        """`image` [C, h, w] as the network's first pass sees it (`channel_groups`)."""
        return image[list(channel_groups(image.shape[0], self.cfg.channels)[0])]

    @torch.no_grad()
    def heads_for_image(
        self, views: tuple[int, ...] = (0,), band_bytes: int = 64 * 2**20
    ) -> list[Tensor]:
        """The heads of each view of the image (`turn`), [h·w, D] fp16 each (64 bytes an
        input pixel a view), computed once (in bands of rows with a halo as wide as the
        encoder's reach, so memory stays bounded and the result is exact)."""
        if self.image is None:
            raise ValueError("the upscaler has no image")
        for k in views:
            if k not in self._heads:
                self._heads[k] = self._encode(turn(self.network_input(self.image), k), band_bytes)
        return [self._heads[k] for k in views]

    def _encode(self, image: Tensor, band_bytes: int, low: bool = False) -> Tensor:
        """The heads of `image` [h·w, D] fp16, in bands of rows; `low`: the convolutions in
        bfloat16 (a render's, where the CPU has bfloat16 instructions: `_BF16`)."""
        dev = self.body.mid.weight.device
        _, h, w = image.shape
        halo = self.cfg.layers + 1
        rows = max(1, band_bytes // (4 * 3 * self.cfg.features * w))
        out = torch.empty(h * w, self.cfg.hidden, dtype=torch.float16)
        for r0 in range(0, h, rows):
            r1 = min(h, r0 + rows)
            a, b = max(0, r0 - halo), min(h, r1 + halo)
            with torch.autocast("cpu", torch.bfloat16, enabled=low and dev.type == "cpu"):
                band = self.encoder(image[None, :, a:b].to(dev))[0, :, r0 - a : r1 - a]
            out[r0 * w : r1 * w] = cells(band).half().cpu()
        return out.to(dev)

    def query(self, heads: Tensor, image: Tensor, coords: Tensor, scale: float) -> Tensor:
        """Colours [N, C] at `coords` [N, 2] (y, x in the image's pixels, centres at integers)
        from `heads` [h·w, D] (one row per cell) of `image` [C, h, w] at output scale
        `scale` (≥ 1)."""
        _, h, w = image.shape
        base = bicubic_at(image, coords)  # [N, C]
        gate = min(1.0, max(0.0, scale - 1.0))
        if gate == 0:
            return base
        iy, wy, dy = _linear_taps(coords[:, 0], h)  # [2, N] each
        ix, wx, dx = _linear_taps(coords[:, 1], w)
        idx = (iy[:, None] * w + ix[None]).reshape(4, -1)  # [4, N]: (dy, dx) pairs
        weight = (wy[:, None] * wx[None]).reshape(4, -1, 1)  # bilinear, [4, N, 1]
        dy = dy[:, None].expand(2, 2, -1).reshape(4, -1)
        dx = dx[None].expand(2, 2, -1).reshape(4, -1)
        local = torch.stack([dy, dx, torch.full_like(dy, 1.0 / scale)], -1)  # [4, N, 3]
        a = heads.index_select(0, idx.reshape(-1)).float().reshape(4, -1, heads.shape[1])
        hidden = self.body.hidden(a, local)  # [4, N, D]
        res = self.body.last((weight * hidden).sum(0))  # the output layer is linear: blend first
        return base + gate * res

    @torch.no_grad()
    def heads_bytes(self, views: tuple[int, ...] = VIEWS) -> int:
        """The memory `stacked_heads` takes for `views` and every channel group (fp16: 2
        bytes a hidden unit)."""
        if self.image is None:
            return 0
        _, h, w = self.image.shape
        return h * w * len(views) * self.cfg.hidden * 2 * len(self.groups())

    def stacked_heads(
        self, views: tuple[int, ...] = VIEWS, group: int = 0, band_bytes: int = 64 * 2**20
    ) -> Tensor:
        """The heads of every view of the channel group `group` (`groups`) turned back onto
        the image's own cells: [h, w, V·D] fp16 (row y, column x holds that cell's head in
        each view). Cached (64 bytes an input pixel a view); the per-view cache of
        `heads_for_image` is left alone."""
        if self.image is None:
            raise ValueError("the upscaler has no image")
        if (group, views) not in self._stacked:
            _, h, w = self.image.shape
            image = self.image[list(self.groups()[group])]
            cells_yx = torch.stack(
                torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij"), -1
            ).reshape(-1, 2)
            per_view = []
            for k in views:
                turned = turn_coords(cells_yx.float(), k, h, w).long()  # each cell in view k
                wk = h if k % 2 else w
                where = (turned[:, 0] * wk + turned[:, 1]).to(self.body.mid.weight.device)
                heads = self._encode(turn(image, k), band_bytes, low=_BF16)
                per_view.append(heads[where])
            self._stacked[group, views] = torch.cat(per_view, 1).view(h, w, -1)
        return self._stacked[group, views]

    @torch.no_grad()
    def render(
        self,
        out_size: tuple[int, int],
        max_points: int = 4096,
        back_project: bool = True,
        views: tuple[int, ...] = VIEWS,
    ) -> Tensor:  # uint8 [C, rows, cols]
        """The image at `out_size` (rows, cols), any aspect ratio, in chunks of rows: the
        mean of the enlargements of the `views` (`turn`). With `back_project`, the result is
        then corrected so that its area averages match the image's pixels (`_back_project`).
        Each channel group (`groups`) is enlarged on its own; a group of one channel three
        times over (grey, alpha) gives the mean of the three it comes out as.

        The same numbers as `query` for each view, computed another way: the output grid is
        separable (a row's points share their y, a column's their x), so a chunk gathers its
        cells row by row, adds the offsets' share of layer one as a row term and a column
        term, evaluates all views' bodies in one matrix product, and folds the views' mean
        into the output layer (it is linear). The views' heads are turned back onto the
        image's cells (`stacked_heads`), so a turned view reads the same cells with its
        offsets turned. The bicubic base is computed once, not once a view."""
        image = self.image
        if image is None:
            raise ValueError("the upscaler has no image")
        c, h, w = image.shape
        out_h, out_w = out_size
        if out_h < 1 or out_w < 1:
            raise ValueError(f"output size must be positive, got {out_h}x{out_w}")
        if out_h / h < 1 or out_w / w < 1:
            raise ValueError("the upscaler only enlarges: model.render reduces its native image")
        out = torch.empty(c, out_h, out_w, dtype=torch.uint8)
        for group, chans in enumerate(self.groups()):
            part = self._render_group(group, image[list(chans)], out_size, max_points,
                                      back_project, views)  # fmt: skip
            if len(set(chans)) == 1 and len(chans) > 1:  # one channel seen three times
                out[chans[0]] = part.float().mean(0).round_().to(torch.uint8)
            else:
                out[list(chans)] = part
        return out

    def _render_group(
        self,
        group: int,
        image: Tensor,
        out_size: tuple[int, int],
        max_points: int,
        back_project: bool,
        views: tuple[int, ...],
    ) -> Tensor:  # uint8 [channels of the group, rows, cols]: `image`, that group's channels
        c, h, w = image.shape
        out_h, out_w = out_size
        sy, sx = out_h / h, out_w / w
        scale = math.sqrt(sy * sx)  # the pixel size the body is told (areas match)
        dev = self.body.mid.weight.device
        img = image.to(dev)
        ys = (torch.arange(out_h, dtype=torch.float32, device=dev) + 0.5) / sy - 0.5
        xs = (torch.arange(out_w, dtype=torch.float32, device=dev) + 0.5) / sx - 0.5
        base = _Bicubic(img, ys, xs)
        gate = min(1.0, max(0.0, scale - 1.0))
        heads = self.stacked_heads(views, group) if gate > 0 else None
        body = _ViewsBody(self, heads, views, scale, ys, xs) if heads is not None else None
        out = torch.empty(c, out_h, out_w, dtype=torch.uint8)
        rows = max(1, max_points // out_w)  # the body's chunk: its temporaries stay in cache
        band = max(rows, BAND_POINTS // out_w // rows * rows)  # the bicubic base's and the
        for b0 in range(0, out_h, band):  # conversion's: fewer, larger operations
            b1 = min(out_h, b0 + band)
            vals = base.rows(b0, b1)  # [C, band, out_w]
            for r0 in range(b0, b1, rows):
                if body is None:  # at ×1 the gate is 0: the base alone
                    break
                r1 = min(b1, r0 + rows)
                vals[:, r0 - b0 : r1 - b0].add_(body.rows(r0, r1), alpha=gate)
            out[:, b0:b1] = vals.clamp_(0, 1).mul_(255).round_().to(torch.uint8).cpu()
        if back_project and scale > 1:
            _back_project(out, image.cpu(), max_points)
        alpha = blend_at(self.blend, scale)
        if alpha != 1:  # toward Lanczos (α < 1) or past the network's own step away from it
            # (α > 1), as far as the held-out pairs said (`choose_blend`)
            lanczos = _lanczos_u8(image.cpu(), out_h, out_w)
            for b0 in range(0, out_h, band):
                mine, theirs = out[:, b0 : b0 + band], lanczos[:, b0 : b0 + band]
                mine.copy_(theirs.float().lerp_(mine.float(), alpha).round_().clamp_(0, 255))
        return out

    def flops_per_pixel(self) -> int:
        """Multiply-adds ×2 of the body per output pixel (4 blended cells, 4 views), encoder
        excluded."""
        d, c = self.cfg.hidden, self.cfg.channels
        return 2 * len(VIEWS) * (4 * (3 * d + d * d) + d * c)  # output layer after the blend


def channel_groups(c: int, network_channels: int) -> list[tuple[int, ...]]:
    """The passes through the network that enlarge `c` channels, each a tuple of channel
    indices: all `c` at once where the network has as many; an RGB network (the prior) sees
    a grey channel as three equal ones (its training photos had grey ones too), and an alpha
    channel the same way, in a pass of its own."""
    if c == network_channels:
        return [tuple(range(c))]
    if network_channels != 3 or c not in (1, 2, 4):
        raise ValueError(f"a {network_channels}-channel upscaler cannot enlarge {c} channels")
    colour: tuple[int, ...] = (0, 1, 2) if c == 4 else (0, 0, 0)
    return [colour] + ([(c - 1,) * 3] if c in (2, 4) else [])


def turn(image: Tensor, k: int) -> Tensor:
    """View k of [C, h, w]: turned by (k mod 4)·90° counter-clockwise, then mirrored
    left-right when k ≥ 4 (the eight symmetries of a square; k odd: [C, w, h])."""
    out = torch.rot90(image, k % 4, (-2, -1)) if k % 4 else image
    return out.flip(-1).contiguous() if k >= 4 else out.contiguous()


def turn_coords(coords: Tensor, k: int, h: int, w: int) -> Tensor:
    """Points [N, 2] (y, x) of an h×w image → the same points in `turn(image, k)`."""
    y, x = coords[:, 0], coords[:, 1]
    if k % 4 == 1:
        y, x, w = (w - 1) - x, y, h
    elif k % 4 == 2:
        y, x = (h - 1) - y, (w - 1) - x
    elif k % 4 == 3:
        y, x, w = x, (h - 1) - y, h
    if k >= 4:
        x = (w - 1) - x
    return torch.stack([y, x], 1)


# oneDNN's fused linear layer (matrix product, bias and ReLU in one pass over the rows):
# ~1.6× torch's addmm + relu for the body's 32×32 layer on 2 cores; in bfloat16 where the
# CPU has bfloat16 instructions (AVX-512 BF16, AMX), ~2× again; a render's encoder runs in
# bfloat16 there too (0.8 → 0.6 s for a 512² image's four views). Against the float32
# per-view render, six benchmark fits (×2–×4) rendered within 0.002 dB of the same PSNR,
# 1–3 % of the values differing by 1 or 2 levels (ad hoc, 2026-12-05); training, `query` and
# the held-out checks stay in float32. Only with the instructions themselves: oneDNN also
# runs bfloat16 on an AVX-512 CPU without them (`_is_mkldnn_bf16_supported` says yes there),
# by conversions, and that is ~3× slower than float32 (an Intel Xeon without AVX-512 BF16,
# 2026-12-06: a 1024² render 1.76 s warm, 8.8 s cold, against 0.63 and 2.6 s in float32).
_ONEDNN = torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn, "_linear_pointwise")


def _native_bf16() -> bool:
    """Whether the CPU has bfloat16 instructions (AVX-512 BF16 or AMX)."""
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(bool(getattr(torch.cpu, name, lambda: False)()) for name in checks)


_BF16 = _ONEDNN and _native_bf16()


def _dense(x: Tensor, weight: Tensor, bias: Tensor | None, relu: bool) -> Tensor:
    """relu?(x @ weight.T + bias) for a render (x in float32 or bfloat16, as `weight`)."""
    if _ONEDNN and x.device.type == "cpu":
        attr = "relu" if relu else "none"
        return torch.ops.mkldnn._linear_pointwise(x, weight, bias, attr, [None], "")
    y = F.linear(x, weight, bias)
    return y.relu_() if relu else y


def _linear_taps(p: Tensor, n: int) -> tuple[Tensor, Tensor, Tensor]:
    """For positions `p` [M] on an axis of n cells, as `query` picks them: the two cells
    [2, M], their bilinear weights [2, M] and the offsets of the points from them [2, M]."""
    cp = p.clamp(0, n - 1)
    p0 = cp.floor().clamp(max=max(n - 2, 0))
    t = cp - p0
    cell = torch.stack([p0, (p0 + 1).clamp(max=n - 1)])
    return cell.long(), torch.stack([1 - t, t]), p[None] - cell


class _Bicubic:
    """Bicubic interpolation (a = −0.75, edges clamped: `bicubic_at`'s numbers) of an image
    [C, h, w] on a separable grid (`ys` [H], `xs` [W]), a band of rows at a time: the columns
    once for the whole image ([C, h, W]), then four taps of it for each row."""

    def __init__(self, image: Tensor, ys: Tensor, xs: Tensor):
        _, h, _ = image.shape
        self.across = F.interpolate(
            image[None], size=(h, len(xs)), mode="bicubic", align_corners=False
        )[0]
        f = ys.floor()
        t = ys - f
        self.taps = (f.long()[:, None] + torch.arange(-1, 3, device=ys.device)).clamp(0, h - 1)
        a = -0.75
        near = lambda x: ((a + 2) * x - (a + 3)) * x * x + 1  # noqa: E731  |x| ≤ 1
        far = lambda x: ((a * x - 5 * a) * x + 8 * a) * x - 4 * a  # noqa: E731  1 < |x| < 2
        self.weights = torch.stack([far(t + 1), near(t), near(1 - t), far(2 - t)], 1)

    def rows(self, r0: int, r1: int) -> Tensor:  # [C, r1 − r0, W]
        taps, weights = self.taps[r0:r1], self.weights[r0:r1]
        out = self.across.index_select(1, taps[:, 0]) * weights[None, :, 0, None]
        for k in range(1, 4):
            out.addcmul_(self.across.index_select(1, taps[:, k]), weights[None, :, k, None])
        return out


class _ViewsBody:
    """The network's residual of a render (before its gate) for rows of a separable output
    grid, all views at once: for each point, the four cells around it in each view, layer one
    as the cell's head plus a row term (its dy) and a column term (its dx and the pixel size),
    the hidden layer as one fused matrix product over all of them, then the bilinear blend,
    the views' mean and the output layer (the last two as one product: both are linear)."""

    def __init__(
        self,
        net: "UpscaleINR",
        heads: Tensor,
        views: tuple[int, ...],
        scale: float,
        ys: Tensor,
        xs: Tensor,
    ):
        h, w = heads.shape[:2]
        self.heads = heads  # [h, w, V·D] fp16: `stacked_heads`
        self.c, self.d = net.cfg.channels, net.cfg.hidden
        dev = self.heads.device
        first = net.body.offset.weight.detach()  # [D, 3]: (δy, δx, pixel size)
        # a view sees a point's offset (dy, dx) turned: its share of layer one is dy·U + dx·V
        unit = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]], device=dev)
        turned = [turn_coords(unit, k, h, w) for k in views]
        along_y = torch.cat([first[:, :2] @ (t[1] - t[0]) for t in turned])  # [V·D]
        along_x = torch.cat([first[:, :2] @ (t[2] - t[0]) for t in turned])
        size = (first[:, 2] / scale).repeat(len(views))
        self.cell_rows, self.row_w, dy = _linear_taps(ys, h)
        self.row_term = dy[:, :, None] * along_y  # [2, H, V·D]
        cell_cols, self.col_w, dx = _linear_taps(xs, w)
        # where a chunk's points read their cells from its band of cell rows
        self.at = torch.arange(2 * len(ys), device=dev)[:, None] * w + cell_cols.reshape(-1)
        self.col_term = (dx[:, :, None] * along_x + size).reshape(1, -1, len(views) * self.d)
        low = _BF16 and dev.type == "cpu"
        mid, last = net.body.mid, net.body.last
        self.dtype = torch.bfloat16 if low else torch.float32
        self.mid_w = mid.weight.detach().to(self.dtype)
        self.mid_b = mid.bias.detach().to(self.dtype)
        # the views' mean and the output layer in one [C, V·D] product
        self.last_w = (last.weight.detach() / len(views)).repeat(1, len(views)).to(self.dtype)
        self.last_b = last.bias.detach()

    def rows(self, r0: int, r1: int) -> Tensor:  # [C, r1 − r0, W]: output rows r0 to r1
        n_rows, n_cols, width = r1 - r0, self.col_w.shape[1], self.heads.shape[2]
        cells = self.cell_rows[:, r0:r1].reshape(-1)
        band = self.heads.index_select(0, cells).float()  # [2R, w, V·D]
        band += self.row_term[:, r0:r1].reshape(-1, 1, width)
        at = self.at[: 2 * n_rows].reshape(-1)
        pre = band.view(-1, width).index_select(0, at)  # [2R · 2W, V·D]
        pre.view(2 * n_rows, -1, width).add_(self.col_term).relu_()
        hidden = _dense(pre.view(-1, self.d).to(self.dtype), self.mid_w, self.mid_b, True)
        z = _dense(hidden.view(-1, width), self.last_w, None, False).float()  # [2R · 2W, C]
        z = (z.view(2, n_rows, 2, n_cols, self.c) * self.col_w[None, None, :, :, None]).sum(2)
        z = (z * self.row_w[:, r0:r1, None, None]).sum(0)  # [R, W, C]
        return z.permute(2, 0, 1) + self.last_b[:, None, None]


def _back_project(out: Tensor, image: Tensor, max_points: int) -> None:
    """One step of back-projection (Irani & Peleg 1991), in place on `out` (uint8 [C, H, W]):
    add the bicubic interpolation of image − area_average(out), so that the enlargement's
    averages over each of the image's pixels match that pixel, as pixel integration (the
    degradation the network was trained on) says they should. +0.075 dB at ×2 on kodim01
    (800-step fit); a second step gained nothing. Memory: one float copy of a channel."""
    c, h, w = image.shape
    big_h, big_w = out.shape[1:]
    residual = torch.stack(
        [image[i] - area_resize(out[i].float()[None] / 255, h, w)[0] for i in range(c)]
    )  # [C, h, w]
    ys = (torch.arange(big_h, dtype=torch.float32) + 0.5) * h / big_h - 0.5
    xs = (torch.arange(big_w, dtype=torch.float32) + 0.5) * w / big_w - 0.5
    fix = _Bicubic(residual, ys, xs)
    rows = max(1, max_points // big_w)
    for r0 in range(0, big_h, rows):
        r1 = min(big_h, r0 + rows)
        band = out[:, r0:r1].float().add_(fix.rows(r0, r1), alpha=255)
        out[:, r0:r1] = band.round_().clamp_(0, 255).to(torch.uint8)


def area_resize(x: Tensor, h: int, w: int) -> Tensor:
    """[C, H, W] area-averaged to [C, h, w] (h ≤ H, w ≤ W; exact pixel integration at any
    ratio, `area_down` along each axis)."""
    return torch.stack([area_down(area_down(ch, w).T.contiguous(), h).T for ch in x])


def area_down(x: Tensor, n: int) -> Tensor:
    """Exact area averages of the rows of `x` [R, N] into n ≤ N bins (bin i covers
    [i·N/n, (i+1)·N/n)), from cumulative sums: no N×n matrix, so memory stays O(R·N)."""
    big = x.shape[1]
    if big % n == 0:  # whole pixels a bin: plain means (a render at an integer scale)
        return x.reshape(x.shape[0], n, big // n).mean(2)
    cum = torch.cat([torch.zeros(x.shape[0], 1, dtype=torch.float64), x.double().cumsum(1)], 1)
    edges = torch.arange(n + 1, dtype=torch.float64) * (big / n)
    k = edges.floor().long().clamp(max=big - 1)
    at = cum[:, k] + (edges - k) * x.double()[:, k]  # the integral up to each edge
    return ((at[:, 1:] - at[:, :-1]) * (n / big)).float()


def bicubic_at(image: Tensor, coords: Tensor) -> Tensor:
    """Bicubic interpolation (a = −0.75, edges clamped) of `image` [C, h, w] at `coords`
    [N, 2] (y, x pixel units, centres at integers) → [N, C]. Exact at pixel centres."""
    _, h, w = image.shape
    gy = (coords[:, 0] + 0.5) / h * 2 - 1
    gx = (coords[:, 1] + 0.5) / w * 2 - 1
    grid = torch.stack([gx, gy], 1)[None, None]  # [1, 1, N, 2]
    out = F.grid_sample(
        image[None], grid, mode="bicubic", padding_mode="border", align_corners=False
    )
    return out[0, :, 0].T


# --- training on the image's own scales -----------------------------------------------------


@dataclass(frozen=True)
class UpscaleFit:
    steps: int = 100_000  # upper bound; the time budget normally ends the fit
    time_budget_s: float = 50.0
    # ×2 on kodim07 / kodim01: 2e-3 → +0.01 / +0.88 dB over Lanczos, 1e-3 → +0.52 / +0.92
    # (4e-3: 0.07–0.09 dB below 2e-3)
    lr: float = 1e-3
    crop: int = 32  # small copy's side, in its pixels
    batch: int = 4
    queries: int = 4096  # points per crop per step (1024: −0.1 dB at ×2, kodim01/02)
    scales: tuple[float, float] = (MIN_SCALE, MAX_SCALE)
    # share of steps at ×2, ×3 or ×4 exactly; measured on kodim05/kodim23 (30 s fits): ×2
    # +0.39/+1.04 dB over Lanczos with 0, +0.89/+1.36 with 0.5 — the integer scales people
    # ask for most, without losing the continuous range in between
    integer_share: float = 0.5
    # weight averaging: the render uses an exponential moving average of the weights with
    # this decay (0: the last weights); an experiment against overfitting (ablation row 26)
    ema: float = 0.0
    # early stopping: every this many steps (0: never) the fit enlarges the image's half-size
    # copy ×2 from its quarter-size copy, content one octave coarser than any training pair
    # saw, and keeps the weights that did best there (`_validation_pair`; 0.12 s a check
    # for a 512² input). ×2 on kodim19 / 07 / 02 / 14: −0.25 / +0.72 / +0.75 / +0.94 dB over
    # Lanczos without, +0.54 / +0.72 / +0.75 / +0.94 with (ablation row 27)
    validate_every: int = 200
    # the training pairs' small copies rounded to 8-bit values, as the image itself is (an
    # experiment, off: within the noise of one fit, ablation row 28)
    round_pairs: bool = False
    # the loss's points only from the crop's interior: this many small-copy pixels from
    # its border left out (0: the whole crop), where the encoder sees padding, not image
    margin: int = 0
    # the loss on each point's error: "l1" (|e|) or "l2" (e², what PSNR measures)
    loss: Literal["l1", "l2"] = "l1"
    seed: int = 0


def _pair(
    image: Tensor, scale: float, crop: int, gen: torch.Generator
) -> tuple[Tensor, Tensor, float]:
    """A random (small, large) crop pair: large [C, S, S] from the image, flipped/rotated;
    small = its area average [C, p, p] with S/p ≈ scale. Returns the exact ratio too."""
    _, h, w = image.shape
    big = min(h, w, max(2, round(crop * scale)))
    small = max(1, round(big / scale))
    y = int(torch.randint(0, h - big + 1, (1,), generator=gen))
    x = int(torch.randint(0, w - big + 1, (1,), generator=gen))
    hr = image[:, y : y + big, x : x + big]
    k = int(torch.randint(0, 8, (1,), generator=gen))
    hr = torch.rot90(hr, k % 4, (1, 2))
    if k >= 4:
        hr = hr.flip(2)
    m = area_matrix(big, small)
    lr = torch.einsum("ij,cjk,lk->cil", m, hr, m)
    return lr, hr, big / small


def area_matrix(big: int, small: int) -> Tensor:
    """[small, big]: exact area averaging of `big` pixels into `small` (pixel i of the small
    copy covers [i·r, (i+1)·r) of the large one, r = big/small; rows sum to 1)."""
    r = big / small
    lo = torch.arange(small, dtype=torch.float64)[:, None] * r
    j = torch.arange(big, dtype=torch.float64)[None]
    overlap = (torch.minimum(lo + r, j + 1) - torch.maximum(lo, j)).clamp_min(0)
    return (overlap / r).float()


def training_scale(
    gen: torch.Generator, integer_share: float, lo_scale: float, max_scale: float
) -> float:
    """A step's scale: uniform in [lo, max], or (integer_share of the steps) ×2, ×3 or ×4."""
    u = float(torch.rand((), generator=gen))
    scale = lo_scale + (max_scale - lo_scale) * u
    if float(torch.rand((), generator=gen)) < integer_share:
        choices = [k for k in (2.0, 3.0, 4.0) if lo_scale <= k <= max_scale] or [max_scale]
        scale = choices[int(torch.randint(0, len(choices), (1,), generator=gen))]
    return scale


def batch_loss(
    net: "UpscaleINR",
    image: Tensor,
    fit: UpscaleFit,
    gen: torch.Generator,
    scale: float,
    device: str,
) -> tuple[Tensor, float]:
    """A batch of crops reduced by `scale` and enlarged back at random points: the mean L1
    loss (measured equal to L2 in PSNR) and the batch's mean squared error."""
    pairs = [_pair(image, scale, fit.crop, gen) for _ in range(fit.batch)]
    lr_imgs = torch.stack([p[0] for p in pairs]).to(device)
    if fit.round_pairs:
        lr_imgs = lr_imgs.mul(255).round().div(255)
    heads = net.encoder(lr_imgs)
    loss, sq = torch.zeros((), device=device), 0.0
    for b, (_, hr, s) in enumerate(pairs):
        n = hr.shape[1]
        edge = min(round(fit.margin * s), (n - 1) // 2)  # the interior: [edge, n − edge)
        inner = n - 2 * edge
        idx = torch.randint(0, inner * inner, (min(fit.queries, inner * inner),), generator=gen)
        yy, xx = idx // inner + edge, idx % inner + edge
        coords = torch.stack([(yy + 0.5) / s - 0.5, (xx + 0.5) / s - 0.5], 1).float()
        target = hr[:, yy, xx].T.to(device)
        err = net.query(cells(heads[b]), lr_imgs[b], coords.to(device), s) - target
        loss = loss + (err.abs().mean() if fit.loss == "l1" else err.square().mean())
        sq += float(err.detach().pow(2).mean())
    return loss / len(pairs), sq / len(pairs)


def fit_upscaler(
    image: Tensor,
    cfg: UpscaleConfig,
    fit: UpscaleFit | None = None,
    progress: Callable[[Progress], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    device: str = "cpu",
    on_validate: Callable[[int, float, "UpscaleINR"], None] | None = None,
    init: "UpscaleINR | None" = None,
) -> tuple[UpscaleINR, dict]:
    """Train an upscaler on `image` ([C, H, W] in [0, 1]) from a random start, or from the
    weights of `init` (the prior: fine-tuning, which the ablation measures); returns it and
    how it went."""
    fit = fit or UpscaleFit()
    c, h, w = image.shape
    _check_size(h, w)
    net = start_network(cfg, init, device)
    gen = torch.Generator().manual_seed(fit.seed)
    opt = torch.optim.Adam(net.parameters(), lr=fit.lr)
    averaged = [p.detach().clone() for p in net.parameters()] if fit.ema > 0 else None
    start = time.perf_counter()
    ema, step, stopped = None, 0, "steps"
    lo_scale, hi_scale = fit.scales
    max_scale = min(hi_scale, min(h, w) / 3)
    checks = _Checkpoints(_validation_pair(image) if fit.validate_every else None, device)
    if init is not None:  # the start is a candidate too
        checks.check(0, net)
    for step in range(1, fit.steps + 1):
        elapsed = time.perf_counter() - start
        frac = min(1.0, max(elapsed / fit.time_budget_s, step / fit.steps))
        scale = training_scale(gen, fit.integer_share, lo_scale, max_scale)
        loss, mse = batch_loss(net, image, fit, gen, scale, device)
        adam_step(net, opt, loss, fit.lr * cosine_decay(frac), averaged, fit.ema)
        ema = mse if ema is None else 0.95 * ema + 0.05 * mse
        done = time.perf_counter() - start >= fit.time_budget_s or step == fit.steps
        if fit.validate_every and (step % fit.validate_every == 0 or done):
            score = checks.check(step, net)
            if on_validate is not None and score is not None:
                on_validate(step, score, net)
        cancelled = should_stop is not None and should_stop()
        if progress is not None and (step % 50 == 0 or done or cancelled):
            # the PSNR of the enlargements of its own copies it is learning (recent steps);
            # the preview: its current ×2 enlargement of the image's centre
            preview = lambda: _enlarge(net, _centre(image), device)  # noqa: E731
            progress(Progress(step, fit.steps, ema, mse_to_psnr(ema), elapsed, preview, "upscaler"))
        if cancelled:
            stopped = "cancelled"
            break
        if done:
            stopped = "time_budget" if step < fit.steps else "steps"
            break
    _keep(net, averaged, checks.best_state)
    net.cpu().eval()
    net.set_image(image.cpu())
    info = {"steps": step, "seconds": time.perf_counter() - start, "stopped": stopped}
    if checks.history:
        info["validation"] = checks.history
        info["held_out_psnr"] = checks.best
    return net, info


def start_network(cfg: UpscaleConfig, init: "UpscaleINR | None", device: str) -> "UpscaleINR":
    """A fresh network of `cfg` on `device`, with `init`'s weights if given, its encoder
    channels-last (oneDNN's convolutions run ~25 % faster so on CPU)."""
    net = UpscaleINR(cfg).to(device)
    if init is not None:
        net.load_state_dict(init.state_dict())
    net.encoder.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    return net


class _Checkpoints:
    """Early stopping's bookkeeping: the held-out pair (`_validation_pair`; None: no
    checks), every check's (step, score), and the best-scoring weights."""

    def __init__(self, pair: tuple[Tensor, Tensor] | None, device: str):
        self.pair, self.device = pair, device
        self.best = -math.inf
        self.best_state: dict | None = None
        self.history: list[tuple[int, float]] = []

    def check(self, step: int, net: "UpscaleINR") -> float | None:
        """Score `net` on the pair; keep its weights if it is the best so far."""
        if self.pair is None:
            return None
        score = _validate(net, *self.pair, self.device)
        self.history.append((step, score))
        if score > self.best:
            self.best = score
            self.best_state = {k: v.detach().clone() for k, v in net.state_dict().items()}
        return score


def _check_size(h: int, w: int) -> None:
    if min(h, w) < MIN_SIDE:
        raise ValueError(f"the upscale preset needs at least {MIN_SIDE}x{MIN_SIDE} pixels")
    if h * w > MAX_PIXELS:
        raise ValueError(f"the upscale preset takes images up to {MAX_PIXELS:,} pixels")


def cosine_decay(frac: float) -> float:
    """The learning rate's factor at `frac` of the fit (steps or time budget): a cosine from
    1 to 0.02."""
    return 0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * frac))


def adam_step(
    net: "UpscaleINR",
    opt: torch.optim.Optimizer,
    loss: Tensor,
    lr: float,
    averaged: list[Tensor] | None,
    ema: float,
) -> None:
    """One Adam step at `lr`, and the weights' moving average (`averaged`) updated."""
    for g in opt.param_groups:
        g["lr"] = lr
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    if averaged is not None:
        with torch.no_grad():
            torch._foreach_lerp_(averaged, list(net.parameters()), 1.0 - ema)


def _keep(net: "UpscaleINR", averaged: list[Tensor] | None, best: dict | None) -> None:
    """The weights a fit ends with: the averaged ones, or the best validated state."""
    if averaged is not None:
        with torch.no_grad():
            for p, a in zip(net.parameters(), averaged, strict=True):
                p.copy_(a)
    if best is not None:
        net.load_state_dict(best)


def _validation_pair(image: Tensor) -> tuple[Tensor, Tensor] | None:
    """(quarter-size, half-size) area-averaged copies of `image`, or None when the quarter
    would be too small to say anything."""
    _, h, w = image.shape
    h2, w2 = h // 4 * 2, w // 4 * 2
    if min(h2, w2) < 2 * MIN_SIDE:
        return None
    half = F.avg_pool2d(image[None, :, : 2 * h2, : 2 * w2], 2)[0]
    return F.avg_pool2d(half[None], 2)[0], half


# the training preview: the ×2 enlargement of the image's centre crop of this side (~0.06 s
# on 1 thread, every 2 s of a fit: ~3 % of its steps)
PREVIEW_CROP = 96


def _centre(image: Tensor, side: int = PREVIEW_CROP) -> Tensor:
    _, h, w = image.shape
    y, x = max(0, (h - side) // 2), max(0, (w - side) // 2)
    return image[:, y : y + side, x : x + side]


@torch.no_grad()
def _enlarge(net: "UpscaleINR", small: Tensor, device: str, s: int = 2) -> Tensor:
    """The network's ×s enlargement of `small` ([C, h, w]; one view, no back-projection):
    [C, s·h, s·w] in [0, 1], on the CPU."""
    small = small.to(device)
    heads = cells(net.encoder(small[None])[0])
    c, h, w = small.shape
    ys = (torch.arange(s * h, dtype=torch.float32) + 0.5) / s - 0.5
    xs = (torch.arange(s * w, dtype=torch.float32) + 0.5) / s - 0.5
    gy, gx = torch.meshgrid(ys, xs, indexing="ij")
    coords = torch.stack([gy.reshape(-1), gx.reshape(-1)], 1).to(device)
    out = torch.cat([net.query(heads, small, q, float(s)) for q in coords.split(16384)])
    return out.clamp(0, 1).cpu().T.reshape(c, s * h, s * w)


def _validate(net: "UpscaleINR", small: Tensor, big: Tensor, device: str) -> float:
    """PSNR of the network's ×2 enlargement of `small` against `big`."""
    return mse_to_psnr(float((_enlarge(net, small, device) - big).pow(2).mean()))


def _lanczos_u8(image: Tensor, out_h: int, out_w: int) -> Tensor:
    """Pillow's Lanczos enlargement of `image` ([C, h, w] in [0, 1], 8-bit values) as uint8."""
    from mhinr.model import pixels

    u8 = image.mul(255).round().clamp(0, 255).to(torch.uint8).numpy()
    _, h, w = image.shape
    return torch.from_numpy(np.ascontiguousarray(pixels.resize_u8(u8, out_h, out_w, (0, 0, w, h))))


def _lanczos_float(small: Tensor, size: tuple[int, ...]) -> Tensor:
    """Pillow's Lanczos of each channel of `small` [C, h, w] in float (mode F: no rounding)
    to `size` (rows, cols), clamped to [0, 1]."""
    from PIL import Image

    up = [
        np.asarray(Image.fromarray(ch).resize((size[1], size[0]), Image.Resampling.LANCZOS))
        for ch in small.float().numpy()
    ]
    return torch.from_numpy(np.stack(up)).clamp(0, 1)


def lanczos_held_out(image: Tensor) -> float | None:
    """PSNR of Lanczos's ×2 enlargement of the image's quarter-size copy against its
    half-size copy: the held-out check's baseline (`info["held_out_psnr"]` is the network's
    on the same pair); None where the image is too small to hold a pair out."""
    pair = _validation_pair(image)
    if pair is None:
        return None
    small, big = pair
    return mse_to_psnr(float((_lanczos_float(small, tuple(big.shape[1:])) - big).pow(2).mean()))


# the blend weights are kept on this grid (the grid keeps the choice from chasing noise in
# the held-out pairs' last decimals)
BLEND_STEPS = 32
# … and within [0, BLEND_MAX]. Past 1 a render would take the network's step away from
# Lanczos further than the network does; with 1.5 the held-out pairs chose 1.06 … 1.31 at ×3
# and ×4 on most photos, and the 29 photos lost 0.007 / 0.011 / 0.001 dB at ×2 / ×3 / ×4
# (`python -m benchmarks.upscale --out upscale_blendmax` with BLEND_MAX = 1.5, against
# `upscale_prior_d`; its renders in bfloat16, theirs in float32, which moved the network's
# own render by ≤ 0.001 dB on average): what the image's smaller copies say of the
# network's softness does not carry to the image's enlargement
BLEND_MAX = 1.0
BLEND_SCALES = (2, 3, 4)  # a weight for each; a render between them interpolates
MIN_CHECK_SIDE = MIN_SIDE  # the smallest side of a held-out pair's small copy
# the largest image area a held-out pair's large copy covers (a centred crop beyond it: the
# three checks of a 1920×1080 image then cost what a 900×660 one's do)
MAX_CHECK_PIXELS = 600_000


def _held_out_pairs(image: Tensor, octave: bool = True) -> dict[int, tuple[Tensor, Tensor]]:
    """For each scale s of BLEND_SCALES: (a large copy area-averaged by s, that large copy),
    both cropped to a multiple of s. The large copy is the image itself (its centre, at most
    MAX_CHECK_PIXELS), its small copy rounded to 8-bit values as the image is — a network
    that never saw the image (a shipped prior) is checked on the very content it will
    enlarge — or, with `octave`, the image's half-size copy: content one octave coarser than
    any pair a network trained on the image saw, as `_validation_pair`. Scales whose small
    copy would be too small are left out."""
    _, h, w = image.shape
    if octave:
        base = F.avg_pool2d(image[None, :, : h // 2 * 2, : w // 2 * 2], 2)[0]
    else:
        f = min(1.0, math.sqrt(MAX_CHECK_PIXELS / (h * w)))
        ch, cw = max(1, int(h * f)), max(1, int(w * f))
        base = image[:, (h - ch) // 2 : (h - ch) // 2 + ch, (w - cw) // 2 : (w - cw) // 2 + cw]
    pairs = {}
    for s in BLEND_SCALES:
        hh, ww = base.shape[1] // s * s, base.shape[2] // s * s
        if min(hh, ww) // s >= MIN_CHECK_SIDE:
            big = base[:, :hh, :ww]
            small = F.avg_pool2d(big[None], s)[0]
            pairs[s] = (small if octave else small.mul(255).round_().div_(255), big)
    return pairs


def _held_out_enlarge(net: "UpscaleINR", small: Tensor, s: int, device: str) -> Tensor:
    """The enlargement ×s of a held-out pair's small copy that the blend is chosen for: a
    render's (all views, back-projected, 8-bit) by a shipped prior, or by a network trained
    on the image its single view (`_enlarge`, float: the check as it was when those files
    were made). [C, s·h, s·w] in [0, 1]."""
    if net.prior is None:
        return _enlarge(net, small, device, s)
    probe = copy.copy(net)  # the same weights, its own image and caches
    probe.set_image(small)
    probe.blend = [1.0] * len(BLEND_SCALES)
    return probe.render((s * small.shape[1], s * small.shape[2])).float() / 255


def choose_blend(net: "UpscaleINR", image: Tensor, device: str = "cpu") -> dict | None:
    """For each scale s of BLEND_SCALES, the weight α_s of the network's enlargement against
    Lanczos's, L + α·(N − L), that enlarges the held-out pair best (`_held_out_pairs`: the
    image reduced by s and enlarged ×s, against the image, for a shipped prior; the image's
    half-size copy the same way for a network trained on the image; least squares, closed
    form, clipped to [0, BLEND_MAX], on a 1/BLEND_STEPS grid), with the ×2 pair's PSNRs of the
    network, Lanczos and the blend. None where the image is too small to hold a pair out
    (renders keep the whole network). A scale the network enlarges worse than Lanczos gets α
    near 0, and its renders are Lanczos's; a scale too small to check takes the next
    smaller's."""
    trained_on_image = net.prior is None
    seen = net.network_input(image) if trained_on_image else image  # grey as three channels
    pairs = _held_out_pairs(seen, octave=trained_on_image)
    if 2 not in pairs:
        return None
    weights: list[float] = []
    scores = {}
    for s in BLEND_SCALES:
        if s not in pairs:
            weights.append(weights[-1])
            continue
        small, big = pairs[s]
        mine = _held_out_enlarge(net, small, s, device)
        lanczos = _lanczos_float(small, tuple(big.shape[1:]))
        alpha = best_blend(mine, lanczos, big)
        weights.append(alpha)
        blended = lanczos + alpha * (mine - lanczos)
        for key, x in (("", mine), ("lanczos_", lanczos), ("blend_", blended)):
            scores[f"held_out_{key}psnr_x{s}"] = round(
                mse_to_psnr(float((x - big).pow(2).mean())), 3
            )
    return {
        "blend": weights,
        "held_out_psnr": scores["held_out_psnr_x2"],
        "held_out_lanczos_psnr": scores["held_out_lanczos_psnr_x2"],
        "held_out_blend_psnr": scores["held_out_blend_psnr_x2"],
        "held_out": scores,
    }


def best_blend(mine: Tensor, lanczos: Tensor, big: Tensor) -> float:
    """The weight α of L + α·(N − L) closest to `big` (least squares, closed form), clipped
    to [0, BLEND_MAX] and put on the 1/BLEND_STEPS grid."""
    d, r = (mine - lanczos).double(), (big - lanczos).double()
    alpha = float((d * r).sum() / (d * d).sum().clamp_min(1e-12))
    return round(min(BLEND_MAX, max(0.0, alpha)) * BLEND_STEPS) / BLEND_STEPS


def blend_at(weights: list[float], scale: float) -> float:
    """The blend weight of a render at `scale`: BLEND_SCALES' weights, linearly interpolated
    between them and held constant outside."""
    return float(np.interp(scale, BLEND_SCALES, weights))
