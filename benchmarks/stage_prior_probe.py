"""Probe: would a shipped stage (a prior, trained once on other images' decodes) earn more
than the stage each file trains and carries today (model/synthesis.py)?

For each image and bpp target, the best untrained `compact` file and its decode without the
restoration filter (`benchmarks.stage_probe.untrained_files`). One generic stage a target is
trained on the training images' decodes together (each step's crops from one image picked at
random); then on each test image, priced against its `compact` file without a stage as
`benchmarks.stage_probe` prices (the file's own R–D slope; the filter's bytes saved):

* ``own``: the stage trained on the image alone, as `compact` does (its bytes in the file);
* ``prior``: the generic stage as it is (no bytes: a decoder would ship it);
* ``tuned``: the generic stage trained further on the image (`--tune` steps; its bytes in
  the file, as a whole stage: a file coding only its change would cost fewer);
* ``Δk`` (`--deltas`): that tuned stage coded as its change from the prior — each weight
  rounded to the prior's plus an integer times k of the prior's row unit, those integers
  range-coded (`entropy.encode_values`; the scales are the prior's: no bytes).

    python -m benchmarks.stage_prior_probe --train kodim02,kodim07 --test kodim05 --steps 2000

Steps, not seconds: a busy machine gives the same numbers, only later.
"""

import argparse
import copy
import time
from collections.abc import Callable
from typing import TypeVar

import numpy as np
import torch
import torch.nn.functional as F

from benchmarks.common import md_table, write_result
from benchmarks.stage_probe import priced, rate_saved, scored, untrained_files
from mhinr.model import synthesis
from mhinr.model.codec import entropy, stage_bytes
from mhinr.model.coefficients import stage_hidden

StageT = TypeVar("StageT", bound=synthesis.Stage)
TRAIN = "kodim02,kodim07,kodim08,kodim12,kodim17,kodim22"  # the context model's fitting set
TEST = "kodim05,kodim13,kodim23,kodim24,coffee,rocket"


def train_generic(
    pairs: list[tuple[torch.Tensor, torch.Tensor]], steps: int, hidden: int, seed: int = 0
) -> synthesis.Stage:
    """One stage trained on several (decode, original) pairs: each step BATCH crops of one
    pair picked at random, Adam with the stage's cosine schedule, then quantized."""
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)

    def batch() -> tuple[tuple[torch.Tensor, ...], torch.Tensor]:
        x_all, y_all = pairs[int(torch.randint(0, len(pairs), (1,), generator=gen))]
        x, y = synthesis.random_crops(gen, x_all, y_all)
        return (x,), y

    return fit(synthesis.Stage(pairs[0][0].shape[0], hidden), batch, steps)


def delta_coded(
    tuned: synthesis.Stage, prior: synthesis.Stage, k: int
) -> tuple[synthesis.Stage, int]:
    """`tuned` as a file coding its change from `prior` would hold it: each weight the
    prior's plus an integer times k of the prior's unit for its row (the bias's finer unit
    for the bias), and those integers' bytes (`entropy.encode_values`, a 4-byte header)."""
    net, ints = copy.deepcopy(tuned), []
    with torch.no_grad():
        for conv, base in zip(net.layers(), prior.layers(), strict=True):
            held, _, scale = synthesis._quantized_rows(base, synthesis.LEVELS, prior.bias_shift)
            unit = synthesis.row_units(scale, held.shape[1], prior.bias_shift) * k
            q = torch.round((synthesis._rows(conv).double() - held) / unit)
            synthesis._load_rows(conv, held + q * unit)
            ints.append(q.flatten().numpy().astype(np.int64))
    return net, 4 + len(entropy.encode_values(np.concatenate(ints)))


def fit(
    net: StageT,
    batch: Callable[[], tuple[tuple[torch.Tensor, ...], torch.Tensor]],
    steps: int,
) -> StageT:
    """`net` trained `steps` steps on `batch()`'s (inputs, target) by squared error (Adam,
    the stage's learning rate and cosine schedule, no straight-through phase), then
    quantized as a file holds it."""
    opt = torch.optim.Adam(net.parameters(), lr=synthesis.LR)
    for step in range(steps):
        for group in opt.param_groups:
            group["lr"] = synthesis.LR * 0.5 * (1 + np.cos(np.pi * step / steps))
        inputs, y = batch()
        loss = F.mse_loss(net(*inputs), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    net.eval()
    synthesis.quantize_(net)
    return net


def variant_rows(
    images: str,
    bpps: list[float],
    variants: list[str],
    extra: Callable[[torch.Tensor, object, str], torch.Tensor],
    make: Callable[[int, int, str], synthesis.Stage],
    steps: int,
    seed: int = 0,
) -> list[list[str]]:
    """The rows of a probe of stage variants that read one more per-pixel input: for each
    image's `compact` file without a stage at each bpp, `make(channels, hidden, variant)`
    trained `steps` steps (`fit`, on random crops of the decode, the image and
    `extra(decode, file, variant)` [K, H, W]) and priced (`stage_probe.priced`): [image,
    bpp, dB, hidden, one cell a variant]."""
    rows = []
    for name in images.split(","):
        img, files = untrained_files(name, bpps)
        original = img.pixels.float()
        for o, slope, filt_bytes, _, before in files:
            hidden = stage_hidden(o.bytes)
            row = [name, f"{o.bpp:.3f}", f"{o.psnr:.2f}", str(hidden)]
            for v in variants:
                more = extra(before, o, v)
                gen = torch.Generator().manual_seed(seed)
                torch.manual_seed(seed)

                def batch() -> tuple[tuple[torch.Tensor, ...], torch.Tensor]:
                    x, y, e = synthesis.random_crops(gen, before, original, more)  # noqa: B023
                    return (x, e), y

                net = fit(make(before.shape[0], hidden, v), batch, steps)
                row.append(priced(net, before, original, o, slope, filt_bytes, more))
            print(row, flush=True)
            rows.append(row)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--train", default=TRAIN)
    ap.add_argument("--test", default=TEST)
    ap.add_argument("--bpps", default="0.25,1.0")
    ap.add_argument("--steps", type=int, default=8000, help="the generic and the own stages'")
    ap.add_argument("--tune", type=int, default=2000, help="steps of `tuned` from the prior")
    ap.add_argument("--hidden", type=int, default=16, help="the generic stage's channels")
    ap.add_argument("--deltas", default="", help="k of the Δk columns, comma-separated")
    ap.add_argument("--out", default="stage_prior_probe")
    a = ap.parse_args()
    torch.set_num_threads(2)
    t0 = time.perf_counter()
    bpps = [float(b) for b in a.bpps.split(",")]
    deltas = [int(k) for k in a.deltas.split(",") if k]
    data = {}
    for name in a.train.split(",") + a.test.split(","):
        img, files = untrained_files(name, bpps)
        data[name] = (img.pixels.float(), files)
    rows = []
    for i in range(len(bpps)):
        pairs = [(data[n][1][i][4], data[n][0]) for n in a.train.split(",")]
        generic = train_generic(pairs, a.steps, a.hidden)
        for name in a.test.split(","):
            original, files = data[name]
            o, slope, filt_bytes, _, before = files[i]

            def price(q: float, nbytes: int, o=o, slope=slope, filt_bytes=filt_bytes):
                gain = q - o.psnr
                saved = rate_saved(gain, nbytes - filt_bytes, o.bytes, slope)
                return f"{gain:+.3f} dB, {nbytes} B: {saved:+.1f} %"

            own, _ = synthesis.train(before, original, 1e9, a.steps, stage_hidden(o.bytes))
            tuned, _ = synthesis.train(before, original, 1e9, a.tune, init=generic)
            row = [name, f"{o.bpp:.3f}", f"{o.psnr:.2f}", str(filt_bytes)]
            row.append(price(scored(own, before, original), len(stage_bytes(own))))
            row.append(price(scored(generic, before, original), 0))
            row.append(price(scored(tuned, before, original), len(stage_bytes(tuned))))
            for k in deltas:
                net, nbytes = delta_coded(tuned, generic, k)
                row.append(price(scored(net, before, original), nbytes))
            print(row, flush=True)
            rows.append(row)
    heads = [f"Δ{k}" for k in deltas]
    text = f"""# A shipped stage against the stage each file trains

`python -m benchmarks.stage_prior_probe --train {a.train} --test {a.test} --bpps {a.bpps}
--steps {a.steps} --tune {a.tune} --hidden {a.hidden} --deltas {a.deltas}`:
{(time.perf_counter() - t0) / 60:.1f} min, 2 threads. Each cell: the PSNR gain over the
`compact` file without a stage (which has the linear restoration filter, whose bytes any
stage saves), the stage's bytes, and the rate that saves at the file's own R–D slope
(positive: fewer bytes at equal PSNR). *own*: trained on the image alone ({a.steps} steps,
the shipped width for the file's size); *prior*: one {a.hidden}-channel stage a target
trained on the training images' decodes, shipped (0 bytes); *tuned*: the prior trained
{a.tune} more steps on the image (a whole stage's bytes); *Δk*: that tuned stage coded as
its change from the prior on k times the prior's grid (see the module).

{md_table(["image", "bpp", "dB", "filter B", "own", "prior", "tuned", *heads], rows)}
"""
    write_result(f"{a.out}.md", text)


if __name__ == "__main__":
    main()
