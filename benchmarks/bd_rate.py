"""Bjøntegaard-delta rate of mhinr's codec presets against JPEG, WebP and AVIF, per image.

For each image: `compact` and `fast` at bpp targets (one fit per candidate architecture,
the quantizer step searched per target: compress_sweep), and the classic codecs' curves —
JPEG with optimized Huffman tables at qualities 5–95 in both 4:2:0 and 4:4:4 (the better
point at each size kept), WebP `method=6` and AVIF (libavif speed 6, Pillow's default) at
qualities 0–100 — then the BD-rate (PCHIP, over the PSNR range both curves cover; negative:
mhinr needs fewer bytes) of each preset against each codec. Encode and decode times are
per file (mhinr: the whole fit and coding for all targets; decode = read the file and
render at the native size). PSNR: RGB on 8-bit values; bpp: the file's bytes × 8 / pixels.

    python -m benchmarks.bd_rate                          # all 24 Kodak images
    python -m benchmarks.bd_rate --images kodim05,kodim23,coffee,astronaut
    python -m benchmarks.bd_rate --jobs 2 --reuse benchmarks/results/bd_rate.jsonl
    python -m benchmarks.bd_rate --timing                 # encode times alone on the cores
    python -m benchmarks.bd_rate --presets max,compact --images kodim13,kodim16 --out bd_rate_max

Each image's row is appended to `results/<out>.jsonl` as it finishes; `--reuse FILE` takes
the rows of an earlier run instead of coding those images again. `--jobs N` codes N images
at once, each process with 2/N torch threads (times are then under that shared load).
"""

import argparse
import io
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from benchmarks.common import KODAK, RESULTS, bd_rate, md_table, pareto, run_streamed, write_result
from mhinr.model.classic import encode_classic
from mhinr.model.codec import decode
from mhinr.model.compress import Options, compress, compress_sweep
from mhinr.model.images import load_image, to_uint8
from mhinr.model.metrics import psnr
from mhinr.model.render import render

BPPS = (0.15, 0.25, 0.5, 1.0, 1.5)
CODECS = ("JPEG", "WEBP", "AVIF")


def load(name: str):
    if name.startswith("kodim"):
        return load_image(KODAK / f"{name}.png")
    import skimage.data

    buf = io.BytesIO()
    Image.fromarray(getattr(skimage.data, name)()).save(buf, "PNG")
    return load_image(buf.getvalue())


def classic_curve(u8: torch.Tensor, fmt: str) -> tuple[list[tuple[float, float]], float, float]:
    """(Pareto (bpp, PSNR) points, mean encode s, mean decode s) of one classic codec."""
    pixels = u8.shape[1] * u8.shape[2]
    points, enc, dec = [], [], []
    settings = (
        [(q, s) for q in range(5, 96, 5) for s in ("4:2:0", "4:4:4")]
        if fmt == "JPEG"
        else [(q, None) for q in range(0, 101, 5)]
    )
    mode = "RGB" if u8.shape[0] == 3 else "L"
    for q, sub in settings:
        t = time.perf_counter()
        data = encode_classic(u8, fmt, q, sub)
        enc.append(time.perf_counter() - t)
        t = time.perf_counter()
        back = np.array(Image.open(io.BytesIO(data)).convert(mode))
        dec.append(time.perf_counter() - t)
        back_t = torch.from_numpy(back if back.ndim == 3 else back[..., None]).permute(2, 0, 1)
        points.append((len(data) * 8 / pixels, psnr(back_t, u8)))
    return pareto(points), float(np.mean(enc)), float(np.mean(dec))


def one_image(task: tuple[str, int, tuple[str, ...]]) -> dict:
    name, threads, presets = task
    torch.set_num_threads(threads)
    img = load(name)
    u8 = to_uint8(img.pixels)
    h, w = img.size
    row: dict = {"image": name, "size": f"{w}x{h}"}
    for fmt in CODECS:
        curve, enc_s, dec_s = classic_curve(u8, fmt)
        row[fmt] = {"curve": curve, "encode_s": enc_s, "decode_s": dec_s}
    for preset in presets:
        targets = [{"max_bytes": int(b * h * w / 8)} for b in BPPS]
        t = time.perf_counter()
        outs = compress_sweep(img.pixels, img.mode, Options(preset=preset), targets)
        encode_s = time.perf_counter() - t
        t = time.perf_counter()
        net, coded = decode(outs[len(outs) // 2].data)
        render(net, (coded.height, coded.width))
        decode_s = time.perf_counter() - t
        curve = [(o.bytes * 8 / (h * w), o.psnr) for o in outs]
        row[preset] = {"curve": curve, "encode_s": encode_s, "decode_s": decode_s}
        for fmt in CODECS:
            ref = row[fmt]["curve"]
            row[f"{preset}_vs_{fmt}"] = bd_rate(
                [c[0] for c in curve], [c[1] for c in curve], [r[0] for r in ref],
                [r[1] for r in ref],
            )  # fmt: skip
    print(json.dumps({k: v for k, v in row.items() if "_vs_" in k or k == "image"}), flush=True)
    return row


def timing(names: list[str]) -> str:
    """Seconds to code one file, alone on the machine's cores: `fast` at its default quality
    and at 0.5 bpp (the step searched) on every image, `compact` at 0.5 bpp on the first
    three; the time is the whole `compress` call (fit, coding, the decode that measures)."""
    settings = (("fast", None), ("fast", 0.5), ("compact", 0.5))
    rows, secs = [], [[] for _ in settings]
    for i, name in enumerate(names):
        img = load(name)
        row = [name]
        h, w = img.size
        for (preset, bpp), took in zip(settings, secs, strict=True):
            if preset == "compact" and i >= 3:
                row.append("")
                continue
            t = time.perf_counter()
            out = compress(img.pixels, img.mode, Options(preset=preset, bpp=bpp))
            took.append(time.perf_counter() - t)
            row.append(f"{took[-1]:.2f} s ({out.bytes * 8 / (h * w):.2f} bpp)")
        print(row, flush=True)
        rows.append(row)
    rows.append(["**mean**"] + [f"**{np.mean(v):.2f} s** (max {max(v):.2f})" for v in secs])
    return (
        "# Encode times, alone on the cores\n\n"
        f"`python -m benchmarks.bd_rate --timing` — {platform.machine()}, torch "
        f"{torch.__version__}, {torch.get_num_threads()} threads (run with nothing else on "
        "the cores).\n\n"
        + md_table(["image", "fast, default", "fast, 0.5 bpp", "compact, 0.5 bpp"], rows)
    )


def per_target(rows: list[dict], presets: tuple[str, ...]) -> str:
    """A table: for each preset and codec, the mean PSNR difference at each bpp target and
    the number of images where mhinr's point lies above the codec's curve."""
    table = []
    for preset in presets:
        for fmt in CODECS:
            diffs = [[] for _ in BPPS]
            for r in rows:
                curve = np.array(sorted(r[fmt]["curve"]))
                for i, (bpp, db) in enumerate(r[preset]["curve"][: len(BPPS)]):
                    if curve[0, 0] <= bpp <= curve[-1, 0]:
                        diffs[i].append(db - np.interp(bpp, curve[:, 0], curve[:, 1]))
            table.append(
                [f"{preset} vs {fmt}"]
                + [
                    f"{np.mean(d):+.2f} dB ({sum(x > 0 for x in d)}/{len(d)})" if d else "—"
                    for d in diffs
                ]
            )
    return md_table(["", *(f"{b} bpp" for b in BPPS)], table)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", help="comma-separated: kodimNN or scikit-image photo names")
    ap.add_argument("--out", default="bd_rate", help="results file name (without .md)")
    ap.add_argument("--jobs", type=int, default=1, help="images coded at once (2 cores)")
    ap.add_argument("--reuse", type=Path, help="JSON-lines rows of an earlier run to keep")
    ap.add_argument("--timing", action="store_true", help="encode times alone (fast, compact)")
    ap.add_argument("--presets", default="compact,fast", help="comma-separated codec presets")
    args = ap.parse_args()
    names = args.images.split(",") if args.images else [f"kodim{i:02d}" for i in range(1, 25)]
    if args.timing:
        torch.set_num_threads(2)
        write_result(f"{args.out}_timing.md", timing(names))
        return
    t0 = time.perf_counter()
    threads = max(1, 2 // args.jobs)
    presets = tuple(args.presets.split(","))
    rows, reused = run_streamed(
        one_image,
        [(n, threads, presets) for n in names],
        lambda t: t[0],
        lambda r: r["image"],
        RESULTS / f"{args.out}.jsonl",
        args.jobs,
        args.reuse,
    )
    table, sums = [], {}
    for r in rows:
        cells = [r["image"], r["size"]]
        for preset in presets:
            for fmt in CODECS:
                v = r[f"{preset}_vs_{fmt}"]
                cells.append("—" if v is None else f"{v:+.1f} %")
                if v is not None:
                    sums.setdefault((preset, fmt), []).append(v)
        table.append(cells)
    mean = ["**mean**", ""]
    for preset in presets:
        for fmt in CODECS:
            vs = sums.get((preset, fmt), [])
            mean.append(f"**{np.mean(vs):+.1f} %** ({len(vs)})" if vs else "—")
    table.append(mean)
    times = []
    for key in (*presets, *CODECS):
        times.append(
            [
                key,
                np.mean([r[key]["encode_s"] for r in rows]),
                np.mean([r[key]["decode_s"] for r in rows]) * 1000,
            ]  # fmt: skip
        )
    header = ["image", "size"] + [f"{p} vs {f}" for p in presets for f in CODECS]
    points = per_target(rows, presets)
    text = (
        "# BD-rate of mhinr against JPEG, WebP and AVIF\n\n"
        f"`python -m benchmarks.bd_rate{''.join(' ' + a for a in sys.argv[1:])}` — "
        f"{platform.machine()}, torch {torch.__version__}, {args.jobs} process(es) of "
        f"{threads} thread(s); {len(rows)} images ({reused} rows reused from an earlier run), "
        f"{(time.perf_counter() - t0) / 60:.1f} min.\n\n"
        "Bjøntegaard-delta rate (PCHIP, over the PSNR range both curves cover): the bytes "
        "mhinr needs at equal PSNR against the codec, in percent; **negative means mhinr "
        f"needs fewer**. mhinr's curve: bpp targets {', '.join(map(str, BPPS))}. JPEG "
        "optimized (the better of 4:2:0 and 4:4:4 at each size), WebP method 6, AVIF speed 6."
        "\n\n" + md_table(header, table) + "\n## Per target\n\n"
        "mhinr's PSNR at each bpp target minus the codec's at the same bpp (its curve "
        "interpolated; points outside the codec's range left out), mean dB over the images, "
        "and on how many mhinr is above.\n\n" + points + "\n## Times (mean per file)\n\n"
        "mhinr encode: the fit and the coding of all its targets; decode: read the file and "
        "render at the native size. Classic codecs: one encode / decode.\n\n"
        + md_table(["codec", "encode s", "decode ms"], times)
    )
    write_result(f"{args.out}.md", text)
    write_result(f"{args.out}.json", json.dumps(rows, indent=1, default=str))


if __name__ == "__main__":
    main()
