"""The trained stage of the coefficient codec: a small ReLU network learnt per image.

The cosine codec decodes each cell as a sum of its cosines; a linear restoration filter
(model/codec/postfilter.py) undoes part of the quantization error. What is left — blocks at cell
borders at low rates, ringing along edges — is not linear in the decoded pixels. This stage
is a shared per-pixel ReLU network over each pixel's 5×5 neighbourhood, trained on the image
itself (the decoded image in, the original out), in the manner of the overfitted codecs
Cool-chic and C3, whose synthesis is such a network. The encoder trains it in place of the
filter (model/coefficients.py `_staged`); a file may hold both (the filter first).

    x [C, H, W] (the decode, 8-bit values / 255)
    h = relu(conv3×3(x − ½))    [HIDDEN, H, W]
    h = relu(conv1×1(h))        [HIDDEN, H, W]
    y = x + conv3×3(h)          [C, H, W]        (edges replicated)

HIDDEN = 8 for RGB: 515 parameters, ~500 multiplications a decoded pixel; the encoder
trains 16 (1,155 parameters, 1,120 multiplications) for larger files
(coefficients.stage_hidden). Its weights are quantized (each output row of each layer:
one fp16 scale, then integers within ±LEVELS times it, the bias in sixteenths of it) and
range-coded (entropy.encode_values): ~350 bytes in a file (~800 with 16 channels). The
encoder keeps it only where it pays (model/coefficients.py: its PSNR gain must beat what
its bytes would buy in a finer quantizer step).

Measured on Kodak and outside it: benchmarks/results/codec_stage.md
(`python -m benchmarks.codec_stage`).
"""

import math
import time
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from mhinr.model.codec.format3 import STAGE_BIAS_SHIFT, StageRecord

HIDDEN = 8
LEVELS = 15  # integer weights within ±LEVELS (4 bits and a sign); 31 cost ~25 % more bytes
CROP = 64  # training crops (pixels a side) …
# … this many a step. Fewer crops, more steps at nearly the same pixels a second: in the
# encoder's 45 s, 4 instead of 8 gained +0.02 … +0.07 dB at 1 bpp (16 channels) and 2 instead of
# 4 another +0.04 on average at 1–1.5 bpp; at 0.15–0.25 bpp (8 channels) both were even
# (benchmarks/results/stage_probe.md, 2026-12-07). 8 until 2026-12-07
BATCH = 2
LR = 2e-3  # Adam, cosine-decayed over the budget (5e-3: +0.04 dB less on kodim23, kodim05)
# 0: the middle layer mixes the channels pixel by pixel (1×1); d > 0: it filters each
# channel over a 3×3 grid d pixels apart (depthwise), which widens what a pixel sees from
# 5×5 to (5 + 2d)² for about as many weights
DILATION = 0
# the last fraction of the steps trains through the quantized weights (straight-through:
# the forward pass uses what the file will hold, the update goes to the float weights)
QAT_FRACTION = 0.1
# a row's bias is stored in units of its scale / 2^BIAS_SHIFT, finer than its weights
# (format3.FLAG2_STAGE_BIAS says why)
BIAS_SHIFT = STAGE_BIAS_SHIFT


class Stage(torch.nn.Module):
    """The stage's network (the shapes in the module docstring)."""

    def __init__(self, channels: int, hidden: int = HIDDEN, dilation: int = DILATION):
        super().__init__()
        self.channels, self.hidden, self.dilation = channels, hidden, dilation
        # what a file stores (`quantize_`, `from_quantized`): (integers, fp16 scales)
        self.quantized: tuple[np.ndarray, np.ndarray] | None = None
        self.bias_shift = BIAS_SHIFT  # the bias's unit: the row's scale / 2^bias_shift
        self.inner = torch.nn.Conv2d(channels, hidden, 3)
        if dilation:  # each channel on its own, over a 3×3 grid `dilation` pixels apart
            self.mix = torch.nn.Conv2d(hidden, hidden, 3, dilation=dilation, groups=hidden)
        else:  # the channels mixed, pixel by pixel
            self.mix = torch.nn.Conv2d(hidden, hidden, 1)
        self.out = torch.nn.Conv2d(hidden, channels, 3)
        with torch.no_grad():
            # the first layer sees local structure, not brightness: zero-mean filters on a
            # centred input, small biases, so that each unit is on in some places and off in
            # others. From torch's default start (filters of any mean on x in [0, 1]) whole
            # units were on or off over the whole image, and 15 s of training gained +0.03 …
            # +0.31 dB on kodim23 at 0.2 bpp by the seed; from this start +0.36 … +0.51
            # (kodim05 at 0.3 bpp: +0.39 … +0.48)
            self.inner.weight -= self.inner.weight.mean(dim=(2, 3), keepdim=True)
            _bias(self.inner).uniform_(-0.01, 0.01)
            self.out.weight.zero_()  # starts as the identity: never worse than x
            _bias(self.out).zero_()

    def forward(self, x: Tensor) -> Tensor:  # [B, C, H, W] → [B, C, H, W]
        h = F.relu(self.inner(F.pad(x - 0.5, (1, 1, 1, 1), mode="replicate")))
        d = self.dilation
        h = F.relu(self.mix(F.pad(h, (d, d, d, d), mode="replicate") if d else h))
        return x + self.out(F.pad(h, (1, 1, 1, 1), mode="replicate"))

    @property
    def reach(self) -> int:
        """Pixels of context on each side that a decoded pixel depends on."""
        return 2 + self.dilation

    def layers(self) -> list[torch.nn.Conv2d]:
        return [self.inner, self.mix, self.out]

    def multiplications(self) -> int:
        """Multiplications a decoded pixel."""
        return sum(c.weight.numel() for c in self.layers())


# --- training ---------------------------------------------------------------------------------


def train(
    decoded: Tensor,
    original: Tensor,
    seconds: float,
    max_steps: int | None = None,
    hidden: int = HIDDEN,
    dilation: int = DILATION,
    seed: int = 0,
    device: str = "cpu",
    progress: Callable[[int, float, "Stage"], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    levels: int = LEVELS,
    init: Stage | None = None,
    lr: float | None = None,
) -> tuple[Stage, int]:
    """A stage trained to map `decoded` to `original` (both [C, H, W] in [0, 1]) on random
    CROP² crops, Adam with a cosine schedule over `seconds` (or `max_steps`, whichever ends
    first), then quantized (`quantize_`). (the stage, its steps). `progress(step, seconds,
    net)` is called about once a second. `init`: start from a copy of that stage (its
    `hidden` and `dilation`) instead of `Stage`'s start; `lr`: Adam's rate at the start of
    the schedule (LR, read at the call: the probes set it)."""
    lr = LR if lr is None else lr
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    if init is not None:
        net = Stage(init.channels, init.hidden, init.dilation).to(device)
        net.load_state_dict(init.state_dict())
    else:
        net = Stage(decoded.shape[0], hidden, dilation).to(device)
    x_all, y_all = decoded.float().to(device), original.float().to(device)
    # training runs with the channels innermost: oneDNN's convolutions of so few channels are
    # faster so, for the same arithmetic (benchmarks/stage_step_speed.py; torch's stubs lack
    # Module.to's memory_format)
    net = net.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    # fused: one kernel for the whole update (~5 % more steps a second on CPU)
    opt = torch.optim.Adam(net.parameters(), lr=lr, fused=True)
    torch.set_flush_denormal(True)  # tiny gradients: ~10 % more steps a second
    try:
        step = _steps(
            net, opt, x_all, y_all, gen, seconds, max_steps, progress, should_stop, levels, lr
        )
    finally:
        torch.set_flush_denormal(False)
    net = net.cpu().to(memory_format=torch.contiguous_format).eval()
    quantize_(net, levels)
    return net, step


def _steps(
    net, opt, x_all, y_all, gen, seconds, max_steps, progress, should_stop, levels, lr
) -> int:
    """The training loop of `train`; the steps taken."""
    start = last = time.perf_counter()
    step = 0
    while True:
        elapsed = time.perf_counter() - start
        frac = max(elapsed / seconds, step / max_steps if max_steps else 0.0)
        if frac >= 1 or (should_stop is not None and should_stop()):
            break
        for group in opt.param_groups:
            group["lr"] = lr * 0.5 * (1 + math.cos(math.pi * frac))
        x, y = random_crops(gen, x_all, y_all)
        x = x.contiguous(memory_format=torch.channels_last)  # as the network's weights
        quantized = frac >= 1 - QAT_FRACTION
        if quantized:  # straight-through: forward and gradients at the quantized weights
            saved = [p.detach().clone() for p in net.parameters()]
            with torch.no_grad():
                for conv in net.layers():
                    _load_rows(conv, _quantized_rows(conv, levels, net.bias_shift)[0])
        loss = F.mse_loss(net(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if quantized:
            with torch.no_grad():
                for p, keep in zip(net.parameters(), saved, strict=True):
                    p.copy_(keep)
        opt.step()
        step += 1
        if progress is not None and time.perf_counter() - last >= 1.0:
            last = time.perf_counter()
            progress(step, last - start, net)
    return step


def random_crops(gen: torch.Generator, *images: Tensor) -> list[Tensor]:
    """BATCH random CROP² windows (smaller where an image is), the same ones in each of
    `images` ([C, H, W], one size): [BATCH, C, crop, crop] each."""
    _, h, w = images[0].shape
    cy, cx = min(CROP, h), min(CROP, w)
    ys = torch.randint(0, h - cy + 1, (BATCH,), generator=gen).tolist()
    xs = torch.randint(0, w - cx + 1, (BATCH,), generator=gen).tolist()
    return [
        torch.stack([t[:, a : a + cy, b : b + cx] for a, b in zip(ys, xs, strict=True)])
        for t in images
    ]


# --- quantization and bytes ---------------------------------------------------------------------


def _bias(conv: torch.nn.Conv2d) -> Tensor:
    assert conv.bias is not None  # every convolution of the stage has one
    return conv.bias


def _rows(conv: torch.nn.Conv2d) -> Tensor:
    """[out, in·k·k + 1]: each output channel's weights, then its bias."""
    return torch.cat([conv.weight.detach().flatten(1), _bias(conv).detach()[:, None]], 1)


def _quantized_rows(
    conv: torch.nn.Conv2d, levels: int, bias_shift: int = 0
) -> tuple[Tensor, Tensor, Tensor]:
    """(the rows as the file holds them, their integers, their scales [out, 1]). The
    weights are integers times the row's scale; the bias (the row's last value) an integer
    times the scale / 2^bias_shift."""
    rows = _rows(conv).double()
    scale = rows[:, :-1].abs().amax(1, keepdim=True) / levels
    scale = torch.where(scale > 0, scale, torch.ones_like(scale))
    scale = scale.to(torch.float16).double().clamp_min(2.0**-24)
    unit = row_units(scale, rows.shape[1], bias_shift)
    q = torch.round(rows / unit)
    q[:, :-1] = q[:, :-1].clamp(-levels - 1, levels + 1)
    return q * unit, q, scale


def row_units(scale: Tensor, width: int, bias_shift: int) -> Tensor:
    """[out, width] the unit of each value of a layer's rows (weights, then the bias): the
    row's `scale` [out, 1], the bias's finer by 2^bias_shift."""
    unit = torch.ones(len(scale), width, dtype=scale.dtype, device=scale.device)
    unit[:, -1] = 2.0**-bias_shift
    return unit * scale


def quantize_(net: Stage, levels: int = LEVELS) -> tuple[np.ndarray, np.ndarray]:
    """Round the stage's parameters to what a file holds (in place): integers within
    ±`levels`, one fp16 scale per output row of each layer. (the integers, the scales)."""
    ints, scales = [], []
    with torch.no_grad():
        for conv in net.layers():
            values, q, scale = _quantized_rows(conv, levels, net.bias_shift)
            _load_rows(conv, values)
            ints.append(q.flatten().cpu().numpy().astype(np.int64))
            scales.append(scale.flatten().cpu().numpy().astype(np.float16))
    net.quantized = (np.concatenate(ints), np.concatenate(scales))
    return net.quantized


def _load_rows(conv: torch.nn.Conv2d, rows: Tensor) -> None:
    conv.weight.copy_(rows[:, :-1].reshape(conv.weight.shape).float())
    _bias(conv).copy_(rows[:, -1].float())


def from_quantized(
    channels: int,
    hidden: int,
    dilation: int,
    ints: np.ndarray,
    scales: np.ndarray,
    bias_shift: int = 0,
) -> Stage:
    """The stage a file describes (`quantize_`'s output; `bias_shift` 0 for files before
    flags2 bit 4)."""
    net = Stage(channels, hidden, dilation)
    net.bias_shift = bias_shift
    record = StageRecord(hidden, dilation, ints, scales, bias_shift)
    with torch.no_grad():
        for conv, values in zip(net.layers(), record.layers(channels), strict=True):
            _load_rows(conv, torch.from_numpy(values))
    net.quantized = (ints, scales)
    return net.eval()


# --- decoding -------------------------------------------------------------------------------------


@torch.no_grad()
def apply_u8(image: Tensor, net: Stage, band_rows: int = 128) -> Tensor:
    """The stage on a uint8 [C, H, W] image, returning uint8, in bands of rows (with a halo
    as wide as its reach) so that memory stays a few bands whatever the size."""
    _, h, _ = image.shape
    out = torch.empty_like(image)
    for r0 in range(0, h, band_rows):
        r1 = min(h, r0 + band_rows)
        a, b = max(0, r0 - net.reach), min(h, r1 + net.reach)
        band = net(image[None, :, a:b].float() / 255)[0, :, r0 - a : r1 - a]
        out[:, r0:r1] = band.clamp(0, 1).mul(255).round().to(torch.uint8)
    return out
