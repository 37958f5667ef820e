"""The job store the API and the worker share: on disk (embedded default) or in Redis.

One writer per piece of data, so no update is ever lost: the API creates a job (record +
upload) and sets its cancel flag; from then on only the worker writes the record (status,
progress, result). A job's status as read is the record's, except that a set cancel flag
on an unfinished job reads as `cancelled`. Ids are unguessable (128 random bits) and are
checked against their pattern before any key or path is built from them.
"""

import json
import os
import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol, cast

import redis

from mhinr.model.files import write_atomic
from mhinr.worker.jobs import TERMINAL_STATUSES, new_job_id, now  # noqa: F401 (re-exported)
from mhinr.worker.records import JobRecord
from mhinr.worker.settings import Settings

ID_PATTERN = re.compile(r"^[A-Za-z0-9_-]{22}$")
TERMINAL = tuple(str(s) for s in TERMINAL_STATUSES)


def valid_id(job_id: str) -> bool:
    return bool(ID_PATTERN.match(job_id))


class StoreError(RuntimeError):
    """The store cannot be reached or is inconsistent."""


class JobStore(Protocol):
    def create(self, record: JobRecord, upload: bytes) -> None: ...
    def get(self, job_id: str) -> JobRecord | None: ...
    def write(self, record: JobRecord) -> None: ...  # the worker's record update
    def load_upload(self, job_id: str) -> bytes | None: ...
    def load_model(self, job_id: str) -> bytes | None: ...
    def save_model(self, job_id: str, data: bytes) -> None: ...
    def save_preview(self, job_id: str, data: bytes) -> None: ...
    def load_preview(self, job_id: str) -> bytes | None: ...
    def cancel_requested(self, job_id: str) -> bool: ...
    def cancel(self, job_id: str) -> str | None: ...  # the status after; None: no such job
    def delete(self, job_id: str) -> bool: ...  # False: no such job
    # Idempotency-Key: store (job id, fingerprint) under the key's hash unless it is there;
    # returns what was there first (None: ours was stored)
    def remember_key(
        self, key_hash: str, job_id: str, fingerprint: str, ttl: float
    ) -> tuple[str, str] | None: ...
    def forget_key(self, key_hash: str) -> None: ...
    def records(self) -> Iterator[JobRecord]: ...
    def ping(self) -> None: ...
    # the lease of a running fit: taken atomically by one worker, renewed by its heartbeat,
    # gone within `ttl` seconds of the worker's death (then the job is requeued)
    def claim(self, job_id: str, token: str, ttl: float) -> bool: ...
    def renew(self, job_id: str, token: str, ttl: float) -> bool: ...
    def release(self, job_id: str, token: str) -> None: ...
    def lease_alive(self, job_id: str) -> bool: ...
    def break_lease(self, job_id: str) -> None: ...  # only when no worker can hold it
    def drop_upload(self, job_id: str) -> None: ...  # a failed job keeps no upload
    def sweep(self, retention_s: float) -> int: ...  # delete finished jobs older than this


def effective(record: JobRecord, cancelled: bool) -> JobRecord:
    if cancelled and record.get("status") not in ("succeeded", "failed"):
        return {**record, "status": "cancelled"}
    return record


class DiskStore:
    """jobs/<id>/{record.json, upload, model.inr, cancel} under the data directory; every
    write goes to a temporary file first and is renamed into place."""

    def __init__(self, root: Path):
        self.root = Path(root) / "jobs"
        self.root.mkdir(parents=True, exist_ok=True)

    def _dir(self, job_id: str) -> Path:
        if not valid_id(job_id):
            raise KeyError(job_id)
        return self.root / job_id

    def _write(self, path: Path, data: bytes) -> None:
        write_atomic(path, data)

    def create(self, record: JobRecord, upload: bytes) -> None:
        d = self._dir(record["id"])
        d.mkdir()
        self._write(d / "upload", upload)
        self._write(d / "record.json", json.dumps(record).encode())

    def get(self, job_id: str) -> JobRecord | None:
        try:
            d = self._dir(job_id)
            record = json.loads((d / "record.json").read_bytes())
        except (KeyError, FileNotFoundError, NotADirectoryError):
            return None
        return effective(record, (d / "cancel").exists())

    def write(self, record: JobRecord) -> None:
        d = self._dir(record["id"])
        if (d / "record.json").exists():  # a deleted job is not brought back
            self._write(d / "record.json", json.dumps(record).encode())

    def _read(self, job_id: str, name: str) -> bytes | None:
        try:
            return (self._dir(job_id) / name).read_bytes()
        except (KeyError, FileNotFoundError, NotADirectoryError):
            return None

    def load_upload(self, job_id: str) -> bytes | None:
        return self._read(job_id, "upload")

    def load_model(self, job_id: str) -> bytes | None:
        return self._read(job_id, "model.inr")

    def save_model(self, job_id: str, data: bytes) -> None:
        self._write(self._dir(job_id) / "model.inr", data)

    def save_preview(self, job_id: str, data: bytes) -> None:
        if self._dir(job_id).exists():
            self._write(self._dir(job_id) / "preview.png", data)

    def load_preview(self, job_id: str) -> bytes | None:
        return self._read(job_id, "preview.png")

    def cancel_requested(self, job_id: str) -> bool:
        try:
            return (self._dir(job_id) / "cancel").exists()
        except KeyError:
            return False

    def cancel(self, job_id: str) -> str | None:
        """A queued or running job: cancelled (the record kept, its data deleted); an ended
        one is left as it is. Returns the status after, None for no such job."""
        record = self.get(job_id)
        if record is None:
            return None
        if record["status"] in TERMINAL:
            return record["status"]
        d = self._dir(job_id)
        self._write(d / "cancel", b"1")
        for name in ("upload", "model.inr", "preview.png"):
            (d / name).unlink(missing_ok=True)
        return "cancelled"

    def delete(self, job_id: str) -> bool:
        """The job and all its data (False: there was no record; whatever data a worker left
        is deleted all the same). A running job's worker finds the cancel flag, the only file
        left, and stops; `sweep` removes the folder once no lease holds it."""
        record = self.get(job_id)
        d = self._dir(job_id)
        if record is not None and record["status"] in TERMINAL:
            shutil.rmtree(d, ignore_errors=True)
            return True
        if not d.is_dir():
            return False
        self._write(d / "cancel", b"1")
        for name in ("record.json", "upload", "model.inr", "preview.png"):
            (d / name).unlink(missing_ok=True)
        return record is not None

    def remember_key(
        self, key_hash: str, job_id: str, fingerprint: str, ttl: float
    ) -> tuple[str, str] | None:
        """keys/<sha256 of the key>, created exclusively (one of two racing requests wins);
        one older than `ttl` seconds is forgotten."""
        folder = self.root.parent / "keys"
        folder.mkdir(exist_ok=True)
        path = folder / key_hash  # a hex digest: never the client's text
        for _ in range(2):
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:
                try:
                    if time.time() - path.stat().st_mtime > ttl:
                        path.unlink()  # expired: the key may be used afresh
                        continue
                    held, fp = path.read_text().split()
                    return held, fp
                except (FileNotFoundError, ValueError):
                    time.sleep(0.01)  # being written by the winner, or just removed
                    continue
            with os.fdopen(fd, "w") as f:
                f.write(f"{job_id} {fingerprint}")
            return None
        held, fp = path.read_text().split()
        return held, fp

    def forget_key(self, key_hash: str) -> None:
        (self.root.parent / "keys" / key_hash).unlink(missing_ok=True)

    def records(self) -> Iterator[JobRecord]:
        for d in self.root.iterdir():
            if valid_id(d.name) and (r := self.get(d.name)) is not None:
                yield r

    def ping(self) -> None:
        if not os.access(self.root, os.W_OK):
            raise StoreError(f"data directory {self.root} is not writable")

    # a lease is the file `lease` holding the token; its modification time is the heartbeat
    # and it is stale `ttl` seconds after the last one (the ttl is written beside the token)
    def _lease(self, job_id: str) -> tuple[Path, str | None, bool]:
        path = self._dir(job_id) / "lease"
        try:
            token, ttl = path.read_text().split()
            fresh = time.time() - path.stat().st_mtime < float(ttl)
        except (FileNotFoundError, ValueError):
            return path, None, False
        return path, token, fresh

    def claim(self, job_id: str, token: str, ttl: float) -> bool:
        path, _, fresh = self._lease(job_id)
        if fresh or not path.parent.is_dir():
            return False
        stale = path.with_name(f"lease.stale.{token}")
        try:  # move a stale lease away (atomic; only one claimant wins the rename) …
            os.rename(path, stale)
            stale.unlink()
        except FileNotFoundError:
            pass
        try:  # … then create ours exclusively
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return False
        with os.fdopen(fd, "w") as f:
            f.write(f"{token} {ttl}")
        return True

    def renew(self, job_id: str, token: str, ttl: float) -> bool:
        path, held, _ = self._lease(job_id)
        if held != token:
            return False
        os.utime(path)
        return True

    def release(self, job_id: str, token: str) -> None:
        path, held, _ = self._lease(job_id)
        if held == token:
            path.unlink(missing_ok=True)

    def lease_alive(self, job_id: str) -> bool:
        return self._lease(job_id)[2]

    def break_lease(self, job_id: str) -> None:
        (self._dir(job_id) / "lease").unlink(missing_ok=True)

    def drop_upload(self, job_id: str) -> None:
        (self._dir(job_id) / "upload").unlink(missing_ok=True)

    def sweep(self, retention_s: float) -> int:
        """Delete every finished, failed or cancelled job that ended over `retention_s`
        seconds ago (a cancelled one: when its cancel flag was set)."""
        gone, horizon = 0, time.time() - retention_s
        keys = self.root.parent / "keys"
        for f in list(keys.iterdir()) if keys.is_dir() else []:  # Idempotency-Keys
            if f.stat().st_mtime < horizon:
                f.unlink(missing_ok=True)
        for d in list(self.root.iterdir()):
            if not valid_id(d.name):
                continue
            record = self.get(d.name)
            if record is None:  # deleted while running: gone once its worker has let go
                if not self.lease_alive(d.name) and time.time() - d.stat().st_mtime > 60:
                    shutil.rmtree(d, ignore_errors=True)
                continue
            if record["status"] not in TERMINAL:
                continue
            ended = record.get("finished_at")
            if record["status"] == "cancelled" or ended is None:
                try:
                    ended = (d / "cancel").stat().st_mtime
                except FileNotFoundError:
                    ended = (d / "record.json").stat().st_mtime
            if ended < horizon:
                shutil.rmtree(d, ignore_errors=True)
                gone += 1
        return gone


class RedisStore:
    """Keys {prefix}:{kind}:{id} for kind in job, upload, model, preview, cancel, lease; all
    expire."""

    def __init__(
        self, url: str, expiry_s: int, prefix: str = "mhinr", retention_s: int | None = None
    ):
        self.r = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=2)
        self.expiry, self.prefix = expiry_s, prefix
        self.retention = int(retention_s if retention_s is not None else expiry_s)

    def _key(self, kind: str, job_id: str) -> str:
        if not valid_id(job_id):
            raise KeyError(job_id)
        return f"{self.prefix}:{kind}:{job_id}"

    def create(self, record: JobRecord, upload: bytes) -> None:
        job_id = record["id"]
        with self.r.pipeline(transaction=True) as p:
            p.set(self._key("upload", job_id), upload, ex=self.expiry)
            p.set(self._key("job", job_id), json.dumps(record), ex=self.expiry)
            p.execute()

    def get(self, job_id: str) -> JobRecord | None:
        try:
            raw, flag = self.r.mget(self._key("job", job_id), self._key("cancel", job_id))
        except KeyError:
            return None
        return None if raw is None else effective(json.loads(raw), flag is not None)

    def write(self, record: JobRecord) -> None:
        # only while the job exists (xx): a deleted job is not brought back
        job_id = record["id"]
        if record.get("status") not in TERMINAL:
            self.r.set(self._key("job", job_id), json.dumps(record), ex=self.expiry, xx=True)
            return
        with self.r.pipeline(transaction=True) as p:  # ended: everything kept for the retention
            p.set(self._key("job", job_id), json.dumps(record), ex=self.retention, xx=True)
            for kind in ("upload", "model", "preview", "cancel"):
                p.expire(self._key(kind, job_id), self.retention)
            p.execute()

    def load_upload(self, job_id: str) -> bytes | None:
        try:
            return cast(bytes | None, self.r.get(self._key("upload", job_id)))
        except KeyError:
            return None

    def load_model(self, job_id: str) -> bytes | None:
        try:
            return cast(bytes | None, self.r.get(self._key("model", job_id)))
        except KeyError:
            return None

    def save_model(self, job_id: str, data: bytes) -> None:
        self.r.set(self._key("model", job_id), data, ex=self.expiry)

    def save_preview(self, job_id: str, data: bytes) -> None:
        self.r.set(self._key("preview", job_id), data, ex=self.expiry)

    def load_preview(self, job_id: str) -> bytes | None:
        try:
            return cast(bytes | None, self.r.get(self._key("preview", job_id)))
        except KeyError:
            return None

    def cancel_requested(self, job_id: str) -> bool:
        try:
            return bool(self.r.exists(self._key("cancel", job_id)))
        except KeyError:
            return False

    def cancel(self, job_id: str) -> str | None:
        record = self.get(job_id)
        if record is None:
            return None
        if record["status"] in TERMINAL:
            return record["status"]
        keys = [self._key(k, job_id) for k in ("upload", "model", "preview")]
        with self.r.pipeline(transaction=True) as p:  # the record is kept for the retention
            p.set(self._key("cancel", job_id), b"1", ex=self.retention)
            p.expire(self._key("job", job_id), self.retention)
            p.delete(*keys)
            p.execute()
        return "cancelled"

    def delete(self, job_id: str) -> bool:
        """As DiskStore.delete: the record and every data key; a running job's worker sees
        the cancel flag (which expires)."""
        keys = [self._key(k, job_id) for k in ("job", "upload", "model", "preview")]
        with self.r.pipeline(transaction=True) as p:
            p.exists(keys[0])
            p.delete(*keys)
            p.set(self._key("cancel", job_id), b"1", ex=self.expiry)
            existed = p.execute()[0]
        return bool(existed)

    def remember_key(
        self, key_hash: str, job_id: str, fingerprint: str, ttl: float
    ) -> tuple[str, str] | None:
        key = f"{self.prefix}:idem:{key_hash}"
        if self.r.set(key, f"{job_id} {fingerprint}", nx=True, px=int(ttl * 1000)):
            return None
        raw = self.r.get(key)
        if raw is None:  # expired between the two calls: try once more
            return self.remember_key(key_hash, job_id, fingerprint, ttl)
        held, fp = cast(bytes, raw).decode().split()
        return held, fp

    def forget_key(self, key_hash: str) -> None:
        self.r.delete(f"{self.prefix}:idem:{key_hash}")

    def records(self) -> Iterator[JobRecord]:
        for key in self.r.scan_iter(match=f"{self.prefix}:job:*", count=500):
            job_id = key.decode().rsplit(":", 1)[-1]
            if valid_id(job_id) and (rec := self.get(job_id)) is not None:
                yield rec

    def ping(self) -> None:
        try:
            self.r.ping()
        except redis.RedisError as exc:
            raise StoreError(f"Redis is not reachable: {exc}") from None

    # compare-and-set scripts: only the holder of a lease renews or releases it
    _RENEW = "if redis.call('get', KEYS[1]) == ARGV[1] then "
    _RENEW += "return redis.call('pexpire', KEYS[1], ARGV[2]) else return 0 end"
    _RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then "
    _RELEASE += "return redis.call('del', KEYS[1]) else return 0 end"

    def claim(self, job_id: str, token: str, ttl: float) -> bool:
        return bool(self.r.set(self._key("lease", job_id), token, nx=True, px=int(ttl * 1000)))

    def renew(self, job_id: str, token: str, ttl: float) -> bool:
        return bool(self.r.eval(self._RENEW, 1, self._key("lease", job_id), token, int(ttl * 1000)))

    def release(self, job_id: str, token: str) -> None:
        self.r.eval(self._RELEASE, 1, self._key("lease", job_id), token)

    def lease_alive(self, job_id: str) -> bool:
        return bool(self.r.exists(self._key("lease", job_id)))

    def break_lease(self, job_id: str) -> None:
        self.r.delete(self._key("lease", job_id))

    def drop_upload(self, job_id: str) -> None:
        self.r.delete(self._key("upload", job_id))

    def sweep(self, retention_s: float) -> int:
        return 0  # Redis expires a finished job's keys itself (write sets the retention)

    def beat_worker(self, name: str, ttl: float) -> None:
        """A worker process's own heartbeat (readiness: some worker is alive): one field of
        one hash, so that counting the live workers reads that hash, not the key space."""
        self.r.hset(f"{self.prefix}:workers", name, time.time() + ttl)

    def workers_alive(self) -> int:
        """Workers whose last heartbeat has not lapsed; lapsed ones are forgotten."""
        key = f"{self.prefix}:workers"
        beats = self.r.hgetall(key)
        gone = [name for name, until in beats.items() if float(until) < time.time()]
        if gone:
            self.r.hdel(key, *gone)
        return len(beats) - len(gone)


def make_store(settings: Settings) -> JobStore:
    if settings.redis_url:
        return RedisStore(
            settings.redis_url,
            settings.redis_expiry_s,
            prefix=settings.redis_prefix,
            retention_s=settings.retention_s,
        )
    return DiskStore(settings.data_dir)
