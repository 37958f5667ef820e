"""The settings the worker and the API share (environment variables with the prefix INR_);
the API's own are app/settings.py's `ApiSettings`, which adds them to these.

They live below the API so that the worker, which must not import the API, reads the same
settings.
"""

import os
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="INR_", extra="ignore")

    data_dir: Path = Field(Path("./data"), description="disk store and embedded broker")
    redis_url: str | None = Field(None, description="Redis for broker and store; unset: embedded")
    redis_prefix: str = Field(
        "mhinr",
        pattern=r"^[A-Za-z0-9_.-]{1,64}$",
        description="the first part of every Redis key of this service (store and queue), so "
        "that several deployments or test runs can share one Redis database",
    )
    redis_expiry_s: int = Field(
        7 * 24 * 3600, description="how long Redis keeps an unfinished job's data untouched"
    )
    retention_s: int = Field(
        7 * 24 * 3600, ge=1, description="finished, failed and cancelled jobs are deleted after"
    )
    device: Literal["auto", "cpu", "cuda"] = Field("auto", description="where the worker fits")
    max_pixels: int = Field(16_000_000, description="largest input image (pixels)")
    max_time_budget_s: float = Field(600.0, description="longest fit a job may ask for")
    default_time_budget_s: float = Field(300.0, description="a job's fit budget when not given")
    max_steps: int = Field(20_000, description="most Adam steps a job may ask for")
    webhook_secret: str | None = Field(
        None, description="if set, webhooks carry X-Mhinr-Signature: sha256=HMAC of the body"
    )
    webhook_private: bool = Field(
        False, description="allow webhooks to private, loopback and link-local addresses"
    )
    progress_interval_s: float = Field(0.5, description="how often a fit writes its progress")
    worker_concurrency: int = Field(1, description="fits a worker runs at once (threads)")
    lease_s: float = Field(
        30.0,
        gt=0,
        le=3600,
        description="a running job whose worker is silent this long is requeued",
    )
    # unset: the cores this process may use divided by the fits it runs at once
    # (`torch_threads_for`). More threads than free cores make torch ~10x slower (a `fast`
    # fit: 44 s with torch's default of 2 threads beside another busy process, issue 8), and
    # one thread leaves half of a 2-core machine idle (issue 24: the upscaler's 60-s fit
    # stopped at ~1,300 of its 2,400 steps on one thread). The codec's trained stage gains
    # nothing from a second thread (159 and 163 steps a second: its convolutions are too
    # small to split; `python -m benchmarks.codec_stage --speed`)
    torch_threads: int | None = Field(
        None,
        ge=1,
        le=256,
        description="torch threads per process (worker, API renders, CLI); default: the "
        "cores the process may use divided by the fits it runs at once",
    )

    @property
    def embedded(self) -> bool:
        return not self.redis_url


def torch_threads_for(settings: Settings, fits: int = 1) -> int:
    """The torch threads for a process that runs `fits` fits at once: the setting, else
    the cores this process may use (its CPU affinity) divided by `fits`."""
    if settings.torch_threads:
        return settings.torch_threads
    return max(1, len(os.sched_getaffinity(0)) // max(1, fits))


def apply_torch_threads(settings: Settings, fits: int = 1) -> None:
    """Set torch's intra-op thread count for this process (`torch_threads_for`)."""
    import torch

    torch.set_num_threads(torch_threads_for(settings, fits))


@lru_cache
def get_settings() -> Settings:
    return Settings()
