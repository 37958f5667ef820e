"""Probe: the coefficients descended through the trained stage, with the codec's own rate.

`CoefficientCoder.for_stage` (what `compact` and `max` did from 2026-12-06) takes one
Gauss–Newton step: the quantizer is handed t = d − Jᵀ(S(d) − o) in place of the image. This
probe takes many (`CoefficientCoder.descended`, where the objective is written out): the AC
coefficient values are moved by gradient descent through the held stage S on the squared
error after it plus m·λ times the context model's bits, then handed to the codec's quantizer
(deadzone, RDOQ, chroma rows) in place of the image's coefficients, and the stage is trained
on on the new decode, as in `stage_requant_probe`, whose baseline and `1`/`1s` columns (one
Gauss–Newton step, whole or shrunk) it shares.

Variants `gN[xM][@R][rK]`: N descent steps of size R (default 0.5) with rate weight M (× the
RDOQ's λ; default 0). With M = 0 and one step of size 1 it is nearly `1`. `rK`: K rounds, each
descending from the last round's quantized coefficients through its further-trained stage
and training that stage `--tune`/K steps on the new decode (the same stage steps in all: the
coefficients and the stage trained in turn, nearer a joint training). `d`: the constant terms
descend too (their plain gradient step, no rate), where otherwise they stay the image's.
`lF`: each round's further training starts at F times Adam's rate (synthesis.LR; 1: as the
first training).

    python -m benchmarks.stage_descent_probe --images kodim05,coffee --variants 1,1s,g10x0.25
"""

import argparse
import re
import time

import torch

from benchmarks.common import md_table, write_result
from benchmarks.stage_probe import rate_saved
from benchmarks.stage_requant_probe import staged_points, tuned

VARIANT = re.compile(r"g(\d+)(?:x([\d.]+))?(?:@([\d.]+))?(?:r(\d+))?(d)?(?:l([\d.]+))?$")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--images", default="kodim05,coffee")
    ap.add_argument("--bpps", default="0.25,1.0")
    ap.add_argument("--variants", default="1,1s,g10,g10x1")
    ap.add_argument("--steps", type=int, default=4000, help="the stage's first training")
    ap.add_argument("--tune", type=int, default=1000, help="its further training on each decode")
    ap.add_argument("--out", default="stage_descent_probe")
    a = ap.parse_args()
    torch.set_num_threads(2)
    t0 = time.perf_counter()
    bpps = [float(b) for b in a.bpps.split(",")]
    names = a.variants.split(",")
    rows = []
    for p in staged_points(a.images, bpps, a.steps, a.tune):
        base, stage, step, (b0, q0), row = p.base, p.stage, p.step, p.tuned, p.row
        for v in names:
            started = time.perf_counter()
            rounds, net, rate = 1, stage, 1.0
            if v in ("1", "1s"):
                other = base.for_stage(stage, step, v == "1s")
            else:
                m = VARIANT.match(v)
                assert m, f"unknown variant {v}"
                iters, mult, lr = int(m[1]), float(m[2] or 0), float(m[3] or 0.5)
                rounds, other = int(m[4] or 1), base
                rate = float(m[6] or 1)
                for _ in range(rounds - 1):  # all but the last round, each with its share
                    other = other.descended(net, step, iters, mult, lr, bool(m[5]))
                    tuned(other, net, step, a.tune // rounds, rate)
                    assert other.stage is not None
                    net = other.stage
                other = other.descended(net, step, iters, mult, lr, bool(m[5]))
            took = time.perf_counter() - started
            b1, q1 = tuned(other, net, step, a.tune - (a.tune // rounds) * (rounds - 1), rate)
            saved = rate_saved(q1 - q0, b1 - b0, b0, p.slope)
            row.append(f"{b1 - b0:+d} B, {q1 - q0:+.3f} dB: {saved:+.1f} % ({took:.0f} s)")
        print(row, flush=True)
        rows.append(row)
    write_result(
        f"{a.out}.md",
        f"""# The coefficients descended through the stage

`python -m benchmarks.stage_descent_probe --images {a.images} --bpps {a.bpps} --variants
{a.variants} --steps {a.steps} --tune {a.tune}`: {(time.perf_counter() - t0) / 60:.1f} min,
2 threads. Each row: the best untrained `compact` file for the bpp target, its stage trained
{a.steps} steps (in place of the restoration filter) and {a.tune} more on the decode; then,
for each variant, the AC coefficients quantized at the same step for its target (`1`: one
Gauss–Newton step, `1s` shrunk, as `for_stage`; `gN…`: N descent steps, see the module;
`…rK`: K rounds of descent, each followed by its share of the further training), the stage
trained {a.tune} more steps on that decode in all: bytes and dB against the first, the
rate saved at the file's own R–D slope (positive: fewer bytes) and the target's seconds.

{md_table(["image", "bpp", "cell", "file with its stage", *names], rows)}
""",
    )


if __name__ == "__main__":
    main()
