"""Load on a running service: many clients rendering at once, then a burst of submissions.

    python -m benchmarks.load [--clients 16] [--seconds 20] [--submissions 50]
                              [--render-memory-mb 1024]

Starts `mhinr serve` on its embedded default (API + one worker child) in a temporary data
directory, fits kodim23 (`fast`), then:

1. `--clients` threads render that job for `--seconds`, each request at a size drawn from
   256, 512, 1024, 2048, 4096 (longer side; PNG), and the API process's resident memory is
   sampled every 50 ms: its peak growth over the idle API is compared with the render
   memory budget (INR_RENDER_MEMORY_MB), which admission control must keep it under;
2. `--submissions` POST /fit at once (small images, `fast`, 10 steps) and every one must
   reach `succeeded`.

Prints and writes benchmarks/results/load.md. A benchmark: it measures, it asserts nothing.
"""

import argparse
import collections
import os
import random
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

from benchmarks.common import KODAK, machine, write_result
from tests.service_helpers import png_bytes, wait_ready

SIZES = (256, 512, 1024, 2048, 4096)
ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def wait_for(client: httpx.Client, job: str, timeout: float = 600) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = client.get(f"/jobs/{job}").json()["status"]
        if status in ("succeeded", "failed", "cancelled"):
            return status
        time.sleep(0.25)
    return "timeout"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--submissions", type=int, default=50)
    ap.add_argument("--render-memory-mb", type=int, default=1024)
    args = ap.parse_args()

    data = tempfile.mkdtemp(prefix="mhinr-load-")
    port = free_port()
    env = {
        **os.environ,
        "INR_DATA_DIR": data,
        "INR_RENDER_MEMORY_MB": str(args.render_memory_mb),
        "INR_RENDER_WAIT_S": "10",
    }
    env.pop("INR_REDIS_URL", None)
    log = open(Path(data) / "service.log", "wb")  # noqa: SIM115 (lives as long as the service)
    serve = subprocess.Popen(
        [sys.executable, "-m", "mhinr.app.cli", "serve", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=120)
    try:
        wait_ready(client, serve, Path(data) / "service.log")
        with (KODAK / "kodim23.png").open("rb") as f:
            job = client.post(
                "/fit", files={"file": ("kodim23.png", f)}, data={"preset": "fast"}
            ).json()["job_id"]
        print("fit:", wait_for(client, job))
        client.get(f"/render?job={job}&size=256")  # the model decoded and cached
        idle = rss_mb(serve.pid)

        # 1. renders
        stop = threading.Event()
        codes: collections.Counter = collections.Counter()
        latencies: dict[int, list[float]] = collections.defaultdict(list)
        peak = [idle]
        lock = threading.Lock()

        def sample() -> None:
            while not stop.is_set():
                peak[0] = max(peak[0], rss_mb(serve.pid))
                time.sleep(0.05)

        def render_client(seed: int) -> None:
            rng = random.Random(seed)
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=120) as c:
                while not stop.is_set():
                    size = rng.choice(SIZES)
                    t = time.perf_counter()
                    r = c.get(f"/render?job={job}&size={size}&format=png")
                    with lock:
                        codes[r.status_code] += 1
                        if r.status_code == 200:
                            latencies[size].append(time.perf_counter() - t)

        threads = [threading.Thread(target=sample)]
        threads += [threading.Thread(target=render_client, args=(i,)) for i in range(args.clients)]
        for t in threads:
            t.start()
        time.sleep(args.seconds)
        stop.set()
        for t in threads:
            t.join()
        growth = peak[0] - idle

        # 2. a burst of submissions
        t0 = time.perf_counter()
        jobs: list[str] = []
        refused: collections.Counter = collections.Counter()

        def submit(i: int) -> None:
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=120) as c:
                r = c.post(
                    "/fit",
                    files={"file": ("x.png", png_bytes(64, 48, seed=i))},
                    data={"preset": "fast", "steps": "10"},
                )
                with lock:
                    if r.status_code == 202:
                        jobs.append(r.json()["job_id"])
                    else:
                        refused[r.status_code] += 1

        burst = [threading.Thread(target=submit, args=(i,)) for i in range(args.submissions)]
        for t in burst:
            t.start()
        for t in burst:
            t.join()
        accepted_s = time.perf_counter() - t0
        outcome = collections.Counter(wait_for(client, j) for j in jobs)
        burst_s = time.perf_counter() - t0
    finally:
        client.close()
        serve.terminate()
        serve.wait(30)
        log.close()

    lines = [
        f"machine: {machine().split(',')[0]}, {os.cpu_count()} cores; `mhinr serve` embedded "
        f"(API + 1 worker child), INR_TORCH_THREADS={env.get('INR_TORCH_THREADS', '1')}, "
        f"INR_RENDER_MEMORY_MB={args.render_memory_mb}; the only load on the machine",
        "",
        f"## {args.clients} clients rendering for {args.seconds:g} s "
        "(sizes 256/512/1024/2048/4096, PNG)",
        "",
        f"- answers: {dict(sorted(codes.items()))} (503 = waited 10 s for memory, try again)",
        f"- API resident memory: idle {idle:.0f} MB, peak {peak[0]:.0f} MB, growth "
        f"{growth:.0f} MB against the budget of {args.render_memory_mb} MB: "
        f"{'within' if growth <= args.render_memory_mb else 'OVER'}",
        "",
        "| size | renders | median s | max s |",
        "|---|---|---|---|",
    ]
    for size in SIZES:
        got = sorted(latencies.get(size, []))
        if got:
            lines.append(f"| {size} | {len(got)} | {got[len(got) // 2]:.2f} | {got[-1]:.2f} |")
    lines += [
        "",
        f"## {args.submissions} submissions at once",
        "",
        f"- accepted: {len(jobs)} in {accepted_s:.1f} s; refused: {dict(refused) or 'none'}",
        f"- outcomes: {dict(outcome)}; all finished {burst_s:.1f} s after the first POST",
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    write_result("load.md", "# Load: `python -m benchmarks.load`\n\n" + text)


if __name__ == "__main__":
    main()
