"""Peak memory of a large render: the paper's network (64² heads, α=64, 4×256) for an RGB
256² image rendered at 8192², each method in a fresh process (ru_maxrss before and after).

    python -m benchmarks.render_memory [--size 8192]
"""

import argparse
import json
import subprocess
import sys

from benchmarks.common import machine, md_table, write_result

SCRIPT = """
import json, resource, sys, time
from mhinr.model.network import build_network
from mhinr.model.render import render
net = build_network("multihead", (256, 256), 3, heads=(64, 64), alpha=64)
size = int(sys.argv[2])
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t = time.perf_counter()
out = render(net, (256, 256), (size, size), method=sys.argv[1])
dt = time.perf_counter() - t
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
peak = (after - before) / 1024
print(json.dumps({"peak_mb": peak, "seconds": dt, "out_mb": out.numel() / 2**20}))
"""


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=8192)
    args = ap.parse_args()
    rows = []
    for method in ("plain", "resample"):
        out = subprocess.run(
            [sys.executable, "-c", SCRIPT, method, str(args.size)],
            check=True,
            capture_output=True,
            text=True,
        )
        r = json.loads(out.stdout)
        rows.append(
            [
                method,
                f"{args.size}²",
                f"{r['out_mb']:.0f}",
                f"{r['peak_mb']:.0f}",
                f"{r['seconds']:.2f}",
            ]
        )
        print(rows[-1], flush=True)
    text = f"""# Render memory

`python -m benchmarks.render_memory --size {args.size}` — {machine()}. Default chunk size
(256 MB for the largest temporary); the output is uint8.

{md_table(["method", "size", "output MB", "peak MB above baseline", "seconds"], rows)}"""
    write_result("render_memory.md", text)


if __name__ == "__main__":
    main()
