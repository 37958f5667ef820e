"""Enlargement: the `upscale` preset against nearest, bicubic, Lanczos and a learned linear
filter, on Kodak and on photos outside it.

For each image and scale s: the true image is cropped to a multiple of s and box-averaged
by s (rounded to 8 bits); every method enlarges that small image back by s and is compared
with the true image (RGB PSNR on 8-bit values, SSIM). The `upscale` preset trains on the
small image alone (its own downscaled copies): it never sees the true image. The learned
linear filter is the same internal learning at its simplest: one least-squares 7×7 filter
per output phase, fitted on (small image box-averaged by s → small image) pairs.
`no_backproj`: the preset's render without its final back-projection step; `two_views`: the
render as the mean of the image's and its mirror image's enlargements only, instead of the
four rotations'; `network`: the render without the blend toward Lanczos that the held-out
pairs chose (`blend` in the rows: the network's share at ×2, ×3, ×4) (the ablations).
Seam ratio (model/metrics.py): mean |difference| of neighbouring output pixels across the
borders of 8×8-pixel blocks of the input over the same at the same phase inside them (the
measure the codec's 8-pixel cells were judged by; the upscaler is convolutional, so it has
no structure there unless something is wrong). Phase ratio: the same with every input
pixel's border against the pairs inside input pixels — not a seam measure (the truth is
~1.0, but Lanczos is ~1.2 too: interpolation itself is periodic with the input's pixels).

    python -m benchmarks.upscale                # all 24 Kodak + 5 other photos, ×2 ×3 ×4
    python -m benchmarks.upscale --quick        # 2 images, ×2, short fits
    python -m benchmarks.upscale --timing       # fit and render times, alone on the cores
    python -m benchmarks.upscale --reuse benchmarks/results/upscale.jsonl   # go on after a stop

Each finished row is appended to `results/<out>.jsonl` as it comes, so a run that had to
stop loses nothing: `--reuse FILE` takes the rows of FILE (image and scale matching) instead
of fitting them again, and the header says how many were reused and from where.

Fits run in `--jobs` processes of one torch thread each (default 2, one per core); the
preset's fit is bounded by its step count here, not by time, so the numbers do not depend
on the machine's load; `--timing` measures the time on its own.
"""

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from benchmarks.common import KODAK, RESULTS, machine, md_table, run_streamed, write_result
from mhinr.model.codec import decode
from mhinr.model.compress import Options, compress
from mhinr.model.metrics import psnr, seam_ratio, ssim

OTHERS = ("astronaut", "coffee", "chelsea", "rocket", "camera")  # scikit-image's photos


def load(name: str) -> torch.Tensor:
    """uint8 [C, H, W] of a Kodak image (kodimNN) or a scikit-image photo."""
    if name.startswith("kodim"):
        arr = np.asarray(Image.open(KODAK / f"{name}.png").convert("RGB"))
    else:
        import skimage.data

        arr = getattr(skimage.data, name)()
    arr = arr[..., None] if arr.ndim == 2 else arr[..., :3]
    return torch.from_numpy(np.ascontiguousarray(arr)).permute(2, 0, 1)


def box_down(true_u8: torch.Tensor, s: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(true cropped to a multiple of s, its s×s box average rounded to 8 bits)."""
    _, h, w = true_u8.shape
    true_u8 = true_u8[:, : h // s * s, : w // s * s]
    small = F.avg_pool2d(true_u8[None].double(), s)[0].round().to(torch.uint8)
    return true_u8, small


def pil_resize(small: torch.Tensor, size: tuple[int, int], method) -> torch.Tensor:
    chans = [Image.fromarray(small[i].numpy()).resize((size[1], size[0]), method) for i in
             range(small.shape[0])]  # fmt: skip
    return torch.from_numpy(np.stack([np.asarray(c) for c in chans]))


def linear_filter(small: torch.Tensor, s: int, k: int = 7, ridge: float = 1e-3) -> torch.Tensor:
    """×s by one least-squares k×k filter per output phase (shared by the channels), learned
    on the small image's own box-averaged copy → the small image."""
    x = small.double() / 255
    c, h, w = x.shape
    tiny = F.avg_pool2d(x[None, :, : h // s * s, : w // s * s], s)[0]  # [C, h/s, w/s]

    def patches(img: torch.Tensor) -> torch.Tensor:  # [C·n, k·k + 1]
        p = F.unfold(F.pad(img[:, None], (k // 2,) * 4, mode="replicate"), k)  # [C, k², n]
        p = p.permute(0, 2, 1).reshape(-1, k * k)
        return torch.cat([p, torch.ones(p.shape[0], 1, dtype=p.dtype)], 1)

    a = patches(tiny)
    gram = a.T @ a + ridge * torch.eye(a.shape[1], dtype=a.dtype)
    test = patches(x)
    out = torch.empty(c, h * s, w * s, dtype=torch.float64)
    th, tw = tiny.shape[1:]
    for py in range(s):
        for px in range(s):
            target = x[:, py : th * s : s, px : tw * s : s].reshape(-1)  # [C·n]
            wts = torch.linalg.solve(gram, a.T @ target)
            out[:, py::s, px::s] = (test @ wts).reshape(c, h, w)
    return (out.clamp(0, 1) * 255).round().to(torch.uint8)


def one(task: tuple[str, int, str]) -> dict:
    """Every method on one image at one scale (runs in a worker process)."""
    name, s, device = task
    torch.set_num_threads(1)
    true, small = box_down(load(name), s)
    size = tuple(true.shape[1:])
    mode = "RGB" if true.shape[0] == 3 else "L"
    row: dict = {"image": name, "scale": s, "size": f"{small.shape[2]}x{small.shape[1]}"}
    outs = {
        "nearest": pil_resize(small, size, Image.Resampling.NEAREST),
        "bicubic": pil_resize(small, size, Image.Resampling.BICUBIC),
        "lanczos": pil_resize(small, size, Image.Resampling.LANCZOS),
    }
    t = time.perf_counter()
    outs["linear"] = linear_filter(small, s)
    row["linear_s"] = time.perf_counter() - t
    result = compress(small.float() / 255, mode, Options(preset="upscale", device=device))
    row["fit_s"], row["file_bytes"] = result.seconds, result.bytes
    row["png_bytes"] = png_size(small)
    row["blend"] = result.net.blend  # the network's share of a render at ×2, ×3, ×4
    row["prior"] = result.net.prior  # the shipped network that enlarges it
    row["native_exact"] = bool(torch.equal(result.net.render(tuple(small.shape[1:])), small))
    outs["no_backproj"] = result.net.render(size, back_project=False)  # the ablations
    outs["two_views"] = result.net.render(size, views=(0, 4))  # the image and its mirror
    blend, result.net.blend = result.net.blend, [1.0, 1.0, 1.0]
    outs["network"] = result.net.render(size)  # all of the network, no blend with Lanczos
    result.net.blend = blend
    t = time.perf_counter()
    outs["upscale"] = result.net.render(size)
    row["render_s"] = time.perf_counter() - t
    for k, v in outs.items():
        row[f"{k}_psnr"] = psnr(v, true)
        row[f"{k}_ssim"] = ssim(v, true)
    for k in ("truth", "lanczos", "upscale"):
        img = true if k == "truth" else outs[k]
        row[f"{k}_seam"] = seam_ratio(img, (8 * s, 8 * s), s)  # 8-pixel blocks of the input
        row[f"{k}_phase"] = seam_ratio(img, (s, s), 1)  # every input pixel's border
    print(json.dumps({k: round(v, 3) if isinstance(v, float) else v for k, v in row.items()}),
          flush=True)  # fmt: skip
    return row


def png_size(image: torch.Tensor) -> int:
    """Bytes of uint8 [C, H, W] as a PNG with Pillow's `optimize`."""
    import io

    buf = io.BytesIO()
    Image.fromarray(image.permute(1, 2, 0).squeeze(-1).numpy()).save(buf, "PNG", optimize=True)
    return len(buf.getvalue())


def _seconds(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def timing(device: str) -> str:
    """Fit of a 512² image and renders at 1024² and 4096², alone on the machine's threads;
    on CUDA also the check that a CPU decode of the GPU-trained file renders the same."""
    true = load("kodim23")[:, :512, 128:640]
    t = time.perf_counter()
    result = compress(true.float() / 255, "RGB", Options(preset="upscale", device=device))
    fit_s = time.perf_counter() - t
    where = machine() if device == "cpu" else f"{device} ({torch.cuda.get_device_name()})"
    lines = [
        f"device: {where}, alone",
        f"fit 512x512 (the prior's held-out check; no training): {fit_s:.1f} s, "
        f"{result.bytes:,} bytes",
    ]
    net = result.net.to(device)
    out = None
    for side in (1024, 4096):
        net.set_image(net.image)  # drop the cached heads: a cold render
        t = time.perf_counter()
        out = net.render((side, side))
        took = time.perf_counter() - t
        lines.append(f"render {side}x{side} on {device} (cold, encoder included): {took:.2f} s")
        # warm: the heads cached, as a server's model cache keeps them (median of 3)
        warm = sorted(_seconds(lambda s=side: net.render((s, s))) for _ in range(3))[1]
        lines.append(f"render {side}x{side} on {device} (warm, heads cached): {warm:.2f} s")
    if device != "cpu":
        cpu_net, _ = decode(result.data)  # the file, decoded and rendered on the CPU
        cpu_out = cpu_net.render((4096, 4096))
        diff = (cpu_out.int() - out.int()).abs()
        lines.append(
            f"CPU decode of the {device}-trained file, 4096x4096: PSNR against the {device} "
            f"render {psnr(cpu_out, out):.2f} dB, max |difference| {int(diff.max())}, "
            f"pixels that differ {float((diff > 0).float().mean()):.2e}"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="2 images, ×2")
    ap.add_argument("--images", help="comma-separated names (kodim05,coffee,…)")
    ap.add_argument("--scales", default="2,3,4")
    ap.add_argument("--jobs", type=int, default=2, help="processes, one torch thread each")
    ap.add_argument("--timing", action="store_true", help="only the fit and render times")
    ap.add_argument("--device", default="cpu", help="where the fits run (cpu, cuda)")
    ap.add_argument("--out", default="upscale", help="results file name (without .md)")
    ap.add_argument("--reuse", type=Path, help="JSON-lines rows of an earlier run to keep")
    args = ap.parse_args()
    if args.timing:
        text = timing(args.device)
        print(text)
        write_result(f"{args.out}_timing.md", "# upscale preset: times\n\n```\n" + text + "```\n")
        return
    names = [f"kodim{i:02d}" for i in range(1, 25)] + list(OTHERS)
    scales = [int(x) for x in args.scales.split(",")]
    if args.quick:
        names, scales = ["kodim05", "coffee"], [2]
    if args.images:
        names = args.images.split(",")
    tasks = [(n, s, args.device) for s in scales for n in names]
    t0 = time.perf_counter()
    rows, reused = run_streamed(
        one,
        tasks,
        lambda t: t[:2],
        lambda r: (r["image"], r["scale"]),
        RESULTS / f"{args.out}{'_quick' if args.quick else ''}.jsonl",
        args.jobs,
        args.reuse,
    )
    methods = ["nearest", "bicubic", "lanczos", "linear", "no_backproj", "two_views", "network"]
    methods += ["upscale"]
    text = [
        "# Enlargement: `upscale` preset against classic and learned-linear baselines\n",
        f"`python -m benchmarks.upscale{''.join(' ' + a for a in sys.argv[1:])}`; fits on "
        f"{args.device}, {machine()} per process, {args.jobs} processes at once; "
        f"{len(tasks) - reused} fits in {(time.perf_counter() - t0) / 60:.1f} min"
        + (f" ({reused} more rows reused from `{args.reuse}`)" if reused else "")  # fmt: skip
        + ". Input: the true image box-averaged by the "
        "scale (8-bit); PSNR (dB, RGB 8-bit) and SSIM against the true image. The preset "
        "trains nothing per image (its network is the shipped prior, model/upscale_prior.py); "
        "fit s: its held-out check and the file's coding, under this shared load (alone: "
        "upscale_timing.md). File: the default upscale file's bytes; PNG: the input's, "
        "Pillow `optimize`.\n",
    ]
    for s in scales:
        sel = [r for r in rows if r["scale"] == s]
        table = []
        for r in sel:
            table.append(
                [r["image"], r["size"]]
                + [r.get(f"{m}_psnr", float("nan")) for m in methods]  # older rows: no network
                + [r["upscale_psnr"] - r["lanczos_psnr"], r["upscale_ssim"], r["lanczos_ssim"]]
                + [r["truth_seam"], r["upscale_seam"]]
                + [r["truth_phase"], r["lanczos_phase"], r["upscale_phase"]]
                + [r["fit_s"], r["render_s"]]
                + [r.get("file_bytes", 0), r.get("png_bytes", 0)]
            )
        for group, pick in (
            ("mean, Kodak", [r for r in sel if r["image"].startswith("kodim")]),
            ("mean, other photos", [r for r in sel if not r["image"].startswith("kodim")]),
            ("mean, all", sel),
        ):
            if not pick:
                continue

            def mean(key: str, rs=pick) -> float:
                return float(np.mean([r.get(key, float("nan")) for r in rs]))

            table.append(
                [f"**{group}**", len(pick)]
                + [mean(f"{m}_psnr") for m in methods]
                + [mean("upscale_psnr") - mean("lanczos_psnr"), mean("upscale_ssim")]
                + [mean("lanczos_ssim"), mean("truth_seam"), mean("upscale_seam")]
                + [mean("truth_phase"), mean("lanczos_phase"), mean("upscale_phase")]
                + [mean("fit_s"), mean("render_s"), mean("file_bytes"), mean("png_bytes")]
            )
        worst = min(r["upscale_psnr"] - r["lanczos_psnr"] for r in sel)
        exact = all(r["native_exact"] for r in sel)
        below = sum(r["upscale_psnr"] - r["lanczos_psnr"] < -0.05 for r in sel)
        smaller = sum(r.get("file_bytes", 1) < r.get("png_bytes", 0) for r in sel)
        text.append(
            f"\n## ×{s}\n\nworst image against Lanczos: {worst:+.2f} dB ({below} below "
            f"Lanczos − 0.05 dB); native-size render equals the input on every image: "
            f"{exact}; files smaller than the input's PNG: {smaller} of {len(sel)}\n\n"
        )
        text.append(
            md_table(
                ["image", "input"]
                + [f"{m} dB" for m in methods]
                + ["upscale − Lanczos", "upscale SSIM", "Lanczos SSIM"]
                + ["seam truth", "seam upscale"]
                + ["phase truth", "phase Lanczos", "phase upscale", "fit s", "render s"]
                + ["file bytes", "PNG bytes"],
                table,
            )
        )
    name = f"{args.out}_quick.md" if args.quick else f"{args.out}.md"
    write_result(name, "".join(text))
    write_result(name.replace(".md", ".json"), json.dumps(rows, indent=1, default=str))


if __name__ == "__main__":
    main()
