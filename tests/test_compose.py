"""docker-compose's default stack (no profile: the CPU worker), built, started, used and
stopped for real.

Starts a Docker daemon of its own (exec root and socket under a temporary folder; its data
root — images and their layer cache, no containers or volumes once the test is done — in
$MHINR_DOCKER_CACHE/root, default ~/.cache/mhinr-docker/root, so a second run rebuilds only
the layers whose inputs changed; a run that finds that folder in use by another takes a
temporary one), builds local stand-ins for the public base images from Debian packages
(docker/local-images.sh: no registry is reachable here), builds the project's images with
`docker-compose`, starts the stack (`docker-compose up`, no profile) on free ports of
127.0.0.1, waits for every healthcheck, and drives the stack over HTTP as a user would: a
Kodak image through `POST /fit` to `succeeded`, a render, the `.inr` download, `/metrics`,
Flower's task list; then `docker-compose restart` (the finished job must still render from
Redis's volume) and `docker-compose down -v`. The daemon is stopped and its folder removed at
the end; the last check is that no process it started is left.

Needs root, dockerd, docker-compose and debootstrap (`make docker-tools` installs the last
three). Without them it is skipped, and under CI (CI=true) it fails. It takes a few minutes
(the image build is most of it): run it alone with `pytest -m compose`.
"""

import fcntl
import io
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import httpx
import pytest
from PIL import Image

from mhinr.model.codec import decode
from tests.test_e2e import free_port

pytestmark = [pytest.mark.compose, pytest.mark.timeout(1500)]

ROOT = Path(__file__).resolve().parents[1]
KODAK = ROOT.parent / "shared" / "data" / "kodak"
SERVICES = {"redis", "api", "worker", "flower"}
TORCH_WHEELS = Path(os.environ.get("MHINR_TORCH_WHEELS", "/opt/wheels"))
DOCKER_CACHE = Path(os.environ.get("MHINR_DOCKER_CACHE", Path.home() / ".cache" / "mhinr-docker"))


def _missing() -> str | None:
    if os.geteuid() != 0:
        return "the compose test starts dockerd and runs debootstrap: it needs root"
    for tool in ("dockerd", "docker", "docker-compose", "debootstrap"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (make docker-tools installs it)"
    if not (KODAK / "kodim23.png").exists():
        return f"the Kodak images are not at {KODAK}"
    return None


class Stack:
    """A private dockerd and one docker-compose project on it."""

    def __init__(self, folder: Path, data_root: Path):
        self.folder = folder
        self.data_root = data_root
        self.sock = folder / "docker.sock"
        self.project = f"mhinr-test-{os.getpid()}"
        self.api_port, self.flower_port = free_port(), free_port()
        self.env = os.environ | {
            "DOCKER_HOST": f"unix://{self.sock}",
            "COMPOSE_PROJECT_NAME": self.project,
            "MHINR_PYTHON_IMAGE": "mhinr-local/python:3.11",
            "MHINR_REDIS_IMAGE": "mhinr-local/redis:7",
            "MHINR_BUILD_NETWORK": "host",  # pip inside the build reaches PyPI as the host does
            "MHINR_PUBLISH_HOST": "127.0.0.1",
            "MHINR_API_PORT": str(self.api_port),
            "MHINR_FLOWER_PORT": str(self.flower_port),
        }
        if list(TORCH_WHEELS.glob("torch-2.13.0+cpu-cp311-*.whl")):
            # the host's CPU wheel, copied into the local base image by local-images.sh
            self.env["MHINR_TORCH_PIP_ARGS"] = "--find-links /wheels"
        self.daemon: subprocess.Popen | None = None
        self.log = folder / "dockerd.log"

    def run(self, *args: str, timeout: float = 900, check: bool = True) -> str:
        done = subprocess.run(
            args, env=self.env, cwd=ROOT, capture_output=True, text=True, timeout=timeout
        )
        if check and done.returncode != 0:
            raise AssertionError(
                f"{' '.join(args)} exited {done.returncode}:\n{done.stdout[-3000:]}\n"
                f"{done.stderr[-3000:]}"
            )
        return done.stdout

    def compose(self, *args: str, timeout: float = 900) -> str:
        return self.run("docker-compose", *args, timeout=timeout)  # no profile: the CPU stack

    def start_daemon(self) -> None:
        self.daemon = subprocess.Popen(
            [
                "dockerd",
                f"--data-root={self.data_root}",
                f"--exec-root={self.folder / 'exec'}",
                f"--pidfile={self.folder / 'docker.pid'}",
                f"--host=unix://{self.sock}",
            ],
            stdout=self.log.open("w"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.daemon.poll() is not None:
                raise AssertionError(f"dockerd exited:\n{self.log.read_text()[-3000:]}")
            ok = subprocess.run(["docker", "info"], env=self.env, capture_output=True)
            if ok.returncode == 0:
                return
            time.sleep(0.5)
        raise AssertionError(f"dockerd did not answer in 60 s:\n{self.log.read_text()[-3000:]}")

    def containers(self) -> dict[str, str]:
        """service name → container id, for this project's containers."""
        ids = self.compose("ps", "-q").split()
        out = {}
        for cid in ids:
            info = json.loads(self.run("docker", "inspect", cid))[0]
            out[info["Config"]["Labels"]["com.docker.compose.service"]] = cid
        return out

    def wait_healthy(self, timeout: float = 300) -> dict[str, str]:
        deadline = time.monotonic() + timeout
        states: dict[str, str] = {}
        while time.monotonic() < deadline:
            states = {}
            for name, cid in self.containers().items():
                state = json.loads(self.run("docker", "inspect", cid))[0]["State"]
                states[name] = state.get("Health", {}).get("Status", state["Status"])
            if set(states) >= SERVICES and all(states[s] == "healthy" for s in SERVICES):
                return states
            time.sleep(2)
        logs = self.compose("logs", "--tail=30")
        raise AssertionError(f"not every service became healthy: {states}\n{logs[-5000:]}")

    def stop_daemon(self) -> None:
        if self.daemon is None:
            return
        if self.daemon.poll() is None:
            self.daemon.send_signal(signal.SIGTERM)
            try:
                self.daemon.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(self.daemon.pid, signal.SIGKILL)
                self.daemon.wait()
        # anything dockerd started (containerd, shims) that outlived it, and its mounts
        for pid in self.leftovers():
            os.kill(pid, signal.SIGKILL)
        mounts = [line.split()[1] for line in Path("/proc/mounts").read_text().splitlines()]
        ours = (str(self.folder), str(self.data_root))
        for point in sorted((m for m in mounts if m.startswith(ours)), reverse=True):
            subprocess.run(["umount", "-l", point], capture_output=True)

    def leftovers(self) -> list[int]:
        """Processes whose command line names this stack's folder."""
        pids = []
        for proc in Path("/proc").iterdir():
            if proc.name.isdigit():
                try:
                    cmd = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
                except OSError:
                    continue
                if str(self.folder) in cmd:
                    pids.append(int(proc.name))
        return pids


@pytest.fixture(scope="module")
def stack():
    reason = _missing()
    if reason:
        if os.environ.get("CI") == "true":
            pytest.fail(f"the compose test is required under CI: {reason}")
        pytest.skip(reason)
    folder = Path(tempfile.mkdtemp(prefix="mhinr-dk-", dir="/tmp"))  # short: socket paths
    DOCKER_CACHE.mkdir(parents=True, exist_ok=True)
    lock = (DOCKER_CACHE / "root.lock").open("w")
    try:  # one daemon at a time on the cached data root; another run takes a fresh one
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        data_root = DOCKER_CACHE / "root"
    except BlockingIOError:
        data_root = folder / "root"
    s = Stack(folder, data_root)
    try:
        s.start_daemon()
        s.run("bash", "docker/local-images.sh", timeout=900)
        s.compose("build", timeout=1200)
        s.compose("up", "-d", timeout=300)
        yield s
    finally:
        try:
            if s.daemon is not None and s.daemon.poll() is None:
                s.run("docker-compose", "down", "-v", check=False)
                s.run("docker", "image", "prune", "-f", check=False)  # superseded builds
        finally:
            s.stop_daemon()
            shutil.rmtree(folder, ignore_errors=True)
            lock.close()
    assert s.leftovers() == [], "processes of the compose test outlived it"


def _api(stack: Stack) -> httpx.Client:
    return httpx.Client(base_url=f"http://127.0.0.1:{stack.api_port}", timeout=60)


def _wait_for(job: dict, client: httpx.Client, timeout: float = 300) -> list[str]:
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = client.get(job["links"]["self"]).json()["status"]
        if not seen or seen[-1] != status:
            seen.append(status)
        if status in ("succeeded", "failed", "cancelled"):
            return seen
        time.sleep(0.5)
    raise AssertionError(f"the job did not finish in {timeout} s: {seen}")


JOB: dict = {}


def test_every_service_of_the_default_stack_becomes_healthy(stack):
    states = stack.wait_healthy()
    assert all(states[s] == "healthy" for s in SERVICES), states


def test_a_kodak_image_is_fitted_rendered_and_downloaded(stack):
    stack.wait_healthy()
    with _api(stack) as client:
        assert client.get("/readyz").json() == {"status": "ready"}
        with (KODAK / "kodim23.png").open("rb") as f:
            r = client.post("/fit", files={"file": ("kodim23.png", f, "image/png")},
                            data={"preset": "fast"})  # fmt: skip
        assert r.status_code == 202, r.text
        job = r.json()
        seen = _wait_for(job, client)
        assert seen[-1] == "succeeded", client.get(job["links"]["self"]).text
        record = client.get(job["links"]["self"]).json()
        assert record["metrics"]["psnr"] > 30 and record["device"] == "cpu"

        render = client.get("/render", params={"job": job["job_id"], "size": 1024})
        assert render.status_code == 200 and render.headers["content-type"] == "image/png"
        with Image.open(io.BytesIO(render.content)) as img:
            assert img.size == (1024, 683)

        model = client.get(job["links"]["model"])
        assert model.status_code == 200
        net, _ = decode(model.content)  # the worker's file decodes here, outside the stack
        assert len(model.content) == record["metrics"]["bytes"]
        assert net is not None

        text = client.get("/metrics").text
        assert 'mhinr_jobs{status="succeeded"} 1.0' in text
    JOB.update(job, png=render.content)


def test_flower_lists_the_fit_task(stack):
    assert JOB, "the fit test did not run"
    flower = f"http://127.0.0.1:{stack.flower_port}"
    deadline = time.monotonic() + 60
    tasks: dict = {}
    while time.monotonic() < deadline:  # task events reach Flower a moment after the task
        tasks = httpx.get(f"{flower}/api/tasks", timeout=10).json()
        mine = [t for t in tasks.values() if JOB["job_id"] in str(t.get("args"))]
        if mine and mine[0]["state"] == "SUCCESS":
            assert mine[0]["name"] == "mhinr.fit"
            return
        time.sleep(1)
    raise AssertionError(f"Flower does not list the finished fit: {tasks}")


def test_a_finished_job_survives_a_restart_of_the_stack(stack):
    assert JOB, "the fit test did not run"
    stack.compose("restart", timeout=300)
    stack.wait_healthy()
    with _api(stack) as client:
        record = client.get(JOB["links"]["self"]).json()
        assert record["status"] == "succeeded"
        again = client.get("/render", params={"job": JOB["job_id"], "size": 1024})
        assert again.status_code == 200 and again.content == JOB["png"]


def test_down_removes_the_containers_and_the_volume(stack):
    stack.compose("down", "-v", timeout=300)
    assert stack.compose("ps", "-q").split() == []
    volumes = stack.run("docker", "volume", "ls", "-q").split()
    assert not [v for v in volumes if v.startswith(stack.project)], volumes
