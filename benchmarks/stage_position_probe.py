"""Probe: a stage that knows where in its cell each pixel is.

The cosine codec's error is not the same everywhere in a cell: blocks and ringing sit at
the cell's borders, the deblocking filter treats only the pixels next to them, and the
stage (5×5 pixels of context) cannot tell a border from the cell's middle where the decode
looks alike. Here the stage's first layer also reads four features of the pixel's place in
its cell (u = (2·p + 1)/n − 1 in x and in y, p the pixel's offset in its cell of n pixels,
and |u| of each: the decoder knows the cells, so they cost no bytes), in two ways:

- `posbias`: a 1×1 layer of the four features (and a bias) added to the first layer's
  output, before its ReLU: where a unit turns on may depend on the place in the cell;
- `posin`: the four features as four more input channels of the first 3×3 layer.

`base` is today's stage, trained by the same loop (no straight-through phase: every column
is quantized after training in the same way), so that the columns differ in the features
alone. Priced as `benchmarks.stage_probe` prices: the gain over the `compact` file without
a stage, the stage's bytes beyond the restoration filter's, the rate saved at the file's
own slope (positive: fewer bytes at equal PSNR).

    python -m benchmarks.stage_position_probe --images kodim05,kodim23,coffee --steps 4000
"""

import argparse
import time

import torch
import torch.nn.functional as F

from benchmarks.common import md_table, write_result
from benchmarks.stage_prior_probe import variant_rows
from mhinr.model import synthesis

FEATURES = 4


def positions(h: int, w: int, cell: tuple[int, int]) -> torch.Tensor:
    """[FEATURES, H, W]: u_x, u_y, |u_x|, |u_y| of each pixel's place in its cell."""

    def u(n: int, size: int) -> torch.Tensor:
        p = torch.arange(size) % n
        return (2 * p + 1) / n - 1

    uy = u(cell[0], h)[:, None].expand(h, w)
    ux = u(cell[1], w)[None, :].expand(h, w)
    return torch.stack([ux, uy, ux.abs(), uy.abs()]).float()


class PositionStage(synthesis.Stage):
    """`synthesis.Stage` that also reads `positions` (`kind`: "posbias" or "posin")."""

    def __init__(self, channels: int, hidden: int, kind: str):
        super().__init__(channels, hidden)
        self.kind = kind
        if kind == "posin":
            inner = torch.nn.Conv2d(channels + FEATURES, hidden, 3)
            with torch.no_grad():
                inner.weight.zero_()
                inner.weight[:, :channels] = self.inner.weight
                inner.bias.copy_(self.inner.bias)
            self.inner = inner
        else:
            self.pos = torch.nn.Conv2d(FEATURES, hidden, 1)
            with torch.no_grad():
                self.pos.weight.mul_(0.1)
                self.pos.bias.zero_()

    def forward(self, x, where=None):  # type: ignore[override]
        assert where is not None
        xin = x - 0.5
        if self.kind == "posin":
            xin = torch.cat([xin, where], 1)
        pre = self.inner(F.pad(xin, (1, 1, 1, 1), mode="replicate"))
        if self.kind == "posbias":
            pre = pre + self.pos(where)
        h = F.relu(self.mix(F.relu(pre)))
        return x + self.out(F.pad(h, (1, 1, 1, 1), mode="replicate"))

    def layers(self):
        return [self.inner, self.mix, self.out] + ([self.pos] if self.kind == "posbias" else [])


class Plain(synthesis.Stage):
    def forward(self, x, where=None):  # type: ignore[override]
        return super().forward(x)


def make(channels: int, hidden: int, kind: str) -> synthesis.Stage:
    return Plain(channels, hidden) if kind == "base" else PositionStage(channels, hidden, kind)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--images", default="kodim05,kodim23,coffee")
    ap.add_argument("--bpps", default="0.15,0.5,1.0")
    ap.add_argument("--variants", default="base,posbias,posin")
    ap.add_argument("--steps", type=int, default=4000)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default="stage_position_probe")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    t0 = time.perf_counter()
    bpps = [float(b) for b in a.bpps.split(",")]
    kinds = a.variants.split(",")
    rows = variant_rows(
        a.images,
        bpps,
        kinds,
        lambda before, o, _: positions(*before.shape[1:], o.net.cfg.cell),
        make,
        a.steps,
    )
    write_result(
        f"{a.out}.md",
        f"""# A stage that knows the pixel's place in its cell

`python -m benchmarks.stage_position_probe --images {a.images} --bpps {a.bpps} --variants
{a.variants} --steps {a.steps}`: {(time.perf_counter() - t0) / 60:.1f} min, {a.threads}
thread(s). Each cell: gain over the `compact` file without a stage (the restoration
filter's bytes saved), the stage's bytes, the rate saved at the file's own R–D slope
(positive: fewer bytes at equal PSNR).

{md_table(["image", "bpp", "dB", "hidden", *kinds], rows)}
""",
    )


if __name__ == "__main__":
    main()
