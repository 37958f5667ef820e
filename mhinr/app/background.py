"""What a serving API process runs beside its routes, started and stopped by the app's
lifespan (`create_app(..., background=True)`: `mhinr serve`, or `uvicorn --factory
mhinr.app.main:service` for a server command of one's own):

* the reaper: a running job whose worker stopped answering is queued again, and records
  past the retention are swept;
* embedded mode (no Redis): every job left queued or running when the service last stopped
  is queued again, and one worker process is started and kept alive (started again if it
  dies); readiness asks whether it runs;
* Redis mode: readiness asks whether some worker's heartbeat is fresh.

Embedded mode runs one API process (its worker is its child); with Redis, any number."""

import json
import logging
import os
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

from fastapi import FastAPI

from mhinr.worker.lifecycle import run_reaper
from mhinr.worker.settings import Settings

log = logging.getLogger("mhinr.serve")
WORKER = [sys.executable, "-m", "mhinr.app.cli", "worker"]


def start(app: FastAPI) -> list[Callable[[], None]]:
    """Start the reaper and, in embedded mode, the worker; the functions that stop them."""
    settings = app.state.settings
    stop = threading.Event()
    threading.Thread(
        target=run_reaper,
        args=(app.state.jobs, stop, settings.lease_s, settings.retention_s),
        daemon=True,
    ).start()
    if not settings.embedded:
        app.state.worker_alive = lambda: app.state.store.workers_alive() > 0
        return [stop.set]
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    log.info(
        "embedded mode: data in %s; requeued %d unfinished jobs",
        settings.data_dir.resolve(),
        requeue_unfinished(app),
    )
    return [stop.set, _embedded_worker(app, stop)]


def requeue_unfinished(app: FastAPI) -> int:
    """Embedded mode: the store is the truth. Empty the broker folder and queue every job
    that was queued or running when the service last stopped, exactly once."""
    folder = Path(app.state.celery.conf.broker_transport_options["data_folder_in"])
    for f in folder.glob("*"):
        f.unlink(missing_ok=True)
    return app.state.jobs.requeue_unfinished()


def settings_env(settings: Settings) -> dict[str, str]:
    """The environment that gives a child process these settings (INR_*): the app's own,
    even where they were not read from the environment."""
    env = dict(os.environ)
    for name, value in settings.model_dump(mode="json").items():
        key = f"INR_{name.upper()}"
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value if isinstance(value, str) else json.dumps(value)
    return env


def _embedded_worker(app: FastAPI, stop: threading.Event) -> Callable[[], None]:
    """One worker process, with the app's settings, started again when it dies; the
    function that stops it."""
    env = settings_env(app.state.settings)
    child = [subprocess.Popen(WORKER, env=env)]

    def supervise() -> None:
        while not stop.wait(1.0):
            code = child[0].poll()
            if code is not None and not stop.is_set():
                log.error("the worker exited (%s); starting a new one", code)
                child[0] = subprocess.Popen(WORKER, env=env)

    threading.Thread(target=supervise, daemon=True).start()
    app.state.worker_alive = lambda: child[0].poll() is None

    def stop_worker() -> None:
        log.info("stopping the worker")
        stop.set()
        child[0].terminate()  # Celery's warm shutdown; an unfinished fit is requeued
        try:
            child[0].wait(15)
        except subprocess.TimeoutExpired:
            child[0].kill()
            child[0].wait()

    return stop_worker
