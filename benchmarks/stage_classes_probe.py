"""Probe: a classified stage — the stage's output layer split into K heads, each cell of the
decode using the head of its class — in the manner of VVC's adaptive loop filter, whose
filters are chosen per block by the decoded block's activity (and of the paper's heads).

A cell's class is its decoded luma variance against the image's quantiles of it (K − 1
thresholds, which a file would carry in a few bytes: not priced). The trunk (the first two
layers) is shared. K = 1 is today's stage, trained by the same loop, so that the columns
differ in the heads alone (no straight-through phase here: every column is quantized after
training the same way). Priced as `benchmarks.stage_probe` prices: the gain over the
`compact` file without a stage, the extra bytes, the rate saved at the file's own slope.

    python -m benchmarks.stage_classes_probe --images kodim05,coffee --heads 1,2,4

Measured 2026-12-06 (results/stage_classes_probe.md): no gain; heads cost their bytes.
"""

import argparse
import time

import torch
import torch.nn.functional as F

from benchmarks.common import md_table, write_result
from benchmarks.stage_prior_probe import variant_rows
from mhinr.model import synthesis


class ClassStage(synthesis.Stage):
    """`synthesis.Stage` with K output layers; `forward(x, cls)` adds, at each pixel, the
    output of the head its class names (cls [B, 1, H, W], integers in [0, K))."""

    def __init__(self, channels: int, hidden: int, k: int):
        super().__init__(channels, hidden)
        self.heads = torch.nn.ModuleList([self.out])
        for _ in range(k - 1):
            head = torch.nn.Conv2d(hidden, channels, 3)
            with torch.no_grad():
                head.weight.zero_()
                head.bias.zero_()
            self.heads.append(head)

    def forward(self, x, cls=None):  # type: ignore[override]
        h = F.relu(self.inner(F.pad(x - 0.5, (1, 1, 1, 1), mode="replicate")))
        h = F.pad(F.relu(self.mix(h)), (1, 1, 1, 1), mode="replicate")
        if cls is None or len(self.heads) == 1:
            return x + self.heads[0](h)
        return x + sum((cls == i) * head(h) for i, head in enumerate(self.heads))

    def layers(self):
        return [self.inner, self.mix, *self.heads]


def classes(decoded: torch.Tensor, cell: int, k: int) -> torch.Tensor:
    """[1, H, W] class of each pixel: its cell's decoded luma variance's bin among the
    image's K quantiles of it."""
    y = decoded.mean(0, keepdim=True)[None]
    h, w = y.shape[2:]
    ph, pw = -h % cell, -w % cell
    yp = F.pad(y, (0, pw, 0, ph), mode="replicate")
    var = F.avg_pool2d(yp * yp, cell) - F.avg_pool2d(yp, cell) ** 2
    edges = torch.quantile(var.flatten(), torch.linspace(0, 1, k + 1)[1:-1])
    cls = torch.bucketize(var, edges)
    return cls.repeat_interleave(cell, 2).repeat_interleave(cell, 3)[0, :, :h, :w]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--images", default="kodim05,kodim24,coffee")
    ap.add_argument("--bpps", default="0.25,1.0")
    ap.add_argument("--heads", default="1,2,4")
    ap.add_argument("--steps", type=int, default=8000)
    ap.add_argument("--out", default="stage_classes_probe")
    a = ap.parse_args()
    torch.set_num_threads(2)
    t0 = time.perf_counter()
    bpps = [float(b) for b in a.bpps.split(",")]
    ks = [int(k) for k in a.heads.split(",")]
    rows = variant_rows(
        a.images,
        bpps,
        [str(k) for k in ks],
        lambda before, o, k: classes(before, o.net.cfg.cell[0], int(k)),
        lambda c, hidden, k: ClassStage(c, hidden, int(k)),
        a.steps,
    )
    write_result(
        f"{a.out}.md",
        f"""# A classified stage: K output heads chosen per cell by decoded activity

`python -m benchmarks.stage_classes_probe --images {a.images} --bpps {a.bpps} --heads
{a.heads} --steps {a.steps}`: {(time.perf_counter() - t0) / 60:.1f} min, 2 threads. Each
cell: gain over the `compact` file without a stage (the restoration filter's bytes saved),
the stage's bytes, the rate saved at the file's own R–D slope (positive: fewer bytes).

{md_table(["image", "bpp", "dB", "hidden", *[f"K = {k}" for k in ks]], rows)}
""",
    )


if __name__ == "__main__":
    main()
