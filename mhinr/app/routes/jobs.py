"""POST /fit and the /jobs/{id} resource."""

import asyncio
import hashlib
import re
from collections.abc import AsyncIterable
from datetime import UTC, datetime
from typing import Annotated
from urllib.parse import urlencode

from fastapi import (
    APIRouter,
    Depends,
    File,
    Form,
    Header,
    Query,
    Request,
    Response,
    UploadFile,
)
from fastapi.sse import EventSourceResponse, ServerSentEvent
from pydantic import Field
from starlette.concurrency import run_in_threadpool

from mhinr.app import deps
from mhinr.app.errors import APIError
from mhinr.app.schemas import JobCreated, JobList, JobOut, JobSummary, Links, MetricsOut, errors
from mhinr.model.compress import estimate_fit_bytes
from mhinr.model.images import load_image
from mhinr.model.plan import plan
from mhinr.worker.jobs import IdempotencyConflict, JobStatus, QueueUnreachable
from mhinr.worker.options import FitSpec, job_options
from mhinr.worker.records import JobRecord
from mhinr.worker.store import ID_PATTERN, TERMINAL
from mhinr.worker.webhooks import check_url, parse_events

router = APIRouter()
EVENTS = "/jobs/{job_id}/events"  # a stream: no HEAD (app.methods)


def links(job_id: str) -> Links:
    base = f"/jobs/{job_id}"
    return Links(
        self=base,
        cancel=f"{base}/cancel",
        events=f"{base}/events",
        metrics=f"{base}/metrics",
        model=f"{base}/model",
        render=f"/render?job={job_id}",
    )


async def refuse_unknown_fields(request: Request, known: set[str]) -> None:
    """422 for a form field or query parameter this endpoint does not take (a typo such as
    `qualty=90` would otherwise be ignored without a word)."""
    given = set(request.query_params)
    if request.method == "POST":
        given |= set((await request.form()).keys())
    unknown = sorted(given - known)
    if unknown:
        raise APIError(
            422, f"unknown parameter {unknown[0]!r}; this endpoint takes {', '.join(sorted(known))}"
        )


class FitForm(FitSpec):
    """POST /fit's form: the fit's options (worker/options.py) and where to tell its end."""

    webhook: str | None = Field(
        None,
        max_length=2000,
        description="an http(s) URL the worker POSTs the job's events to (JSON; signed with "
        "X-Mhinr-Signature when the server has INR_WEBHOOK_SECRET; retried)",
    )
    webhook_events: str | None = Field(
        None,
        pattern=r"^(start|progress|completed)(,(start|progress|completed))*$",
        description="which events, comma-separated: start, progress (at most every 2 s), "
        "completed (succeeded, failed or cancelled); default completed",
    )


FIT_FIELDS = {"file", *FitForm.model_fields}
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        pattern=r"^[\x21-\x7e]{1,255}$",
        description="any 1-255 printable ASCII characters: a request sent again with the "
        "same key (the same upload and options) gets the job the first one created, "
        "with `Idempotent-Replayed: true`, for INR_RETENTION_S; the same key with "
        "another request is 422",
    ),
]


@router.post(
    "/fit",
    status_code=202,
    response_model=JobCreated,
    summary="Fit a network to an image",
    dependencies=[Depends(deps.require_key)],
    responses=errors(400, 401, 413, 415, 422, 503),
    description="Upload an image (PNG, JPEG, WebP, BMP, TIFF, GIF first frame) and the "
    "fit's options; the job is queued and its links returned, with the plan: what the job "
    "will do (what it trains, for how long, the target). Options the preset would ignore "
    "are refused. Poll the job or follow its events, then render it or download the .inr "
    "model.",
)
async def create_fit(
    request: Request,
    response: Response,
    file: Annotated[UploadFile, File(description="the image")],
    form: Annotated[FitForm, Form()],
    idempotency_key: IdempotencyKey = None,
) -> JobCreated:
    cfg = request.app.state.settings
    await refuse_unknown_fields(request, FIT_FIELDS)
    try:
        spec = job_options(form.model_dump(include=set(FitSpec.model_fields)))
        spec.check_limits(cfg.max_steps, cfg.max_time_budget_s)
    except ValueError as exc:
        raise APIError(422, str(exc)) from None
    hook = await _webhook(form, cfg)
    data, image = await _upload(file, cfg)
    try:
        job_plan = plan(spec.to_options(), image.size, image.channels)
    except ValueError as exc:
        raise APIError(422, str(exc)) from None
    info = {
        "name": download_stem(file.filename),
        "bytes": len(data),
        "format": image.source_format,
        "mode": image.source_mode,
        "width": image.size[1],
        "height": image.size[0],
    }
    try:
        job_id, new = await run_in_threadpool(
            request.app.state.jobs.submit,
            spec.stored(),
            data,
            info,
            idempotency_key,
            cfg.retention_s,
            hook,
        )
    except QueueUnreachable as exc:
        raise APIError(503, str(exc)) from None
    except IdempotencyConflict as exc:
        raise APIError(422, str(exc)) from None
    status = JobStatus.QUEUED
    if new:
        request.app.state.metrics.submitted.inc()
    else:  # a replay: the job the first request made, as it is now
        response.headers["Idempotent-Replayed"] = "true"
        record = await run_in_threadpool(request.app.state.store.get, job_id)
        status = status if record is None else record["status"]
    return JobCreated(job_id=job_id, status=status, plan=job_plan.lines, links=links(job_id))


async def _webhook(form: FitForm, cfg) -> dict | None:
    """The webhook asked for, its URL checked (no private address unless allowed)."""
    if form.webhook_events is not None and form.webhook is None:
        raise APIError(422, "webhook_events needs a webhook URL")
    if form.webhook is None:
        return None
    try:
        url = await run_in_threadpool(check_url, form.webhook, cfg.webhook_private)
        return {"url": url, "events": parse_events(form.webhook_events)}
    except ValueError as exc:
        raise APIError(422, str(exc)) from None


async def _upload(file: UploadFile, cfg):
    """The upload's bytes and image, within the service's limits (413 over them)."""
    data = await file.read(cfg.max_upload_bytes + 1)
    if len(data) > cfg.max_upload_bytes:
        raise APIError(413, f"the upload is over {cfg.max_upload_bytes:,} bytes")
    image = await run_in_threadpool(load_image, data, cfg.max_pixels)
    need = estimate_fit_bytes(image.size, image.channels)
    if need > cfg.max_fit_memory_mb * 2**20:
        h, w = image.size
        raise APIError(
            413,
            f"fitting a {h}x{w} image needs about {need / 2**20:,.0f} MB, over this "
            f"service's limit of {cfg.max_fit_memory_mb:,} MB: send a smaller image",
        )
    return data, image


def when(epoch: float | None) -> datetime | None:
    """A record's time (seconds since the epoch) as the API shows it: ISO 8601, UTC."""
    return None if epoch is None else datetime.fromtimestamp(epoch, UTC)


def job_out(record: JobRecord) -> JobOut:
    return JobOut(
        job_id=record["id"],
        status=record["status"],
        created_at=when(record["created_at"]),
        started_at=when(record.get("started_at")),
        finished_at=when(record.get("finished_at")),
        progress=record.get("progress"),
        options=record.get("options", {}),
        input=record.get("input", {}),
        device=record.get("device"),
        attempts=record.get("attempts", 0),
        requeued=record.get("requeued", 0),
        worker=record.get("worker"),
        error=record.get("error"),
        metrics=record.get("metrics"),
        webhook=record.get("webhook"),
        links=links(record["id"]),
    )


@router.get(
    "/jobs",
    response_model=JobList,
    summary="The jobs, newest first, a page at a time",
    dependencies=[Depends(deps.require_key)],
    responses=errors(401, 404, 422),
    description="Every job this server holds (within the retention), newest first; `after` "
    "(the last job id of the previous page) continues where a page ended, and `next` is that "
    "page's URL. With `INR_API_KEY` set this needs the key: a job id is the only secret "
    "guarding a job's image.",
)
async def list_jobs(
    request: Request,
    limit: Annotated[int, Query(ge=1, le=100, description="jobs a page")] = 20,
    after: Annotated[
        str | None,
        Query(
            pattern=ID_PATTERN.pattern,
            description="the last job id of the previous page (its `next` link has it)",
        ),
    ] = None,
    status: Annotated[JobStatus | None, Query(description="only jobs in this status")] = None,
) -> JobList:
    await refuse_unknown_fields(request, {"limit", "after", "status"})
    records = await run_in_threadpool(lambda: list(request.app.state.store.records()))
    records.sort(key=lambda r: (r.get("created_at", 0), r["id"]), reverse=True)
    if status is not None:
        records = [r for r in records if r["status"] == status]
    start = 0
    if after is not None:
        ids = [r["id"] for r in records]
        if after not in ids:
            raise APIError(404, f"no job {after!r} to continue after (deleted?)")
        start = ids.index(after) + 1
    page = records[start : start + limit]
    more = start + limit < len(records)
    query = {"limit": limit, "after": page[-1]["id"]} if more and page else None
    if query and status is not None:
        query["status"] = str(status)
    return JobList(
        jobs=[
            JobSummary(
                job_id=r["id"],
                status=r["status"],
                created_at=when(r["created_at"]),
                finished_at=when(r.get("finished_at")),
                preset=r.get("options", {}).get("preset"),
                input=r.get("input", {}),
                error=r.get("error"),
                links=links(r["id"]),
            )
            for r in page
        ],
        next=None if query is None else f"/jobs?{urlencode(query)}",
    )


@router.get(
    "/jobs/{job_id}",
    response_model=JobOut,
    summary="A job's status and progress",
    responses=errors(404),
)
async def get_job(request: Request, job_id: str) -> JobOut:
    return job_out(await run_in_threadpool(deps.job_or_404, request, job_id))


def succeeded_or_409(record: JobRecord) -> None:
    if record["status"] != "succeeded":
        detail = f"job {record['id']} is {record['status']}"
        if record.get("error"):
            detail += f": {record['error']}"
        raise APIError(409, detail)


@router.get(
    "/jobs/{job_id}/metrics",
    response_model=MetricsOut,
    summary="Quality and size of a finished job",
    responses=errors(404, 409),
    description="PSNR, SSIM, PSNR history, parameters, model bytes, bits per pixel, "
    "compression ratios, the PSNR of a JPEG, a WebP and an AVIF of the same byte size, fit "
    "seconds, device and render FLOPs.",
)
async def get_metrics(request: Request, job_id: str) -> dict:
    record = await run_in_threadpool(deps.job_or_404, request, job_id)
    succeeded_or_409(record)
    return record.get("metrics") or {}


@router.get(
    "/jobs/{job_id}/model",
    summary="The .inr file",
    responses={
        **errors(404, 409),
        200: {"content": {"application/octet-stream": {}}, "description": "the .inr file"},
        304: {"description": "If-None-Match names this file's ETag"},
    },
    response_class=Response,
)
async def get_model(request: Request, job_id: str) -> Response:
    record = await run_in_threadpool(deps.job_or_404, request, job_id)
    succeeded_or_409(record)
    data = await run_in_threadpool(request.app.state.store.load_model, job_id)
    if data is None:
        raise APIError(404, f"job {job_id} has no model (deleted)")
    etag = hashlib.blake2b(data, digest_size=12).hexdigest()  # the file never changes
    name = record["input"].get("name") or job_id  # the upload's, cleaned (download_stem)
    headers = {
        "ETag": f'"{etag}"',
        "Cache-Control": "private, max-age=86400",
        "Content-Disposition": f'attachment; filename="{name}.inr"',
    }
    if deps.not_modified(request.headers.get("if-none-match"), etag):
        return Response(status_code=304, headers=headers)
    return Response(data, media_type="application/octet-stream", headers=headers)


def download_stem(filename: str | None) -> str | None:
    """The upload's name without its extension, for naming downloads (`kodim23.inr`): letters,
    digits, `-`, `_` and `.` only, at most 80 characters; None when nothing is left. It names a
    download, never a path on the server."""
    stem = (filename or "").replace("\\", "/").rsplit("/", 1)[-1].rsplit(".", 1)[0]
    clean = re.sub(r"[^A-Za-z0-9._-]+", "_", stem).strip("._")[:80]
    return clean or None


@router.post(
    "/jobs/{job_id}/cancel",
    response_model=JobOut,
    summary="Cancel a queued or running job, keeping its record",
    dependencies=[Depends(deps.require_key)],
    responses=errors(401, 404, 409),
    description="The job ends `cancelled` (a running fit stops within a second); its upload "
    "and any partial result are deleted, its record stays for `INR_RETENTION_S`. Cancelling "
    "a cancelled job again answers the same; a job that already succeeded or failed is 409.",
)
async def cancel_job(request: Request, job_id: str) -> JobOut:
    await run_in_threadpool(deps.job_or_404, request, job_id)
    after = await run_in_threadpool(request.app.state.jobs.cancel, job_id)
    record = await run_in_threadpool(deps.job_or_404, request, job_id)
    if after not in ("cancelled", None):
        raise APIError(409, f"job {job_id} has already {after}: there is nothing to cancel")
    return job_out(record)


@router.delete(
    "/jobs/{job_id}",
    status_code=204,
    summary="Delete a job and all its data",
    dependencies=[Depends(deps.require_key)],
    responses=errors(401, 404),
    description="Whatever its status: a queued or running job is stopped first. Afterwards "
    "every URL of the job is 404.",
)
async def delete_job(request: Request, job_id: str) -> Response:
    await run_in_threadpool(deps.job_or_404, request, job_id)
    if not await run_in_threadpool(request.app.state.jobs.delete, job_id):
        raise APIError(404, f"no job {job_id!r}")
    request.app.state.render_cache.drop(job_id)  # its renders' memory, at once
    return Response(status_code=204)


def existing_job(request: Request, job_id: str) -> JobRecord:
    """A dependency: 404 before a response starts (a stream cannot turn into a 404)."""
    return deps.job_or_404(request, job_id)


@router.get(
    EVENTS,
    response_class=EventSourceResponse,
    summary="Server-sent events of progress",
    responses=errors(404),
    description="`progress` events (data: step, total, loss, psnr, elapsed_s, phase, detail, "
    "previews, seq; id: seq, the report's number, rising through every phase) "
    "while the job runs, then one `status` event (data: status, error; id: `end`) with the "
    "final status, and the stream ends. A comment line keeps an idle connection open every "
    "15 s. A client that reconnects with `Last-Event-ID` gets only later steps.",
)
async def job_events(
    request: Request,
    record: Annotated[dict, Depends(existing_job)],
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
) -> AsyncIterable[ServerSentEvent]:
    st, job_id = request.app.state.store, record["id"]
    last_step = int(last_event_id) if last_event_id and last_event_id.isdigit() else -1
    while True:
        record = await run_in_threadpool(st.get, job_id)
        if record is None:
            yield ServerSentEvent(event="status", data={"status": "deleted"}, id="end")
            return
        prog = record.get("progress")
        seq = prog.get("seq", prog.get("step", 0)) if prog else None  # older records: the step
        if prog and seq is not None and seq > last_step:
            last_step = seq
            yield ServerSentEvent(event="progress", data=prog, id=str(last_step))
        if record["status"] in TERMINAL:
            final = {"status": record["status"], "error": record.get("error")}
            yield ServerSentEvent(event="status", data=final, id="end")
            return
        if await request.is_disconnected():
            return
        await asyncio.sleep(0.25)
