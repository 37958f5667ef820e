"""GET /render: the image rendered from a job's model at any size."""

import time
from dataclasses import dataclass
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from starlette.concurrency import run_in_threadpool
from werkzeug.datastructures import MIMEAccept
from werkzeug.http import parse_accept_header

from mhinr.app import deps, signing
from mhinr.app.errors import APIError
from mhinr.app.routes.jobs import refuse_unknown_fields, succeeded_or_409
from mhinr.app.schemas import errors
from mhinr.model.pixels import encode as image_file
from mhinr.model.render import Method as RenderMethod
from mhinr.model.render import output_size, render, render_kind

router = APIRouter()
# server's order of preference where the client's Accept ranks formats equally: PNG (lossless)
# for */* and image/*, a lossy format only when the client names it
MEDIA = {"png": "image/png", "avif": "image/avif", "webp": "image/webp", "jpeg": "image/jpeg"}
QUALITY = {"jpeg": 90, "webp": 90, "avif": 80}  # defaults of `quality` (lossy formats)


def choose_format(fmt: str | None, accept: str) -> str:
    """`format` when given, else the best of MEDIA for the Accept header (q-values, wildcards
    and q=0 as RFC 9110 says; no header: PNG); 406 when it accepts none of them."""
    if fmt:
        return fmt
    if not accept.strip():
        return "png"
    best = parse_accept_header(accept, MIMEAccept).best_match(list(MEDIA.values()))
    if best is None:
        raise APIError(406, f"Accept: {accept[:100]!r} takes none of {', '.join(MEDIA.values())}")
    return next(name for name, media in MEDIA.items() if media == best)


def encode(pixels, mode: str, fmt: str, quality: int | None = None) -> bytes:
    """uint8 [C, H, W] pixels (a tensor) as an image file of `fmt`."""
    return image_file(pixels.numpy(), fmt, quality or QUALITY.get(fmt, 0), mode)


def check_signature(request: Request, cfg) -> None:
    """A signed URL's signature, where the server signs them (403)."""
    if cfg.url_signing_key:
        params = list(request.query_params.multi_items())
        problem = signing.check(cfg.url_signing_key, request.url.path, params)
        if problem is not None:
            raise APIError(403, problem)


def check_sizes(cfg, size: int | None, width: int | None, height: int | None) -> None:
    """The sizes asked, within the server's limits (422)."""
    for name, v in (("size", size), ("width", width), ("height", height)):
        if v is not None and v < 1:
            raise APIError(422, f"{name} must be a positive number of pixels, got {v}")
        if v is not None and v > cfg.max_render_side:
            raise APIError(
                422, f"{name}={v} is over the limit of {cfg.max_render_side} pixels a side"
            )
    if size is not None and (width is not None or height is not None):
        raise APIError(422, "give either size or width/height, not both")


def render_headers(etag: str, kind: str) -> dict[str, str]:
    """A render's caching headers, and how its pixels are made (model/render.py
    render_kind)."""
    return {
        "ETag": f'"{etag}"',
        "Cache-Control": "public, max-age=86400",
        "Vary": "Accept",
        "X-Mhinr-Render": kind,
    }


async def render_response(
    request: Request,
    job_id: str,
    size: int | None,
    width: int | None,
    height: int | None,
    fmt: str | None,
    method: RenderMethod,
    quality: int | None = None,
    dpr: float = 1.0,
) -> Response:
    cfg = request.app.state.settings
    check_signature(request, cfg)
    record = await run_in_threadpool(deps.job_or_404, request, job_id)
    succeeded_or_409(record)
    check_sizes(cfg, size, width, height)
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
    if dpr != 1:  # device pixel ratio: the asked CSS pixels times dpr
        if size is None and width is None and height is None:
            size = max(coded.height, coded.width)
        size, width, height = (None if v is None else max(1, round(v * dpr)) for v in
                               (size, width, height))  # fmt: skip
    out_h, out_w = output_size((coded.height, coded.width), size, width, height)
    deps.check_render_limits(cfg, out_h, out_w)
    fmt = choose_format(fmt, request.headers.get("accept", ""))
    if quality is not None and fmt == "png":
        raise APIError(422, "quality applies to jpeg, webp and avif; png is lossless")
    etag = f"{digest}-{out_w}x{out_h}-{method}-{fmt}-q{quality or QUALITY.get(fmt, 0)}"
    headers = render_headers(
        etag, render_kind(net, (coded.height, coded.width), (out_h, out_w), method)
    )
    if deps.not_modified(request.headers.get("if-none-match"), etag):
        return Response(status_code=304, headers=headers)
    cache, key = request.app.state.render_cache, (job_id, etag)
    hit = cache.get(key)  # the same render asked again: its bytes, not the work
    if hit is not None:
        return Response(hit, media_type=MEDIA[fmt], headers=headers)
    start = time.perf_counter()

    def work() -> bytes:  # in a worker thread: waiting for the memory budget blocks no one
        with request.app.state.render_budget.take(out_h * out_w, len(coded.mode)):
            pixels = render(net, (coded.height, coded.width), (out_h, out_w), method=method)
            return encode(pixels, coded.mode, fmt, quality)

    body = await run_in_threadpool(work)
    cache.put(key, body)
    request.app.state.metrics.render_seconds.observe(time.perf_counter() - start)
    return Response(body, media_type=MEDIA[fmt], headers=headers)


Size = Annotated[
    int | None,
    Query(ge=1, description="longer side in pixels, aspect kept (not with width/height)"),
]
Width = Annotated[
    int | None, Query(ge=1, description="output width (with height, or alone: aspect kept)")
]
Height = Annotated[
    int | None, Query(ge=1, description="output height (with width, or alone: aspect kept)")
]
Format = Annotated[
    Literal["png", "avif", "webp", "jpeg"] | None,
    Query(
        alias="format",
        description="default: the best for the Accept header (q-values honoured; PNG for none "
        "or */*; 406 when it takes none of these)",
    ),
]
Quality = Annotated[
    int | None,
    Query(
        ge=1,
        le=100,
        description="lossy formats only: jpeg (default 90), webp (90), avif (80)",
    ),
]
MethodQuery = Annotated[
    Literal["resample", "plain"],
    Query(description="resample: seam-free (default); plain: the paper's renderer"),
]
RENDER_PARAMS = {"size", "width", "height", "format", "method", "quality", "dpr", "sig", "expires"}
Dpr = Annotated[
    float,
    Query(ge=1, le=4, description="device pixel ratio: the size (or native size) times this"),
]
Sig = Annotated[
    str | None,
    Query(description="HMAC of the URL, when the server has INR_URL_SIGNING_KEY (mhinr sign)"),
]
Expires = Annotated[
    int | None, Query(description="Unix seconds after which a signed URL is refused")
]
RESPONSES = {
    **errors(403, 404, 406, 409, 422),
    200: {
        "content": {m: {} for m in MEDIA.values()},
        "description": "the image",
        "headers": {
            "X-Mhinr-Render": {
                "description": "how the pixels are made: decode (the file at its own size), "
                "lanczos-of-decode (that decode resized with Lanczos), network (the network "
                "evaluated on the output grid: method=plain), upscaler (the upscale preset's "
                "network enlarging), lanczos-of-image (an upscale file's image reduced)",
                "schema": {"type": "string"},
            }
        },
    },
    304: {"description": "If-None-Match names this render's ETag"},
}


@dataclass
class RenderParams:
    """The query of both render endpoints (a dependency: one list, documented once)."""

    size: Size = None
    width: Width = None
    height: Height = None
    fmt: Format = None
    method: MethodQuery = "resample"
    quality: Quality = None
    dpr: Dpr = 1.0
    sig: Sig = None  # checked on the raw query (signing.check), declared for the docs
    expires: Expires = None

    async def respond(self, request: Request, job_id: str, known: set[str]) -> Response:
        await refuse_unknown_fields(request, known)
        return await render_response(
            request, job_id, self.size, self.width, self.height, self.fmt, self.method,
            self.quality, self.dpr,
        )  # fmt: skip


@router.get(
    "/render",
    summary="Render a job's image at any size",
    response_class=Response,
    responses=RESPONSES,
)
async def render_query(
    request: Request,
    job: Annotated[str, Query(description="the job id")],
    params: Annotated[RenderParams, Depends()],
) -> Response:
    return await params.respond(request, job, RENDER_PARAMS | {"job"})


@router.get(
    "/jobs/{job_id}/render",
    summary="Render a job's image (as a link of the job)",
    response_class=Response,
    responses=RESPONSES,
)
async def render_job(
    request: Request, job_id: str, params: Annotated[RenderParams, Depends()]
) -> Response:
    return await params.respond(request, job_id, RENDER_PARAMS)
