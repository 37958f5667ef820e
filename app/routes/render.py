"""GET /render: the image rendered from a job's model at any size."""

import io
import time
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from app import deps
from app.errors import APIError
from app.routes.jobs import succeeded_or_409
from app.schemas import errors
from model.images import to_pil
from model.render import output_size, render

router = APIRouter()
MEDIA = {"png": "image/png", "webp": "image/webp", "jpeg": "image/jpeg"}


def choose_format(fmt: str | None, accept: str) -> str:
    if fmt:
        return fmt
    accept = accept.lower()
    for name in ("webp", "jpeg", "png"):
        if MEDIA[name] in accept:
            return name
    return "png"


def encode(pixels, mode: str, fmt: str) -> bytes:
    img = to_pil(pixels, mode)
    if fmt == "jpeg" and img.mode in ("LA", "RGBA"):
        img = img.convert(img.mode[:-1])
    buf = io.BytesIO()
    if fmt == "png":  # level 1 above a megapixel: encoding, not the network, dominates there
        img.save(buf, "PNG", compress_level=6 if img.width * img.height <= 1_000_000 else 1)
    else:
        # JPEG with optimized Huffman tables: the same pixels in fewer bytes
        img.save(buf, fmt.upper(), quality=90, **({"optimize": True} if fmt == "jpeg" else {}))
    return buf.getvalue()


async def render_response(
    request: Request,
    job_id: str,
    size: int | None,
    width: int | None,
    height: int | None,
    fmt: str | None,
    method: str,
) -> Response:
    cfg = request.app.state.settings
    record = await run_in_threadpool(deps.job_or_404, request, job_id)
    succeeded_or_409(record)
    for name, v in (("size", size), ("width", width), ("height", height)):
        if v is not None and v < 1:
            raise APIError(422, f"{name} must be a positive number of pixels, got {v}")
        if v is not None and v > cfg.max_render_side:
            raise APIError(
                422, f"{name}={v} is over the limit of {cfg.max_render_side} pixels a side"
            )
    if size is not None and (width is not None or height is not None):
        raise APIError(422, "give either size or width/height, not both")
    store = request.app.state.store
    entry = await run_in_threadpool(
        request.app.state.models.get,
        job_id,
        record.get("finished_at"),
        lambda: store.load_model(job_id),
    )
    if entry is None:
        raise APIError(404, f"job {job_id} has no model (deleted)")
    net, coded, digest = entry
    out_h, out_w = output_size((coded.height, coded.width), size, width, height)
    deps.check_render_limits(cfg, out_h, out_w)
    fmt = choose_format(fmt, request.headers.get("accept", ""))
    etag = f'"{digest}-{out_w}x{out_h}-{method}-{fmt}"'
    headers = {"ETag": etag, "Cache-Control": "public, max-age=86400", "Vary": "Accept"}
    if etag in request.headers.get("if-none-match", ""):
        return Response(status_code=304, headers=headers)
    start = time.perf_counter()

    def work() -> bytes:  # in a worker thread: waiting for the memory budget blocks no one
        with request.app.state.render_budget.take(out_h * out_w, len(coded.mode)):
            pixels = render(net, (coded.height, coded.width), (out_h, out_w), method=method)
            return encode(pixels, coded.mode, fmt)

    body = await run_in_threadpool(work)
    request.app.state.metrics.render_seconds.observe(time.perf_counter() - start)
    return Response(body, media_type=MEDIA[fmt], headers=headers)


Size = Annotated[
    int | None, Query(description="longer side in pixels, aspect kept", examples=[512])
]
Width = Annotated[int | None, Query(description="output width (with height, or alone)")]
Height = Annotated[int | None, Query(description="output height")]
Format = Annotated[
    Literal["png", "webp", "jpeg"] | None,
    Query(alias="format", description="default: from the Accept header, else png"),
]
Method = Annotated[
    Literal["resample", "plain"],
    Query(description="resample: seam-free (default); plain: the paper's renderer"),
]
RESPONSES = {
    **errors(404, 409, 422),
    200: {"content": {m: {} for m in MEDIA.values()}, "description": "the image"},
}


@router.get(
    "/render",
    summary="Render a job's image at any size",
    response_class=Response,
    responses=RESPONSES,
)
async def render_query(
    request: Request,
    job: Annotated[str, Query(description="the job id")],
    size: Size = None,
    width: Width = None,
    height: Height = None,
    fmt: Format = None,
    method: Method = "resample",
) -> Response:
    return await render_response(request, job, size, width, height, fmt, method)


@router.get(
    "/jobs/{job_id}/render",
    summary="Render a job's image (as a link of the job)",
    response_class=Response,
    responses=RESPONSES,
)
async def render_job(
    request: Request,
    job_id: str,
    size: Size = None,
    width: Width = None,
    height: Height = None,
    fmt: Format = None,
    method: Method = "resample",
) -> Response:
    return await render_response(request, job_id, size, width, height, fmt, method)
