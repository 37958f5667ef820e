"""Liveness of jobs and workers: leases with heartbeats, retries through store blips, and
the reaper that requeues a job whose worker died.

A fit runs under a lease (store.claim): one worker at a time holds it, a heartbeat thread
renews it every LEASE_S / 4 seconds, and it lapses LEASE_S seconds after the worker dies.
The reaper (run by `mhinr serve` in both modes) finds `running` jobs without a live lease and
queues them again; the worker that takes the message claims the lease first, so a job is
fitted by one worker at a time and reaches `succeeded` once (at-least-once delivery, one
visible completion). Store calls of the worker retry with backoff while the store (Redis)
is unreachable, so a Redis restart delays a fit instead of losing it.
"""

import contextlib
import logging
import secrets
import threading
import time
from collections.abc import Callable
from typing import TypeVar

import redis

from mhinr.worker.jobs import JobService
from mhinr.worker.store import JobStore, RedisStore, StoreError

log = logging.getLogger("mhinr.lifecycle")

LEASE_S = 30.0  # default of INR_LEASE_S: a running job whose worker is silent this long is requeued
REAP_INTERVAL_S = 5.0
WORKER_BEAT_S = 5.0  # a worker process's own heartbeat (readiness), lapsing after 3 beats
UNREACHABLE = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, StoreError)

T = TypeVar("T")


def retrying(call: Callable[[], T], what: str, patience_s: float = 120.0) -> T:
    """`call()`, again with backoff (0.1 s doubling to 5 s) while the store is unreachable,
    for up to `patience_s`; then the last error is raised."""
    deadline, delay = time.monotonic() + patience_s, 0.1
    while True:
        try:
            return call()
        except UNREACHABLE as exc:
            if time.monotonic() + delay > deadline:
                raise
            log.warning("%s: the store is unreachable (%s); retrying in %.1f s", what, exc, delay)
            time.sleep(delay)
            delay = min(5.0, delay * 2)


class Lease:
    """Hold a job's lease while a fit runs: claimed on entry (or not: `held` is False),
    renewed by a daemon thread, released on exit."""

    def __init__(self, store: JobStore, job_id: str, ttl: float = LEASE_S):
        self.store, self.job_id, self.ttl = store, job_id, ttl
        self.token = secrets.token_hex(8)
        self.held = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> "Lease":
        self.held = retrying(
            lambda: self.store.claim(self.job_id, self.token, self.ttl), "claim the lease"
        )
        if self.held:
            self._thread = threading.Thread(target=self._beat, daemon=True, name="lease")
            self._thread.start()
        return self

    def _beat(self) -> None:
        while not self._stop.wait(self.ttl / 4):
            try:
                if not self.store.renew(self.job_id, self.token, self.ttl):
                    # lapsed (a long store outage) or taken: try to take it back if free
                    self.store.claim(self.job_id, self.token, self.ttl)
            except UNREACHABLE as exc:  # the next beat tries again
                log.warning("job %s: heartbeat not written (%s)", self.job_id, exc)

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if self.held:
            with contextlib.suppress(*UNREACHABLE):  # else it lapses on its own
                retrying(lambda: self.store.release(self.job_id, self.token), "release", 30)


def run_reaper(
    jobs: JobService,
    stop: threading.Event,
    lease_s: float = LEASE_S,
    retention_s: float | None = None,
) -> None:
    """The reaper's loop (a daemon thread of the API process): requeue jobs of dead workers,
    delete finished jobs past their retention."""
    while not stop.wait(min(REAP_INTERVAL_S, lease_s / 2)):
        try:
            for job_id in jobs.reap(lease_s):
                log.warning("job %s: its worker stopped answering; queued again", job_id)
            if retention_s is not None:
                jobs.sweep(retention_s)
        except Exception as exc:  # a store blip: the next round tries again
            log.warning("reaper: %s", exc)


def run_worker_beat(store: RedisStore, name: str, stop: threading.Event) -> None:
    """A worker process's heartbeat (Redis mode), for readiness."""
    while True:
        try:
            store.beat_worker(name, WORKER_BEAT_S * 3)
        except UNREACHABLE as exc:
            log.warning("worker heartbeat not written: %s", exc)
        if stop.wait(WORKER_BEAT_S):
            return
