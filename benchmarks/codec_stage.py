"""What the trained stage (model/synthesis.py) buys `compact`: BD-rate with it against the same
files without it, and both against AVIF (speed 6, Pillow's default) and WebP (method 6).

One `compact` sweep an image (bpp targets below, the stage trained for each target with the
preset's default budget, alone on the cores); every target's result records the file the
stage was tried against (`stage["without"]`), so one sweep gives both curves: "without" is
today's `compact` (the same as `steps=0`), "with" the file the preset returns (the stage kept
only where it pays).

    python -m benchmarks.codec_stage --images kodim05,kodim13,kodim23,kodim18,coffee,chelsea
    python -m benchmarks.codec_stage --reuse benchmarks/results/codec_stage.jsonl
    python -m benchmarks.codec_stage --speed    # the stage's steps a second on 1 and 2 threads
    python -m benchmarks.codec_stage --preset max --images rocket,kodim24   # `max` instead
    python -m benchmarks.codec_stage --jobs 2 --images …   # two images at once, a core each

Rows stream to results/<out>.jsonl as they finish; the table is results/<out>.md.
"""

import argparse
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

from benchmarks.bd_rate import classic_curve, load
from benchmarks.codec_baselines import avif_curve
from benchmarks.common import RESULTS, bd_rate, md_table, run_streamed, write_result
from mhinr.model.compress import Options, compress_sweep
from mhinr.model.images import to_uint8

BPPS = (0.15, 0.25, 0.5, 1.0, 1.5)
CODECS = ("WEBP", "AVIF")


def one_image(task: tuple[str, int, str]) -> dict:
    name, threads, preset = task
    torch.set_num_threads(threads)
    img = load(name)
    u8 = to_uint8(img.pixels)
    h, w = img.size
    row: dict = {"image": name, "size": f"{w}x{h}"}
    row["WEBP"] = classic_curve(u8, "WEBP")[0]
    row["AVIF"] = avif_curve(u8, 6, range(0, 101, 5))  # speed 6, qualities 0–100 by 5
    t = time.perf_counter()
    outs = compress_sweep(
        img.pixels,
        img.mode,
        Options(preset=preset),
        [{"max_bytes": int(b * h * w / 8)} for b in BPPS],
    )
    row["seconds"] = time.perf_counter() - t
    bits = h * w / 8
    row["with"] = [(o.bytes / bits, o.psnr) for o in outs]
    row["without"] = [
        (o.stage["without"]["bytes"] / bits, o.stage["without"]["psnr"]) for o in outs
    ]
    row["stages"] = [o.stage for o in outs]
    row["with_vs_without"] = _bd(row["with"], row["without"])
    for fmt in CODECS:
        row[f"with_vs_{fmt}"] = _bd(row["with"], row[fmt])
        row[f"without_vs_{fmt}"] = _bd(row["without"], row[fmt])
    print({k: v for k, v in row.items() if "_vs_" in k or k == "image"}, flush=True)
    return row


def speed(name: str = "kodim23", seconds: float = 15.0) -> str:
    """The stage's training steps a second on 1 and 2 torch threads (kodim23's 0.5-bpp
    decode), and one training step's profile (torch.profiler, the top operators)."""
    from mhinr.model import synthesis

    img = load(name)
    h, w = img.size
    out = compress_sweep(
        img.pixels, img.mode, Options(preset="fast"), [{"max_bytes": int(h * w / 16)}]
    )[0]
    from mhinr.model.render import render

    decoded = render(out.net, (h, w)).float() / 255
    rows = []
    for threads in (1, 2):
        torch.set_num_threads(threads)
        _, steps = synthesis.train(decoded, img.pixels, seconds)
        rows.append([threads, steps, f"{steps / seconds:.0f}"])
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        synthesis.train(decoded, img.pixels, 600, max_steps=50)
    table = prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=8)
    return (
        "# The trained stage's training speed\n\n"
        f"`python -m benchmarks.codec_stage --speed` — {platform.machine()}, torch "
        f"{torch.__version__}, alone on the cores; {seconds:.0f} s of training on {name}'s "
        f"0.5-bpp decode (crops of {synthesis.CROP}², {synthesis.BATCH} a step).\n\n"
        + md_table(["torch threads", "steps", "steps a second"], rows)
        + "\n50 steps profiled on 2 threads (torch.profiler):\n\n```\n"
        + table
        + "\n```\n"
    )


def _bd(a: list, b: list) -> float | None:
    return bd_rate([p[0] for p in a], [p[1] for p in a], [p[0] for p in b], [p[1] for p in b])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", default="kodim05,kodim13,kodim23,kodim18,coffee,chelsea")
    ap.add_argument("--out", default="codec_stage")
    ap.add_argument("--reuse", type=Path, help="JSON-lines rows of an earlier run to keep")
    ap.add_argument("--speed", action="store_true", help="steps a second on 1 and 2 threads")
    ap.add_argument("--preset", choices=("compact", "max"), default="compact")
    ap.add_argument(
        "--jobs",
        type=int,
        default=1,
        help="images coded at once, each on 2 // jobs torch threads (2: one a core; the stage "
        "trains ~90 %% as many steps a second on one thread as on two)",
    )
    ap.add_argument(
        "--stage-on",
        choices=("deblocked", "cells"),
        default="deblocked",
        help="what the stage reads: the deblocked cells (the default) or the cells as coded",
    )
    ap.add_argument(
        "--requant",
        choices=("on", "once", "twice", "thrice", "off", "gauss-newton"),
        default="on",
        help="the coefficients quantized again for the trained stage (coefficients."
        "STAGE_REQUANT and STAGE_REQUANT_AGAIN, the default: three rounds since 2026-12-07), "
        "in one round only (once), two (twice: the default until then) or three (thrice), "
        "or not (off: the stage trained on its whole budget), or with the one Gauss–Newton "
        "step's kinds of 2026-12-06 (whole and shrunk) in place of the descent",
    )
    budget = ap.add_mutually_exclusive_group()  # a time or a step count, not both
    budget.add_argument(
        "--stage-seconds",
        type=float,
        help="the stage's training budget a target (presets.STAGE_SECONDS; its step cap, "
        "STAGE_STEPS, unchanged)",
    )
    budget.add_argument(
        "--stage-steps",
        type=int,
        help="the stage's steps a target, whatever the time (presets.STAGE_STEPS, the budget "
        "lifted to an hour): arms that the machine's speed does not set",
    )
    ap.add_argument(
        "--prior",
        choices=("on", "off"),
        default="off",
        help="the stage's first training starts from the shipped stage prior's features "
        "(coefficients.STAGE_FROM_PRIOR; not the default) or from Stage's own start",
    )
    args = ap.parse_args()
    from mhinr.model import coefficients

    coefficients.STAGE_FROM_PRIOR = args.prior == "on"

    if args.stage_seconds:
        coefficients.STAGE_SECONDS[args.preset] = args.stage_seconds
    if args.stage_steps:
        coefficients.STAGE_STEPS[args.preset] = args.stage_steps
        coefficients.STAGE_SECONDS[args.preset] = 3600.0

    coefficients.STAGE_ON_DEBLOCKED = args.stage_on == "deblocked"
    if args.requant == "off":
        coefficients.STAGE_REQUANT = ()
    if args.requant == "gauss-newton":
        coefficients.STAGE_REQUANT = ("whole", "shrunk")
    if args.requant == "once":
        coefficients.STAGE_REQUANT_AGAIN = 0
    if args.requant in ("twice", "thrice"):
        coefficients.STAGE_REQUANT_AGAIN = 1 if args.requant == "twice" else 2
    if args.speed:
        write_result(f"{args.out}_speed.md", speed())
        return
    names = args.images.split(",")
    t0 = time.perf_counter()
    rows, reused = run_streamed(
        one_image,
        [(n, max(1, 2 // args.jobs), args.preset) for n in names],
        lambda t: t[0],
        lambda r: r["image"],
        RESULTS / f"{args.out}.jsonl",
        args.jobs,
        args.reuse,
    )
    keys = ["with_vs_without"] + [f"{s}_vs_{f}" for f in CODECS for s in ("without", "with")]
    table = []
    for r in rows:
        table.append([r["image"], r["size"]] + [_pct(r[k]) for k in keys])
    table.append(
        ["**mean**", ""]
        + [f"**{_pct(np.mean([r[k] for r in rows if r[k] is not None]))}**" for k in keys]
    )
    gains = []
    for i, bpp in enumerate(BPPS):
        st = [r["stages"][i] for r in rows]
        returned = [r["with"][i][1] - r["without"][i][1] for r in rows]
        gains.append(
            [
                f"{bpp}",
                f"{np.mean([s['with']['psnr'] - s['without']['psnr'] for s in st]):+.3f} dB",
                f"{np.mean(returned):+.3f} dB",
                f"{np.mean([s['bytes'] for s in st]):.0f}",
                f"{sum(s['kept'] for s in st)}/{len(st)}",
                f"{sum(bool(s.get('requantized')) for s in st)} "
                f"({sum('×' in (s.get('requantized') or '') for s in st)} twice)",
                f"{np.mean([s['steps'] for s in st]):.0f}",
                f"{np.mean([s['seconds'] for s in st]):.1f}",
            ]
        )
    text = (
        f"# The trained stage of `{args.preset}`\n\n"
        f"`python -m benchmarks.codec_stage{''.join(' ' + a for a in sys.argv[1:])}` — "
        f"{platform.machine()}, torch {torch.__version__}, "
        f"{args.jobs} image{'s' if args.jobs > 1 else ''} at once on {max(1, 2 // args.jobs)} "
        "thread(s) each, alone on the 2 cores; "
        f"{len(rows)} images ({reused} reused), {(time.perf_counter() - t0) / 60:.1f} min.\n\n"
        "BD-rate (PCHIP; negative: the first needs fewer bytes at equal PSNR). *without*: "
        f"`{args.preset}` without its stage (the files the stage was tried against, = "
        f"`steps=0`); *with*: what `{args.preset}` returns now (the stage kept where it "
        "pays). Targets "
        f"{', '.join(map(str, BPPS))} bpp; WebP method 6; AVIF libavif speed 6 (Pillow's "
        "default), the better of 4:2:0 and 4:4:4 chroma at each size (speed 0 was not run: "
        "it takes ~10 s an encode here).\n\n"
        + md_table(["image", "size", "with vs without"] + keys[1:], table)
        + "\n## By target (means over the images)\n\n"
        "At each byte target: the PSNR of the file with the stage minus the file without it "
        "(the stage's bytes included, whether kept or not), the same for the file the preset "
        "returns (the better of the two), the stage's bytes, on how many images it was kept, "
        "on how many the file's coefficients were quantized again for it (`--requant`; in "
        "brackets: in two rounds), "
        "its training steps and seconds.\n\n"
        + md_table(
            [
                "bpp",
                "stage file",
                "returned file",
                "stage bytes",
                "kept",
                "requantized",
                "steps",
                "seconds",
            ],
            gains,
        )
        + f"\nEncode (the whole 5-target sweep): {np.mean([r['seconds'] for r in rows]):.0f} s "
        "an image on average.\n"
    )
    write_result(f"{args.out}.md", text)


def _pct(v: float | None) -> str:
    return "—" if v is None else f"{v:+.1f} %"


if __name__ == "__main__":
    main()
