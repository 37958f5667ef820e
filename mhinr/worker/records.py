"""The records the worker writes and the API reads, typed once: a job's record in the store
(`JobRecord`) and a finished job's metrics (`JobMetrics`, which the API serves as
`MetricsOut`)."""

from typing import Any, TypedDict

from pydantic import BaseModel, ConfigDict, Field


class JobRecord(TypedDict, total=False):
    """A job in the store (worker/store.py), as the worker, the reaper and the API change it
    (worker/jobs.transition)."""

    id: str
    status: str  # a JobStatus
    created_at: float  # seconds since the epoch
    started_at: float | None
    finished_at: float | None
    options: dict[str, Any]  # JobOptions.stored()
    input: dict[str, Any]  # the upload: name, bytes, format, mode, width, height
    progress: dict[str, Any] | None
    metrics: dict[str, Any] | None  # JobMetrics, as JSON
    error: str | None
    attempts: int
    requeued: int
    worker: str | None
    device: str | None
    webhook: dict[str, Any] | None


class JobMetrics(BaseModel):
    """A finished job's numbers. Comparisons are at the same byte size as the .inr file, each
    codec at its best; null where there is none (the upscale preset stores the image
    exactly). The worker builds them through this model (a missing or mistyped number fails
    the job's end, not a later read)."""

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
        description="compact and max: the trained stage — steps, seconds, training steps a "
        "second, bytes, hidden channels (8, or 16 for a larger file), "
        "multiplications a pixel, whether the file kept it, whether its coefficients were "
        "quantized again for the stage (requantized: descended, shrunk or whole, with ×2 or ×3 "
        "after further rounds that paid, or null), and the file "
        "with and without it",
    )
    upscale: dict | None = Field(
        None,
        description="upscale: the shipped network's name (prior), the seconds of its check, "
        "the file's image and other bytes, the blend toward Lanczos at ×2, ×3, ×4, and the "
        "held-out check — PSNR "
        "of its ×2 enlargement of the image's half-size copy against the image, "
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
