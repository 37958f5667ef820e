"""The service measured as a user sees it: `mhinr serve` (embedded default) on this machine,
a Kodak image fitted with the `fast` preset, then render latency and throughput.

    python -m benchmarks.service [--image kodim23] [--seconds 10]
"""

import argparse
import concurrent.futures
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from benchmarks.common import KODAK, machine, md_table, write_result
from tests.test_e2e import free_port


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--image", default="kodim23")
    ap.add_argument("--seconds", type=float, default=10.0, help="length of each throughput run")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="mhinr-bench-"))
    port = free_port()
    env = {**os.environ, "INR_DATA_DIR": str(tmp / "data")}
    env.pop("INR_REDIS_URL", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "mhinr.app.cli", "serve", "--port", str(port)],
        env=env,
        stdout=(tmp / "log").open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    rows = []
    try:
        with httpx.Client(base_url=base, timeout=120) as c:
            while True:
                try:
                    if c.get("/readyz").status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.2)
            data = (KODAK / f"{args.image}.png").read_bytes()
            t = time.perf_counter()
            job = c.post("/fit", files={"file": ("k.png", data)}, data={"preset": "fast"}).json()[
                "job_id"
            ]
            while c.get(f"/jobs/{job}").json()["status"] not in ("succeeded", "failed"):
                time.sleep(0.1)
            post_to_done = time.perf_counter() - t
            m = c.get(f"/jobs/{job}/metrics").json()
            rows.append(
                [
                    "POST /fit → succeeded (fast preset)",
                    f"{post_to_done:.2f} s",
                    f"{m['bytes']:,} bytes, {m['psnr']:.2f} dB",
                ]
            )
            c.get(f"/render?job={job}&size=64")  # decode and cache the model
            for size in (512, 1024, 4096):
                first, again = [], []
                for k in range(5 if size < 4096 else 3):  # a new size each: computed
                    t = time.perf_counter()
                    r = c.get(f"/render?job={job}&size={size - k}&format=png")
                    first.append(time.perf_counter() - t)
                    assert r.status_code == 200
                for _ in range(5):  # the same URL again: the render cache
                    t = time.perf_counter()
                    r = c.get(f"/render?job={job}&size={size}&format=png")
                    again.append(time.perf_counter() - t)
                    assert r.status_code == 200
                rows.append(
                    [
                        f"render {size} px (PNG, cached model), first / repeated",
                        f"{statistics.median(first) * 1000:.0f} ms / "
                        f"{statistics.median(again) * 1000:.1f} ms",
                        f"{len(r.content):,} bytes",
                    ]
                )
            for label, headers in (
                ("renders/s of a repeated 512-px render, 4 clients", {}),
                ("304 revalidations/s at 512 px, 4 clients", None),
            ):
                if headers is None:
                    etag = c.get(f"/render?job={job}&size=512&format=png").headers["etag"]
                    headers = {"If-None-Match": etag}
                n = throughput(
                    base, f"/render?job={job}&size=512&format=png", headers, args.seconds
                )
                rows.append([label, f"{n:.1f} /s", f"{args.seconds:.0f} s run"])
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(30)
    text = f"""# The service on this machine

`python -m benchmarks.service --image {args.image}` — {machine()}; embedded default
(API + one worker process on the same 2 cores).

{md_table(["what", "measured", "note"], rows)}"""
    print(text)
    write_result("service.md", text)


def throughput(base: str, path: str, headers: dict, seconds: float, clients: int = 4) -> float:
    deadline = time.monotonic() + seconds

    def loop() -> int:
        n = 0
        with httpx.Client(base_url=base, timeout=60) as c:
            while time.monotonic() < deadline:
                r = c.get(path, headers=headers)
                assert r.status_code in (200, 304)
                n += 1
        return n

    with concurrent.futures.ThreadPoolExecutor(clients) as pool:
        total = sum(pool.map(lambda _: loop(), range(clients)))
    return total / seconds


if __name__ == "__main__":
    main()
