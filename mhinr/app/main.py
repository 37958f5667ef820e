"""The FastAPI application: one settings object, thin route modules, shared dependencies."""

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline
from prometheus_fastapi_instrumentator import Instrumentator

import mhinr.app.background
from mhinr.app import errors, openapi
from mhinr.app.deps import MemoryBudget, ModelCache, RenderCache
from mhinr.app.methods import Methods
from mhinr.app.observability import Metrics
from mhinr.app.routes import health, jobs, page, render
from mhinr.app.settings import ApiSettings, get_api_settings
from mhinr.app.upload_limit import UploadLimit
from mhinr.model.presets import STAGE_SECONDS
from mhinr.worker.celery_app import FIT_TASK, create_celery
from mhinr.worker.jobs import JobService
from mhinr.worker.store import make_store

log = logging.getLogger("mhinr.api")

DESCRIPTION = f"""Code an image as a **multi-head implicit neural representation**, then render
it at any size or download it as a compressed `.inr` file. The default preset, `compact`,
codes each cell of the image with fixed cosine features (a transform codec, seconds) and then
trains a small ReLU network on the decoded image (up to {STAGE_SECONDS["compact"]:.0f} s on a
CPU, far less on a GPU), keeping it where it makes the file smaller at equal quality; `fast`
trains nothing; `upscale` keeps the image and enlarges it with a multi-head ReLU network mhinr
ships (trained once, on other photos).

1. `POST /fit` with a multipart `file` (and options) → `202` with the job id and links.
2. `GET /jobs/{{id}}` (or follow `/jobs/{{id}}/events`) until `succeeded`.
3. `GET /render?job={{id}}&size=1024`, `GET /jobs/{{id}}/metrics`, `GET /jobs/{{id}}/model`.
"""


def service() -> FastAPI:
    """The app as a server runs it, with its reaper and (embedded mode) its worker: `mhinr
    serve`, or `uvicorn --factory mhinr.app.main:service` for a server command of one's own."""
    return create_app(get_api_settings(), background=True)


def _queue(app: FastAPI, settings: ApiSettings) -> None:
    """The job queue: Celery on Redis, or on the embedded filesystem broker."""
    celery = create_celery(settings)
    app.state.celery = celery

    def send_fit(job_id: str) -> None:
        celery.send_task(FIT_TASK, args=[job_id])

    def ping_broker() -> None:
        if settings.embedded:
            folder = Path(celery.conf.broker_transport_options["data_folder_in"])
            if not folder.is_dir():
                raise RuntimeError(f"broker folder {folder} is missing")
        else:
            with celery.connection_for_write() as conn:
                conn.ensure_connection(max_retries=1, timeout=2)

    app.state.send_fit = send_fit
    app.state.jobs = JobService(app.state.store, send_fit)
    app.state.ping_broker = ping_broker


def create_app(settings: ApiSettings | None = None, background: bool = False) -> FastAPI:
    """The API. With `background`, its lifespan also runs what a serving process needs
    beside the routes (app/background.py: the reaper, the embedded worker, readiness);
    without, the routes alone (tests, and processes that embed the app)."""
    settings = settings or get_api_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        stops = mhinr.app.background.start(app) if background else []
        yield
        for stop in [*app.state.on_shutdown, *stops]:
            stop()

    # FastAPIOffline: /docs and /redoc with Swagger UI and ReDoc served from the package itself
    # (FastAPI's own pages load them from a CDN: a blank page on a network without one)
    # (/redoc is page.py's: its bundle fetches a logo from a CDN, page.redoc_js serves it without)
    app = FastAPIOffline(
        title="mhinr",
        version="0.1.0",
        description=DESCRIPTION,
        lifespan=lifespan,
        redoc_url=None,
        favicon_url="/favicon.ico",
    )
    app.state.on_shutdown = []
    app.state.settings = settings
    app.state.store = make_store(settings)
    app.state.models = ModelCache(settings.model_cache_size, settings.model_cache_mb * 2**20)
    # the render memory budget: the render cache's share, and the rest for render work
    app.state.render_cache = RenderCache(settings.render_cache_bytes)
    app.state.render_budget = MemoryBudget(settings.render_work_bytes, settings.render_wait_s)
    app.state.metrics = Metrics(app.state.store)
    _queue(app, settings)
    errors.install(app)
    openapi.install(app, settings)
    app.add_middleware(
        UploadLimit,
        max_bytes=settings.max_upload_bytes,
        idle_s=settings.body_idle_s,
        total_s=settings.body_timeout_s,
    )
    app.include_router(jobs.router, tags=["jobs"])
    app.include_router(render.router, tags=["render"])
    app.include_router(health.router, tags=["operations"])
    app.include_router(page.router, tags=["web page"])
    app.mount("/static", StaticFiles(directory=page.WEB), name="static")
    # request counts and latencies by route template, method and status class, in our registry
    Instrumentator(
        registry=app.state.metrics.registry,
        excluded_handlers=["/metrics", "/static.*", "/static-offline-docs.*"],
        should_exclude_streaming_duration=True,  # an event stream's life is not latency
    ).instrument(app, metric_namespace="mhinr")
    # HEAD for every GET but the event stream, OPTIONS, and 405s that list every method
    app.add_middleware(Methods, routes=app.router.routes, no_head=frozenset({jobs.EVENTS}))

    return app
