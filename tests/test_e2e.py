"""End to end through HTTP against real processes: `mhinr serve` on the embedded default
(API + a Celery worker child on the filesystem transport), and the Redis mode with a
separate `mhinr worker` on the real Redis at 127.0.0.1:6379 (database 13, under a key
prefix of the run's own, whose keys alone it deletes)."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
import redis

from tests.service_helpers import png_bytes, wait_ready

REDIS = "redis://127.0.0.1:6379"
ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(args: list[str], env: dict, log: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "mhinr.app.cli", *args],
        cwd=ROOT,
        env=env,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@contextmanager
def service(
    tmp_path: Path,
    redis_url: str | None = None,
    workers: int = 0,
    env_extra: dict | None = None,
    procs: list | None = None,
):
    """`mhinr serve` (and `workers` separate workers) as processes; `procs`, if given,
    receives them (workers first, serve last) for tests that kill them."""
    port = free_port()
    env = {**os.environ, "INR_DATA_DIR": str(tmp_path / "data"), "PYTHONUNBUFFERED": "1"}
    env.pop("INR_REDIS_URL", None)
    if redis_url:
        env["INR_REDIS_URL"] = redis_url
    env.update(env_extra or {})
    log = tmp_path / "service.log"
    procs = procs if procs is not None else []
    procs += [start(["worker"], env, log) for _ in range(workers)]
    procs.append(start(["serve", "--port", str(port)], env, log))
    client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30)
    try:
        wait_ready(client, procs[-1], log)
        yield client
    finally:
        client.close()
        for p in reversed(procs):
            stop(p)


def submit(client: httpx.Client, data: bytes, **form) -> str:
    form.setdefault("preset", "fast")
    r = client.post(
        "/fit", files={"file": ("in.png", data)}, data={k: str(v) for k, v in form.items()}
    )
    assert r.status_code == 202, r.text
    return r.json()["job_id"]


def wait(client: httpx.Client, job: str, timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rec = client.get(f"/jobs/{job}").json()
        if rec["status"] in ("succeeded", "failed", "cancelled"):
            return rec
        time.sleep(0.3)
    raise AssertionError(f"job {job} did not finish: {rec}")


def fit_render_and_crowd(client: httpx.Client) -> None:
    job = submit(client, png_bytes(64, 48))
    rec = wait(client, job)
    assert rec["status"] == "succeeded", rec
    metrics = client.get(f"/jobs/{job}/metrics").json()
    assert metrics["psnr"] > 28
    r = client.get(f"/render?job={job}&size=128")
    assert r.status_code == 200
    import io

    from PIL import Image

    assert Image.open(io.BytesIO(r.content)).size == (128, 96)
    jobs = [submit(client, png_bytes(40, 32, seed=i)) for i in range(8)]
    assert all(wait(client, j)["status"] == "succeeded" for j in jobs)


def running_job(client: httpx.Client) -> str:
    job = submit(client, png_bytes(256, 256), preset="paper", steps=20000, time_budget_s=300)
    deadline = time.monotonic() + 60
    while client.get(f"/jobs/{job}").json()["status"] != "running":
        assert time.monotonic() < deadline
        time.sleep(0.2)
    time.sleep(1.0)
    return job


def cancel_a_running_job(client: httpx.Client) -> None:
    job = running_job(client)
    t = time.monotonic()
    r = client.post(f"/jobs/{job}/cancel")
    assert r.status_code == 200 and r.json()["status"] == "cancelled"
    # the worker notices within a few seconds and is free for the next job
    nxt = submit(client, png_bytes(32, 32))
    assert wait(client, nxt, timeout=60)["status"] == "succeeded"
    assert time.monotonic() - t < 30
    assert client.get(f"/jobs/{job}").json()["status"] == "cancelled"
    # deleting a running job stops it too, and nothing of it comes back when the worker ends
    job = running_job(client)
    t = time.monotonic()
    assert client.delete(f"/jobs/{job}").status_code == 204
    assert client.get(f"/jobs/{job}").status_code == 404
    nxt = submit(client, png_bytes(32, 32))
    assert wait(client, nxt, timeout=60)["status"] == "succeeded"
    assert time.monotonic() - t < 30
    assert client.get(f"/jobs/{job}").status_code == 404
    assert client.get(f"/jobs/{job}/model").status_code == 404


def events_end_with_the_final_status(client: httpx.Client) -> None:
    job = submit(client, png_bytes(48, 48))
    seen = []
    with client.stream("GET", f"/jobs/{job}/events", timeout=120) as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        event = None
        for line in r.iter_lines():
            if line.startswith("event:"):
                event = line.split(":", 1)[1].strip()
            elif line.startswith("data:"):
                seen.append((event, json.loads(line.split(":", 1)[1])))
    assert seen[-1] == ("status", {"status": "succeeded", "error": None})
    assert any(e == "progress" and "psnr" in d for e, d in seen[:-1])


def test_embedded_default_end_to_end(tmp_path):
    with service(tmp_path) as client:
        fit_render_and_crowd(client)
        cancel_a_running_job(client)
        events_end_with_the_final_status(client)
    assert not (ROOT / "control").exists()  # the broker keeps everything under the data dir


def test_embedded_jobs_survive_a_restart(tmp_path):
    with service(tmp_path) as client:
        done = submit(client, png_bytes(40, 40))
        assert wait(client, done)["status"] == "succeeded"
        slow = submit(client, png_bytes(64, 64), preset="paper", steps=3000, time_budget_s=20)
        queued = submit(client, png_bytes(40, 40, seed=3))
        while client.get(f"/jobs/{slow}").json()["status"] != "running":
            time.sleep(0.2)
    # stopped while `slow` ran and `queued` waited; both finish after the restart
    with service(tmp_path) as client:
        assert client.get(f"/jobs/{done}").json()["status"] == "succeeded"
        assert client.get(f"/render?job={done}&size=80").status_code == 200
        assert wait(client, queued)["status"] == "succeeded"
        assert wait(client, slow, timeout=90)["status"] == "succeeded"


@pytest.fixture
def redis_db():
    """The shared Redis at 127.0.0.1:6379, database 13, under a key prefix of this run's own
    (INR_REDIS_PREFIX: the job store and every queue key): the test deletes only the keys
    under that prefix, never a database."""
    r = redis.Redis.from_url(f"{REDIS}/13")
    try:
        r.ping()
    except redis.RedisError as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"Redis at 127.0.0.1:6379 is required under CI: {exc}")
        pytest.skip(f"no Redis at 127.0.0.1:6379: {exc}")
    prefix = f"mhinr-test-{os.urandom(6).hex()}"
    yield r, f"{REDIS}/13", prefix
    for key in r.scan_iter(match=f"{prefix}:*", count=500):
        r.delete(key)


def test_redis_mode_end_to_end(tmp_path, redis_db):
    r, url, prefix = redis_db
    with service(tmp_path, url, workers=2, env_extra={"INR_REDIS_PREFIX": prefix}) as client:
        fit_render_and_crowd(client)
        cancel_a_running_job(client)
        events_end_with_the_final_status(client)
        assert list(r.scan_iter(match=f"{prefix}:job:*"))
        assert list(r.scan_iter(match=f"{prefix}:_kombu.binding.*"))  # the queue's, too
    assert not (tmp_path / "data" / "jobs").exists() or not any(
        (tmp_path / "data" / "jobs").iterdir()
    )
