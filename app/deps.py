"""Shared dependencies: settings, store, task sender, model cache, API key."""

import hashlib
import secrets
import threading
from collections import OrderedDict
from collections.abc import Callable

from fastapi import Request

from app.errors import APIError
from model.codec import decode
from worker.settings import Settings
from worker.store import JobStore, valid_id


def settings(request: Request) -> Settings:
    return request.app.state.settings


def store(request: Request) -> JobStore:
    return request.app.state.store


def require_key(request: Request) -> None:
    key = request.app.state.settings.api_key
    if not key:
        return
    auth = request.headers.get("authorization", "")
    scheme, _, token = auth.partition(" ")
    if scheme.lower() != "bearer" or not secrets.compare_digest(token.encode(), key.encode()):
        raise APIError(
            401,
            "this server needs an API key: Authorization: Bearer <key>",
            {"WWW-Authenticate": "Bearer"},
        )


def job_or_404(request: Request, job_id: str) -> dict:
    record = None if not valid_id(job_id) else request.app.state.store.get(job_id)
    if record is None:
        raise APIError(404, f"no job {job_id!r}")
    return record


def check_render_limits(settings: Settings, out_h: int, out_w: int) -> None:
    """422 for an output over INR_MAX_RENDER_SIDE or INR_MAX_RENDER_PIXELS: every endpoint
    that resamples an image asks this before it allocates."""
    side, pixels = settings.max_render_side, settings.max_render_pixels
    if max(out_h, out_w) > side or out_h * out_w > pixels:
        raise APIError(
            422, f"{out_w}x{out_h} is over the render limit ({side} a side, {pixels:,} pixels)"
        )


class ModelCache:
    """The last few decoded models (LRU), keyed by job id and the time the job finished
    (a job's model never changes after that): a cached render reads nothing from the store."""

    def __init__(self, size: int):
        self.size, self.items = size, OrderedDict()
        self.lock = threading.Lock()

    def get(self, job_id: str, version: object, load: Callable[[], bytes | None]):
        """(net, coded, digest of the file), or None when `load` finds no model."""
        key = (job_id, version)
        with self.lock:
            if key in self.items:
                self.items.move_to_end(key)
                return self.items[key]
        data = load()
        if data is None:
            return None
        net, coded = decode(data)
        entry = (net, coded, hashlib.blake2b(data, digest_size=12).hexdigest())
        with self.lock:
            self.items[key] = entry
            while len(self.items) > self.size:
                self.items.popitem(last=False)
        return entry
