"""The decoder installs alone: `pip install mhinr` is the codec and the command line; the
service's packages come with `mhinr[server]`."""

import json
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

import numpy as np

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
    assert not base & {"torch", "safetensors", "pydantic", "zstandard"}  # mhinr[fit]
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


# what `pip install mhinr` may bring: the decoder's packages and what pip needs to install
DECODER = {"mhinr", "numpy", "pillow", "constriction"}
VENV_OWN = {"pip", "setuptools", "_distutils_hack", "pkg_resources", "distutils-precedence.pth"}
# on disk, NumPy 2.4.6 (73 MB, 28 of them OpenBLAS) and Pillow 13 (23 MB) are most of it
MAX_DECODER_MB = 110


def _installed_mb(site: Path) -> float:
    """MB on disk of what pip installed into `site` beyond the venv's own pip and setuptools."""
    total = 0
    for entry in site.iterdir():
        if entry.name.split("-")[0].lower() in VENV_OWN or entry.name in VENV_OWN:
            continue
        files = [entry] if entry.is_file() else [f for f in entry.rglob("*") if f.is_file()]
        total += sum(f.stat().st_size for f in files)
    return total / 2**20


def test_a_fresh_virtualenv_with_pip_install_decodes_and_renders_without_pytorch(tmp_path):
    """`pip install .` (no extras) into a new virtualenv: NumPy, Pillow and constriction, no
    PyTorch (about 15 s here, from pip's cache). Its `mhinr render` and `info` give what the
    PyTorch decoder gives on the presets' files; the files it cannot decode, and `fit`, say
    what to install."""
    import shutil

    from PIL import Image

    from mhinr.app.cli import describe
    from mhinr.model.codec import decode
    from mhinr.model.render import render

    # from a copy of what a distribution holds: pip's build leaves a build/ folder beside it
    src = tmp_path / "src"
    shutil.copytree(ROOT / "mhinr", src / "mhinr", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    pip = [str(venv / "bin" / "pip"), "install", "-q", "-c", str(ROOT / "constraints.txt")]
    run = subprocess.run([*pip, str(src)], capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    listed = subprocess.run([str(venv / "bin" / "pip"), "list"], capture_output=True, text=True)
    names = {line.split()[0].lower() for line in listed.stdout.splitlines()[2:] if line.strip()}
    assert names - {"pip", "setuptools"} == DECODER
    (site,) = (venv / "lib").glob("python3*/site-packages")
    size = _installed_mb(site)
    print(f"pip install . added {size:.1f} MB")
    assert size <= MAX_DECODER_MB

    def mhinr(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [str(venv / "bin" / "mhinr"), *args],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=tmp_path,  # not the checkout: the installed package, not the source tree
        )

    data_dir = ROOT / "tests" / "data"
    for name in ("fast_cosine.inr", "compact_v3_stage.inr"):
        data = (data_dir / name).read_bytes()
        out = tmp_path / f"{name}.png"
        done = mhinr("render", str(data_dir / name), "--size", "300", "-o", str(out))
        assert done.returncode == 0, done.stderr
        net, coded = decode(data)
        theirs = render(net, (coded.height, coded.width), (225, 300)).permute(1, 2, 0).numpy()
        mine = np.asarray(Image.open(out))
        diff = np.abs(mine.astype(int) - theirs.astype(int))
        assert diff.max() <= 1 and (diff > 0).mean() < 1e-3
        info = mhinr("info", "--json", str(data_dir / name))
        assert info.returncode == 0 and json.loads(info.stdout) == describe(data)
    old = mhinr("render", str(data_dir / "fast_v1.inr"), "--size", "90", "-o", "x.png")
    assert old.returncode == 2 and "pip install 'mhinr[fit]'" in old.stderr, old.stderr
    from mhinr.model.compress import Options, compress
    from tests.conftest import smooth_image

    upscaler = tmp_path / "up.inr"
    upscaler.write_bytes(compress(smooth_image(3, 20, 24), "RGB", Options("upscale")).data)
    up = mhinr("info", str(upscaler))
    assert up.returncode == 2 and "holds an upscaler" in up.stderr, up.stderr
    assert "pip install 'mhinr[fit]'" in up.stderr
    fit = mhinr("fit", str(data_dir / "fast_v1.inr"), "-o", "x.inr")
    assert fit.returncode == 2 and "fit needs pip install 'mhinr[fit]'" in fit.stderr, fit.stderr


def test_render_and_info_do_not_import_pytorch():
    """`mhinr render` and `mhinr info` of a cosine codec file run on NumPy alone even where
    PyTorch is installed: `fit`'s options (which import the model, and PyTorch, 1.5 s here)
    are not built for them (cli.parser's `fit_flags`)."""
    data = ROOT / "tests" / "data" / "fast_context.inr"
    code = (
        "import sys; from mhinr.app.cli import main; "
        f"main(['info', {str(data)!r}]); "
        f"main(['render', {str(data)!r}, '--size', '64', '-o', sys.argv[1]]); "
        "print('torch' in sys.modules)"
    )
    with tempfile.TemporaryDirectory() as tmp:
        out = subprocess.run(
            [sys.executable, "-c", code, f"{tmp}/x.png"], capture_output=True, text=True, timeout=60
        )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().endswith("False"), out.stdout
