"""`compact` against the baselines issue 22 asks for at their best: AVIF at libavif speed 0
(the slowest, smallest) beside speed 6 (Pillow's default, what the other tables use), each
the better of 4:2:0 and 4:4:4 chroma at each size, and JPEG XL (libjxl effort 7, through
pillow-jxl-plugin). The `compact` curves are taken from an earlier `benchmarks.codec_stage`
run (its JSON lines: the files the preset returns at 0.15–1.5 bpp), so only the baselines
are encoded here.

    python -m benchmarks.codec_baselines [--rows benchmarks/results/codec_stage_rdoq.jsonl]
    python -m benchmarks.codec_baselines --rows benchmarks/results/codec_stage_interp.jsonl \
        --out codec_baselines_interp
    python -m benchmarks.codec_baselines --rows … --images kodim05,coffee   # some of them
"""

import argparse
import io
import json
import time
from multiprocessing import Pool
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from benchmarks.bd_rate import classic_curve, load
from benchmarks.common import RESULTS, bd_rate, md_table, pareto, write_result
from mhinr.model.classic import encode_classic
from mhinr.model.images import to_pil, to_uint8
from mhinr.model.metrics import psnr

AVIF_QUALITIES = range(10, 100, 10)
JXL_QUALITIES = range(10, 100, 5)


def _point(u8: torch.Tensor, data: bytes) -> tuple[float, float]:
    """(bpp, PSNR) of the encoded `data` of `u8` ([C, H, W], RGB or grey)."""
    back = np.asarray(Image.open(io.BytesIO(data)).convert("RGB" if u8.shape[0] == 3 else "L"))
    back_t = torch.from_numpy(back.copy()).reshape(*back.shape[:2], -1).permute(2, 0, 1)
    return len(data) * 8 / (u8.shape[1] * u8.shape[2]), psnr(back_t, u8)


def avif_curve(
    u8: torch.Tensor, speed: int, qualities: range = AVIF_QUALITIES
) -> list[tuple[float, float]]:
    """AVIF at libavif `speed`, the better of 4:2:0 and 4:4:4 chroma at each size: Pareto
    points (bpp, PSNR) over `qualities`."""
    img, points = to_pil(u8), []
    for sub in ("4:2:0", "4:4:4"):
        for q in qualities:
            buf = io.BytesIO()
            img.save(buf, "AVIF", quality=q, speed=speed, subsampling=sub)
            points.append(_point(u8, buf.getvalue()))
    return pareto(points)


BASELINES = {  # name → its best curve of an image (uint8 [C, H, W]): Pareto (bpp, PSNR)
    "AVIF s6": lambda u8: avif_curve(u8, 6),
    "AVIF s0": lambda u8: avif_curve(u8, 0),
    "JPEG XL e7": lambda u8: pareto(
        [_point(u8, encode_classic(u8, "JXL", q)) for q in JXL_QUALITIES]
    ),
    # optimized Huffman tables, qualities 5–95, the better of 4:2:0 and 4:4:4 at each size
    "JPEG": lambda u8: classic_curve(u8, "JPEG")[0],
}


def one(task: tuple[str, tuple[str, ...]]) -> dict:
    name, keys = task
    torch.set_num_threads(1)
    u8 = to_uint8(load(name).pixels)
    row: dict = {"image": name}
    for key in keys:
        t = time.perf_counter()
        row[key] = BASELINES[key](u8)
        row[f"{key} s"] = time.perf_counter() - t
    print(name, {k: round(v, 1) for k, v in row.items() if k.endswith(" s")}, flush=True)
    return row


def _bd(a: list, b: list) -> float | None:
    return bd_rate([p[0] for p in a], [p[1] for p in a], [p[0] for p in b], [p[1] for p in b])


def _pct(v: float | None) -> str:
    return "—" if v is None or not np.isfinite(v) else f"{v:+.1f} %"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=Path, default=RESULTS / "codec_stage_rdoq.jsonl")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--out", default="codec_baselines", help="results file name (without .md)")
    ap.add_argument("--baselines", nargs="+", choices=list(BASELINES),
                    default=["AVIF s6", "AVIF s0", "JPEG XL e7"])  # fmt: skip
    ap.add_argument("--images", help="only these of the rows' images (comma-separated)")
    a = ap.parse_args()
    keys = list(a.baselines)
    rows = [json.loads(x) for x in a.rows.read_text().splitlines() if x.startswith("{")]
    if a.images:
        rows = [r for r in rows if r["image"] in a.images.split(",")]
    t0 = time.perf_counter()
    with Pool(a.jobs) as pool:
        base = {r["image"]: r for r in pool.map(one, [(r["image"], tuple(keys)) for r in rows])}
    both = "AVIF s0" in keys and "AVIF s6" in keys  # then a column of s0 against s6
    extra = ["s0 vs s6"] if both else []
    table, cols = [], {k: [] for k in keys + extra}
    for r in rows:
        b = base[r["image"]]
        vals = [_bd(r["with"], b[k]) for k in keys]
        vals += [_bd(b["AVIF s0"], b["AVIF s6"])] if both else []
        for k, v in zip(keys + extra, vals, strict=True):
            cols[k].append(v)
        table.append([r["image"], r["size"], *map(_pct, vals)])
    means = [np.nanmean([np.nan if v is None else v for v in cols[k]]) for k in cols]
    table.append(["**mean**", ""] + [f"**{_pct(m)}**" for m in means])
    enc = {k: np.mean([base[r["image"]][f"{k} s"] for r in rows]) for k in keys}
    source = a.rows.resolve().relative_to(RESULTS.parent.parent.resolve())
    chosen = "".join(f' "{k}"' if " " in k else f" {k}" for k in keys)
    header = ["image", "size"] + [f"vs {k}" for k in keys] + (["AVIF s0 vs s6"] if both else [])
    write_result(
        f"{a.out}.md",
        f"""# `compact` against {", ".join(keys)}

`python -m benchmarks.codec_baselines --rows {source} --baselines{chosen}{
            f" --images {a.images}" if a.images else ""
        } --out {a.out}`
({(time.perf_counter() - t0) / 60:.1f} min, {a.jobs} processes of one thread). BD-rate
(PCHIP) of `compact` — the files of that `benchmarks.codec_stage` run, 0.15–1.5 bpp, the
trained stage and RDOQ included — against each baseline at its best: AVIF at libavif speed 6
or speed 0, each the better of 4:2:0 and 4:4:4 chroma at each size (qualities
{AVIF_QUALITIES.start}–{AVIF_QUALITIES.stop - 10} by 10), JPEG XL at libjxl effort 7
(qualities {JXL_QUALITIES.start}–{JXL_QUALITIES.stop - 5} by 5), JPEG with optimized Huffman
tables (qualities 5–95 by 5, the better of 4:2:0 and 4:4:4). Positive: `compact` needs
more bytes at equal PSNR.{" Last column: AVIF speed 0 against speed 6." if both else ""}

{md_table(header, table)}
Encode seconds for a whole curve, one thread (mean over the images): {
            ", ".join(f"{k} {enc[k]:.0f} s" for k in keys)
        }.
""",
    )


if __name__ == "__main__":
    main()
