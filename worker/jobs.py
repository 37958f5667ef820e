"""A job's status and the transitions between statuses: the one place that says which
changes are allowed. Records are plain dicts in the store; every status change made by the
worker, the reaper or the service goes through `transition`, which refuses an illegal one
(a finished job is never restarted, a cancelled one never succeeds)."""

from enum import StrEnum


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


def status_of(record: dict) -> JobStatus:
    return JobStatus(record["status"])


def transition(record: dict, to: JobStatus, **fields) -> dict:
    """Move `record` to status `to` (in place, with `fields`), or raise InvalidTransition."""
    now = status_of(record)
    if to not in ALLOWED[now]:
        raise InvalidTransition(f"job {record.get('id')}: {now} cannot become {to}")
    record.update(status=str(to), **fields)
    return record
