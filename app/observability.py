"""Prometheus metrics of one API process: jobs by status and fit seconds (read from the
store at scrape time, so they count every worker's jobs), submissions and render latency."""

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, SummaryMetricFamily

from worker.store import JobStore

STATUSES = ("queued", "running", "succeeded", "failed", "cancelled")


class StoreCollector:
    def __init__(self, store: JobStore):
        self.store = store

    def collect(self):
        counts = dict.fromkeys(STATUSES, 0)
        fit_sum, fit_count = 0.0, 0
        for record in self.store.records():
            counts[record["status"]] = counts.get(record["status"], 0) + 1
            seconds = (record.get("metrics") or {}).get("fit_seconds")
            if seconds is not None:
                fit_sum, fit_count = fit_sum + seconds, fit_count + 1
        jobs = GaugeMetricFamily("mhinr_jobs", "jobs in the store by status", labels=["status"])
        for status, n in counts.items():
            jobs.add_metric([status], n)
        yield jobs
        fit = SummaryMetricFamily("mhinr_fit_seconds", "fit seconds of succeeded jobs")
        fit.add_metric([], fit_count, fit_sum)
        yield fit


class Metrics:
    def __init__(self, store: JobStore):
        self.registry = CollectorRegistry()
        self.registry.register(StoreCollector(store))
        self.submitted = Counter(
            "mhinr_jobs_submitted", "jobs accepted by POST /fit", registry=self.registry
        )
        self.render_seconds = Histogram(
            "mhinr_render_seconds",
            "render + encode latency",
            registry=self.registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
        )
