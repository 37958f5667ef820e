"""Rate–distortion on Kodak: mhinr's presets and a bpp sweep against JPEG and WebP.

For each image: `fast` and `compact` at 0.15, 0.3, 0.5 and 1.0 bpp targets (one fit per
candidate architecture, the quantizer step searched per target), each preset at its default
quality, the `paper` preset (quick mode only, 300 instead of 2000 Adam steps: its files
are ~4 MB whatever the steps), and JPEG / WebP (Pillow) at the largest quality whose file
is no larger than mhinr's. bpp is the real file's size over 768·512 pixels; PSNR is RGB on
8-bit values.

    python -m benchmarks.rate_distortion [--quick]
"""

import argparse
import time
from pathlib import Path

import numpy as np

from benchmarks.common import KODAK, machine, md_table, save_figure, write_result
from mhinr.model.classic import at_bytes, measure
from mhinr.model.codec import decode
from mhinr.model.compress import Options, compress, compress_sweep
from mhinr.model.images import load_image, to_uint8
from mhinr.model.render import render

BPPS = [0.15, 0.3, 0.5, 1.0]


def render_seconds(data: bytes) -> float:
    net, coded = decode(data)
    t = time.perf_counter()
    render(net, (coded.height, coded.width))
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="3 images, short fits")
    ap.add_argument("--images", type=int, default=None)
    args = ap.parse_args()
    t_all = time.perf_counter()
    files = sorted(KODAK.glob("kodim*.png"))
    files = files[: args.images or (3 if args.quick else len(files))]
    sweep: dict[tuple[str, float], list[dict]] = {}
    per_image, presets = [], {}
    for path in files:
        img = load_image(path)
        u8 = to_uint8(img.pixels)
        h, w = img.size
        for preset in ("fast", "compact"):
            steps = (20 if preset == "fast" else 100) if args.quick else None
            targets = [{"max_bytes": int(b * h * w / 8), "bpp": b} for b in BPPS]
            if preset == "fast":  # one architecture: its no-target result is the preset's default
                targets.append({})
            t = time.perf_counter()
            outs = compress_sweep(
                img.pixels, img.mode, Options(preset=preset, steps=steps), targets
            )
            for b, out in zip(BPPS, outs, strict=False):
                jp, wp = at_bytes(u8, "JPEG", out.bytes), at_bytes(u8, "WEBP", out.bytes)
                sweep.setdefault((preset, b), []).append(
                    {
                        "bpp": out.bpp,
                        "psnr": out.psnr,
                        "ssim": out.ssim,
                        "met": out.met,
                        "jpeg": jp.psnr if jp else float("nan"),
                        "jpeg_n": jp is not None,
                        "webp": wp.psnr if wp else float("nan"),
                        "webp_n": wp is not None,
                        "seconds": out.seconds,
                    }
                )
            print(
                path.name,
                preset,
                f"{time.perf_counter() - t:.0f}s",
                [(round(o.bpp, 3), round(o.psnr, 2)) for o in outs],
                flush=True,
            )
            if preset == "fast":
                add_preset_row(per_image, presets, path.stem, "fast", outs[-1], u8)
        for preset in ["compact"] + (["paper"] if args.quick else []):
            opt = Options(preset=preset, steps=300 if preset == "paper" else None)
            add_preset_row(
                per_image, presets, path.stem, preset, compress(img.pixels, img.mode, opt), u8
            )

        report(args, files, files.index(path) + 1, sweep, per_image, presets, t_all, final=False)
    report(args, files, len(files), sweep, per_image, presets, t_all, final=True)


def report(args, files, done: int, sweep, per_image, presets, t_all, final: bool) -> None:
    sweep_rows = []
    for (preset, b), rs in sorted(sweep.items()):
        mean = {
            k: float(np.mean([r[k] for r in rs])) for k in ("bpp", "psnr", "ssim", "jpeg", "webp")
        }

        def codec(key: str) -> str:
            n = sum(r[f"{key}_n"] for r in rs)
            return f"{mean[key]:.2f}" if n == len(rs) else f"can't on {len(rs) - n}/{len(rs)}"

        jpeg, webp = codec("jpeg"), codec("webp")
        everywhere = sum(r["jpeg_n"] for r in rs) == len(rs)
        delta = f"{mean['psnr'] - mean['jpeg']:+.2f}" if everywhere else "JPEG can't"
        sweep_rows.append(
            [
                preset,
                b,
                mean["bpp"],
                mean["psnr"],
                mean["ssim"],
                jpeg,
                webp,
                delta,
                f"{sum(bool(r['met']) for r in rs)}/{len(rs)}",
            ]
        )
    preset_rows = []
    for preset, rows in presets.items():
        m = np.nanmean(np.array([r[2:] for r in rows], dtype=float), axis=0)
        preset_rows.append([preset, int(m[0]), m[1], m[2], m[3], m[4], m[5], m[6], m[7]])
    anchors = jpeg_webp_curves(files[:done]) if final else []
    plot = plot_rd(sweep, anchors, args.quick)
    elapsed = f"{time.perf_counter() - t_all:.0f}"
    text = f"""# Rate–distortion on Kodak

`python -m benchmarks.rate_distortion{" --quick" if args.quick else ""}` — {machine()};
{done} of {len(files)} images{"" if final else " (partial: the run goes on)"}, {elapsed} s.

## mhinr at bpp targets against JPEG and WebP of the same bytes (means over the images)

"JPEG"/"WebP": PSNR of that codec at the largest quality whose file is no larger than
mhinr's, per image, then averaged ("can't": even JPEG quality 1 is larger than mhinr's
file). "Δ vs JPEG" > 0 means mhinr wins. "met": images whose file met the bpp target.

{
        md_table(
            [
                "preset",
                "target bpp",
                "bpp",
                "PSNR",
                "SSIM",
                "JPEG PSNR",
                "WebP PSNR",
                "Δ vs JPEG",
                "met",
            ],
            sweep_rows,
        )
    }
## Presets at their default quality (means)

{
        md_table(
            [
                "preset",
                "bytes",
                "bpp",
                "PSNR",
                "SSIM",
                "fit s",
                "render ms",
                "JPEG PSNR",
                "WebP PSNR",
            ],
            preset_rows,
        )
    }
## JPEG and WebP curves (means over the same images)

{md_table(["codec", "quality", "bpp", "PSNR", "SSIM"], anchors)}
## Per image, presets at default quality

{
        md_table(
            [
                "image",
                "preset",
                "bytes",
                "bpp",
                "PSNR",
                "SSIM",
                "fit s",
                "render ms",
                "JPEG PSNR",
                "WebP PSNR",
            ],
            per_image,
        )
    }
![rate–distortion]({plot.name})
"""
    write_result("rate_distortion_quick.md" if args.quick else "rate_distortion.md", text)


def add_preset_row(per_image: list, presets: dict, name: str, preset: str, out, u8) -> None:
    jp, wp = at_bytes(u8, "JPEG", out.bytes), at_bytes(u8, "WEBP", out.bytes)
    row = [
        name,
        preset,
        out.bytes,
        out.bpp,
        out.psnr,
        out.ssim,
        out.seconds,
        1000 * render_seconds(out.data),
        jp.psnr if jp else float("nan"),
        wp.psnr if wp else float("nan"),
    ]
    per_image.append(row)
    presets.setdefault(preset, []).append(row)
    print(row, flush=True)


def jpeg_webp_curves(files: list[Path]) -> list[list]:
    rows = []
    for fmt, qualities in (
        ("JPEG", [5, 10, 20, 30, 50, 70, 85, 95]),
        ("WEBP", [5, 10, 20, 40, 60, 80, 90]),
    ):
        for q in qualities:
            rs = []
            for path in files:
                img = load_image(path)
                r = measure(to_uint8(img.pixels), fmt, q)
                rs.append((8 * r.bytes / (img.size[0] * img.size[1]), r.psnr, r.ssim))
            m = np.mean(rs, axis=0)
            rows.append([fmt, q, float(m[0]), float(m[1]), float(m[2])])
    return rows


def plot_rd(sweep, anchors, quick: bool) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    for fmt in ("JPEG", "WEBP"):
        pts = [(r[2], r[3]) for r in anchors if r[0] == fmt]
        if pts:
            ax.plot(*zip(*pts, strict=True), marker="s", label=fmt)
    for preset in ("fast", "compact"):
        pts = sorted(
            (np.mean([r["bpp"] for r in rs]), np.mean([r["psnr"] for r in rs]))
            for (p, _), rs in sweep.items()
            if p == preset
        )
        if pts:
            ax.plot(*zip(*pts, strict=True), marker="o", label=f"mhinr {preset}")
    ax.set_xlabel("bits per pixel")
    ax.set_ylabel("PSNR (dB, RGB)")
    ax.set_xlim(0, 1.6)
    ax.grid(alpha=0.3)
    ax.legend()
    return save_figure(fig, "rate_distortion", quick)


if __name__ == "__main__":
    main()
