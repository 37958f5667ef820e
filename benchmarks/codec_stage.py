"""What the trained stage (model/synthesis.py) buys `compact`: BD-rate with it against the same
files without it, and both against AVIF (speed 6, Pillow's default) and WebP (method 6).

One `compact` sweep an image (bpp targets below, the stage trained for each target with the
preset's default budget, alone on the cores); every target's result records the file the
stage was tried against (`stage["without"]`), so one sweep gives both curves: "without" is
today's `compact` (the same as `steps=0`), "with" the file the preset returns (the stage kept
only where it pays).

    python -m benchmarks.codec_stage --images kodim05,kodim13,kodim23,kodim18,coffee,chelsea
    python -m benchmarks.codec_stage --reuse benchmarks/results/codec_stage.jsonl

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
from benchmarks.common import RESULTS, bd_rate, md_table, run_streamed, write_result
from mhinr.model.compress import Options, compress_sweep
from mhinr.model.images import to_uint8

BPPS = (0.15, 0.25, 0.5, 1.0, 1.5)
CODECS = ("WEBP", "AVIF")


def one_image(task: tuple[str, int]) -> dict:
    name, threads = task
    torch.set_num_threads(threads)
    img = load(name)
    u8 = to_uint8(img.pixels)
    h, w = img.size
    row: dict = {"image": name, "size": f"{w}x{h}"}
    for fmt in CODECS:
        row[fmt] = classic_curve(u8, fmt)[0]
    t = time.perf_counter()
    outs = compress_sweep(
        img.pixels,
        img.mode,
        Options(preset="compact"),
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


def _bd(a: list, b: list) -> float | None:
    return bd_rate([p[0] for p in a], [p[1] for p in a], [p[0] for p in b], [p[1] for p in b])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", default="kodim05,kodim13,kodim23,kodim18,coffee,chelsea")
    ap.add_argument("--out", default="codec_stage")
    ap.add_argument("--reuse", type=Path, help="JSON-lines rows of an earlier run to keep")
    args = ap.parse_args()
    names = args.images.split(",")
    t0 = time.perf_counter()
    rows, reused = run_streamed(
        one_image,
        [(n, 2) for n in names],
        lambda t: t[0],
        lambda r: r["image"],
        RESULTS / f"{args.out}.jsonl",
        1,
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
        gains.append(
            [
                f"{bpp}",
                f"{np.mean([s['with']['psnr'] - s['without']['psnr'] for s in st]):+.3f} dB",
                f"{np.mean([s['bytes'] for s in st]):.0f}",
                f"{sum(s['kept'] for s in st)}/{len(st)}",
                f"{np.mean([s['steps'] for s in st]):.0f}",
                f"{np.mean([s['seconds'] for s in st]):.1f}",
            ]
        )
    text = (
        "# The trained stage of `compact`\n\n"
        f"`python -m benchmarks.codec_stage{''.join(' ' + a for a in sys.argv[1:])}` — "
        f"{platform.machine()}, torch {torch.__version__}, 2 threads, alone on the cores; "
        f"{len(rows)} images ({reused} reused), {(time.perf_counter() - t0) / 60:.1f} min.\n\n"
        "BD-rate (PCHIP; negative: the first needs fewer bytes at equal PSNR). *without*: "
        "today's `compact` (the files the stage was tried against, = `steps=0`); *with*: "
        "what `compact` returns now (the stage kept where it pays). Targets "
        f"{', '.join(map(str, BPPS))} bpp; WebP method 6, AVIF speed 6 (Pillow's libavif, "
        "4:2:0).\n\n"
        + md_table(["image", "size", "with vs without"] + keys[1:], table)
        + "\n## By target (means over the images)\n\n"
        "The stage's PSNR gain at the same byte target (its bytes included), its bytes, on "
        "how many images it was kept, its training steps and seconds.\n\n"
        + md_table(["bpp", "PSNR gain", "stage bytes", "kept", "steps", "seconds"], gains)
        + f"\nEncode (the whole 5-target sweep): {np.mean([r['seconds'] for r in rows]):.0f} s "
        "an image on average.\n"
    )
    write_result(f"{args.out}.md", text)


def _pct(v: float | None) -> str:
    return "—" if v is None else f"{v:+.1f} %"


if __name__ == "__main__":
    main()
