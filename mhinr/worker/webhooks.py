"""Webhooks: a job's events POSTed to the URL its submitter gave, from the worker.

Each delivery is a JSON body {"event", "job_id", "status", "sent_at", ...} with the headers
`X-Mhinr-Event`, `X-Mhinr-Delivery` (a fresh id; a retry repeats it) and, when
INR_WEBHOOK_SECRET is set, `X-Mhinr-Signature: sha256=<hex HMAC-SHA256 of the body>`. A
delivery that fails (no connection, a timeout, 429 or 5xx) is retried after 1, 2 and 4 s,
then given up and logged. Deliveries run on a thread of their own, in order: a slow receiver
never slows the fit. `progress` events are sent at most every PROGRESS_EVERY_S seconds.

Which hosts a URL may name is checked when the job is submitted (`check_url`): an address
in a private, loopback or link-local range is refused unless INR_WEBHOOK_PRIVATE is set, so
that the service cannot be used to reach what stands behind it."""

import hashlib
import hmac
import ipaddress
import json
import logging
import queue
import secrets
import socket
import threading
import time
from datetime import UTC, datetime
from urllib.parse import urlsplit

import httpx

from mhinr.worker.records import JobRecord

log = logging.getLogger("mhinr.webhooks")

EVENTS = ("start", "progress", "completed")
PROGRESS_EVERY_S = 2.0
RETRY_DELAYS_S = (1.0, 2.0, 4.0)
TIMEOUT_S = 10.0


def parse_events(text: str | None) -> list[str]:
    """ "start,progress" → ["start", "progress"]; default (none given): completed only."""
    if text is None or not text.strip():
        return ["completed"]
    events = [e.strip() for e in text.split(",") if e.strip()]
    unknown = [e for e in events if e not in EVENTS]
    if unknown or not events:
        raise ValueError(f"webhook_events: {', '.join(unknown) or text!r} is not one of {EVENTS}")
    return sorted(set(events), key=EVENTS.index)


def check_url(url: str, allow_private: bool) -> str:
    """The URL if a webhook may go there, else ValueError saying why."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("webhook must be an http:// or https:// URL with a host")
    if len(url) > 2000:
        raise ValueError("webhook: the URL is over 2,000 characters")
    if allow_private:
        return url
    try:
        infos = socket.getaddrinfo(parts.hostname, parts.port or 443, proto=socket.IPPROTO_TCP)
    except OSError:
        raise ValueError(f"webhook: the host {parts.hostname!r} does not resolve") from None
    for info in infos:
        address = ipaddress.ip_address(info[4][0])
        if not address.is_global:
            raise ValueError(
                f"webhook: {parts.hostname} is a private or local address ({address}); "
                "this server sends webhooks there only with INR_WEBHOOK_PRIVATE=true"
            )
    return url


class Notifier:
    """The webhook of one job (url, the events wanted), sending from a thread of its own."""

    def __init__(self, url: str, events: list[str], secret: str | None, job_id: str):
        self.url, self.events, self.secret, self.job_id = url, set(events), secret, job_id
        self.queue: queue.Queue = queue.Queue()
        self.last_progress = 0.0
        self.thread = threading.Thread(target=self._run, name=f"webhook-{job_id}", daemon=True)
        self.thread.start()

    @classmethod
    def for_record(cls, record: JobRecord, secret: str | None) -> "Notifier | None":
        hook = record.get("webhook")
        if not hook:
            return None
        return cls(hook["url"], hook.get("events", ["completed"]), secret, record["id"])

    def send(self, event: str, record: JobRecord) -> None:
        if event not in self.events:
            return
        if event == "progress":
            t = time.monotonic()
            if t - self.last_progress < PROGRESS_EVERY_S:
                return
            self.last_progress = t
        body = {
            "event": event,
            "job_id": self.job_id,
            "status": record.get("status"),
            "sent_at": datetime.now(UTC).isoformat(),
            "progress": record.get("progress"),
            "error": record.get("error"),
        }
        m = record.get("metrics")
        if event == "completed" and m:
            body["result"] = {k: m.get(k) for k in ("psnr", "ssim", "model_bytes", "bpp")}
        self.queue.put((event, json.dumps(body).encode()))

    def close(self, timeout: float | None = None) -> None:
        """No more events; wait up to `timeout` for the queued ones to be delivered."""
        self.queue.put(None)
        self.thread.join(timeout)

    def _run(self) -> None:
        with httpx.Client(timeout=TIMEOUT_S, follow_redirects=False) as client:
            while (item := self.queue.get()) is not None:
                self._deliver(client, *item)

    def _deliver(self, client: httpx.Client, event: str, body: bytes) -> None:
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "mhinr-webhook",
            "X-Mhinr-Event": event,
            "X-Mhinr-Delivery": secrets.token_urlsafe(12),
        }
        if self.secret:
            mac = hmac.new(self.secret.encode(), body, hashlib.sha256).hexdigest()
            headers["X-Mhinr-Signature"] = f"sha256={mac}"
        for attempt, delay in enumerate((0.0, *RETRY_DELAYS_S)):
            time.sleep(delay)
            try:
                r = client.post(self.url, content=body, headers=headers)
                if r.status_code < 500 and r.status_code != 429:
                    return  # delivered (a 4xx other than 429 is the receiver's answer: final)
                why = f"HTTP {r.status_code}"
            except httpx.HTTPError as exc:
                why = f"{type(exc).__name__}: {exc}"
            log.warning("job %s: webhook %s, try %d: %s", self.job_id, event, attempt + 1, why)
        log.error("job %s: webhook %s given up after %d tries", self.job_id, event, attempt + 1)
