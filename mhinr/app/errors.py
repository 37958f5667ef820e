"""Errors raised where they are detected and turned into HTTP answers in one place."""

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from mhinr.model.codec import CodecError
from mhinr.model.images import ImageError, ImageTooLarge, NotAnImage
from mhinr.worker.lifecycle import UNREACHABLE  # the store cannot be reached: the client retries

RETRY_AFTER_S = 5


class APIError(Exception):
    def __init__(self, status: int, detail: str, headers: dict | None = None):
        self.status, self.detail, self.headers = status, detail, headers


def image_error_status(exc: ImageError) -> int:
    """From the error's type, never from its words."""
    if isinstance(exc, NotAnImage):
        return 415
    if isinstance(exc, ImageTooLarge):
        return 413
    return 400


def install(app: FastAPI) -> None:
    @app.exception_handler(APIError)
    async def api_error(_: Request, exc: APIError) -> JSONResponse:
        return JSONResponse({"detail": exc.detail}, exc.status, headers=exc.headers)

    @app.exception_handler(ImageError)
    async def image_error(_: Request, exc: ImageError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, image_error_status(exc))

    async def unreachable(_: Request, exc: Exception) -> JSONResponse:
        return JSONResponse(
            {"detail": f"the job store is not reachable, try again shortly: {exc}"},
            503,
            headers={"Retry-After": str(RETRY_AFTER_S)},
        )

    for kind in UNREACHABLE:
        app.add_exception_handler(kind, unreachable)

    @app.exception_handler(CodecError)
    async def codec_error(_: Request, exc: CodecError) -> JSONResponse:
        return JSONResponse({"detail": f"the stored model is unreadable: {exc}"}, 500)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        parts = []
        for e in exc.errors():
            where = ".".join(str(x) for x in e.get("loc", ())[1:]) or "request"
            msg = e.get("msg", "invalid").removeprefix("Value error, ")
            parts.append(f"{where}: {msg}")
        return JSONResponse({"detail": "; ".join(parts)}, 422)
