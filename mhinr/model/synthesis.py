"""The trained stage of the coefficient codec: a small ReLU network learnt per image.

The cosine codec decodes each cell as a sum of its cosines, then the linear restoration
filter (model/postfilter.py) undoes part of the quantization error. What is left — blocks at
cell borders at low rates, ringing along edges — is not linear in the decoded pixels. This
stage is a shared per-pixel ReLU network over each pixel's 3×3 neighbourhood, trained on the
image itself (the decoded image in, the original out), in the manner of the overfitted codecs
Cool-chic and C3, whose synthesis is such a network:

    x [C, H, W] (the decode, after the restoration filter, 8-bit values / 255)
    h = relu(conv3×3(x))        [HIDDEN, H, W]
    h = relu(conv1×1(h))        [HIDDEN, H, W]
    y = x + conv3×3(h)          [C, H, W]        (edges replicated)

HIDDEN = 8 for RGB: 515 parameters, ~500 multiplications a decoded pixel. Its weights are
quantized (each output row of each layer: one fp16 scale, then integers within ±LEVELS, the
bias in that row too) and range-coded (entropy.encode_values): ~300 bytes in a file. The
encoder keeps it only where it pays (model/coefficients.py: its PSNR gain must beat what its
bytes would buy in a finer quantizer step).

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

HIDDEN = 8
LEVELS = 15  # integer weights within ±LEVELS (4 bits and a sign); 31 cost ~25 % more bytes
MAX_HIDDEN = 64  # what a decoder accepts
CROP = 64  # training crops (pixels a side) …
BATCH = 8  # … this many a step
LR = 5e-3  # Adam, cosine-decayed over the budget
REACH = 2  # pixels of context on each side a decoded pixel depends on


class Stage(torch.nn.Module):
    """The stage's network (the shapes in the module docstring)."""

    def __init__(self, channels: int, hidden: int = HIDDEN):
        super().__init__()
        self.channels, self.hidden = channels, hidden
        # what a file stores (`quantize_`, `from_quantized`): (integers, fp16 scales)
        self.quantized: tuple[np.ndarray, np.ndarray] | None = None
        self.inner = torch.nn.Conv2d(channels, hidden, 3)
        self.mix = torch.nn.Conv2d(hidden, hidden, 1)
        self.out = torch.nn.Conv2d(hidden, channels, 3)
        torch.nn.init.zeros_(self.out.weight)  # starts as the identity: never worse than x
        torch.nn.init.zeros_(self.out.bias)

    def forward(self, x: Tensor) -> Tensor:  # [B, C, H, W] → [B, C, H, W]
        h = F.relu(self.inner(F.pad(x, (1, 1, 1, 1), mode="replicate")))
        h = F.relu(self.mix(h))
        return x + self.out(F.pad(h, (1, 1, 1, 1), mode="replicate"))

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
    seed: int = 0,
    device: str = "cpu",
    progress: Callable[[int, float, "Stage"], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> tuple[Stage, int]:
    """A stage trained to map `decoded` to `original` (both [C, H, W] in [0, 1]) on random
    CROP² crops, Adam with a cosine schedule over `seconds` (or `max_steps`, whichever ends
    first), then quantized (`quantize_`). (the stage, its steps). `progress(step, seconds,
    net)` is called about once a second."""
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    net = Stage(decoded.shape[0], hidden).to(device)
    x_all, y_all = decoded.float().to(device), original.float().to(device)
    opt = torch.optim.Adam(net.parameters(), lr=LR)
    torch.set_flush_denormal(True)  # tiny gradients: ~10 % more steps a second
    try:
        step = _steps(net, opt, x_all, y_all, gen, seconds, max_steps, progress, should_stop)
    finally:
        torch.set_flush_denormal(False)
    net = net.cpu().eval()
    quantize_(net)
    return net, step


def _steps(net, opt, x_all, y_all, gen, seconds, max_steps, progress, should_stop) -> int:
    """The training loop of `train`; the steps taken."""
    _, h, w = x_all.shape
    crop_y, crop_x = min(CROP, h), min(CROP, w)
    start = last = time.perf_counter()
    step = 0
    while True:
        elapsed = time.perf_counter() - start
        frac = max(elapsed / seconds, step / max_steps if max_steps else 0.0)
        if frac >= 1 or (should_stop is not None and should_stop()):
            break
        for group in opt.param_groups:
            group["lr"] = LR * 0.5 * (1 + math.cos(math.pi * frac))
        ys = torch.randint(0, h - crop_y + 1, (BATCH,), generator=gen).tolist()
        xs = torch.randint(0, w - crop_x + 1, (BATCH,), generator=gen).tolist()
        x = torch.stack(
            [x_all[:, a : a + crop_y, b : b + crop_x] for a, b in zip(ys, xs, strict=True)]
        )
        y = torch.stack(
            [y_all[:, a : a + crop_y, b : b + crop_x] for a, b in zip(ys, xs, strict=True)]
        )
        loss = F.mse_loss(net(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        step += 1
        if progress is not None and time.perf_counter() - last >= 1.0:
            last = time.perf_counter()
            progress(step, last - start, net)
    return step


# --- quantization and bytes ---------------------------------------------------------------------


def _rows(conv: torch.nn.Conv2d) -> Tensor:
    """[out, in·k·k + 1]: each output channel's weights, then its bias."""
    return torch.cat([conv.weight.detach().flatten(1), conv.bias.detach()[:, None]], 1)


def quantize_(net: Stage) -> tuple[np.ndarray, np.ndarray]:
    """Round the stage's parameters to what a file holds (in place); (the integers, the fp16
    scales), one scale per output row of each layer in order."""
    ints, scales = [], []
    with torch.no_grad():
        for conv in net.layers():
            rows = _rows(conv).double()
            scale = rows.abs().amax(1, keepdim=True) / LEVELS
            scale = torch.where(scale > 0, scale, torch.ones_like(scale))
            scale = scale.to(torch.float16).double().clamp_min(2.0**-24)
            q = torch.round(rows / scale).clamp(-LEVELS - 1, LEVELS + 1)
            _load_rows(conv, q * scale)
            ints.append(q.flatten().numpy().astype(np.int64))
            scales.append(scale.flatten().numpy().astype(np.float16))
    net.quantized = (np.concatenate(ints), np.concatenate(scales))
    return net.quantized


def _load_rows(conv: torch.nn.Conv2d, rows: Tensor) -> None:
    conv.weight.copy_(rows[:, :-1].reshape(conv.weight.shape).float())
    conv.bias.copy_(rows[:, -1].float())


def parameter_counts(channels: int, hidden: int) -> tuple[int, int]:
    """(integers, scales) a stage of this shape stores."""
    net = Stage(channels, hidden)
    return (
        sum(_rows(c).numel() for c in net.layers()),
        sum(c.out_channels for c in net.layers()),
    )


def from_quantized(channels: int, hidden: int, ints: np.ndarray, scales: np.ndarray) -> Stage:
    """The stage a file describes (`quantize_`'s output)."""
    net = Stage(channels, hidden)
    i = s = 0
    with torch.no_grad():
        for conv in net.layers():
            rows, cols = conv.out_channels, _rows(conv).shape[1]
            q = torch.from_numpy(ints[i : i + rows * cols].astype(np.float64)).reshape(rows, cols)
            scale = torch.from_numpy(scales[s : s + rows].astype(np.float64))[:, None]
            _load_rows(conv, q * scale)
            i, s = i + rows * cols, s + rows
    net.quantized = (ints, scales)
    return net.eval()


# --- decoding -------------------------------------------------------------------------------------


@torch.no_grad()
def apply_u8(image: Tensor, net: Stage, band_rows: int = 128) -> Tensor:
    """The stage on a uint8 [C, H, W] image, returning uint8, in bands of rows (with a halo
    of REACH rows) so that memory stays a few bands whatever the size."""
    _, h, _ = image.shape
    out = torch.empty_like(image)
    for r0 in range(0, h, band_rows):
        r1 = min(h, r0 + band_rows)
        a, b = max(0, r0 - REACH), min(h, r1 + REACH)
        band = net(image[None, :, a:b].float() / 255)[0, :, r0 - a : r1 - a]
        out[:, r0:r1] = band.clamp(0, 1).mul(255).round().to(torch.uint8)
    return out
