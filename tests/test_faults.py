"""Fault injection with real processes: a Redis server of the test's own (on a free port),
stopped and started again under the API.

Run alone with `pytest -m faults`.
"""

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest
import redis
from fastapi.testclient import TestClient

from app.main import create_app
from tests.service_helpers import png_bytes, settings_for

pytestmark = pytest.mark.faults


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RedisServer:
    """redis-server on 127.0.0.1:<free port>, no persistence, its own folder."""

    def __init__(self, folder: Path):
        self.folder, self.port = folder, _free_port()
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.folder)],
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

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def redis_server(tmp_path):
    if shutil.which("redis-server") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("redis-server is required under CI")
        pytest.skip("redis-server is not installed")
    server = RedisServer(tmp_path)
    server.start()
    yield server
    server.stop()


STORE_ENDPOINTS = [
    ("GET", "/jobs/{job}"),
    ("GET", "/jobs/{job}/metrics"),
    ("GET", "/jobs/{job}/model"),
    ("GET", "/jobs/{job}/events"),
    ("GET", "/jobs/{job}/original"),
    ("GET", "/jobs/{job}/preview"),
    ("GET", "/jobs/{job}/classic?format=jpeg"),
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
