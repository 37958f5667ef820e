"""Prometheus metrics of one API process: jobs by status and fit seconds (read from the
store, so they count every worker's jobs, at most once every REFRESH_S seconds however often
it is scraped), submissions and render latency."""

import threading
import time

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, SummaryMetricFamily

from mhinr.worker.jobs import JobStatus
from mhinr.worker.store import JobStore

STATUSES = tuple(str(s) for s in JobStatus)


REFRESH_S = 10.0


class StoreCollector:
    def __init__(self, store: JobStore, refresh_s: float = REFRESH_S):
        self.store, self.refresh_s = store, refresh_s
        self.lock = threading.Lock()
        self.cached: tuple[float, dict, float, int] | None = None

    def counts(self) -> tuple[dict, float, int]:
        """Jobs by status, fit seconds and fits: one pass over the records, reused for
        `refresh_s` seconds (the store is read once per interval, not once per scrape)."""
        with self.lock:
            if self.cached and time.monotonic() - self.cached[0] < self.refresh_s:
                return self.cached[1:]
            counts = dict.fromkeys(STATUSES, 0)
            fit_sum, fit_count = 0.0, 0
            for record in self.store.records():
                counts[record["status"]] = counts.get(record["status"], 0) + 1
                seconds = (record.get("metrics") or {}).get("fit_seconds")
                if seconds is not None:
                    fit_sum, fit_count = fit_sum + seconds, fit_count + 1
            self.cached = (time.monotonic(), counts, fit_sum, fit_count)
            return counts, fit_sum, fit_count

    def collect(self):
        counts, fit_sum, fit_count = self.counts()
        jobs = GaugeMetricFamily("mhinr_jobs", "jobs in the store by status", labels=["status"])
        for status, n in counts.items():
            jobs.add_metric([status], n)
        yield jobs
        fit = SummaryMetricFamily("mhinr_fit_seconds", "fit seconds of succeeded jobs")
        fit.add_metric([], fit_count, fit_sum)
        yield fit


class Metrics:
    def __init__(self, store: JobStore, refresh_s: float = REFRESH_S):
        self.registry = CollectorRegistry()
        self.store_collector = StoreCollector(store, refresh_s)
        self.registry.register(self.store_collector)
        self.submitted = Counter(
            "mhinr_jobs_submitted", "jobs accepted by POST /fit", registry=self.registry
        )
        self.render_seconds = Histogram(
            "mhinr_render_seconds",
            "render + encode latency",
            registry=self.registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
        )
