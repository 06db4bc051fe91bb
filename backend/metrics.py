"""Prometheus metrics for the API: request counts and latency by route template, job counters,
and job totals by state read from the database at scrape time (so they cover every worker)."""

from __future__ import annotations

import time
from collections.abc import Iterator

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from backend.db import Database
from backend.jobs import repository


class Metrics:
    """One registry per app, so tests (and several apps in one process) never share counters."""

    def __init__(self, database: Database) -> None:
        self.registry = CollectorRegistry()
        self.http_requests = Counter(
            "deepscreen_http_requests_total", "HTTP requests by route template and status.",
            ["method", "route", "status"], registry=self.registry,
        )
        self.http_duration = Histogram(
            "deepscreen_http_request_duration_seconds", "HTTP request latency by route template.",
            ["method", "route"], registry=self.registry,
        )
        self.jobs_submitted = Counter(
            "deepscreen_jobs_submitted_total", "Jobs accepted by this API process, by kind and whether reused.",
            ["kind", "reused"], registry=self.registry,
        )
        self.registry.register(_JobStateCollector(database))

    def render(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


class _JobStateCollector(Collector):
    def __init__(self, database: Database) -> None:
        self.database = database

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "deepscreen_jobs", "Jobs in the database by state and kind.", labels=["state", "kind"]
        )
        with self.database.session() as session:
            for state, kind, count in repository.count_by_state(session):
                family.add_metric([state, kind], count)
        yield family


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
