"""Fault injection with real processes: workers SIGKILLed in the middle of a fit, a Redis
server of the test's own (on a free port) stopped and started again under the API and the
workers, a CUDA setting without a GPU.

Run alone with `pytest -m faults`. Leases are shortened to 4 s here (INR_LEASE_S) so that a
dead worker's job is requeued within seconds; the default is 30 s.
"""

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import httpx
import pytest
import redis
from fastapi.testclient import TestClient

from mhinr.app.main import create_app
from tests.service_helpers import png_bytes, settings_for
from tests.test_e2e import free_port, service, submit

pytestmark = pytest.mark.faults


class RedisServer:
    """redis-server on 127.0.0.1:<free port>, no persistence, its own folder."""

    def __init__(self, folder: Path, persist: bool = False):
        self.folder, self.port, self.persist = folder, free_port(), persist
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        # with `persist`, every write is on disk before it is acknowledged (a restart loses
        # nothing, as with compose's append-only Redis); else nothing is kept
        aof = ["--appendonly", "yes", "--appendfsync", "always"] if self.persist else []
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             *(aof or ["--appendonly", "no"]), "--dir", str(self.folder)],
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                redis.Redis.from_url(self.url).ping()
                return
            except redis.ConnectionError:
                time.sleep(0.05)
        raise AssertionError("redis-server did not start")

    def stop(self, graceful: bool = False) -> None:
        if self.proc is not None and self.proc.poll() is None:
            (self.proc.terminate if graceful else self.proc.kill)()
            self.proc.wait(30)


def _redis_server(folder: Path, persist: bool):
    if shutil.which("redis-server") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("redis-server is required under CI")
        pytest.skip("redis-server is not installed")
    server = RedisServer(folder, persist)
    server.start()
    return server


@pytest.fixture
def redis_server(tmp_path):
    server = _redis_server(tmp_path, persist=False)
    yield server
    server.stop()


@pytest.fixture
def durable_redis(tmp_path):
    folder = tmp_path / "redis"
    folder.mkdir()
    server = _redis_server(folder, persist=True)
    yield server
    server.stop()


FAST_LEASE = {"INR_LEASE_S": "4"}


def _children(pid: int) -> list[int]:
    """Live child processes of `pid` (of any of its threads)."""
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid and fields[0] != "Z":  # ppid, not a zombie
            out.append(int(stat.parent.name))
    return out


def _poll(client: httpx.Client, path: str) -> dict | None:
    """GET `path` as JSON, or None while the service cannot answer (a store outage)."""
    try:
        r = client.get(path)
    except httpx.TransportError:
        return None
    return r.json() if r.status_code == 200 else None


def _wait_all(client: httpx.Client, jobs: list[str], timeout: float) -> dict[str, dict]:
    done: dict[str, dict] = {}
    deadline = time.monotonic() + timeout
    while len(done) < len(jobs) and time.monotonic() < deadline:
        for job in jobs:
            if job not in done:
                rec = _poll(client, f"/jobs/{job}")
                if rec is not None and rec["status"] in ("succeeded", "failed", "cancelled"):
                    done[job] = rec
        time.sleep(0.3)
    left = {j: _poll(client, f"/jobs/{j}") for j in jobs if j not in done}
    assert not left, f"jobs still unfinished after {timeout} s: {left}"
    return done


def _running_job(client: httpx.Client, jobs: list[str], timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for job in jobs:
            rec = _poll(client, f"/jobs/{job}")
            if rec is not None and rec["status"] == "running" and rec.get("progress"):
                return rec
        time.sleep(0.1)
    raise AssertionError("no job started running")


def _long(i: int) -> dict:
    """A fit that runs for about 3 s whatever the machine: long enough to be killed in."""
    return {"preset": "paper", "steps": 20000, "time_budget_s": 3, "seed": i}


def test_embedded_worker_killed_mid_fit_is_restarted_and_every_job_succeeds(tmp_path):
    procs: list = []
    with service(tmp_path, env_extra=FAST_LEASE, procs=procs) as client:
        serve = procs[-1]
        jobs = [submit(client, png_bytes(48, 48, seed=i), **_long(i)) for i in range(6)]
        victim = _running_job(client, jobs)
        (child,) = _children(serve.pid)
        os.kill(child, signal.SIGKILL)
        done = _wait_all(client, jobs, timeout=180)
        assert all(r["status"] == "succeeded" for r in done.values()), done
        again = done[victim["job_id"]]
        assert again["attempts"] == 2 and again["requeued"] == 1, again
        (new_child,) = _children(serve.pid)
        assert new_child != child  # the supervisor started a new worker
        assert client.get("/readyz").status_code == 200
    log = (tmp_path / "service.log").read_text()
    assert "the worker exited" in log and "queued again" in log


def test_redis_mode_survives_a_killed_worker_and_a_redis_restart(tmp_path, durable_redis):
    procs: list = []
    with service(
        tmp_path, durable_redis.url, workers=2, env_extra=FAST_LEASE, procs=procs
    ) as client:
        jobs = []
        for i in range(20):  # every fourth a 3-second fit, the rest short ones
            form = _long(i) if i % 4 == 0 else {"preset": "fast", "seed": i}
            jobs.append(submit(client, png_bytes(48, 40, seed=i), **form))
        victim = _running_job(client, jobs)
        pid = int(victim["worker"].rsplit(":", 1)[1])
        worker = next(p for p in procs[:-1] if p.pid == pid)
        os.killpg(worker.pid, signal.SIGKILL)  # mid-fit
        time.sleep(1.0)
        _running_job(client, jobs)  # the other worker goes on …
        durable_redis.stop(graceful=True)  # … and Redis restarts under everyone
        time.sleep(3.0)
        durable_redis.start()
        done = _wait_all(client, jobs, timeout=240)
        assert all(r["status"] == "succeeded" for r in done.values()), {
            j: (r["status"], r.get("error")) for j, r in done.items()
        }
        assert done[victim["job_id"]]["attempts"] >= 2
        for job in jobs:  # each rendered from its one stored model
            assert client.get(f"/render?job={job}&size=96").status_code == 200
    log = (tmp_path / "service.log").read_text()
    for job in jobs:  # one visible completion each: exactly one worker wrote the result
        assert log.count(f"job {job}: succeeded") == 1, job


STORE_ENDPOINTS = [
    ("GET", "/jobs/{job}"),
    ("GET", "/jobs/{job}/metrics"),
    ("GET", "/jobs/{job}/model"),
    ("GET", "/jobs/{job}/events"),
    ("GET", "/jobs/{job}/original"),
    ("GET", "/jobs/{job}/preview"),
    ("GET", "/jobs/{job}/classic?format=jpeg"),
    ("GET", "/jobs/{job}/classic?format=avif"),
    ("GET", "/render?job={job}&size=64"),
    ("DELETE", "/jobs/{job}"),
    ("GET", "/metrics"),
]


def test_redis_down_gives_503_json_on_every_store_endpoint_and_recovers(tmp_path, redis_server):
    settings = settings_for(tmp_path, redis_url=redis_server.url)
    with TestClient(create_app(settings)) as client:
        r = client.post("/fit", files={"file": ("x.png", png_bytes())})
        assert r.status_code == 202, r.text
        job = r.json()["job_id"]

        redis_server.stop()
        answers = {}
        post = client.post("/fit", files={"file": ("x.png", png_bytes())})
        answers["POST /fit"] = post
        for method, path in STORE_ENDPOINTS:
            answers[f"{method} {path}"] = client.request(method, path.format(job=job))
        for what, resp in answers.items():
            assert resp.status_code == 503, (what, resp.status_code, resp.text)
            assert "not reachable" in resp.json()["detail"], (what, resp.text)
            assert resp.headers["retry-after"] == "5", what
        assert client.get("/readyz").status_code == 503

        redis_server.start()  # the same port, empty (no persistence): the API recovers
        assert client.get("/readyz").status_code == 200
        assert client.get(f"/jobs/{job}").status_code == 404  # that server lost it
        again = client.post("/fit", files={"file": ("x.png", png_bytes())})
        assert again.status_code == 202, again.text
        assert client.get(f"/jobs/{again.json()['job_id']}").json()["status"] == "queued"


def test_redis_keeps_finished_jobs_for_the_retention_only(redis_server):
    from mhinr.worker.store import RedisStore, new_job_id

    st = RedisStore(redis_server.url, expiry_s=3600, retention_s=60)
    job = new_job_id()
    st.create({"id": job, "status": "queued", "created_at": 0.0}, b"upload")
    assert st.r.ttl(f"mhinr:job:{job}") > 3000
    st.save_model(job, b"model")
    st.write({"id": job, "status": "succeeded", "created_at": 0.0})
    for kind in ("job", "upload", "model"):
        assert 0 < st.r.ttl(f"mhinr:{kind}:{job}") <= 60, kind
    st.drop_upload(job)
    assert st.load_upload(job) is None and st.load_model(job) == b"model"
    assert st.cancel(job) == "succeeded"  # an ended job is left as it is
    assert st.delete(job) and st.get(job) is None and st.load_model(job) is None
    assert not st.delete(job)
    st.r.delete(f"mhinr:cancel:{job}")


def test_redis_idempotency_keys_are_claimed_once_and_expire(redis_server):
    from mhinr.worker.store import RedisStore

    st = RedisStore(redis_server.url, expiry_s=3600, retention_s=60)
    assert st.remember_key("k" * 64, "job-one", "fp1", ttl=0.5) is None
    assert st.remember_key("k" * 64, "job-two", "fp2", ttl=0.5) == ("job-one", "fp1")
    time.sleep(0.6)
    assert st.remember_key("k" * 64, "job-two", "fp2", ttl=60) is None  # expired: afresh
    st.forget_key("k" * 64)
    assert st.remember_key("k" * 64, "job-three", "fp3", ttl=60) is None
    st.forget_key("k" * 64)


@pytest.fixture
def live_api(tmp_path):
    """The app under a real uvicorn in a thread (real sockets, real HTTP framing)."""
    import threading

    import uvicorn

    settings = settings_for(tmp_path, max_upload_bytes=100_000, body_idle_s=1.0, body_timeout_s=3.0)
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    yield port
    server.should_exit = True
    thread.join(10)


def _raw_request(port: int, head: bytes, pieces: list[bytes], pause: float) -> tuple[str, float]:
    """Send `head`, then `pieces` with `pause` seconds between them (from a thread, until the
    server answers); return the status line and how long the answer took."""
    import threading

    t = time.monotonic()
    answered = threading.Event()
    with socket.create_connection(("127.0.0.1", port), timeout=20) as s:
        s.sendall(head)

        def trickle() -> None:
            for piece in pieces:
                if answered.wait(pause):
                    return
                try:
                    s.sendall(piece)
                except OSError:
                    return  # the server answered and closed

        sender = threading.Thread(target=trickle, daemon=True)
        sender.start()
        try:
            answer = s.recv(4096).decode(errors="replace")
        finally:
            answered.set()
            sender.join(5)
    return answer.split("\r\n", 1)[0], time.monotonic() - t


def test_a_trickled_body_is_cut_off_with_408(live_api):
    head = (
        b"POST /fit HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=b0\r\n"
        b"Content-Length: 1000\r\n\r\n--b0\r\n"
    )
    status, took = _raw_request(live_api, head, [b"x"] * 1000, pause=0.4)  # 1 byte / 0.4 s
    assert " 408 " in status and took < 8, (status, took)
    stalled, took = _raw_request(live_api, head, [b"x" * 10], pause=5.0)  # then silence
    assert " 408 " in stalled and took < 8, (stalled, took)


def test_an_over_limit_chunked_upload_is_413(live_api):
    boundary = b"b0undary"

    def body():
        yield b"--" + boundary + b'\r\nContent-Disposition: form-data; name="file"; '
        yield b'filename="x.png"\r\nContent-Type: image/png\r\n\r\n'
        for _ in range(40):  # 40 × 8 KB > 100,000 + 64 KB of slack
            yield b"\0" * 8192
        yield b"\r\n--" + boundary + b"--\r\n"

    r = httpx.post(
        f"http://127.0.0.1:{live_api}/fit",
        content=body(),
        headers={"Content-Type": f"multipart/form-data; boundary={boundary.decode()}"},
        timeout=20,
    )
    assert r.status_code == 413 and "over 100,000 bytes" in r.json()["detail"], r.text


def test_redis_mode_is_not_ready_while_no_worker_beats(tmp_path, redis_server):
    from tests.test_e2e import start, stop

    env = {**os.environ, "INR_DATA_DIR": str(tmp_path / "data"), "INR_REDIS_URL": redis_server.url}
    log = tmp_path / "service.log"
    port = free_port()
    serve = start(["serve", "--port", str(port)], env, log)
    worker = None
    try:
        client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10)
        deadline = time.monotonic() + 60
        ready = None
        while time.monotonic() < deadline:
            try:
                ready = client.get("/readyz")
                break
            except httpx.TransportError:
                time.sleep(0.2)
        assert ready is not None and ready.status_code == 503, ready and ready.text
        assert "no worker is alive" in ready.json()["detail"]
        worker = start(["worker"], env, log)
        while client.get("/readyz").status_code != 200:
            assert time.monotonic() < deadline + 60, log.read_text()[-2000:]
            time.sleep(0.3)
        stop(worker)  # a worker that stops is missed within its heartbeat's lifetime (15 s)
        while client.get("/readyz").status_code == 200:
            assert time.monotonic() < deadline + 120
            time.sleep(0.5)
    finally:
        for proc in (worker, serve):
            if proc is not None:
                stop(proc)
