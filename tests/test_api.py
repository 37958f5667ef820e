"""The HTTP contract, bad input and awkward input, in-process (the fit task code runs
synchronously where a test needs a finished job; the queue itself is tested end to end in
test_e2e.py)."""

import io
import time

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from mhinr.app.main import create_app
from mhinr.model.presets import PRESETS
from mhinr.worker.fit import run_fit
from tests.service_helpers import awkward_inputs, bomb_png, png_bytes, settings_for


@pytest.fixture
def env(tmp_path):
    settings = settings_for(tmp_path, max_upload_bytes=300_000)
    app = create_app(settings)
    with TestClient(app) as client:
        yield client, app, settings


def stored(app) -> int:
    return len(list(app.state.store.records()))


def post(client, data: bytes, name="x.png", **form):
    return client.post(
        "/fit", files={"file": (name, data)}, data={k: str(v) for k, v in form.items()}
    )


def finished_job(client, app, settings, data=None, **form) -> str:
    form.setdefault("preset", "fast")
    if form["preset"] != "fast":  # fast trains nothing and refuses steps
        form.setdefault("steps", 5)
    r = post(client, data or png_bytes(), **form)
    assert r.status_code == 202, r.text
    job = r.json()["job_id"]
    run_fit(job, settings, app.state.store)
    assert client.get(f"/jobs/{job}").json()["status"] == "succeeded"
    return job


BAD_UPLOADS = {
    "non-image bytes": (b"this is plainly text, not an image at all" * 20, 415, "not an image"),
    "zero bytes": (b"", 400, "empty"),
    "truncated png": (png_bytes(200, 150)[:3000], 400, "truncated"),
    "decompression bomb": (bomb_png(), 413, "pixels"),
}


@pytest.mark.parametrize("case", BAD_UPLOADS)
def test_bad_uploads_are_refused_with_a_reason_and_store_nothing(env, case):
    client, app, _ = env
    data, status, words = BAD_UPLOADS[case]
    r = post(client, data)
    assert r.status_code == status, r.text
    assert words in r.json()["detail"]
    assert stored(app) == 0


def test_upload_over_the_byte_limit_is_refused_before_reading(env):
    client, app, _ = env
    big = b"\x89PNG" + b"\0" * 600_000
    r = post(client, big)
    assert r.status_code == 413 and "300,000" in r.json()["detail"]
    assert stored(app) == 0


@pytest.mark.parametrize(
    ("form", "words"),
    [
        ({"steps": -1}, "steps"),
        ({"steps": 10**9}, "steps"),
        ({"alpha": 64, "width": 32}, "alpha"),
        ({"preset": "paper", "alpha": 300}, "alpha"),
        ({"preset": "ultra"}, "preset"),
        ({"model": "transformer"}, "model"),
        ({"heads": "12x"}, "heads"),
        ({"heads": "100"}, "heads"),
        ({"heads": "６４"}, "heads"),  # full-width digits: int() would take them
        ({"qualty": 90}, "unknown parameter 'qualty'"),
        ({"quantization": "int4"}, "quantization"),
        ({"target_psnr": 30, "bpp": 1}, "at most one"),
        ({"time_budget_s": 10**6}, "time_budget_s"),
        ({"preset": "fast", "steps": 100}, "does not use steps"),  # it trains nothing
        ({"preset": "fast", "time_budget_s": 30}, "does not use time_budget_s"),
    ],
)
def test_options_out_of_range_are_422_and_store_nothing(env, form, words):
    client, app, _ = env
    r = post(client, png_bytes(), **form)
    assert r.status_code == 422, r.text
    assert words in r.json()["detail"]
    assert stored(app) == 0


def test_unknown_job_is_404_everywhere(env):
    client, _, _ = env
    for path in (
        "/jobs/AAAAAAAAAAAAAAAAAAAAAA",
        "/jobs/AAAAAAAAAAAAAAAAAAAAAA/metrics",
        "/jobs/AAAAAAAAAAAAAAAAAAAAAA/model",
        "/render?job=AAAAAAAAAAAAAAAAAAAAAA&size=8",
        "/jobs/..%2F..%2Fetc%2Fpasswd",
        "/render?job=../../etc/passwd",
    ):
        r = client.get(path)
        assert r.status_code == 404, path
        assert "no job" in r.json()["detail"] or r.json()["detail"] == "Not Found"
    assert client.delete("/jobs/AAAAAAAAAAAAAAAAAAAAAA").status_code == 404


def test_render_and_model_before_success_are_409(env):
    client, _, _ = env
    job = post(client, png_bytes(), preset="fast").json()["job_id"]  # no worker: stays queued
    assert client.get(f"/jobs/{job}").json()["status"] == "queued"
    for path in (f"/render?job={job}&size=64", f"/jobs/{job}/model", f"/jobs/{job}/metrics"):
        r = client.get(path)
        assert r.status_code == 409 and "queued" in r.json()["detail"]


@pytest.mark.parametrize("size", ["0", "-5", "abc", "100000", "1.5"])
def test_bad_render_sizes_are_422(env, size):
    client, app, settings = env
    job = finished_job(client, app, settings)
    r = client.get(f"/render?job={job}&size={size}")
    assert r.status_code == 422, r.text
    assert "size" in r.json()["detail"]


def test_render_over_the_pixel_limit_is_422(env):
    client, app, settings = env
    job = finished_job(client, app, settings)
    r = client.get(f"/render?job={job}&width=8000&height=8000")
    assert r.status_code == 422 and "limit" in r.json()["detail"]


def test_render_sizes_formats_and_etag(env):
    client, app, settings = env
    job = finished_job(client, app, settings, png_bytes(40, 32))
    r = client.get(f"/render?job={job}&size=80")
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    assert Image.open(io.BytesIO(r.content)).size == (80, 64)
    r2 = client.get(f"/jobs/{job}/render?width=50&height=20&format=jpeg")
    assert Image.open(io.BytesIO(r2.content)).format == "JPEG"
    assert Image.open(io.BytesIO(r2.content)).size == (50, 20)
    r3 = client.get(f"/render?job={job}&size=80", headers={"Accept": "image/webp,*/*"})
    assert r3.headers["content-type"] == "image/webp"
    etag = r.headers["etag"]
    r4 = client.get(f"/render?job={job}&size=80", headers={"If-None-Match": etag})
    assert r4.status_code == 304 and not r4.content
    assert (
        client.get(f"/render?job={job}&size=81", headers={"If-None-Match": etag}).status_code == 200
    )


@pytest.mark.parametrize(
    ("accept", "media"),
    [
        ("", "image/png"),
        ("*/*", "image/png"),
        ("image/webp;q=0, image/png", "image/png"),  # q=0: not acceptable
        ("image/avif,image/webp,image/apng,*/*;q=0.8", "image/avif"),  # a browser's
        ("image/jpeg, image/webp;q=0.9", "image/jpeg"),
        ("image/*;q=0.5, image/webp", "image/webp"),
    ],
)
def test_render_format_follows_accept_with_q_values(env, accept, media):
    client, app, settings = env
    job = finished_job(client, app, settings, png_bytes(40, 32))
    r = client.get(f"/render?job={job}&size=60", headers={"Accept": accept})
    assert r.status_code == 200 and r.headers["content-type"] == media
    assert Image.open(io.BytesIO(r.content)).format == media.split("/")[1].upper()


def test_render_quality_accept_406_and_conditional_requests(env):
    client, app, settings = env
    job = finished_job(client, app, settings, png_bytes(40, 32))
    url = f"/render?job={job}&size=200&format=jpeg"
    low, high = client.get(url + "&quality=20"), client.get(url + "&quality=95")
    assert len(low.content) < len(high.content) and low.headers["etag"] != high.headers["etag"]
    r = client.get(f"/render?job={job}&size=60&format=png&quality=50")
    assert r.status_code == 422 and "lossless" in r.json()["detail"]
    r = client.get(f"/render?job={job}&size=60", headers={"Accept": "text/html"})
    assert r.status_code == 406 and "image/png" in r.json()["detail"]
    r = client.get(f"/render?job={job}&size=60&dpr=2&format=png")  # device pixel ratio
    assert Image.open(io.BytesIO(r.content)).size == (120, 96)
    r = client.get(f"/render?job={job}&dpr=1.5&format=png")  # the native size × 1.5
    assert Image.open(io.BytesIO(r.content)).size == (60, 48)
    assert client.get(f"/render?job={job}&size=60&dpr=5").status_code == 422
    r = client.get(f"/render?job={job}&size=60&sise=2")
    assert r.status_code == 422 and "'sise'" in r.json()["detail"]
    tag = client.get(f"/render?job={job}&size=60").headers["etag"]
    for header, status in (
        ("*", 304),
        (f'"other", W/{tag}', 304),  # weak comparison, one of a list
        (f'"x{tag[1:-1]}x"', 200),  # a tag that merely contains ours
    ):
        r = client.get(f"/render?job={job}&size=60", headers={"If-None-Match": header})
        assert r.status_code == status, header
    model = client.get(f"/jobs/{job}/model")
    tag = model.headers["etag"]
    again = client.get(f"/jobs/{job}/model", headers={"If-None-Match": tag})
    assert again.status_code == 304 and not again.content


def test_head_options_and_405_list_every_method(env):
    client, app, settings = env
    job = finished_job(client, app, settings, png_bytes(40, 32))
    for path in (f"/jobs/{job}", f"/render?job={job}&size=50", f"/jobs/{job}/model", "/metrics"):
        get, head = client.get(path), client.head(path)
        assert head.status_code == 200 and head.content == b"", path
        assert head.headers["content-length"] == str(len(get.content)), path
        assert head.headers["content-type"] == get.headers["content-type"], path
    r = client.options(f"/jobs/{job}")
    assert r.status_code == 204 and r.headers["allow"] == "DELETE, GET, HEAD, OPTIONS"
    r = client.put(f"/jobs/{job}")
    assert r.status_code == 405 and r.headers["allow"] == "DELETE, GET, HEAD, OPTIONS"
    assert client.head(f"/jobs/{job}/events").status_code == 405  # a stream: no HEAD
    assert client.options("/no/such/path").status_code == 404


@pytest.mark.parametrize("name", list(awkward_inputs()))
def test_awkward_inputs_fit_and_render_upright(env, name):
    client, app, settings = env
    data, (w, h), mode = awkward_inputs()[name]
    job = finished_job(client, app, settings, data)
    img = Image.open(io.BytesIO(client.get(f"/render?job={job}").content))
    assert img.size == (w, h) and img.mode == mode
    big = Image.open(
        io.BytesIO(client.get(f"/render?job={job}&width={2 * w}&height={2 * h}").content)
    )
    assert big.size == (2 * w, 2 * h)


def test_metrics_model_and_delete(env):
    client, app, settings = env
    job = finished_job(client, app, settings)
    m = client.get(f"/jobs/{job}/metrics").json()
    for key in (
        "psnr",
        "ssim",
        "psnr_history",
        "params",
        "model_bytes",
        "bpp",
        "compression_ratio_raw",
        "compression_ratio_input",
        "jpeg_psnr_same_bytes",
        "webp_psnr_same_bytes",
        "avif_psnr_same_bytes",
        "jxl_psnr_same_bytes",
        "fit_seconds",
        "device",
        "render_flops",
    ):
        assert key in m
    for fmt in ("jpeg", "webp", "avif"):  # the same-size files the comparison is made with
        if m[f"{fmt}_quality"] is not None:
            r = client.get(f"/jobs/{job}/classic?format={fmt}")
            assert r.headers["content-type"] == f"image/{fmt}"
            assert len(r.content) == m[f"{fmt}_bytes"] <= m["model_bytes"]
    if m["jxl_quality"] is not None:  # JPEG XL: its numbers (browsers cannot show it)
        assert m["jxl_bytes"] <= m["model_bytes"] and m["jxl_psnr_same_bytes"] > 10
    model = client.get(f"/jobs/{job}/model")
    assert model.status_code == 200 and model.content[:4] == b"MINR"
    assert len(model.content) == m["model_bytes"]
    assert client.delete(f"/jobs/{job}").status_code == 204
    assert client.get(f"/jobs/{job}").status_code == 404
    assert stored(app) == 0


def test_cancelling_a_queued_job_ends_it_cancelled_and_the_worker_skips_it(env):
    client, app, settings = env
    job = post(client, png_bytes(), preset="fast").json()["job_id"]
    r = client.post(f"/jobs/{job}/cancel")
    assert r.status_code == 200 and r.json()["status"] == "cancelled"
    assert client.post(f"/jobs/{job}/cancel").json()["status"] == "cancelled"  # idempotent
    assert client.get(f"/jobs/{job}").json()["status"] == "cancelled"
    run_fit(job, settings, app.state.store)
    assert client.get(f"/jobs/{job}").json()["status"] == "cancelled"
    assert app.state.store.load_upload(job) is None


def test_api_key_guards_post_and_delete(tmp_path):
    settings = settings_for(tmp_path, api_key="s3cret")
    with TestClient(create_app(settings)) as client:
        spec = client.get("/openapi.json").json()  # documented: /docs can send the key
        assert spec["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
        assert spec["paths"]["/fit"]["post"]["security"] == [{"HTTPBearer": []}]
        assert spec["paths"]["/jobs"]["get"]["security"] == [{"HTTPBearer": []}]
        assert "security" not in spec["paths"]["/jobs/{job_id}"]["get"]  # reading: no key
        assert client.get("/jobs").status_code == 401
        assert post(client, png_bytes()).status_code == 401
        bad = client.post(
            "/fit", files={"file": ("x.png", png_bytes())}, headers={"Authorization": "Bearer nope"}
        )
        assert bad.status_code == 401
        ok = client.post(
            "/fit",
            files={"file": ("x.png", png_bytes())},
            headers={"Authorization": "Bearer s3cret"},
        )
        assert ok.status_code == 202
        job = ok.json()["job_id"]
        assert client.get(f"/jobs/{job}").status_code == 200  # reading needs no key
        assert client.delete(f"/jobs/{job}").status_code == 401
        assert (
            client.delete(f"/jobs/{job}", headers={"Authorization": "Bearer s3cret"}).status_code
            == 204
        )


def test_health_readiness_prometheus_and_docs(env):
    client, app, settings = env
    finished_job(client, app, settings)
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").json()["status"] == "ready"
    client.get("/jobs/AAAAAAAAAAAAAAAAAAAAAA")
    text = client.get("/metrics").text
    assert 'mhinr_jobs{status="succeeded"} 1.0' in text
    # HTTP requests by route template and status class (prometheus-fastapi-instrumentator)
    assert 'handler="/jobs/{job_id}",method="GET",status="4xx"} 1.0' in text
    assert "mhinr_http_request_duration_seconds" in text
    assert "mhinr_fit_seconds_count 1.0" in text and "mhinr_jobs_submitted_total 1.0" in text
    spec = client.get("/openapi.json").json()
    for path, ops in spec["paths"].items():
        for op in ops.values():
            assert op.get("summary"), path
    assert "413" in spec["paths"]["/fit"]["post"]["responses"]


def test_error_answers_are_documented_as_the_one_line_detail_they_are(env):
    client, _, _ = env
    spec = client.get("/openapi.json").json()
    assert "HTTPValidationError" not in spec["components"]["schemas"]
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            assert "security" not in op, (path, method)  # this server has no key
            for status, answer in op["responses"].items():
                if status[0] in "45":
                    content = answer["content"]["application/json"]
                    assert content["schema"] == {"$ref": "#/components/schemas/ErrorOut"}
                    assert isinstance(content["example"]["detail"], str), (path, status)
    # the 422 example is what the server says
    r = post(client, png_bytes(), steps=10**9)
    assert r.status_code == 422 and set(r.json()) == {"detail"}


def test_the_docs_pages_load_nothing_from_another_host(env):
    import re

    client, _, _ = env
    for page in ("/docs", "/redoc"):
        html = client.get(page).text
        urls = re.findall(r"""(?:src|href)\s*=\s*["']([^"']+)""", html)
        urls += re.findall(r"""url:\s*["']([^"']+)""", html)  # the OpenAPI document
        assert urls, page
        for url in urls:
            assert url.startswith("/"), f"{page} loads {url}"
            assert client.get(url).status_code == 200, url
            if url.endswith(".js"):  # nor do the scripts (ReDoc's bundle had a CDN logo)
                assert "https://cdn." not in client.get(url).text, url


def test_readyz_is_503_when_the_store_is_gone(env, tmp_path):
    client, app, settings = env
    import shutil

    shutil.rmtree(settings.data_dir / "broker")
    r = client.get("/readyz")
    assert r.status_code == 503 and "broker" in r.json()["detail"]


def test_a_job_whose_worker_died_is_retried_then_failed_with_a_reason(env):
    client, app, settings = env
    job = post(client, png_bytes(), preset="fast").json()["job_id"]
    st = app.state.store
    record = st.get(job)
    record.update(status="running", attempts=1)  # as a worker that died left it
    st.write(record)
    run_fit(job, settings, st)  # the message delivered again
    assert client.get(f"/jobs/{job}").json()["status"] == "succeeded"

    job = post(client, png_bytes(), preset="fast").json()["job_id"]
    record = st.get(job)
    record.update(status="running", attempts=3)
    st.write(record)
    run_fit(job, settings, st)
    out = client.get(f"/jobs/{job}").json()
    assert out["status"] == "failed" and "stopped during this fit 3 times" in out["error"]
    assert client.get(f"/render?job={job}").status_code == 409


def test_a_cuda_worker_without_a_gpu_fails_the_job_with_the_reason(env):
    client, app, settings = env
    job = post(client, png_bytes(), preset="fast").json()["job_id"]
    cuda = settings.model_copy(update={"device": "cuda"})
    if __import__("torch").cuda.is_available():
        pytest.skip("this machine has a GPU")
    run_fit(job, cuda, app.state.store)  # the device is resolved inside the task's try
    out = client.get(f"/jobs/{job}").json()
    assert out["status"] == "failed" and "no CUDA device" in out["error"], out


def test_torch_threads_come_from_the_setting(monkeypatch):
    import subprocess
    import sys

    from pydantic import ValidationError

    from mhinr.worker.settings import Settings

    code = "import torch; from mhinr.app.cli import _torch_threads; _torch_threads(); "
    code += "print(torch.get_num_threads())"
    for n in ("1", "2"):
        env = {**__import__("os").environ, "INR_TORCH_THREADS": n}
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
        assert out.stdout.strip() == n, out.stderr
    env = {k: v for k, v in __import__("os").environ.items() if k != "INR_TORCH_THREADS"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    cores = len(__import__("os").sched_getaffinity(0))
    assert out.stdout.strip() == str(cores), out.stderr  # unset: every core this process has
    from mhinr.worker.settings import torch_threads_for

    assert torch_threads_for(Settings(), fits=2) == max(1, cores // 2)
    monkeypatch.setenv("INR_TORCH_THREADS", "0")
    with pytest.raises(ValidationError):
        Settings()


@pytest.mark.parametrize("preset", ["fast", "compact", "paper"])
def test_images_too_small_for_a_preset_are_422_at_upload_and_store_nothing(env, preset):
    client, app, settings = env
    for w, h in ((10, 10), (10, 40), (40, 10)):
        r = post(client, png_bytes(w, h), preset=preset)
        assert r.status_code == 422 and "at least 11x11" in r.json()["detail"], r.text
    assert stored(app) == 0
    steps = {} if preset == "fast" else {"steps": 2}
    job = finished_job(client, app, settings, png_bytes(11, 11), preset=preset, **steps)
    assert client.get(f"/render?job={job}&size=33").status_code == 200


def test_http_codes_of_image_errors_come_from_their_type_not_their_words(env):
    from mhinr.app.errors import image_error_status
    from mhinr.model.images import ImageError, ImageTooLarge, NotAnImage

    client, app, _ = env
    r = post(client, bomb_png(0, 0))  # a 0x0 image: Pillow refuses it; never "too large"
    assert r.status_code == 415, r.text
    assert stored(app) == 0
    assert image_error_status(ImageError("the image has no pixels (0x0)")) == 400
    assert image_error_status(ImageTooLarge("over the limit")) == 413
    assert image_error_status(NotAnImage("no pixels, not an image")) == 415


def test_the_original_resized_respects_the_render_pixel_limit(tmp_path):
    settings = settings_for(tmp_path, max_render_pixels=100_000, max_render_side=8192)
    with TestClient(create_app(settings)) as client:
        job = post(client, png_bytes(40, 32), preset="fast").json()["job_id"]
        big = client.get(f"/jobs/{job}/original?size=1000")  # 1000x800 = 800,000 pixels
        assert big.status_code == 422 and "render limit" in big.json()["detail"], big.text
        ok = client.get(f"/jobs/{job}/original?size=300")  # 300x240
        assert ok.status_code == 200
        assert Image.open(io.BytesIO(ok.content)).size == (300, 240)


def test_renders_take_a_share_of_the_memory_budget_and_wait_or_get_503(tmp_path):
    settings = settings_for(tmp_path, render_memory_mb=64, render_wait_s=0.3, render_cache_mb=0)
    with TestClient(create_app(settings)) as client:
        app = client.app
        job = finished_job(client, app, settings)
        budget = app.state.render_budget
        assert client.get(f"/render?job={job}&size=400").status_code == 200
        assert budget.used == 0 and budget.peak > 0  # taken during the render, given back
        huge = client.get(f"/render?job={job}&size=4000")  # 4000x3200: ~390 MB > 64 MB
        assert huge.status_code == 422 and "memory budget" in huge.json()["detail"]
        with budget.take(1_800_000):  # someone else holds most of it (55 MB)
            busy = client.get(f"/render?job={job}&size=800")
            assert busy.status_code == 503 and busy.headers["retry-after"] == "2"
            original = client.get(f"/jobs/{job}/original?size=800")
            assert original.status_code == 503
        assert client.get(f"/render?job={job}&size=800").status_code == 200
        assert budget.used == 0


def test_a_fit_that_would_need_too_much_memory_is_413_at_upload(tmp_path):
    from mhinr.model.compress import estimate_fit_bytes

    settings = settings_for(tmp_path, max_fit_memory_mb=320)  # 300 MB + 350 B/px: ~60,000 px
    with TestClient(create_app(settings)) as client:
        assert estimate_fit_bytes((200, 300), 3) > 320 * 2**20
        big = post(client, png_bytes(300, 200))
        assert big.status_code == 413 and "MB" in big.json()["detail"], big.text
        assert stored(client.app) == 0
        assert post(client, png_bytes(100, 80)).status_code == 202


def test_cancel_keeps_the_record_and_delete_deletes_whatever_the_status(env):
    client, app, settings = env
    job = post(client, png_bytes(), preset="fast").json()["job_id"]
    assert client.post(f"/jobs/{job}/cancel").json()["status"] == "cancelled"
    assert client.get(f"/jobs/{job}").json()["status"] == "cancelled"  # the record is kept
    assert client.delete(f"/jobs/{job}").status_code == 204  # … until deleted
    assert client.get(f"/jobs/{job}").status_code == 404
    assert client.delete(f"/jobs/{job}").status_code == 404
    assert client.post(f"/jobs/{job}/cancel").status_code == 404
    queued = post(client, png_bytes(), preset="fast").json()["job_id"]
    assert client.delete(f"/jobs/{queued}").status_code == 204  # not only cancelled: gone
    assert client.get(f"/jobs/{queued}").status_code == 404
    run_fit(queued, settings, app.state.store)  # the worker finds nothing to do
    assert client.get(f"/jobs/{queued}").status_code == 404
    done = finished_job(client, app, settings)
    r = client.post(f"/jobs/{done}/cancel")
    assert r.status_code == 409 and "succeeded" in r.json()["detail"]
    assert client.get(f"/jobs/{done}/model").status_code == 200  # a 409 changes nothing
    assert client.delete(f"/jobs/{done}").status_code == 204
    assert stored(app) == 0


def test_jobs_are_listed_newest_first_a_page_at_a_time(env):
    client, app, settings = env
    ids = [post(client, png_bytes(), preset="fast").json()["job_id"] for _ in range(5)]
    client.post(f"/jobs/{ids[1]}/cancel")
    seen, url = [], "/jobs?limit=2"
    while url:
        page = client.get(url).json()
        assert len(page["jobs"]) <= 2
        seen += [j["job_id"] for j in page["jobs"]]
        url = page["next"]
    assert seen == ids[::-1]
    first = client.get("/jobs").json()["jobs"][0]
    assert first["created_at"].endswith("Z") and "T" in first["created_at"]  # ISO 8601, UTC
    assert first["preset"] == "fast" and first["links"]["self"] == f"/jobs/{ids[-1]}"
    cancelled = client.get("/jobs?status=cancelled").json()["jobs"]
    assert [j["job_id"] for j in cancelled] == [ids[1]]
    assert client.get("/jobs?after=AAAAAAAAAAAAAAAAAAAAAA").status_code == 404
    assert client.get("/jobs?after=").status_code == 422
    assert client.get("/jobs?limit=0").status_code == 422
    assert client.get("/jobs?limt=2").status_code == 422


def test_failed_jobs_keep_no_upload_and_finished_jobs_are_swept_after_retention(env):
    client, app, settings = env
    st = app.state.store
    failed = post(client, png_bytes(), preset="fast").json()["job_id"]
    run_fit(failed, settings.model_copy(update={"device": "cuda"}), st)  # fails (no GPU)
    if st.get(failed)["status"] != "failed":
        pytest.skip("this machine has a GPU")
    assert st.load_upload(failed) is None
    done = finished_job(client, app, settings)
    cancelled = post(client, png_bytes(), preset="fast").json()["job_id"]
    client.post(f"/jobs/{cancelled}/cancel")
    queued = post(client, png_bytes(), preset="fast").json()["job_id"]
    assert st.sweep(retention_s=3600) == 0  # all too recent
    time.sleep(0.05)
    assert st.sweep(retention_s=0.01) == 3  # the three that ended; the queued one stays
    assert [r["id"] for r in st.records()] == [queued]
    assert client.get(f"/jobs/{done}").status_code == 404


def test_metrics_read_the_store_once_per_interval_not_per_scrape(env):
    client, app, settings = env
    finished_job(client, app, settings)
    reads = []
    records = app.state.store.records
    app.state.store.records = lambda: (reads.append(1), records())[1]
    collector = app.state.metrics.store_collector
    collector.cached = None
    for _ in range(20):
        assert 'mhinr_jobs{status="succeeded"} 1.0' in client.get("/metrics").text
    assert len(reads) == 1
    collector.refresh_s = 0.0  # the interval over: the next scrape reads again
    client.get("/metrics")
    assert len(reads) == 2


def test_job_status_transitions_are_enforced():
    from mhinr.worker.jobs import InvalidTransition, JobStatus, transition

    record = {"id": "x", "status": "queued"}
    transition(record, JobStatus.RUNNING, started_at=1.0)
    assert record == {"id": "x", "status": "running", "started_at": 1.0}
    transition(record, JobStatus.QUEUED)  # the reaper: its worker died
    transition(record, JobStatus.RUNNING)
    transition(record, JobStatus.SUCCEEDED)
    assert JobStatus(record["status"]).is_terminal()
    for to in JobStatus:  # a finished job never changes again
        with pytest.raises(InvalidTransition):
            transition(dict(record), to)
    with pytest.raises(InvalidTransition):
        transition({"id": "y", "status": "queued"}, JobStatus.SUCCEEDED)  # never ran


def test_one_options_model_for_the_form_the_cli_and_the_worker(env, tmp_path):
    from mhinr.app.cli import main
    from mhinr.worker.jobs import JobOptions

    client, app, settings = env
    bad = post(client, png_bytes(), target_psnr=30, bpp=1)
    assert bad.status_code == 422 and "at most one of" in bad.json()["detail"]
    job = post(client, png_bytes(), preset="fast", steps=4, heads="4x5").json()["job_id"]
    stored = app.state.store.get(job)["options"]
    assert JobOptions.model_validate(stored) == JobOptions(preset="fast", steps=4, heads=(4, 5))
    with pytest.raises(ValueError):
        JobOptions(qualty=90)  # unknown options are refused, not ignored
    src = tmp_path / "in.png"
    src.write_bytes(png_bytes())
    args = ["fit", str(src), "-o", str(tmp_path / "o.inr"), "--alpha", "40", "--width", "32"]
    assert main(args) == 2  # the same check from the command line (alpha > width)
    assert not (tmp_path / "o.inr").exists()


def test_a_running_job_deleted_on_disk_leaves_only_its_cancel_flag_until_swept(tmp_path):
    import os

    from mhinr.worker.store import DiskStore, new_job_id

    st = DiskStore(tmp_path)
    job = new_job_id()
    st.create({"id": job, "status": "running", "created_at": 0.0}, b"upload")
    assert st.claim(job, "worker-1", ttl=30)
    assert st.delete(job) and st.get(job) is None and st.load_upload(job) is None
    assert st.cancel_requested(job)  # what the worker reads, and stops
    st.write({"id": job, "status": "cancelled", "created_at": 0.0})  # its last write
    assert st.get(job) is None  # is not brought back
    st.sweep(retention_s=0)
    assert (tmp_path / "jobs" / job).is_dir()  # the worker still holds the lease
    st.release(job, "worker-1")
    os.utime(tmp_path / "jobs" / job, (0, 0))
    st.sweep(retention_s=0)
    assert not (tmp_path / "jobs" / job).exists()


def test_idempotency_key_gives_a_retried_request_the_job_it_created(env):
    client, app, _ = env
    data = png_bytes()

    def send(key, image=data, **form):
        return client.post(
            "/fit",
            files={"file": ("x.png", image)},
            data={"preset": "fast", **form},
            headers={"Idempotency-Key": key},
        )

    first = send("order-17")
    assert first.status_code == 202 and "idempotent-replayed" not in first.headers
    again = send("order-17")
    assert again.status_code == 202 and again.headers["idempotent-replayed"] == "true"
    assert again.json()["job_id"] == first.json()["job_id"] and stored(app) == 1
    other = send("order-17", image=png_bytes(seed=3))  # the key with another upload
    assert other.status_code == 422 and "Idempotency-Key" in other.json()["detail"]
    assert send("order-17", steps="7").status_code == 422  # … or other options
    assert send("order-18").json()["job_id"] != first.json()["job_id"]
    assert send("bad key with spaces").status_code == 422
    assert stored(app) == 2
    app.state.store.sweep(retention_s=0)  # expired keys are forgotten with the sweep
    assert not list((app.state.settings.data_dir / "keys").iterdir())


def test_signed_render_urls_when_the_server_has_a_signing_key(tmp_path, monkeypatch):
    from mhinr.app.signing import sign_url

    settings = settings_for(tmp_path, url_signing_key="k3y")
    app = create_app(settings)
    with TestClient(app) as client:
        job = finished_job(client, app, settings)
        url = f"/render?job={job}&size=64&format=png"
        r = client.get(url)
        assert r.status_code == 403 and "signed" in r.json()["detail"]
        signed = sign_url("k3y", url)
        assert client.get(signed).status_code == 200
        reordered = signed.replace(f"job={job}&size=64", f"size=64&job={job}")
        assert client.get(reordered).status_code == 200  # the order of parameters is free
        assert client.get(signed.replace("size=64", "size=65")).status_code == 403
        assert client.get(sign_url("other", url)).status_code == 403
        assert client.get(sign_url("k3y", f"/jobs/{job}/render?size=64")).status_code == 200
        expired = sign_url("k3y", url, expires_in=-10)
        r = client.get(expired)
        assert r.status_code == 403 and "expired" in r.json()["detail"]
        assert client.get(sign_url("k3y", url, expires_in=60)).status_code == 200
        assert client.get(f"/jobs/{job}").status_code == 200  # only renders are signed
    monkeypatch.setenv("INR_URL_SIGNING_KEY", "k3y")
    from mhinr.app.cli import main
    from mhinr.app.settings import get_api_settings

    get_api_settings.cache_clear()
    try:
        assert main(["sign", url]) == 0
    finally:
        get_api_settings.cache_clear()


class _Receiver:
    """A webhook receiver on 127.0.0.1: records (headers, body) of each POST; answers the
    first `fail_first` of them 500."""

    def __init__(self, fail_first: int = 0):
        import http.server
        import threading

        self.got, self.fail_first = [], fail_first
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (the standard library's name)
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if outer.fail_first > 0:
                    outer.fail_first -= 1
                    self.send_response(500)
                else:
                    outer.got.append((dict(self.headers), body))
                    self.send_response(204)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait(self, n: int, timeout: float = 20) -> list:
        deadline = time.monotonic() + timeout
        while len(self.got) < n and time.monotonic() < deadline:
            time.sleep(0.05)
        return self.got


def test_webhooks_deliver_the_events_asked_for_signed_and_retried(tmp_path):
    import hashlib
    import hmac
    import json

    settings = settings_for(tmp_path, webhook_secret="s3cret", webhook_private=True)
    app = create_app(settings)
    receiver = _Receiver(fail_first=1)  # the first delivery is retried
    try:
        with TestClient(app) as client:
            r = post(client, png_bytes(), preset="fast", webhook=receiver.url,
                     webhook_events="start,completed")  # fmt: skip
            assert r.status_code == 202, r.text
            job = r.json()["job_id"]
            assert client.get(f"/jobs/{job}").json()["webhook"]["events"] == [
                "start",
                "completed",
            ]
            run_fit(job, settings, app.state.store)
            got = receiver.wait(2)
        assert [h["X-Mhinr-Event"] for h, _ in got] == ["start", "completed"]
        for headers, body in got:
            mac = hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()
            assert headers["X-Mhinr-Signature"] == f"sha256={mac}"
        done = json.loads(got[1][1])
        assert done["job_id"] == job and done["status"] == "succeeded"
        assert done["result"]["psnr"] > 10
    finally:
        receiver.server.shutdown()


def test_no_completed_webhook_for_a_job_that_was_requeued(tmp_path, monkeypatch):
    """A fit that ends with its job back in the queue (its worker gave it up) is not
    complete: only "start" is delivered (worker/fit.py once tested `is_terminal` without
    calling it, which is always true)."""
    import mhinr.worker.fit as fit_module

    settings = settings_for(tmp_path, webhook_secret="s3cret", webhook_private=True)
    app = create_app(settings)
    receiver = _Receiver()

    def requeued(job_id, record, settings, store, notifier):
        notifier.send("start", record)
        record.update(status="queued")  # what a requeue leaves behind
        store.write(record)

    monkeypatch.setattr(fit_module, "_run_claimed", requeued)
    try:
        with TestClient(app) as client:
            r = post(client, png_bytes(), preset="fast", webhook=receiver.url,
                     webhook_events="start,completed")  # fmt: skip
            job = r.json()["job_id"]
            run_fit(job, settings, app.state.store)
            got = receiver.wait(1)
            time.sleep(0.5)  # a "completed" would have been sent by now
        assert [h["X-Mhinr-Event"] for h, _ in receiver.got] == ["start"], got
    finally:
        receiver.server.shutdown()


def test_webhook_urls_are_checked_at_submission(env, tmp_path):
    client, app, _ = env  # INR_WEBHOOK_PRIVATE is off
    for hook, events, words in (
        ("http://127.0.0.1:9/hook", None, "private or local"),
        ("http://10.1.2.3/x", None, "private or local"),
        ("ftp://example.org/x", None, "http"),
        ("http://127.0.0.1:9/hook", "finished", "webhook_events"),
        (None, "start", "needs a webhook"),
    ):
        form = {"preset": "fast"} | ({"webhook": hook} if hook else {})
        r = post(client, png_bytes(), **form, **({"webhook_events": events} if events else {}))
        assert r.status_code == 422 and words in r.json()["detail"], (hook, r.text)
    assert stored(app) == 0


def test_events_have_ids_and_resume_after_last_event_id(env):
    client, app, settings = env
    job = finished_job(client, app, settings)
    text = client.get(f"/jobs/{job}/events").text
    step = app.state.store.get(job)["progress"]["seq"]
    assert "event: progress\ndata: " in text and f"id: {step}\n" in text
    assert text.rstrip().endswith("id: end") and '"status": "succeeded"' in text
    resumed = client.get(f"/jobs/{job}/events", headers={"Last-Event-ID": str(step)}).text
    assert "event: progress" not in resumed and "event: status" in resumed
    assert client.get("/jobs/AAAAAAAAAAAAAAAAAAAAAA/events").status_code == 404


def test_render_says_how_its_pixels_are_made(env):
    client, app, settings = env
    job = finished_job(client, app, settings)
    how = {
        "": "decode",
        "&size=120": "lanczos-of-decode",
        "&size=120&method=plain": "network",
    }
    for query, kind in how.items():
        r = client.get(f"/render?job={job}&format=png{query}")
        assert r.status_code == 200 and r.headers["x-mhinr-render"] == kind, (query, r.headers)


def test_a_target_says_whether_it_was_met_and_what_was_reached(env):
    client, app, settings = env
    missed = finished_job(client, app, settings, max_bytes=50)
    m = client.get(f"/jobs/{missed}/metrics").json()
    assert m["met"] is False and m["bytes"] > 50
    assert m["target_outcome"] == (
        f"not met: the smallest file this preset makes of this image is {m['bytes']:,} bytes "
        f"({m['psnr']:.2f} dB), over the 50 bytes asked"
    )
    met = client.get(f"/jobs/{finished_job(client, app, settings, target_psnr=20)}/metrics")
    assert met.json()["met"] is True and met.json()["target_outcome"].startswith("met: ")
    plain = client.get(f"/jobs/{finished_job(client, app, settings)}/metrics").json()
    assert plain["target_outcome"] is None


def test_a_model_download_is_named_after_the_upload_and_never_a_path(env):
    client, app, settings = env
    for name, expect in (
        ("kodim23.png", "kodim23.inr"),
        ("../../etc/my photo (1).png", "my_photo_1.inr"),
        ("a<b>;c.png", "a_b_c.inr"),
    ):
        r = post(client, png_bytes(), name=name, preset="fast")
        job = r.json()["job_id"]
        run_fit(job, settings, app.state.store)
        disposition = client.get(f"/jobs/{job}/model").headers["content-disposition"]
        assert disposition == f'attachment; filename="{expect}"', (name, disposition)
    stemless = post(client, png_bytes(), name=".png", preset="fast").json()["job_id"]
    run_fit(stemless, settings, app.state.store)  # no usable name: the job's id
    disposition = client.get(f"/jobs/{stemless}/model").headers["content-disposition"]
    assert disposition == f'attachment; filename="{stemless}.inr"'


def test_presets_say_what_each_trains_and_the_options_it_takes(env):
    """GET /presets is what the page builds its form from: a preset that does not take steps
    refuses them, one that takes them accepts them."""
    client, app, _ = env
    body = client.get("/presets").json()
    assert body["default"] == "compact" and set(body["presets"]) == set(PRESETS)
    assert body["presets"]["fast"]["trains"] is None
    for name, info in body["presets"].items():
        r = post(client, png_bytes(), preset=name, steps=5)
        assert (r.status_code == 202) == ("steps" in info["takes"]), (name, r.text)


def test_progress_says_what_it_measures_and_when_a_preview_exists(env):
    client, app, settings = env
    job = finished_job(client, app, settings, max_bytes=600)
    progress = client.get(f"/jobs/{job}").json()["progress"]
    assert progress["phase"] == "coding" and progress["detail"] == "cell 16 px"
    assert progress["seq"] >= 1 and progress["previews"] >= 1
    assert client.get(f"/jobs/{job}/preview").status_code == 200
    assert client.get(f"/jobs/{job}/metrics").json()["psnr_history"] == []  # nothing trained


def test_a_repeated_render_is_answered_from_the_cache_until_its_job_is_deleted(tmp_path):
    settings = settings_for(tmp_path, render_memory_mb=64, render_cache_mb=8)
    with TestClient(create_app(settings)) as client:
        app = client.app
        cache = app.state.render_cache
        # the cache's share comes out of the render memory budget
        assert cache.max_bytes == 8 * 2**20 and app.state.render_budget.budget == 56 * 2**20
        job = finished_job(client, app, settings)
        first = client.get(f"/render?job={job}&size=200&format=png")
        assert (cache.hits, cache.misses) == (0, 1) and cache.bytes == len(first.content)
        again = client.get(f"/render?job={job}&size=200&format=png")
        assert (cache.hits, cache.misses) == (1, 1)
        assert again.content == first.content
        for name in ("etag", "x-mhinr-render", "content-type", "vary"):
            assert again.headers[name] == first.headers[name], name
        head = client.head(f"/render?job={job}&size=200&format=png")
        assert head.status_code == 200 and head.content == b"" and cache.hits == 2
        webp = client.get(f"/render?job={job}&size=200&format=webp")  # another render
        assert webp.headers["content-type"] == "image/webp" and cache.misses == 2
        other = finished_job(client, app, settings)
        client.get(f"/render?job={other}&size=200&format=png")
        kept = cache.bytes
        assert client.delete(f"/jobs/{job}").status_code == 204
        assert 0 < cache.bytes < kept  # the deleted job's renders went, the other's stayed
        assert client.get(f"/render?job={job}&size=200&format=png").status_code == 404


def test_a_large_png_render_holds_exactly_the_rendered_pixels(env):
    """Above a megapixel the PNG comes from the parallel writer (model/png.py): the same
    pixels as the renderer's."""
    import numpy as np

    from mhinr.model.codec import decode
    from mhinr.model.render import render

    client, app, settings = env
    job = finished_job(client, app, settings)
    r = client.get(f"/render?job={job}&size=1300&format=png")
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    got = np.asarray(Image.open(io.BytesIO(r.content)))
    net, coded = decode(client.get(f"/jobs/{job}/model").content)
    want = render(net, (coded.height, coded.width), (1040, 1300)).permute(1, 2, 0).numpy()
    assert got.shape == (1040, 1300, 3) and np.array_equal(got, want)
