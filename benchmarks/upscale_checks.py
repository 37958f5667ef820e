"""Do the upscaler's held-out checks see what the true image sees? One fit per image and
scale, then each render choice (back-projection on or off, the blend toward Lanczos) scored
twice: on the true image (what a user gets) and on the held-out pairs the fit can see (the
image's half-size copy reduced by the scale and enlarged back, `upscale._held_out_pairs`).

    python -m benchmarks.upscale_checks --tasks kodim07:3,kodim19:2,chelsea:4 [--steps N]

Input: the photo cropped to a multiple of the scale and box-averaged by it (as
`benchmarks.upscale`); PSNR on 8-bit RGB; two processes, one torch thread each. Writes
benchmarks/results/upscale_checks.md (and .jsonl, one row a task).
"""

import argparse
import json
from pathlib import Path

import torch

from benchmarks.common import RESULTS, md_table, run_streamed, write_result
from benchmarks.upscale import box_down, load, pil_resize
from mhinr.model.codec.upscaler import WEIGHT_LEVELS, quantize_weights_
from mhinr.model.images import to_uint8
from mhinr.model.metrics import psnr
from mhinr.model.upscale import (
    INTERNAL_STEPS,
    UpscaleConfig,
    UpscaleFit,
    UpscaleINR,
    _back_project,
    _enlarge,
    _held_out_pairs,
    _lanczos_float,
    area_resize,
    best_blend,
    choose_blend,
    fit_upscaler,
)
from mhinr.model.upscale_prior import load_prior


def upscaler_for(image: torch.Tensor, steps: int) -> UpscaleINR:
    """The shipped prior (steps 0: what the preset enlarges with), or an internal-learning
    fit of `steps` steps from a random start (the preset until 2026-12-06) with its weights
    as a file stored them; either with the blend its held-out check chooses."""
    if steps:
        fit = UpscaleFit(steps=steps, time_budget_s=3600)
        net, _ = fit_upscaler(image, UpscaleConfig(channels=image.shape[0]), fit)
        quantize_weights_(net, WEIGHT_LEVELS)
    else:
        net = load_prior()
        net.set_image(image)
    held = choose_blend(net, image)
    if held is not None:
        net.blend = held["blend"]
    return net


def one(task: tuple[str, int, int]) -> dict:
    name, s, steps = task
    torch.set_num_threads(1)
    true, small = box_down(load(name), s)
    size = tuple(true.shape[1:])
    net = upscaler_for(small.float() / 255, steps)
    row: dict = {"image": name, "scale": s, "steps": steps, "blend": net.blend}
    from PIL import Image

    row["true_lanczos"] = psnr(pil_resize(small, size, Image.Resampling.LANCZOS), true)
    chosen = net.blend
    net.blend = [1.0, 1.0, 1.0]
    row["true_network"] = psnr(net.render(size, back_project=False), true)
    row["true_network_bp"] = psnr(net.render(size), true)
    net.blend = chosen
    row["true_blend"] = psnr(net.render(size, back_project=False), true)
    row["true_blend_bp"] = psnr(net.render(size), true)
    image = small.float() / 255
    # the blend as rendered: its weight fitted on the back-projected held-out enlargement
    alphas = {}
    for k, (low, big) in _held_out_pairs(image).items():
        mine_bp = to_uint8(_enlarge(net, low, "cpu", k))
        _back_project(mine_bp, low, 4096)
        alphas[k] = best_blend(mine_bp.float() / 255, _lanczos_float(low, big.shape[1:]), big)
    row["blend_bp"] = [alphas.get(k, alphas[2]) for k in (2, 3, 4)]
    net.blend = row["blend_bp"]
    row["true_blend_bp_fitted"] = psnr(net.render(size), true)
    # a check nearer the image's own scale: its 1/√2 copy reduced by s and enlarged back
    c, h, w = image.shape
    h2, w2 = round(h / 2**0.5) // s * s, round(w / 2**0.5) // s * s
    mid = area_resize(image, h2, w2)
    low = area_resize(mid, h2 // s, w2 // s)
    mine_bp = to_uint8(_enlarge(net, low, "cpu", s))
    _back_project(mine_bp, low, 4096)
    lanczos = _lanczos_float(low, (h2, w2))
    row["near_lanczos"] = psnr(to_uint8(lanczos), to_uint8(mid))
    row["near_network_bp"] = psnr(mine_bp, to_uint8(mid))
    a = best_blend(mine_bp.float() / 255, lanczos, mid)
    row["near_alpha_bp"] = a
    net.blend = [a, a, a]
    row["true_blend_near"] = psnr(net.render(size), true)
    net.blend = chosen
    for k, (low, big) in _held_out_pairs(image).items():
        mine = _enlarge(net, low, "cpu", k)
        mine_bp = to_uint8(mine)
        _back_project(mine_bp, low, 4096)
        lanczos = _lanczos_float(low, tuple(big.shape[1:]))
        big_u8 = to_uint8(big)
        row[f"held_x{k}_lanczos"] = psnr(to_uint8(lanczos), big_u8)
        row[f"held_x{k}_network"] = psnr(to_uint8(mine), big_u8)
        row[f"held_x{k}_network_bp"] = psnr(mine_bp, big_u8)
        for tag, x in (("", mine), ("_bp", mine_bp.float() / 255)):
            a = best_blend(x, lanczos, big)
            row[f"held_x{k}_alpha{tag}"] = a
            row[f"held_x{k}_blend{tag}"] = psnr(to_uint8(lanczos + a * (x - lanczos)), big_u8)
    print(json.dumps({k: round(v, 3) if isinstance(v, float) else v for k, v in row.items()}),
          flush=True)  # fmt: skip
    return row


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tasks", default="kodim07:3,kodim19:2,chelsea:4,kodim05:4")
    ap.add_argument("--steps", type=int, default=INTERNAL_STEPS, help="0: the shipped prior")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--out", default="upscale_checks")
    ap.add_argument("--reuse", type=Path, help="JSON-lines rows of an earlier run to keep")
    args = ap.parse_args()
    tasks = [(t.split(":")[0], int(t.split(":")[1]), args.steps) for t in args.tasks.split(",")]
    stream = RESULTS / f"{args.out}.jsonl"
    key = lambda r: f"{r['image']}:{r['scale']}"  # noqa: E731
    rows, _ = run_streamed(one, tasks, lambda t: f"{t[0]}:{t[1]}", key, stream, args.jobs,
                           args.reuse)  # fmt: skip
    table = []
    for r in rows:
        s, lz = r["scale"], r["true_lanczos"]
        held = r.get(f"held_x{s}_lanczos")
        gap = lambda k: "" if held is None else f"{r[k] - held:+.2f}"  # noqa: E731
        table.append([
            f"{r['image']} ×{s}", r["steps"],
            f"{r['true_network'] - lz:+.2f}", f"{r['true_network_bp'] - lz:+.2f}",
            f"{r['true_blend_bp'] - lz:+.2f}", f"{r['true_blend_bp_fitted'] - lz:+.2f}",
            f"{r['true_blend_near'] - lz:+.2f}",
            gap(f"held_x{s}_network"), gap(f"held_x{s}_network_bp"),
            f"{r['near_network_bp'] - r['near_lanczos']:+.2f}",
        ])  # fmt: skip
    text = (
        "# The upscaler's held-out checks against the true image\n\n"
        f"`python -m benchmarks.upscale_checks --tasks {args.tasks} --steps {args.steps}` "
        "(two processes, one torch thread each). dB over Lanczos. *true*: renders against "
        "the true image — the network alone, with back-projection, then blended toward "
        "Lanczos with the weights the fit chose (what a user gets), with weights fitted "
        "on the back-projected held-out enlargement instead, and with one weight from the "
        "1/√2 check. *held-out*: the image's half-size copy reduced by the same scale and "
        "enlarged back (one view: the blend's check); *1/√2*: the image's 1/√2 copy "
        "reduced by the scale and enlarged back (back-projected).\n\n"
        + md_table(
            [
                "task",
                "steps",
                "true: network",
                "+ back-projection",
                "+ blend (the render)",
                "blend fitted after back-projection",
                "blend from the 1/√2 check",
                "held-out: network",
                "held-out: + back-projection",
                "1/√2: + back-projection",
            ],
            table,
        )  # fmt: skip
    )
    write_result(f"{args.out}.md", text)
    print(text)


if __name__ == "__main__":
    main()
