"""One options spec (worker/options.FitSpec) and the plan (model/plan.py): the HTTP form, the
OpenAPI document, the command line and GET /presets all come from the spec; a fit's plan is
what `mhinr fit --explain` prints and what POST /fit answers; the app's lifespan runs the
reaper and the embedded worker (app/background.py)."""

import subprocess
import sys
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from mhinr.app.cli import parser
from mhinr.app.main import create_app
from mhinr.app.routes.jobs import FitForm
from mhinr.model.compress import compress
from mhinr.model.plan import plan
from mhinr.model.presets import PRESETS, Options
from mhinr.worker.options import FitSpec, JobOptions, from_flags
from tests.service_helpers import png_bytes, settings_for
from tests.test_api import post, stored
from tests.test_stage import astronaut_crop

DATA = Path(__file__).parent / "data"


@pytest.fixture
def client(tmp_path):
    with TestClient(create_app(settings_for(tmp_path))) as c:
        yield c


def test_the_form_and_the_openapi_document_are_the_spec(client):
    schema = client.get("/openapi.json").json()
    ref = schema["paths"]["/fit"]["post"]["requestBody"]["content"]["multipart/form-data"]
    form = schema["components"]["schemas"][ref["schema"]["$ref"].rsplit("/", 1)[-1]]
    assert set(form["properties"]) == {"file", *FitForm.model_fields}
    for name, field in FitSpec.model_fields.items():
        assert form["properties"][name]["description"] == field.description
    assert "allOf" not in form  # one flat form, as a client fills it in
    assert form["properties"]["heads"]["type"] == "string"  # "64" or "48x64" in a form


def test_the_command_line_flags_are_the_spec():
    fit = parser()._subparsers._group_actions[0].choices["fit"]  # type: ignore[union-attr]
    flags = {a.dest: a for a in fit._actions}
    for name, field in FitSpec.model_fields.items():
        assert name in flags, name
        assert flags[name].help.startswith(field.description)
    args = parser().parse_args(
        ["fit", "x.png", "--preset", "paper", "--heads", "48x64", "--time-budget", "9"]
    )
    assert from_flags(args) == JobOptions(preset="paper", heads=(48, 64), time_budget_s=9)
    with pytest.raises(SystemExit):  # the targets exclude each other
        parser().parse_args(["fit", "x.png", "--bpp", "1", "--max-bytes", "9"])


def test_the_page_gets_each_option_from_the_spec(client):
    body = client.get("/presets").json()
    assert set(body["presets"]) == set(PRESETS)
    assert set(body["options"]) == set(FitSpec.model_fields)
    assert body["options"]["steps"]["description"] == FitSpec.model_fields["steps"].description


@pytest.mark.parametrize(
    ("options", "words"),
    [
        (Options(preset="fast"), ["16-pixel cells", "nothing trained", "default quantizer"]),
        (Options(preset="compact", bpp=0.5), ["8, 12, 16-pixel", "0.5 bpp", "trained stage"]),
        (Options(preset="compact", steps=0), ["no trained stage"]),
        (Options(preset="max", target_psnr=30), ["30 dB", "3x3 or 7x7", "160,000 steps"]),
        (Options(preset="paper"), ["64x64 heads", "2,000 steps", "weights file"]),
        (Options(preset="fast", width=16), ["relu body, 2x16", "60 steps"]),
        (Options(preset="upscale"), ["exactly", "shipped upscaler", "nothing is trained"]),
    ],
)
def test_the_plan_says_what_will_run(options, words):
    p = plan(options, (192, 256), 3)
    text = p.explain()
    for w in words:
        assert w in text, (w, text)
    trains = options.preset in ("compact", "max", "paper") and options.steps != 0
    assert (p.trains is not None) == (trains or options.width is not None)


def test_options_a_preset_would_ignore_are_422_and_store_nothing(tmp_path, client):
    app = client.app
    for form, words in (
        ({"preset": "compact", "steps": 0, "time_budget_s": 5}, "does not use time_budget_s"),
        ({"preset": "fast", "steps": 3}, "does not use steps"),
        ({"preset": "upscale", "heads": "8"}, "does not use heads"),
        ({"preset": "upscale", "steps": 40}, "does not use steps"),
    ):
        r = post(client, png_bytes(), **form)
        assert r.status_code == 422 and words in r.json()["detail"], r.text
    assert stored(app) == 0  # type: ignore[arg-type]


def test_post_fit_answers_with_the_plan(client):
    r = post(client, png_bytes(), preset="fast", bpp=1)
    assert r.status_code == 202, r.text
    assert any("1 bpp" in line for line in r.json()["plan"])
    assert not any("trained stage" in line for line in r.json()["plan"])


def test_fit_explain_prints_the_plan_and_writes_nothing(tmp_path):
    image = tmp_path / "x.png"
    image.write_bytes(png_bytes())
    out = tmp_path / "x.inr"
    r = subprocess.run(
        [sys.executable, "-m", "mhinr.app.cli", "fit", str(image), "-o", str(out), "--explain",
         "--preset", "max", "--target-psnr", "35"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert "35 dB" in r.stdout and "1. the cosine codec" in r.stdout
    assert not out.exists()


def test_the_same_options_give_the_same_bytes():
    """Options and plans change no file: `fast` at 1 bpp on the astronaut crop is still byte
    for byte the committed file (tests/data/make_preset_files; rewritten twice on 2026-12-05,
    when the codec began to predict the cosines from the constant terms and then the chroma
    from channel 0, and on 2026-12-06, when the coefficients' context model took in their
    parents in frequency)."""
    data = compress(astronaut_crop(), "RGB", Options(preset="fast", bpp=1.0)).data
    assert data == (DATA / "fast_context.inr").read_bytes()


def test_the_lifespan_runs_the_embedded_worker_and_stops_it(tmp_path):
    """`create_app(background=True)` (mhinr serve, `uvicorn --factory
    mhinr.app.main:service`): the worker child starts with the app, readiness follows it,
    and it stops with the app."""
    settings = settings_for(tmp_path)
    app = create_app(settings, background=True)
    with TestClient(app) as c:
        deadline = time.monotonic() + 60
        while c.get("/readyz").status_code != 200:
            assert time.monotonic() < deadline, c.get("/readyz").text
            time.sleep(0.5)
        job = post(c, png_bytes(), preset="fast").json()["job_id"]
        while c.get(f"/jobs/{job}").json()["status"] not in ("succeeded", "failed"):
            assert time.monotonic() < deadline + 60
            time.sleep(0.5)
        assert c.get(f"/jobs/{job}").json()["status"] == "succeeded"
        alive = app.state.worker_alive
        assert alive()
    assert not alive()  # stopped with the app


@pytest.mark.parametrize(
    ("options", "steps", "quantization"),
    [
        (Options(preset="fast"), None, None),  # nothing trained, no weights
        (Options(preset="compact", steps=40), 40, None),  # the stage's steps
        (Options(preset="fast", width=8), 60, "int8"),  # a trained body, stored int8
        (Options(preset="paper", steps=30), 30, "fp32"),
        (Options(preset="fast", heads=(4, 5), steps=20), 20, "fp32"),  # explicit heads
    ],
)
def test_train_steps_and_quantization_say_what_the_file_holds(options, steps, quantization):
    seen = []
    result = compress(astronaut_crop()[:, :64, :64].contiguous(), "RGB", options, seen.append)
    summary = result.summary()
    assert summary["train_steps"] == steps
    assert summary["quantization"] == quantization
    training = [p for p in seen if p.phase in ("training", "stage")]
    if steps is not None:  # the progress ends where the training did
        assert training[-1].step == steps == training[-1].total or options.preset == "compact"


def test_the_spec_names_the_same_choices_as_the_model():
    """The spec's choices are the model's own lists (a preset or a quantization added in one
    place and not the other fails here)."""
    import typing

    from mhinr.model.codec import Quantization
    from mhinr.model.network import BodyKind, ModelKind
    from mhinr.model.presets import PRESET_INFO

    def choices(name: str) -> set[str]:
        ann = FitSpec.model_fields[name].annotation
        args = [a for a in typing.get_args(ann) if a is not type(None)]
        return set(typing.get_args(args[0]) if len(args) == 1 else args)

    assert choices("preset") == set(PRESETS) == set(PRESET_INFO)
    assert choices("quantization") == set(typing.get_args(Quantization))
    assert choices("model") == set(typing.get_args(ModelKind))
    assert choices("body") == set(typing.get_args(BodyKind)) - {"cosine"}  # the codec's own
