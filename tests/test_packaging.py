"""The decoder installs alone: `pip install mhinr` is the codec and the command line; the
service's packages come with `mhinr[server]`."""

import subprocess
import sys
import tomllib
from pathlib import Path

from tests.service_helpers import png_bytes

ROOT = Path(__file__).resolve().parents[1]
SERVER = {
    "fastapi",
    "fastapi_offline",
    "starlette",
    "celery",
    "kombu",
    "redis",
    "uvicorn",
    "multipart",
    "prometheus_client",
    "prometheus_fastapi_instrumentator",
    "cachetools",
    "httpx",
    "werkzeug",
}
# a Python where importing any of the service's packages fails
WITHOUT_SERVER = f"""
import sys
class Refuse:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {sorted(SERVER)!r}:
            raise ImportError(name + " is a dependency of mhinr[server] only")
sys.meta_path.insert(0, Refuse())
from mhinr.app.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_the_base_requirements_hold_none_of_the_services_packages():
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    base = {r.split("[")[0].split(">")[0].split("=")[0].split("<")[0].strip().lower()
            for r in meta["dependencies"]}  # fmt: skip
    normal = {name.replace("_", "-") for name in SERVER} | {"python-multipart", "celery"}
    assert not base & normal
    assert "fastapi" in " ".join(meta["optional-dependencies"]["server"])


def test_fit_render_and_info_run_without_the_services_packages(tmp_path):
    src = tmp_path / "in.png"
    src.write_bytes(png_bytes(40, 32))

    def mhinr(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-c", WITHOUT_SERVER, *args],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=300,
        )

    fit = mhinr("fit", str(src), "-o", str(tmp_path / "x.inr"), "--preset", "fast")
    assert fit.returncode == 0, fit.stderr
    out = mhinr("render", str(tmp_path / "x.inr"), "--size", "80", "-o", str(tmp_path / "x.png"))
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "x.png").stat().st_size > 0
    info = mhinr("info", str(tmp_path / "x.inr"))
    assert info.returncode == 0 and "40" in info.stdout, info.stderr
    serve = mhinr("serve", "--port", "1")  # the service itself says what it lacks
    assert serve.returncode == 2 and "pip install 'mhinr[server]'" in serve.stderr


def test_a_fresh_virtualenv_with_pip_install_decodes_and_renders(tmp_path):
    """`pip install .` (no extras) into a new virtualenv: about 40 s here (torch from the
    wheel on this disk, the rest from PyPI or pip's cache)."""
    from mhinr.model.compress import Options, compress
    from mhinr.model.images import load_image

    image = load_image(png_bytes(40, 32))
    model = tmp_path / "x.inr"
    model.write_bytes(compress(image.pixels, image.mode, Options(preset="fast")).data)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    pip = [str(venv / "bin" / "pip"), "install", "-q", "-c", str(ROOT / "constraints.txt")]
    for what in ("torch", str(ROOT)):  # torch first: the CPU wheel, never a CUDA download
        run = subprocess.run([*pip, what], capture_output=True, text=True, timeout=600)
        assert run.returncode == 0, run.stderr[-3000:]
    listed = subprocess.run([str(venv / "bin" / "pip"), "list"], capture_output=True, text=True)
    names = {line.split()[0].lower() for line in listed.stdout.splitlines()[2:] if line.strip()}
    assert "torch" in names and not names & {"fastapi", "celery", "redis", "uvicorn"}
    out = tmp_path / "big.png"
    render = subprocess.run(
        [str(venv / "bin" / "mhinr"), "render", str(model), "--size", "100", "-o", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,  # not the checkout: the installed package, not the source tree
    )
    assert render.returncode == 0, render.stderr
    from PIL import Image

    assert Image.open(out).size == (100, 80)
