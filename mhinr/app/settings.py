"""The API's settings: the worker's and the store's (worker/settings.py) and those only an
API process reads (its key, upload and render limits, caches, URL signing), from the same
environment variables (prefix INR_)."""

from functools import lru_cache

from pydantic import Field

from mhinr.worker.settings import Settings


class ApiSettings(Settings):
    api_key: str | None = Field(None, description="if set, POST and DELETE need Bearer <key>")
    max_upload_bytes: int = Field(25_000_000, description="largest upload")
    body_timeout_s: float = Field(
        120.0, gt=0, description="a request body must be complete within this (else 408)"
    )
    body_idle_s: float = Field(15.0, gt=0, description="longest pause inside a request body")
    max_render_side: int = Field(8192, description="largest rendered side (pixels)")
    max_render_pixels: int = Field(32_000_000, description="largest render (pixels)")
    max_fit_memory_mb: int = Field(
        6144, ge=64, description="largest estimated fit memory an upload may need (else 413)"
    )
    render_memory_mb: int = Field(
        1536, ge=16, description="memory the API's renders may hold at once (admission control)"
    )
    render_cache_mb: int = Field(
        128,
        ge=0,
        description="encoded renders the API keeps to answer a repeated render (LRU by "
        "bytes), taken from render_memory_mb (at most a quarter of it); 0: none",
    )
    render_wait_s: float = Field(
        10.0, ge=0, le=300, description="how long a render waits for memory, then 503"
    )
    model_cache_size: int = Field(16, description="decoded models kept by the API")
    model_cache_mb: int = Field(
        2048,
        ge=1,
        description="memory the decoded models the API keeps may hold (LRU; an upscale "
        "model counts the heads its renders cache: 67 MB for a 512² image)",
    )
    url_signing_key: str | None = Field(
        None, description="if set, renders are served only from URLs signed with it"
    )

    @property
    def render_cache_bytes(self) -> int:
        """The render cache's share of the render memory budget: at most a quarter of it."""
        return min(self.render_cache_mb, self.render_memory_mb // 4) * 2**20

    @property
    def render_work_bytes(self) -> int:
        """The render memory budget left to render work once the render cache has its share."""
        return self.render_memory_mb * 2**20 - self.render_cache_bytes


@lru_cache
def get_api_settings() -> ApiSettings:
    return ApiSettings()
