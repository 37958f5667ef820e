"""Request and response models of the HTTP edge."""

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from mhinr.model.fit import PHASES
from mhinr.worker.jobs import JobStatus

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
    metrics: dict | None = None
    webhook: dict | None = Field(None, description="url and events, as submitted")
    links: Links


class MetricsOut(BaseModel):
    """A finished job's numbers (GET /jobs/{id}/metrics). Comparisons are at the same byte
    size as the .inr file, each codec at its best; null where there is none (the upscale
    preset stores the image exactly)."""

    model_config = ConfigDict(extra="allow")  # older records may hold more

    psnr: float | None = Field(description="dB against the upload; null when exact")
    ssim: float
    bytes: int = Field(description="the .inr file")
    bpp: float = Field(description="bits per pixel of the .inr file")
    params: int = Field(description="the network's parameters")
    seconds: float = Field(description="fit and coding, seconds")
    width: int
    height: int
    storage: str = Field(description="how the file stores the network")
    quantization: str | None = None
    heads: list[int] = Field(description="rows, columns of heads")
    cell: list[int] | None = Field(None, description="pixels a head covers: rows, columns")
    alpha: int | None = None
    body: str
    target: dict | None = Field(None, description="the target asked for, if any")
    met: bool | None = Field(None, description="whether the target was met")
    target_outcome: str | None = Field(
        None, description="the target's outcome in words: met, or what was reached and why"
    )
    train_steps: int | None = None
    stage: dict | None = Field(
        None,
        description="compact and max: the trained stage — steps, seconds, bytes, "
        "multiplications a pixel, whether the file kept it, and the file with and without it",
    )
    upscale: dict | None = Field(
        None,
        description="upscale: its training steps and seconds, and the held-out check — PSNR "
        "of its ×2 enlargement of the image's quarter-size copy against the half-size copy, "
        "and Lanczos's on the same pair",
    )
    psnr_history: list[list[float]] = Field(
        description="[step, PSNR] pairs of what trained (the stage, the upscaler, a network: "
        "see ProgressOut.phase); empty for a job that trained nothing"
    )
    model_bytes: int
    input_bytes: int = Field(description="the uploaded file")
    raw_bytes: int = Field(description="width × height × channels")
    compression_ratio_raw: float
    compression_ratio_input: float
    jpeg_psnr_same_bytes: float | None = None
    jpeg_bytes: int | None = None
    jpeg_quality: int | None = None
    jpeg_subsampling: str | None = Field(None, description="4:2:0 or 4:4:4, the better")
    webp_psnr_same_bytes: float | None = None
    webp_bytes: int | None = None
    webp_quality: int | None = None
    avif_psnr_same_bytes: float | None = None
    avif_bytes: int | None = None
    avif_quality: int | None = None
    jxl_psnr_same_bytes: float | None = Field(
        None, description="JPEG XL (libjxl effort 7), where the server can encode it"
    )
    jxl_bytes: int | None = None
    jxl_quality: int | None = None
    fit_seconds: float
    device: str = Field(description="where the fit ran: cpu or cuda")
    render_flops: int | None = Field(None, description="FLOPs of a native-size render")
    input: dict = Field(description="the upload's format, mode and size")


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
