"""Shared dependencies: settings, store, task sender, model cache, API key."""

import hashlib
import secrets
import threading
from collections.abc import Callable
from contextlib import contextmanager
from typing import Annotated

from cachetools import LRUCache
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from werkzeug.http import parse_etags

from mhinr.app.errors import APIError
from mhinr.app.settings import ApiSettings
from mhinr.model.codec import decode
from mhinr.model.render import resident_bytes
from mhinr.worker.records import JobRecord
from mhinr.worker.store import JobStore, valid_id


def settings(request: Request) -> ApiSettings:
    return request.app.state.settings


def store(request: Request) -> JobStore:
    return request.app.state.store


# documents the scheme in OpenAPI (so "Authorize" in /docs sends the key); the check is ours
BEARER = HTTPBearer(
    auto_error=False,
    description="the server's INR_API_KEY; needed for POST, DELETE and GET /jobs when set",
)


def require_key(
    request: Request, cred: Annotated[HTTPAuthorizationCredentials | None, Depends(BEARER)]
) -> None:
    key = request.app.state.settings.api_key
    if not key:
        return
    token = "" if cred is None else cred.credentials
    if not secrets.compare_digest(token.encode(), key.encode()):
        raise APIError(
            401,
            "this server needs an API key: Authorization: Bearer <key>",
            {"WWW-Authenticate": "Bearer"},
        )


def not_modified(if_none_match: str | None, etag: str) -> bool:
    """If-None-Match by weak comparison (RFC 9110 13.1.2): `*` or a listed tag equal to ours
    (`etag` unquoted)."""
    if not if_none_match:
        return False
    tags = parse_etags(if_none_match)
    return tags.star_tag or tags.contains_weak(etag)


def job_or_404(request: Request, job_id: str) -> JobRecord:
    record: JobRecord | None = None if not valid_id(job_id) else request.app.state.store.get(job_id)
    if record is None:
        raise APIError(404, f"no job {job_id!r}")
    return record


def check_render_limits(settings: ApiSettings, out_h: int, out_w: int) -> None:
    """422 for an output over INR_MAX_RENDER_SIDE or INR_MAX_RENDER_PIXELS: every endpoint
    that resamples an image asks this before it allocates."""
    side, pixels = settings.max_render_side, settings.max_render_pixels
    if max(out_h, out_w) > side or out_h * out_w > pixels:
        raise APIError(
            422, f"{out_w}x{out_h} is over the render limit ({side} a side, {pixels:,} pixels)"
        )


RENDER_BYTES_PER_PIXEL = 24  # measured peak of a render + encode: ~20 B/px (upscale, 11 MP)


class MemoryBudget:
    """Admission control for the API's image work: a render (or a resized original, a
    classic comparison) takes its estimated bytes from a fixed budget before it allocates
    and gives them back when done; when the budget is spent a request waits up to `wait_s`,
    then gets 503 (try again). One request larger than the whole budget is 422."""

    def __init__(self, budget_bytes: int, wait_s: float):
        self.budget, self.wait_s, self.used = budget_bytes, wait_s, 0
        self.peak = 0
        self.cond = threading.Condition()

    @contextmanager
    def take(self, pixels: int, channels: int = 4):
        need = pixels * RENDER_BYTES_PER_PIXEL * max(channels, 3) // 3
        if need > self.budget:
            raise APIError(
                422,
                f"an image of {pixels:,} pixels needs about {need / 2**20:,.0f} MB, over the "
                f"render memory budget of {self.budget / 2**20:,.0f} MB (INR_RENDER_MEMORY_MB)",
            )
        with self.cond:
            if not self.cond.wait_for(lambda: self.used + need <= self.budget, self.wait_s):
                raise APIError(
                    503,
                    "the server is busy rendering (its memory budget is spent); try again",
                    headers={"Retry-After": "2"},
                )
            self.used += need
            self.peak = max(self.peak, self.used)
        try:
            yield
        finally:
            with self.cond:
                self.used -= need
                self.cond.notify_all()


class RenderCache:
    """Encoded renders (LRU, bounded in bytes) shared by the API process's requests: a
    repeated render (the same job, file, size, method, format and quality: its ETag) is
    answered from memory. The bytes are the render memory budget's (ApiSettings.
    render_cache_bytes); a deleted job's renders go with it (`drop`), and a render is only
    looked up after the job's record says it exists."""

    def __init__(self, max_bytes: int):
        self.items: LRUCache = LRUCache(maxsize=max(1, max_bytes), getsizeof=len)
        self.max_bytes = max_bytes
        self.lock = threading.Lock()
        self.hits = self.misses = 0

    def get(self, key: tuple) -> bytes | None:
        with self.lock:
            entry = self.items.get(key)
            if entry is None:
                self.misses += 1
            else:
                self.hits += 1
            return entry

    def put(self, key: tuple, body: bytes) -> None:
        if len(body) > self.max_bytes // 4:  # one huge render would empty the cache
            return
        with self.lock:
            self.items[key] = body

    def drop(self, job_id: str) -> None:
        with self.lock:
            for key in [k for k in self.items if k[0] == job_id]:
                del self.items[key]

    @property
    def bytes(self) -> int:
        with self.lock:
            return int(self.items.currsize)


class ModelCache:
    """The last few decoded models (LRU), keyed by job id and the time the job finished
    (a job's model never changes after that): a cached render reads nothing from the store.
    Bounded in number and in memory: a model counts what it holds once rendered
    (`resident_bytes`: an upscale model's cached heads are 67 MB for a 512² image, 530 MB
    for 1920×1080); one larger than the whole budget is served but not kept."""

    def __init__(self, size: int, max_bytes: int):
        self.size = size
        self.items: LRUCache = LRUCache(
            maxsize=max(1, max_bytes), getsizeof=lambda entry: resident_bytes(entry[0])
        )
        self.lock = threading.Lock()  # cachetools' caches are not thread-safe

    def get(self, job_id: str, version: object, load: Callable[[], bytes | None]):
        """(net, coded, digest of the file), or None when `load` finds no model."""
        key = (job_id, version)
        with self.lock:
            entry = self.items.get(key)
        if entry is not None:
            return entry
        data = load()
        if data is None:
            return None
        net, coded = decode(data)
        entry = (net, coded, hashlib.blake2b(data, digest_size=12).hexdigest())
        with self.lock:
            if resident_bytes(net) <= self.items.maxsize:
                self.items[key] = entry
                while len(self.items) > self.size:
                    self.items.popitem()
        return entry

    @property
    def bytes(self) -> int:
        with self.lock:
            return int(self.items.currsize)
