"""Shared helpers for the benchmark scripts: test images, timing, writing results."""

import json
import os
import platform
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import numpy as np
import torch

RESULTS = Path(__file__).resolve().parent / "results"
# ../shared/data/kodak beside the checkout; MHINR_KODAK names another folder (a GPU machine)
KODAK = Path(
    os.environ.get("MHINR_KODAK", Path(__file__).resolve().parents[2] / "shared/data/kodak")
)


def camera_pair() -> tuple[torch.Tensor, torch.Tensor]:
    """scikit-image's `camera` (512², gray) and its 2×2 box average rounded to 8 bits (256²),
    both [1, H, W] in [0, 1]: the paper's generalisation experiment."""
    import skimage.data

    hi = torch.tensor(skimage.data.camera(), dtype=torch.float64)
    lo = hi.reshape(256, 2, 256, 2).mean((1, 3)).round()
    return (hi / 255).float()[None], (lo / 255).float()[None]


def timed(fn, repeat: int = 5) -> float:
    """Median wall seconds of `fn()` over `repeat` runs (after one warm-up run)."""
    fn()
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return float(np.median(times))


def machine() -> str:
    """The CPU (its model name where /proc/cpuinfo says it), torch and its threads, and
    whether renders run in bfloat16 (only where the CPU has the instructions)."""
    from mhinr.model.upscale import _BF16

    cpu = platform.processor() or platform.machine()
    info = Path("/proc/cpuinfo")
    lines = info.read_text().splitlines() if info.exists() else []
    names = [ln.split(":", 1)[1].strip() for ln in lines if ln.startswith("model name")]
    cpu = f"{names[0]} ({cpu})" if names else cpu
    bf16 = "bfloat16 renders" if _BF16 else "float32 renders"
    return f"{cpu}, torch {torch.__version__}, {torch.get_num_threads()} threads, {bf16}"


def write_result(name: str, text: str) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / name
    path.write_text(text)
    print(f"wrote {path}")
    return path


def md_table(header: list[str], rows: list[list]) -> str:
    def cell(v) -> str:
        return f"{v:.2f}" if isinstance(v, float) else str(v)

    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def save_figure(fig, name: str, quick: bool) -> Path:
    """Save a matplotlib figure as results/NAME.png (NAME_quick.png in quick mode)."""
    import matplotlib.pyplot as plt

    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / (f"{name}_quick.png" if quick else f"{name}.png")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def bd_rate(
    rate_a: list[float], psnr_a: list[float], rate_b: list[float], psnr_b: list[float]
) -> float | None:
    """Bjøntegaard-delta rate of codec A against codec B, in percent: the mean difference of
    log-rate at equal PSNR over the PSNR range both curves cover (negative: A needs fewer
    bytes). Each curve is log-rate as a monotone piecewise-cubic (PCHIP) function of PSNR,
    the interpolation the newer BD tools use instead of one cubic polynomial, which
    overshoots between distant points. None if the curves share no PSNR range."""
    from scipy.interpolate import PchipInterpolator

    def curve(rate, psnr):
        pts = sorted(zip(psnr, np.log(rate), strict=True))
        xs, ys = [], []
        for p, r in pts:  # strictly increasing PSNR for the interpolator
            if xs and p <= xs[-1]:
                ys[-1] = min(ys[-1], r)
                continue
            xs.append(p)
            ys.append(r)
        return np.array(xs), np.array(ys)

    xa, ya = curve(rate_a, psnr_a)
    xb, yb = curve(rate_b, psnr_b)
    if len(xa) < 2 or len(xb) < 2:
        return None
    lo, hi = max(xa[0], xb[0]), min(xa[-1], xb[-1])
    if hi <= lo:
        return None
    fa, fb = PchipInterpolator(xa, ya), PchipInterpolator(xb, yb)
    diff = (fa.integrate(lo, hi) - fb.integrate(lo, hi)) / (hi - lo)
    return float((np.exp(diff) - 1) * 100)


def pareto(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """The (rate, PSNR) points no other point beats on both (lower rate and higher PSNR),
    by increasing rate: a codec's best curve from several settings (JPEG's two chroma
    layouts)."""
    front: list[tuple[float, float]] = []
    for rate, q in sorted(points):
        if not front or q > front[-1][1]:
            front.append((rate, q))
    return front


def run_streamed(fn, tasks: list, task_key, row_key, stream: Path, jobs: int, reuse: Path | None):
    """`fn` over `tasks` in `jobs` processes, each row appended to `stream` (JSON lines) as
    it finishes, so a run that has to stop loses nothing; the rows of `reuse` (an earlier
    stream, which may be `stream` itself) whose `row_key` matches a task's `task_key` are
    taken instead of running it. The stream is started afresh with the reused rows, so it
    holds this run's rows only. Returns (the rows in task order, how many were reused)."""
    done = {}
    if reuse:
        for line in reuse.read_text().splitlines():
            if line.startswith("{"):
                row = json.loads(line)
                done[row_key(row)] = row
    todo = [t for t in tasks if task_key(t) not in done]
    reused = len(tasks) - len(todo)
    stream.parent.mkdir(parents=True, exist_ok=True)
    with stream.open("w") as log, ProcessPoolExecutor(jobs) as pool:
        for t in tasks:
            if task_key(t) in done:
                log.write(json.dumps(done[task_key(t)], default=str) + "\n")
        log.flush()
        for fut in as_completed([pool.submit(fn, t) for t in todo]):
            row = fut.result()
            done[row_key(row)] = row
            log.write(json.dumps(row, default=str) + "\n")
            log.flush()
    return [done[task_key(t)] for t in tasks], reused
