"""The web page (static files in app/web) and the few endpoints it needs besides the API:
limits, the training preview, the original image and the JPEG / WebP of the same bytes."""

import functools
import io
from pathlib import Path
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request, Response
from fastapi.openapi.docs import get_redoc_html
from fastapi.responses import FileResponse, HTMLResponse
from PIL import Image
from starlette.concurrency import run_in_threadpool

from mhinr.app import deps
from mhinr.app.errors import APIError
from mhinr.app.routes.jobs import succeeded_or_409
from mhinr.app.schemas import errors
from mhinr.model.classic import encode_classic
from mhinr.model.images import load_image, to_pil, to_uint8
from mhinr.model.presets import PRESET_INFO, Options
from mhinr.model.render import output_size
from mhinr.worker.options import spec_schema

WEB = Path(__file__).resolve().parents[1] / "web"
router = APIRouter()


@router.get("/", include_in_schema=False)
async def index() -> FileResponse:
    return FileResponse(WEB / "index.html", headers={"Cache-Control": "no-cache"})


@router.get("/favicon.ico", include_in_schema=False)
async def favicon() -> FileResponse:
    return FileResponse(
        WEB / "favicon.svg",
        media_type="image/svg+xml",
        headers={"Cache-Control": "public, max-age=86400"},
    )


REDOC_LOGO = "https://cdn.redoc.ly/redoc/logo-mini.svg"  # in the bundle's side-menu footer


@functools.cache
def redoc_bundle() -> bytes:
    """fastapi-offline's ReDoc bundle with its one outside fetch (a logo) pointed at ours."""
    import fastapi_offline

    path = Path(fastapi_offline.__file__).parent / "static" / "redoc.standalone.js"
    return path.read_bytes().replace(REDOC_LOGO.encode(), b"/favicon.ico")


@router.get("/redoc", include_in_schema=False)
async def redoc() -> HTMLResponse:
    return get_redoc_html(
        openapi_url="/openapi.json",
        title="mhinr - ReDoc",
        redoc_js_url="/redoc.standalone.js",
        redoc_favicon_url="/favicon.ico",
        with_google_fonts=False,
    )


@router.get("/redoc.standalone.js", include_in_schema=False)
async def redoc_js() -> Response:
    return Response(
        redoc_bundle(),
        media_type="text/javascript",
        headers={"Cache-Control": "public, max-age=86400"},
    )


@router.get("/limits", summary="The server's limits (for clients and the web page)")
async def limits(request: Request) -> dict:
    s = request.app.state.settings
    return {
        "max_upload_bytes": s.max_upload_bytes,
        "max_pixels": s.max_pixels,
        "max_render_side": s.max_render_side,
        "max_render_pixels": s.max_render_pixels,
        "max_steps": s.max_steps,
        "max_time_budget_s": s.max_time_budget_s,
        "api_key_required": bool(s.api_key),
    }


@router.get("/presets", summary="What each preset does, how long it takes, what it takes")
async def presets() -> dict:
    """The presets (model/presets.PRESET_INFO) and each option's schema (the one spec,
    worker/options.FitSpec): the web page builds its form from them."""
    return {"default": Options().preset, "presets": PRESET_INFO, "options": spec_schema()}


@router.get(
    "/jobs/{job_id}/preview",
    summary="The current reconstruction while a job trains",
    response_class=Response,
    responses=errors(404),
)
async def preview(request: Request, job_id: str) -> Response:
    await run_in_threadpool(deps.job_or_404, request, job_id)
    data = await run_in_threadpool(request.app.state.store.load_preview, job_id)
    if data is None:
        raise APIError(404, "no preview yet")
    return Response(data, media_type="image/png", headers={"Cache-Control": "no-store"})


def _original(request: Request, job_id: str):
    st = request.app.state.store
    data = st.load_upload(job_id)
    if data is None:
        raise APIError(404, f"job {job_id} has no upload (deleted)")
    return load_image(data, request.app.state.settings.max_pixels)


@router.get(
    "/jobs/{job_id}/original",
    summary="The uploaded image as PNG, optionally resized "
    "with Lanczos resampling (the classic way to enlarge it)",
    response_class=Response,
    responses=errors(404, 422),
)
async def original(
    request: Request,
    job_id: str,
    size: Annotated[int | None, Query(ge=1, description="longer side")] = None,
) -> Response:
    record = await run_in_threadpool(deps.job_or_404, request, job_id)
    settings = request.app.state.settings
    if size is not None and size > settings.max_render_side:
        raise APIError(
            422, f"size={size} is over the limit of {settings.max_render_side} pixels a side"
        )
    # the upload's size is in the record (upright, as decoded): limits before any loading
    dims = (record["input"]["height"], record["input"]["width"])
    out = dims if size is None else output_size(dims, size, None, None)
    deps.check_render_limits(settings, *out)

    def work() -> bytes:
        with request.app.state.render_budget.take(max(out[0] * out[1], dims[0] * dims[1])):
            img = _original(request, job_id)
            pil = to_pil(to_uint8(img.pixels), img.mode)
            if out != dims:
                pil = pil.resize((out[1], out[0]), Image.Resampling.LANCZOS)
            buf = io.BytesIO()
            pil.save(buf, "PNG", compress_level=1)
            return buf.getvalue()

    return Response(await run_in_threadpool(work), media_type="image/png")


@router.get(
    "/jobs/{job_id}/classic",
    summary="The JPEG, WebP or AVIF of the same byte size as the model",
    response_class=Response,
    responses=errors(404, 409),
)
async def classic(
    request: Request,
    job_id: str,
    fmt: Annotated[Literal["jpeg", "webp", "avif"], Query(alias="format")] = "jpeg",
) -> Response:
    record = await run_in_threadpool(deps.job_or_404, request, job_id)
    succeeded_or_409(record)
    metrics = record.get("metrics") or {}
    quality = metrics.get(f"{fmt}_quality")
    subsampling = metrics.get("jpeg_subsampling") if fmt == "jpeg" else None
    if quality is None:
        raise APIError(404, f"no {fmt.upper()} is as small as the model")

    def work() -> bytes:
        pixels = record["input"]["width"] * record["input"]["height"]
        with request.app.state.render_budget.take(pixels):
            img = _original(request, job_id)
            return encode_classic(to_uint8(img.pixels), fmt.upper(), quality, subsampling)

    return Response(await run_in_threadpool(work), media_type=f"image/{fmt}")
