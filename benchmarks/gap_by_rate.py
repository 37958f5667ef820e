"""Where `compact` wins and loses against a baseline, rate by rate: from a
`benchmarks.codec_stage` run's JSON lines (no encoding), at each file `compact` returned,
its PSNR minus the baseline's at the same bits per pixel (the baseline's own quality sweep,
interpolated linearly in log(bpp)). BD-rate averages this over the whole range; this shows
which rates the average hides.

    python -m benchmarks.gap_by_rate benchmarks/results/codec_stage_chroma.jsonl --baseline AVIF
"""

import argparse
import json
from pathlib import Path

import numpy as np

from benchmarks.common import write_result


def gaps(row: dict, curve: str, baseline: str) -> list[tuple[float, float]]:
    """[(bpp, PSNR of `curve` − the baseline's at that bpp)] for one image's row."""
    base = np.array(sorted(row[baseline]))
    out = []
    for bpp, db in row[curve]:
        theirs = np.interp(np.log(bpp), np.log(base[:, 0]), base[:, 1])
        out.append((bpp, db - float(theirs)))
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("run", type=Path)
    ap.add_argument("--baseline", default="AVIF", help="a curve of the run: AVIF or WEBP")
    ap.add_argument("--curve", default="with", help="with (what compact returns) or without")
    ap.add_argument("--out", default="gap_by_rate")
    a = ap.parse_args()
    rows = [json.loads(line) for line in a.run.read_text().splitlines() if line]
    table = {r["image"]: gaps(r, a.curve, a.baseline) for r in rows}
    n = max(len(g) for g in table.values())
    lines = [
        f"# `compact` ({a.curve}) against {a.baseline}, rate by rate",
        "",
        f"`python -m benchmarks.gap_by_rate {a.run} --baseline {a.baseline}"
        f"{'' if a.out == 'gap_by_rate' else f' --out {a.out}'}`: PSNR of the"
        f" file minus {a.baseline}'s at the same bpp (dB; positive: `compact` is better),"
        " at each target of the run (its bpp in brackets).",
        "",
        "| image | " + " | ".join(f"target {i + 1}" for i in range(n)) + " |",
        "|---|" + "---|" * n,
    ]
    for image, g in table.items():
        lines.append(f"| {image} | " + " | ".join(f"{d:+.2f} ({b:.2f})" for b, d in g) + " |")
    means = [np.mean([g[i][1] for g in table.values() if len(g) > i]) for i in range(n)]
    lines.append("| **mean** | " + " | ".join(f"**{m:+.2f}**" for m in means) + " |")
    text = "\n".join(lines) + "\n"
    print(text)
    write_result(f"{a.out}.md", text)


if __name__ == "__main__":
    main()
