"""How the optimiser's settings decide speed and quality: the paper's configuration (64² heads,
α=64, 4×256) on `camera` 256², several recipes, PSNR reached, seconds, and the seconds to
reach 40 dB. This is how the default recipe was chosen.

    python -m benchmarks.fit_speed [--quick]
"""

import argparse
import time

from benchmarks.common import camera_pair, machine, md_table, write_result
from mhinr.model.fit import FitConfig, fit
from mhinr.model.metrics import psnr
from mhinr.model.network import build_network
from mhinr.model.render import render


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    t_all = time.perf_counter()
    _, lo = camera_pair()
    long = 500 if args.quick else 2000
    recipes = [
        ("paper: Adam 1e-3, paper decay", FitConfig.paper(long)),
        (
            "Adam 3e-3 constant",
            FitConfig(steps=long, lr=3e-3, schedule="constant", solve_heads=False),
        ),
        ("Adam 3e-3 cosine", FitConfig(steps=long, lr=3e-3, solve_heads=False)),
        ("Adam 5e-3 cosine", FitConfig(steps=long, lr=5e-3, solve_heads=False)),
        ("heads solved, no Adam", FitConfig(steps=0)),
        ("heads solved, 20 Adam steps, solved again", FitConfig(steps=20)),
        ("mhinr default: heads solved, 100 Adam steps, solved again", FitConfig()),
    ]
    rows = []
    for name, cfg in recipes:
        net = build_network("multihead", (256, 256), 1, heads=(64, 64), alpha=64)
        res = fit(net, lo, FitConfig(**{**cfg.__dict__, "progress_every": 10}))
        reach = next((p.elapsed_s for p in res.history if p.psnr >= 40), None)
        final = psnr(render(net, (256, 256)), lo)
        rows.append(
            [name, res.steps, res.seconds, final, "never" if reach is None else f"{reach:.2f}"]
        )
        print(rows[-1], flush=True)
    text = f"""# Fitting speed: the paper's configuration on `camera` 256²

`python -m benchmarks.fit_speed{" --quick" if args.quick else ""}` — {machine()};
{time.perf_counter() - t_all:.0f} s in all.

64² heads, α=64, body 4×256 (464,384 parameters), the paper's initialisation. PSNR on the
8-bit render at 256 (inf: every pixel exact). "s to 40 dB" is read off the progress reports
(every 10 steps).

{md_table(["recipe", "Adam steps", "fit s", "PSNR 256", "s to 40 dB"], rows)}"""
    write_result("fit_speed_quick.md" if args.quick else "fit_speed.md", text)


if __name__ == "__main__":
    main()
