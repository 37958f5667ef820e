"""Liveness, readiness and Prometheus metrics."""

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.concurrency import run_in_threadpool

router = APIRouter()


@router.get("/healthz", summary="The process is alive")
async def healthz() -> dict:
    return {"status": "ok"}


@router.get(
    "/readyz",
    summary="Broker and store are reachable and a worker is alive",
    responses={503: {"description": "the broker or store is unreachable, or no worker is alive"}},
)
async def readyz(request: Request) -> JSONResponse:
    try:
        await run_in_threadpool(request.app.state.store.ping)
        await run_in_threadpool(request.app.state.ping_broker)
        # `mhinr serve` knows its workers: the embedded child, or Redis heartbeats
        alive = getattr(request.app.state, "worker_alive", None)
        if alive is not None and not await run_in_threadpool(alive):
            raise RuntimeError("no worker is alive: jobs would wait")
    except Exception as exc:
        return JSONResponse({"status": "unavailable", "detail": str(exc)}, 503)
    return JSONResponse({"status": "ready"})


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
async def metrics(request: Request) -> Response:
    body = await run_in_threadpool(generate_latest, request.app.state.metrics.registry)
    return Response(body, media_type=CONTENT_TYPE_LATEST)
