"""The Celery application: one task, `mhinr.fit`, on Redis or on Celery's filesystem transport
(the embedded default, under the data directory)."""

from celery import Celery

from mhinr.worker.settings import Settings

DEFAULT_PREFIX = Settings.model_fields["redis_prefix"].default

FIT_TASK = "mhinr.fit"


def broker_options(settings: Settings) -> tuple[str, dict]:
    if settings.redis_url:
        # a message not acknowledged within this time is delivered again: longer than any fit
        options: dict[str, object] = {
            "visibility_timeout": int(settings.max_time_budget_s * 2 + 3600)
        }
        if settings.redis_prefix != DEFAULT_PREFIX:
            # every key and event channel kombu uses (queues, bindings, unacked, task events)
            # under the prefix; the default keeps Celery's own names, which a plain
            # `celery flower` (docker-compose's) watches
            options["global_keyprefix"] = f"{settings.redis_prefix}:"
        return settings.redis_url, options
    folder = settings.data_dir.resolve() / "broker"
    for sub in ("queue", "processed", "control"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    return "filesystem://", {
        "data_folder_in": str(folder / "queue"),
        "data_folder_out": str(folder / "queue"),
        "processed_folder": str(folder / "processed"),
        "control_folder": str(folder / "control"),  # else kombu makes ./control
        "store_processed": False,
    }


def create_celery(settings: Settings) -> Celery:
    url, transport = broker_options(settings)
    app = Celery("mhinr", broker=url, set_as_current=False)
    app.conf.update(
        broker_transport_options=transport,
        broker_connection_retry_on_startup=True,
        task_ignore_result=True,  # results live in the job store
        task_acks_late=True,  # a fit whose worker dies is delivered again …
        task_reject_on_worker_lost=True,  # … to another worker
        worker_prefetch_multiplier=1,  # one long job at a time per worker slot
        worker_hijack_root_logger=False,
        worker_enable_remote_control=not settings.embedded,  # the filesystem transport has none
        # task events (Redis mode) let Flower list the tasks; the filesystem transport has none
        worker_send_task_events=not settings.embedded,
        task_send_sent_event=not settings.embedded,
        task_serializer="json",
        accept_content=["json"],
    )

    @app.task(name=FIT_TASK, acks_late=True)
    def fit_task(job_id: str) -> None:
        from mhinr.worker.fit import run_fit

        run_fit(job_id, settings)

    return app
