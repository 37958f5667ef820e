"""The sparse head layer two ways: gather + batched product vs scatter into a dense matrix
+ one matrix product. Times a training step (forward + backward) and a 512² render.

    python -m benchmarks.sparse_heads [--device cpu|cuda]
"""

import argparse

import torch

from benchmarks.common import machine, md_table, timed, write_result
from mhinr.model.network import build_network, cell_coordinates


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = ap.parse_args()
    dev = torch.device(args.device)
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    rows = []
    for heads, alpha in (((64, 64), 64), ((32, 32), 64), ((16, 16), 32), ((256, 256), 32)):
        net = build_network("multihead", (256, 256), 1, heads=heads, alpha=alpha).to(dev)
        n = 256 // heads[0]
        train_pts = cell_coordinates(n, n).to(dev)
        render_pts = cell_coordinates(2 * n, 2 * n).to(dev)

        def step(fwd, pts=train_pts):
            net.zero_grad()
            fwd(net.body(pts)).square().mean().backward()
            sync()

        def draw(fwd, pts=render_pts):
            with torch.no_grad():
                fwd(net.body(pts))
            sync()

        def dense(f):  # always the dense product (forward() switches to gather at 1 point)
            return net.heads(f, net.heads.dense_weight())

        gather = net.heads.forward_gather
        rows.append(
            [
                f"{heads[0]}x{heads[1]}, α={alpha}",
                1000 * timed(lambda: step(dense)),
                1000 * timed(lambda: step(gather)),
                1000 * timed(lambda: draw(dense)),
                1000 * timed(lambda: draw(gather)),
            ]
        )
    hdr = [
        "heads",
        "train step dense ms",
        "train step gather ms",
        "render 512² dense ms",
        "render 512² gather ms",
    ]
    text = f"# Sparse heads: dense product vs gather\n\n{machine()}, device {dev}\n\n" + md_table(
        hdr, rows
    )
    print(text)
    write_result(f"sparse_heads_{dev.type}.md", text)


if __name__ == "__main__":
    main()
