"""Request and response models of the HTTP edge."""

from datetime import datetime

from pydantic import BaseModel, Field

from mhinr.model.fit import PHASES
from mhinr.worker.jobs import JobStatus
from mhinr.worker.records import JobMetrics

Status = JobStatus


class Links(BaseModel):
    self: str
    cancel: str
    events: str
    metrics: str
    model: str
    render: str


class ProgressOut(BaseModel):
    step: int = 0
    total: int = 0
    loss: float | None = None
    psnr: float | None = None
    elapsed_s: float = 0.0
    phase: str = Field(
        "training",
        description="what the step and the PSNR measure: "
        + "; ".join(f"{k}: {v}" for k, v in PHASES.items()),
    )
    detail: str = Field("", description="a word on the step (coding: the cell size)")
    previews: int = Field(
        0, description="previews written so far: GET /jobs/{id}/preview has one when > 0"
    )
    seq: int = Field(0, description="the report's number, rising through every phase")


class JobCreated(BaseModel):
    job_id: str = Field(examples=["Q2hX3n8sY0m9aB1cD2eF3g"])
    status: Status = JobStatus.QUEUED
    plan: list[str] = Field(
        default_factory=list,
        description="what the job will do, step by step: what it trains, for how long, the "
        "target (`mhinr fit --explain` prints the same)",
    )
    links: Links


class MetricsOut(JobMetrics):
    """A finished job's numbers (GET /jobs/{id}/metrics): the worker's own record of them
    (worker/records.JobMetrics), as stored."""


class JobOut(BaseModel):
    job_id: str
    status: Status
    created_at: datetime = Field(description="ISO 8601, UTC")
    started_at: datetime | None = None
    finished_at: datetime | None = None
    progress: ProgressOut | None = None
    options: dict
    input: dict
    device: str | None = None
    attempts: int = Field(0, description="fits started (a dead worker's job is fitted again)")
    requeued: int = Field(0, description="times it was queued again after its worker died")
    worker: str | None = Field(None, description="host:pid of the worker that fits it last")
    error: str | None = None
    metrics: MetricsOut | None = None
    webhook: dict | None = Field(None, description="url and events, as submitted")
    links: Links


class JobSummary(BaseModel):
    """A job as GET /jobs lists it (GET /jobs/{id} has the rest)."""

    job_id: str
    status: Status
    created_at: datetime
    finished_at: datetime | None = None
    preset: str | None = None
    input: dict
    error: str | None = None
    links: Links


class JobList(BaseModel):
    jobs: list[JobSummary] = Field(description="newest first")
    next: str | None = Field(None, description="the next page's URL; null on the last page")


class ErrorOut(BaseModel):
    detail: str = Field(description="what went wrong, in one line for a person")


# what the server really answers, one example a status (app/openapi.py puts them in the schema)
ERROR_EXAMPLES = {
    400: "the file is empty (0 bytes)",
    401: "this server needs an API key: Authorization: Bearer <key>",
    403: "the URL's signature does not match (sig)",
    404: "no job 'Q2hX3n8sY0m9aB1cD2eF3g'",
    406: "Accept: 'text/html' takes none of image/png, image/avif, image/webp, image/jpeg",
    408: "the request body arrived too slowly (limit 120 s, 15 s without data)",
    409: "job Q2hX3n8sY0m9aB1cD2eF3g is running",
    413: "the image is 30000x30000 = 900,000,000 pixels, over the limit of 16,000,000",
    415: "not an image we can read; accepted formats: PNG, JPEG, WEBP, BMP, TIFF, GIF",
    422: "steps: at most 20000, got 1000000",
    503: "the job store is not reachable, try again shortly: Connection refused",
}
ERROR_TEXT = {
    400: "bad input (empty or damaged file)",
    401: "missing or wrong API key",
    403: "a render URL unsigned, wrongly signed or expired (INR_URL_SIGNING_KEY)",
    404: "no such job",
    406: "the Accept header takes none of the formats offered",
    408: "the upload arrived too slowly",
    409: "the job is not in a state that allows this",
    413: "upload or image too large",
    415: "not an image format we accept",
    422: "a parameter is out of range, unknown, or does not fit the image",
    503: "broker or store unreachable, or the server is busy (see Retry-After)",
}


def errors(*codes: int) -> dict:
    """OpenAPI documentation of error answers: each status with its meaning and a real
    example of its `detail`."""
    return {
        c: {
            "model": ErrorOut,
            "description": ERROR_TEXT[c],
            "content": {"application/json": {"example": {"detail": ERROR_EXAMPLES[c]}}},
        }
        for c in codes
    }
