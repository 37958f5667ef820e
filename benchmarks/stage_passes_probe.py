"""Probe: the trained stage applied more than once (its own weights again on its output).

At low rates the stage's bytes weigh (kodim23 at 0.15 bpp: +0.30 dB for 371 bytes, 5 % of
the file, nets +0.9 %), so depth that costs no bytes is worth a look: the same network run
P times in a row, trained through all P passes (P × the multiplications a decoded pixel,
the reach 2·P pixels a side, the file's bytes unchanged). P = 1 is today's stage; every
column is trained by `synthesis.train` (Adam, the straight-through phase, quantized as a
file holds it) for the same steps, so the columns differ in the passes alone.

Priced as `benchmarks.stage_probe` prices: the gain over the `compact` file without a stage
(the restoration filter's bytes saved), the stage's bytes, the rate saved at the file's own
R–D slope (positive: fewer bytes at equal PSNR).

    python -m benchmarks.stage_passes_probe --images kodim23,coffee --passes 1,2 --steps 4000
"""

import argparse
import time

import torch

from benchmarks.common import md_table, write_result
from benchmarks.stage_probe import rate_saved, scored, untrained_files
from mhinr.model import synthesis
from mhinr.model.codec import stage_bytes
from mhinr.model.coefficients import stage_hidden


def with_passes(passes: int) -> type[synthesis.Stage]:
    """`synthesis.Stage` whose forward runs its network `passes` times in a row."""

    class Repeated(synthesis.Stage):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            for _ in range(passes):
                x = super().forward(x)
            return x

        @property
        def reach(self) -> int:
            return passes * (2 + self.dilation)

    return Repeated


def trained(passes: int, before, original, steps: int, hidden: int) -> synthesis.Stage:
    """`synthesis.train` with `Stage` swapped for the repeated one while it builds the net."""
    saved = synthesis.Stage
    synthesis.Stage = with_passes(passes)  # type: ignore[misc]
    try:
        net, _ = synthesis.train(before, original, 1e9, steps, hidden=hidden)
    finally:
        synthesis.Stage = saved  # type: ignore[misc]
    return net


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--images", default="kodim23,coffee,kodim05")
    ap.add_argument("--bpps", default="0.15,0.25,1.0")
    ap.add_argument("--passes", default="1,2")
    ap.add_argument("--steps", type=int, default=4000)
    ap.add_argument("--out", default="stage_passes_probe")
    a = ap.parse_args()
    torch.set_num_threads(2)
    t0 = time.perf_counter()
    bpps = [float(b) for b in a.bpps.split(",")]
    ps = [int(p) for p in a.passes.split(",")]
    rows = []
    for name in a.images.split(","):
        img, files = untrained_files(name, bpps)
        original = img.pixels.float()
        for o, slope, filt_bytes, _, before in files:
            hidden = stage_hidden(o.bytes)
            row = [name, f"{o.bpp:.3f}", f"{o.psnr:.2f}", str(hidden)]
            for p in ps:
                t1 = time.perf_counter()
                net = trained(p, before, original, a.steps, hidden)
                gain = scored(net, before, original) - o.psnr
                nbytes = len(stage_bytes(net))
                saved = rate_saved(gain, nbytes - filt_bytes, o.bytes, slope)
                row.append(
                    f"{gain:+.3f} dB, {nbytes} B: {saved:+.1f} % ({time.perf_counter() - t1:.0f} s)"
                )
            print(row, flush=True)
            rows.append(row)
    write_result(
        f"{a.out}.md",
        f"""# The stage run P times in a row (the same weights, the same bytes)

`python -m benchmarks.stage_passes_probe --images {a.images} --bpps {a.bpps} --passes
{a.passes} --steps {a.steps}`: {(time.perf_counter() - t0) / 60:.1f} min, 2 threads. Each
cell: gain over the `compact` file without a stage (the restoration filter's bytes saved),
the stage's bytes, the rate saved at the file's own R–D slope (positive: fewer bytes), the
training's seconds.

{md_table(["image", "bpp", "dB", "hidden", *[f"P = {p}" for p in ps]], rows)}
""",
    )


if __name__ == "__main__":
    main()
