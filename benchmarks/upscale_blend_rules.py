"""Other rules for the upscaler's blend weights, scored offline on a full benchmark's rows.

    python -m benchmarks.upscale_blend_rules [--rows benchmarks/results/upscale_blend.jsonl]

A render at ×s is L + α·(N − L) (L: Lanczos, N: the network's back-projected enlargement).
Its squared error is a quadratic in α, so a row's three PSNRs — Lanczos (α = 0), the network
alone (α = 1) and the render (α = the fit's weight) — give it at every α, and any other rule
for α can be scored on all 87 image–scale pairs without refitting. Where the fit's weight
was 0 or 1 the curve is not known; the MSE there is interpolated linearly between α = 0 and
1, an upper bound (the curve is convex), so those rows can only look worse than they are.
Writes benchmarks/results/upscale_blend_rules.md.
"""

import argparse
import json
import math
from pathlib import Path

from benchmarks.common import RESULTS, md_table, write_result

RULES = {
    "the fit's weights (today)": lambda w, s: w[s - 2],
    "no blend (α = 1)": lambda w, s: 1.0,
    "the ×2 weight at every scale": lambda w, s: w[0],
    "max(α_s, α_2)": lambda w, s: max(w[s - 2], w[0]),
    "min(α_s, α_2)": lambda w, s: min(w[s - 2], w[0]),
    "(α_s + α_2) / 2": lambda w, s: (w[s - 2] + w[0]) / 2,
    "√α_s (trust the network more)": lambda w, s: w[s - 2] ** 0.5,
    "α_s² (trust it less)": lambda w, s: w[s - 2] ** 2,
}


def _mse(p: float) -> float:
    return 255**2 * 10 ** (-p / 10)


def gain(row: dict, alpha: float) -> tuple[float, bool]:
    """dB over Lanczos of the render at weight `alpha`, and whether it is interpolated."""
    s = row["scale"]
    a = row["blend"][s - 2]
    m0, m1, ma = _mse(row["lanczos_psnr"]), _mse(row["network_psnr"]), _mse(row["upscale_psnr"])
    if 1e-3 < a < 1 - 1e-3:
        curve = ((ma - m0) - a * (m1 - m0)) / (a * a - a)
        m = curve * alpha**2 + ((m1 - m0) - curve) * alpha + m0
        approx = False
    else:
        m = ma if abs(alpha - a) < 1e-9 else m0 + alpha * (m1 - m0)
        approx = abs(alpha - a) >= 1e-9
    return 10 * math.log10(255**2 / m) - row["lanczos_psnr"], approx


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=Path, default=RESULTS / "upscale_blend.jsonl")
    args = ap.parse_args()
    rows = [json.loads(line) for line in args.rows.read_text().splitlines() if line.strip()]
    table = []
    for name, rule in RULES.items():
        cells, approx = [name], 0
        for s in (2, 3, 4):
            scored = [(gain(r, rule(r["blend"], s)), r["image"]) for r in rows if r["scale"] == s]
            approx += sum(g[1] for g, _ in scored)
            mean = sum(g[0] for g, _ in scored) / len(scored)
            worst = min(scored)
            below = sum(g[0] < -0.05 for g, _ in scored)
            cells.append(f"{mean:+.3f} / {worst[0][0]:+.2f} ({worst[1]}) / {below}")
        table.append([*cells, approx])
    text = (
        "# Blend rules for the upscaler, scored offline\n\n"
        f"`python -m benchmarks.upscale_blend_rules --rows {args.rows.name}` (rows of "
        "`benchmarks.upscale --out upscale_blend`, 29 photos). Each cell: mean dB over "
        "Lanczos / the worst image / how many images are below Lanczos − 0.05 dB. The last "
        "column counts the rows whose score is an upper bound on the error (see the "
        "module's docstring).\n\n" + md_table(["rule", "×2", "×3", "×4", "rows bounded"], table)
    )
    write_result("upscale_blend_rules.md", text)
    print(text)


if __name__ == "__main__":
    main()
