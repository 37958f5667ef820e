"""A job's status and the transitions between statuses: the one place that says which
changes are allowed. Records are plain dicts in the store; every status change made by the
worker, the reaper or the service goes through `transition`, which refuses an illegal one
(a finished job is never restarted, a cancelled one never succeeds)."""

import hashlib
import json
import secrets
import time
from collections.abc import Callable
from enum import StrEnum

from mhinr.worker.options import JobOptions, describe  # noqa: F401  (the workers' name for them)
from mhinr.worker.records import JobRecord


def new_job_id() -> str:
    return secrets.token_urlsafe(16)  # 22 characters, 128 random bits: unguessable


def now() -> float:
    return round(time.time(), 3)


class JobStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    def is_terminal(self) -> bool:
        return self in TERMINAL_STATUSES


TERMINAL_STATUSES = frozenset({JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED})
ALLOWED: dict[JobStatus, frozenset[JobStatus]] = {
    # a queued job starts, is cancelled, or fails before it starts (too many attempts)
    JobStatus.QUEUED: frozenset({JobStatus.RUNNING, JobStatus.CANCELLED, JobStatus.FAILED}),
    # a running job ends, is cancelled, is started again by the next attempt of a
    # redelivered message, or is queued again by the reaper when its worker died
    JobStatus.RUNNING: frozenset(
        {
            JobStatus.RUNNING,
            JobStatus.SUCCEEDED,
            JobStatus.FAILED,
            JobStatus.CANCELLED,
            JobStatus.QUEUED,
        }
    ),
    JobStatus.SUCCEEDED: frozenset(),
    JobStatus.FAILED: frozenset(),
    JobStatus.CANCELLED: frozenset(),
}
# the statuses a worker may take a job in (running: its last worker died)
RUNNABLE = frozenset({JobStatus.QUEUED, JobStatus.RUNNING})


class InvalidTransition(ValueError):
    pass


def status_of(record: JobRecord) -> JobStatus:
    return JobStatus(record["status"])


def transition(record: JobRecord, to: JobStatus, **fields) -> JobRecord:
    """Move `record` to status `to` (in place, with `fields`), or raise InvalidTransition."""
    now = status_of(record)
    if to not in ALLOWED[now]:
        raise InvalidTransition(f"job {record.get('id')}: {now} cannot become {to}")
    record.update(fields)  # type: ignore[typeddict-item]  # JobRecord's own keys
    record["status"] = str(to)
    return record


class IdempotencyConflict(ValueError):
    """An Idempotency-Key sent again with a different request."""


class QueueUnreachable(RuntimeError):
    """The job was stored but could not be queued (it has been withdrawn)."""


class JobService:
    """Submit, cancel/delete, requeue and reap jobs over a store and a queue (`send` puts a
    job id on the queue). The API's routes, `mhinr serve` and the reaper go through it; the
    worker's own status changes go through `transition` under the job's lease."""

    def __init__(self, store, send: Callable[[str], None]):
        self.store, self.send = store, send

    def submit(
        self,
        options: dict,
        upload: bytes,
        image_info: dict,
        idempotency_key: str | None = None,
        key_ttl: float = 86400.0,
        webhook: dict | None = None,
    ) -> tuple[str, bool]:
        """(job id, whether it is new). With `idempotency_key`, a request already made with
        that key (the same upload and options) gets the job it created, for `key_ttl`
        seconds; the key with another request is IdempotencyConflict."""
        job_id = new_job_id()
        if idempotency_key is not None:
            digest = hashlib.sha256(idempotency_key.encode()).hexdigest()
            fingerprint = hashlib.sha256(
                upload + json.dumps([options, webhook], sort_keys=True).encode()
            ).hexdigest()
            held = self.store.remember_key(digest, job_id, fingerprint, key_ttl)
            if held is not None:
                if held[1] != fingerprint:
                    raise IdempotencyConflict(
                        "this Idempotency-Key was used with another upload or other options"
                    )
                return held[0], False
        try:
            return self._create(job_id, options, upload, image_info, webhook), True
        except QueueUnreachable:
            if idempotency_key is not None:
                self.store.forget_key(digest)  # nothing was made: a retry makes it
            raise

    def _create(
        self, job_id: str, options: dict, upload: bytes, image_info: dict, webhook: dict | None
    ) -> str:
        record = {
            "id": job_id,
            "status": str(JobStatus.QUEUED),
            "created_at": now(),
            "options": options,
            "input": image_info,
        }
        if webhook:
            record["webhook"] = webhook
        self.store.create(record, upload)
        try:
            self.send(job_id)
        except Exception as exc:
            self.store.delete(job_id)  # withdrawn: nothing is left queued that would never run
            raise QueueUnreachable(f"the job queue is not reachable: {exc}") from None
        return job_id

    def cancel(self, job_id: str) -> str | None:
        """A queued or running job is cancelled (its record kept for the retention, its data
        deleted; the worker stops within a second); an ended one is left as it is. The status
        after, or None for an unknown job."""
        return self.store.cancel(job_id)

    def delete(self, job_id: str) -> bool:
        """The job and all its data, whatever its status (a running one stops as when
        cancelled). False for an unknown job."""
        return self.store.delete(job_id)

    def requeue(self, record: JobRecord) -> None:
        """Queue a job again (its worker died, or the service restarted)."""
        if status_of(record) is JobStatus.RUNNING:
            transition(record, JobStatus.QUEUED, requeued=record.get("requeued", 0) + 1)
            self.store.write(record)
        self.send(record["id"])

    def requeue_unfinished(self) -> int:
        """At the start of an embedded service, when no worker runs: every queued or running
        job is queued again, exactly once, and the leases its dead worker left are void."""
        n = 0
        for record in self.store.records():
            if status_of(record) in RUNNABLE:
                self.store.break_lease(record["id"])
                self.requeue(record)
                n += 1
        return n

    def reap(self, lease_s: float) -> list[str]:
        """Queue again every running job whose lease has lapsed (its worker died or lost the
        store for longer than `lease_s`)."""
        requeued = []
        for record in self.store.records():
            if status_of(record) is not JobStatus.RUNNING or self.store.lease_alive(record["id"]):
                continue
            if now() - (record.get("started_at") or 0) < lease_s:
                continue  # just started: its worker may be about to take the lease
            self.requeue(record)
            requeued.append(record["id"])
        return requeued

    def sweep(self, retention_s: float) -> int:
        return self.store.sweep(retention_s)
