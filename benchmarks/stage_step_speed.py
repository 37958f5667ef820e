"""Probe: cheaper training steps for the trained stage (model/synthesis.py)?

Times the stage's training step as `synthesis.train` took it until 2026-12-07 (random 64²
crops, 8 a step, the edges replicated, Adam) against variants that compute the same kind of
step another way: Adam's fused kernel; windows cut 2 pixels wider and the stage run on them
without padding (its view inside the image, the loss on the 64² interior); the tensors in
channels-last layout (oneDNN's convolutions of a few channels run faster so); fewer, more or
larger crops a step. Today's `synthesis.train`: fused, channels last, 2 crops of 64². Random
images, so the steps a second are the only output.

    python -m benchmarks.stage_step_speed --threads 1
"""

import argparse
import time

import torch
import torch.nn.functional as F

from benchmarks.common import write_result
from mhinr.model.synthesis import Stage


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--steps", type=int, default=600)
    ap.add_argument("--out", default="stage_step_speed")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.set_flush_denormal(True)
    gen = torch.Generator().manual_seed(0)
    x_all = torch.rand(3, 512, 768, generator=gen)
    y_all = (x_all + 0.05 * torch.randn(3, 512, 768, generator=gen)).clamp(0, 1)

    def crops(side: int, batch: int) -> list[torch.Tensor]:
        ys = torch.randint(0, 512 - side, (batch,), generator=gen).tolist()
        xs = torch.randint(0, 768 - side, (batch,), generator=gen).tolist()
        return [
            torch.stack([t[:, i : i + side, j : j + side] for i, j in zip(ys, xs, strict=True)])
            for t in (x_all, y_all)
        ]

    def inside(net: Stage, x: torch.Tensor) -> torch.Tensor:  # no padding: 2 pixels less a side
        h = F.relu(net.mix(F.relu(net.inner(x - 0.5))))
        return x[:, :, 2:-2, 2:-2] + net.out(h)

    rows = []

    def timed(name: str, hidden=8, crop=64, batch=8, fused=False, valid=False, last=False) -> None:
        torch.manual_seed(0)
        net = Stage(3, hidden)
        if last:
            net = net.to(memory_format=torch.channels_last)
        opt = torch.optim.Adam(net.parameters(), lr=2e-3, fused=fused or None)
        for i in range(a.steps + 50):
            if i == 50:  # after the warm-up
                started = time.perf_counter()
            x, y = crops(crop + 4 if valid else crop, batch)
            if last:
                x = x.contiguous(memory_format=torch.channels_last)
            if valid:
                out, y = inside(net, x), y[:, :, 2:-2, 2:-2]
            else:
                out = net(x)
            loss = F.mse_loss(out, y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        per = (time.perf_counter() - started) / a.steps
        rows.append(f"| {name} | {1 / per:.0f} | {batch * crop * crop / per / 1e6:.2f} |")
        print(rows[-1], flush=True)

    for hidden in (8, 16):
        row = f"{hidden} hidden channels: "
        timed(row + "until 2026-12-07: 8 crops of 64², edges replicated, Adam", hidden)
        timed(row + "Adam fused", hidden, fused=True)
        timed(row + "windows without padding", hidden, valid=True)
        timed(row + "channels last", hidden, last=True)
        timed(row + "fused, channels last", hidden, fused=True, last=True)
        for crop, batch, what in (
            (64, 2, "2 crops a step (today)"),
            (64, 4, "4 crops a step"),
            (64, 16, "16 crops a step"),
        ):
            timed(row + "fused, channels last, " + what, hidden, crop, batch, True, False, True)
        timed(row + "fused, channels last, 4 crops of 96²", hidden, 96, 4, True, False, True)
    write_result(
        f"{a.out}.md",
        f"""# The trained stage's training step, timed

`python -m benchmarks.stage_step_speed --threads {a.threads} --steps {a.steps}`: torch
{torch.__version__}, {a.threads} thread(s), random 768×512 images, {a.steps} steps after 50 of
warm-up.

| step | steps a second | million pixels a second |
|---|---|---|
"""
        + "\n".join(rows)
        + "\n",
    )


if __name__ == "__main__":
    main()
