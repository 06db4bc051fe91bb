"""Prometheus metrics of the API process: the scrape endpoint's registry, the ASGI middleware and the
scrape-time gauges (the workers' own metrics are `worker.metrics`; the list, with alerts: docs/operations.md).

Where the numbers come from, and why that is safe with many processes:

- Counters and histograms are written by the process where the event happens: HTTP requests in
  API processes, job outcomes, stage timings, faces and classifier batches in worker pool
  processes. Workers always run prometheus_client's multiprocess mode: each pool process writes
  its samples to files in the host-local folder `Settings.metrics_dir` (PROMETHEUS_MULTIPROC_DIR,
  default VAR_DIR/metrics). An API process started with PROMETHEUS_MULTIPROC_DIR in its
  environment does the same, which is what makes `uvicorn --workers N` safe.
- A scrape of `/api/metrics` merges that folder (so on one host, the embedded default, it shows
  the workers' job metrics too) with this process's own samples when it is not in multiprocess
  mode. Workers on other hosts are scraped directly: `python -m worker` serves its host's folder
  on WORKER_METRICS_PORT.
- Gauges about shared state are computed at scrape time from shared sources, so every API
  replica reports the same values: job counts and queue depth/age from the database, worker
  count, model version and GPU memory from the worker heartbeats, disk usage from STORAGE_DIR.
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from core import workers
from core.db import Database, utcnow
from core.jobs import repository
from core.jobs.models import JobState
from core.queue import queue_for_kind
from core.retention.quota import usage
from core.settings import Settings

logger = logging.getLogger(__name__)

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


_MULTIPROCESS = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))
"""prometheus_client decides once, when it is imported (with this module), from this variable: the
start script (scripts/run) or the worker's app module (worker/app.py) sets it before any import,
as its docs say, instead of swapping its private value class afterwards."""


def in_multiprocess_mode() -> bool:
    return _MULTIPROCESS


class _Scrape:
    """What one scrape reads: sample files, this process's own registry, and scrape-time gauges."""

    def __init__(self, directories: Iterable[Path], own: CollectorRegistry | None, gauges: Iterable[Collector]) -> None:
        self.directories = [d for d in dict.fromkeys(directories) if d.is_dir()]
        self.own = own
        self.gauges = list(gauges)

    def collect(self) -> Iterator[Metric]:
        for directory in self.directories:
            yield from MultiProcessCollector(None, path=str(directory)).collect()
        if self.own is not None:
            yield from self.own.collect()
        for collector in self.gauges:
            try:
                yield from collector.collect()
            except Exception:  # one broken source (database down) must not hide the rest
                logger.warning("metrics source %s failed", type(collector).__name__, exc_info=True)


class Metrics:
    """The API's metrics. One registry per app, so tests (several apps in one process) never share counters."""

    def __init__(self, database: Database, settings: Settings, storage_root: Path) -> None:
        self.settings = settings
        if in_multiprocess_mode():  # started with PROMETHEUS_MULTIPROC_DIR: its samples go to files there
            Path(os.environ["PROMETHEUS_MULTIPROC_DIR"]).mkdir(parents=True, exist_ok=True)
        self.registry = CollectorRegistry()
        self.http_requests = Counter(
            "deepscreen_http_requests_total", "HTTP requests by route template and status.",
            ["method", "route", "status"], registry=self.registry,
        )
        self.http_duration = Histogram(
            "deepscreen_http_request_duration_seconds", "HTTP request latency by route template.",
            ["method", "route"], registry=self.registry, buckets=LATENCY_BUCKETS,
        )
        self.jobs_submitted = Counter(
            "deepscreen_jobs_submitted_total", "Jobs accepted by the API, by kind and whether a result was reused.",
            ["kind", "reused"], registry=self.registry,
        )
        self.gauges: list[Collector] = [
            _JobStateCollector(database),
            _WorkerCollector(database, settings.STALE_AFTER_SECONDS),
            _StorageCollector(storage_root, settings),
        ]

    def render(self) -> tuple[bytes, str]:
        directories = [self.settings.metrics_dir]
        if in_multiprocess_mode():
            directories.append(Path(os.environ["PROMETHEUS_MULTIPROC_DIR"]))
        # In multiprocess mode this process's own samples are in the files already.
        own = None if in_multiprocess_mode() else self.registry
        return generate_latest(_Scrape(directories, own, self.gauges)), CONTENT_TYPE_LATEST  # type: ignore[arg-type]


class _JobStateCollector(Collector):
    def __init__(self, database: Database) -> None:
        self.database = database

    def collect(self) -> Iterator[GaugeMetricFamily]:
        jobs = GaugeMetricFamily("deepscreen_jobs", "Jobs in the database by state and kind.", labels=["state", "kind"])
        depth = GaugeMetricFamily("deepscreen_queue_depth", "Jobs waiting in each queue.", labels=["queue"])
        age = GaugeMetricFamily(
            "deepscreen_queue_oldest_age_seconds", "Age of the oldest job waiting in each queue.", labels=["queue"]
        )
        queued: dict[str, int] = {"images": 0, "videos": 0}
        now = utcnow()
        with self.database.session() as session:
            for state, kind, count in repository.count_by_state(session):
                jobs.add_metric([state, kind], count)
                if state == JobState.queued:
                    queued[queue_for_kind(kind)] = queued.get(queue_for_kind(kind), 0) + count
            oldest = {queue_for_kind(kind): created for kind, created in repository.oldest_queued_by_kind(session)}
        for queue, count in sorted(queued.items()):
            depth.add_metric([queue], count)
            age.add_metric([queue], (now - oldest[queue]).total_seconds() if queue in oldest else 0.0)
        yield from (jobs, depth, age)


class _WorkerCollector(Collector):
    def __init__(self, database: Database, stale_after: float) -> None:
        self.database = database
        self.stale_after = stale_after

    def collect(self) -> Iterator[GaugeMetricFamily]:
        with self.database.session() as session:
            beats = workers.live(session, stale_after=self.stale_after)
            latest = max((b.beat_at for b in workers.all_beats(session)), default=None)
        live_count = GaugeMetricFamily(
            "deepscreen_workers", "Worker processes with a loaded model and a recent heartbeat.", value=len(beats)
        )
        consumers = GaugeMetricFamily(
            "deepscreen_queue_consumers", "Live worker processes consuming each queue.", labels=["queue"]
        )
        per_queue: dict[str, int] = {"images": 0, "videos": 0}
        for beat in beats:
            for queue in beat.queues:
                per_queue[queue] = per_queue.get(queue, 0) + 1
        for queue, count in sorted(per_queue.items()):
            consumers.add_metric([queue], count)
        model = GaugeMetricFamily(
            "deepscreen_model_info", "Model versions loaded by live workers (value 1 per version, backend, device).",
            labels=["model_id", "version", "sha256", "backend", "device"],
        )
        for key in sorted({(b.model_id, b.model_version, b.model_sha256, b.backend, b.device) for b in beats}):
            model.add_metric(list(key), 1)
        gpu = GaugeMetricFamily(
            "deepscreen_worker_gpu_memory_bytes", "CUDA memory of workers running on a GPU.",
            labels=["worker", "device", "type"],
        )
        for beat in beats:
            for kind, value in (("allocated", beat.gpu_memory_allocated_bytes),
                                ("reserved", beat.gpu_memory_reserved_bytes), ("total", beat.gpu_memory_total_bytes)):
                if value is not None:
                    gpu.add_metric([beat.worker, beat.device, kind], value)
        heartbeat_age = GaugeMetricFamily(
            "deepscreen_worker_heartbeat_age_seconds", "Seconds since the most recent worker heartbeat (any worker).",
            value=math.inf if latest is None else time.time() - latest,
        )
        yield from (live_count, consumers, model, gpu, heartbeat_age)


class _StorageCollector(Collector):
    def __init__(self, root: Path, settings: Settings) -> None:
        self.root = root
        self.settings = settings

    def collect(self) -> Iterator[GaugeMetricFamily]:
        current = usage(self.root)
        yield GaugeMetricFamily("deepscreen_storage_used_bytes", "Bytes under STORAGE_DIR.", value=current.used_bytes)
        yield GaugeMetricFamily(
            "deepscreen_storage_free_bytes", "Free bytes on STORAGE_DIR's file system.", value=current.free_bytes
        )
        yield GaugeMetricFamily(
            "deepscreen_storage_quota_bytes", "STORAGE_QUOTA_BYTES (0: none).", value=self.settings.STORAGE_QUOTA_BYTES
        )


class MetricsMiddleware:
    """Counts requests by route template (never the raw path, so ids do not explode the label set)."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status_code = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status_code
            if message["type"] == "http.response.start":
                status_code = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = _route_template(scope)
            method = scope["method"]
            self.metrics.http_requests.labels(method, route, str(status_code)).inc()
            self.metrics.http_duration.labels(method, route).observe(time.perf_counter() - started)


def _route_template(scope: Scope) -> str:
    """The matched route's path template; routing stores the route in the (shared) scope."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    return str(path) if path else "unmatched"
