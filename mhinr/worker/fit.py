"""The fit job: upload → model.compress (progress → store) → .inr bytes and metrics → store."""

import logging
import os
import socket
import time

import torch

from mhinr.model.classic import HAS_JXL, at_bytes
from mhinr.model.compress import compress
from mhinr.model.images import load_image, to_pil, to_uint8
from mhinr.worker.jobs import RUNNABLE, JobOptions, JobStatus, status_of, transition
from mhinr.worker.lifecycle import UNREACHABLE, Lease, retrying
from mhinr.worker.records import JobMetrics, JobRecord
from mhinr.worker.settings import Settings
from mhinr.worker.store import JobStore, make_store, now
from mhinr.worker.webhooks import Notifier

log = logging.getLogger("mhinr.worker")
WORKER_NAME = f"{socket.gethostname()}:{os.getpid()}"
HISTORY_LIMIT = 400
MAX_ATTEMPTS = 3
PREVIEW_INTERVAL_S = 2.0
PREVIEW_SIDE = 512


def preview_png(pixels, mode: str) -> bytes:
    """The current reconstruction as a PNG no larger than PREVIEW_SIDE a side."""
    import io

    img = to_pil(to_uint8(pixels), mode)
    img.thumbnail((PREVIEW_SIDE, PREVIEW_SIDE))
    buf = io.BytesIO()
    img.save(buf, "PNG", compress_level=1)
    return buf.getvalue()


def resolve_device(setting: str) -> str:
    if setting == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("INR_DEVICE=cuda but no CUDA device is available")
    if setting == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return setting


def quietly(call, default=None):
    """A store call whose failure during a store outage costs nothing (a progress report,
    a preview, a cancel check): the error is logged and `default` returned."""
    try:
        return call()
    except UNREACHABLE as exc:
        log.warning("store unreachable, skipped: %s", exc)
        return default


def quietly_compare(call):
    """A comparison codec's result, or None if its encoder fails: a third-party plugin's
    error costs the job that one row of its comparison, never the job (logged)."""
    try:
        return call()
    except Exception:
        log.exception("a comparison codec failed; its row is left empty")
        return None


def run_fit(job_id: str, settings: Settings, store: JobStore | None = None) -> None:
    """Fit one job, under its lease (worker.lifecycle): a message for a job that another
    worker is fitting, or that has finished, does nothing."""
    store = store or make_store(settings)
    with Lease(store, job_id, settings.lease_s) as lease:
        if not lease.held:
            log.info("job %s: another worker is fitting it", job_id)
            return
        # read under the lease: "running" here means the worker that had it died (acks_late
        # delivered the message again, or the reaper queued it again): try again, up to
        # MAX_ATTEMPTS
        record = retrying(lambda: store.get(job_id), "read the job")
        if record is None or status_of(record) not in RUNNABLE:
            log.info("job %s: nothing to do (status %s)", job_id, record and record["status"])
            return
        notifier = Notifier.for_record(record, settings.webhook_secret)
        try:
            _run_claimed(job_id, record, settings, store, notifier)
        finally:
            if notifier is not None:
                final = quietly(lambda: store.get(job_id))
                if final is not None and status_of(final).is_terminal():
                    notifier.send("completed", final)
                notifier.close(timeout=5)  # the rest are delivered in the background


def _fail(record: JobRecord, store: JobStore, error: str) -> None:
    """End the job `failed` with `error`; a failed job keeps no upload."""
    transition(record, JobStatus.FAILED, finished_at=now(), error=error)
    retrying(lambda: store.write(record), "write the failure")
    quietly(lambda: store.drop_upload(record["id"]))


def _run_claimed(
    job_id: str, record: JobRecord, settings: Settings, store: JobStore, notifier: Notifier | None
) -> None:
    if record.get("attempts", 0) >= MAX_ATTEMPTS:
        _fail(record, store, f"the worker stopped during this fit {MAX_ATTEMPTS} times")
        return
    try:  # everything, the device's resolution included: any error ends the job failed
        device = resolve_device(settings.device)
        transition(
            record,
            JobStatus.RUNNING,
            started_at=now(),
            device=device,
            attempts=record.get("attempts", 0) + 1,
            worker=WORKER_NAME,  # which process has it (operators; the fault tests)
        )
        retrying(lambda: store.write(record), "mark the job running")
        log.info("job %s: fitting on %s", job_id, device)
        if notifier is not None:
            notifier.send("start", record)
        _fit(job_id, record, settings, store, device, notifier)
    except Exception as exc:  # the job fails with its reason; the worker lives on
        log.exception("job %s failed", job_id)
        if isinstance(exc, UNREACHABLE):
            raise  # the store is gone: the lease lapses and the job is requeued, not failed
        if not retrying(lambda: store.cancel_requested(job_id), "read the cancel flag"):
            _fail(record, store, f"{type(exc).__name__}: {exc}")


class _Progress:
    """A fit's progress reports → the job record (at most every `progress_interval_s`, and
    whenever a new preview was written), the preview (every PREVIEW_INTERVAL_S), the
    training history (what trains, not the files coded) and the progress webhook."""

    def __init__(self, job_id, record, store, settings, mode, notifier) -> None:
        self.job_id, self.record, self.store, self.mode = job_id, record, store, mode
        self.interval, self.notifier = settings.progress_interval_s, notifier
        self.history: list[list[float]] = []
        self.last_write = self.last_preview = 0.0  # the first report writes a preview at once
        self.previews = 0  # written so far: the page asks for one only once it exists
        self.reports = 0

    def __call__(self, p) -> None:
        self.reports += 1
        if p.phase != "coding":
            self.history.append([p.step, round(p.psnr, 3)])
        t = time.monotonic()
        wrote = False
        if p.image is not None and t - self.last_preview >= PREVIEW_INTERVAL_S:
            self.last_preview = t
            png = preview_png(p.image(), self.mode)
            if quietly(lambda: self.store.save_preview(self.job_id, png) or True, False):
                self.previews += 1
                wrote = True
        if wrote or t - self.last_write >= self.interval:
            self.last_write = t
            self.record["progress"] = {
                "step": p.step,
                "total": p.total,
                "loss": p.loss,
                "psnr": round(p.psnr, 3),
                "elapsed_s": round(p.elapsed_s, 2),
                "phase": p.phase,
                "detail": p.detail,
                "previews": self.previews,
                "seq": self.reports,  # rises through every phase: the event stream's id
            }
            self.record["history"] = self.history[-HISTORY_LIMIT:]
            quietly(lambda: self.store.write(self.record))  # the next report writes it
            if self.notifier is not None:
                self.notifier.send("progress", self.record)


def comparisons(u8, size: int) -> dict:
    """The classic codecs' files of at most `size` bytes, each at its best: their PSNR,
    bytes and quality (JPEG: its chroma subsampling too) under the metrics' names; all
    None without an image (`u8` None: an upscaler, which holds the image exactly)."""
    out: dict = {}
    for name, fmt in (("jpeg", "JPEG"), ("webp", "WEBP"), ("avif", "AVIF"), ("jxl", "JXL")):
        if u8 is None:
            r = None
        elif fmt == "JXL":  # a plugin: where it is missing or fails, an empty row
            r = quietly_compare(lambda: at_bytes(u8, "JXL", size)) if HAS_JXL else None
        else:
            r = at_bytes(u8, fmt, size)
        out[f"{name}_psnr_same_bytes"] = None if r is None else round(r.psnr, 3)
        out[f"{name}_bytes"] = None if r is None else r.bytes
        out[f"{name}_quality"] = None if r is None else r.quality
        if name == "jpeg":
            out["jpeg_subsampling"] = None if r is None else r.subsampling
    return out


def job_metrics(result, image, upload: bytes, history: list, device: str) -> dict:
    """A finished job's metrics (schemas.MetricsOut): the file's own numbers, the classic
    codecs at the same size (not for an upscaler, which holds the image exactly)."""
    h, w = image.size
    raw = h * w * image.channels
    upscaler = result.coded.storage == "upscale"
    classic = comparisons(None if upscaler else to_uint8(image.pixels), result.bytes)
    metrics = {
        **result.summary(),
        "psnr_history": history[-HISTORY_LIMIT:],
        "model_bytes": result.bytes,
        "input_bytes": len(upload),
        "raw_bytes": raw,
        "compression_ratio_raw": round(raw / result.bytes, 3),
        "compression_ratio_input": round(len(upload) / result.bytes, 3),
        **classic,
        "fit_seconds": round(result.seconds, 3),
        "device": device,
        "render_flops": result.render_flops(),
        "input": {
            "format": image.source_format,
            "mode": image.source_mode,
            "width": w,
            "height": h,
        },
    }
    return JobMetrics(**metrics).model_dump(mode="json")  # checked: what the API serves


def _fit(
    job_id: str,
    record: JobRecord,
    settings: Settings,
    store: JobStore,
    device: str,
    notifier: Notifier | None = None,
) -> None:
    upload = retrying(lambda: store.load_upload(job_id), "read the upload")
    if upload is None:
        raise RuntimeError("the upload is missing from the store")
    image = load_image(upload, settings.max_pixels)
    options = JobOptions.model_validate(record["options"]).to_options(
        device, default_budget_s=settings.default_time_budget_s
    )
    progress = _Progress(job_id, record, store, settings, image.mode, notifier)
    last_check = [0.0]
    cancelled = [False]

    def should_stop() -> bool:
        t = time.monotonic()
        if t - last_check[0] >= 0.25:
            last_check[0] = t
            cancelled[0] = quietly(lambda: store.cancel_requested(job_id), cancelled[0])
        return cancelled[0]

    result = compress(image.pixels, image.mode, options, progress, should_stop)
    if cancelled[0] or retrying(lambda: store.cancel_requested(job_id), "read the cancel flag"):
        log.info("job %s: cancelled", job_id)
        return
    metrics = job_metrics(result, image, upload, progress.history, device)
    retrying(lambda: store.save_model(job_id, result.data), "save the model")
    if retrying(lambda: store.cancel_requested(job_id), "read the cancel flag"):
        # cancelled while we saved (the model goes), or deleted (all of it goes)
        if retrying(lambda: store.cancel(job_id), "cancel") is None:
            retrying(lambda: store.delete(job_id), "delete")
        return
    transition(record, JobStatus.SUCCEEDED, finished_at=now(), metrics=metrics)
    retrying(lambda: store.write(record), "write the result")
    log.info("job %s: succeeded, %d bytes, %.2f dB", job_id, result.bytes, result.psnr)
