"""`compact` against the baselines issue 22 asks for at their best: AVIF at libavif speed 0
(the slowest, smallest) beside speed 6 (Pillow's default, what the other tables use), each
the better of 4:2:0 and 4:4:4 chroma at each size, and JPEG XL (libjxl effort 7, through
pillow-jxl-plugin). The `compact` curves are taken from an earlier `benchmarks.codec_stage`
run (its JSON lines: the files the preset returns at 0.15–1.5 bpp), so only the baselines
are encoded here.

    python -m benchmarks.codec_baselines [--rows benchmarks/results/codec_stage_rdoq.jsonl]
    python -m benchmarks.codec_baselines --rows benchmarks/results/codec_stage_interp.jsonl \
        --out codec_baselines_interp
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

from benchmarks.bd_rate import load
from benchmarks.common import RESULTS, bd_rate, md_table, pareto, write_result
from mhinr.model.classic import encode_classic
from mhinr.model.images import to_pil, to_uint8
from mhinr.model.metrics import psnr

AVIF_QUALITIES = range(10, 100, 10)
JXL_QUALITIES = range(10, 100, 5)


def _point(u8: torch.Tensor, data: bytes) -> tuple[float, float]:
    back = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
    return len(data) * 8 / (u8.shape[1] * u8.shape[2]), psnr(
        torch.from_numpy(back.copy()).permute(2, 0, 1), u8
    )


def avif_curve(u8: torch.Tensor, speed: int) -> list[tuple[float, float]]:
    img, points = to_pil(u8), []
    for sub in ("4:2:0", "4:4:4"):
        for q in AVIF_QUALITIES:
            buf = io.BytesIO()
            img.save(buf, "AVIF", quality=q, speed=speed, subsampling=sub)
            points.append(_point(u8, buf.getvalue()))
    return pareto(points)


def one(name: str) -> dict:
    torch.set_num_threads(1)
    u8 = to_uint8(load(name).pixels)
    row: dict = {"image": name}
    for key, make in (
        ("AVIF s6", lambda: avif_curve(u8, 6)),
        ("AVIF s0", lambda: avif_curve(u8, 0)),
        (
            "JPEG XL e7",
            lambda: pareto([_point(u8, encode_classic(u8, "JXL", q)) for q in JXL_QUALITIES]),
        ),  # fmt: skip
    ):
        t = time.perf_counter()
        row[key] = make()
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
    a = ap.parse_args()
    rows = [json.loads(x) for x in a.rows.read_text().splitlines() if x.startswith("{")]
    t0 = time.perf_counter()
    with Pool(a.jobs) as pool:
        base = {r["image"]: r for r in pool.map(one, [r["image"] for r in rows])}
    keys = ["AVIF s6", "AVIF s0", "JPEG XL e7"]
    table, cols = [], {k: [] for k in keys + ["s0 vs s6"]}
    for r in rows:
        b = base[r["image"]]
        vals = [_bd(r["with"], b[k]) for k in keys]
        s0_s6 = _bd(b["AVIF s0"], b["AVIF s6"])
        for k, v in zip(keys + ["s0 vs s6"], vals + [s0_s6], strict=True):
            cols[k].append(v)
        table.append([r["image"], r["size"], *map(_pct, vals), _pct(s0_s6)])
    means = [np.nanmean([np.nan if v is None else v for v in cols[k]]) for k in cols]
    table.append(["**mean**", ""] + [f"**{_pct(m)}**" for m in means])
    enc = {k: np.mean([base[r["image"]][f"{k} s"] for r in rows]) for k in keys}
    source = a.rows.resolve().relative_to(RESULTS.parent.parent.resolve())
    write_result(
        f"{a.out}.md",
        f"""# `compact` against AVIF at speed 0 and JPEG XL

`python -m benchmarks.codec_baselines --rows {source} --out {a.out}`
({(time.perf_counter() - t0) / 60:.1f} min, {a.jobs} processes of one thread). BD-rate
(PCHIP) of `compact` — the files of that `benchmarks.codec_stage` run, 0.15–1.5 bpp, the
trained stage and RDOQ included — against each baseline at its best: AVIF at libavif speed 6
and speed 0, each the better of 4:2:0 and 4:4:4 chroma at each size (qualities
{AVIF_QUALITIES.start}–{AVIF_QUALITIES.stop - 10} by 10), JPEG XL at libjxl effort 7
(qualities {JXL_QUALITIES.start}–{JXL_QUALITIES.stop - 5} by 5). Positive: `compact` needs
more bytes at equal PSNR. Last column: AVIF speed 0 against speed 6.

{md_table(["image", "size", "vs AVIF s6", "vs AVIF s0", "vs JPEG XL e7", "AVIF s0 vs s6"], table)}
Encode seconds for a whole curve, one thread (mean over the images): AVIF s6
{enc["AVIF s6"]:.0f} s, AVIF s0 {enc["AVIF s0"]:.0f} s, JPEG XL e7 {enc["JPEG XL e7"]:.0f} s.
""",
    )


if __name__ == "__main__":
    main()
