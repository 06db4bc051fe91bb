"""Probes for orchestrators and the Prometheus endpoint.

live = the process answers. ready = it can do its job: the database answers, Redis answers
(when configured), the storage folder exists, and at least one worker process has a loaded
model and a heartbeat younger than STALE_AFTER_SECONDS (READY_REQUIRES_WORKER). Each check is
bounded by a short timeout so a probe never hangs on a dead dependency.
"""

from __future__ import annotations

import hmac
import logging
from ipaddress import ip_address, ip_network

from anyio import to_thread
from fastapi import APIRouter, Request, Response, status
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy import text

from backend.deps import DatabaseDep, MetricsDep, SettingsDep, StorageDep, UnitOfWorkRoute
from core import workers
from core.db import Database
from core.errors import ApiErrorCode, DomainError
from core.settings import Settings

logger = logging.getLogger(__name__)
router = APIRouter(prefix="/api/health", tags=["health"], route_class=UnitOfWorkRoute)
metrics_router = APIRouter(route_class=UnitOfWorkRoute)

CHECK_TIMEOUT_SECONDS = 2.0


class Health(BaseModel):
    status: str
    checks: dict[str, str] = {}


class MetricsForbidden(DomainError):
    status_code = 403
    code = ApiErrorCode.forbidden


@router.get("/live", response_model=Health)
def live() -> Health:
    """The API process is up."""
    return Health(status="ok")


@router.get("/ready", response_model=Health, responses={503: {"model": Health}})
async def ready(
    database: DatabaseDep, settings: SettingsDep, storage: StorageDep
) -> Health | JSONResponse:
    """The database, Redis (when configured), the storage folder and at least one worker are available."""
    checks: dict[str, str] = {"database": await to_thread.run_sync(_check_database, database)}
    if settings.REDIS_URL:
        checks["redis"] = await to_thread.run_sync(_check_redis, settings.REDIS_URL)
    checks["storage"] = "ok" if storage.root.is_dir() else "missing"
    if settings.READY_REQUIRES_WORKER:
        checks["workers"] = await to_thread.run_sync(_check_workers, database, settings.STALE_AFTER_SECONDS)
    if all(value == "ok" for value in checks.values()):
        return Health(status="ok", checks=checks)
    body = Health(status="unavailable", checks=checks)
    return JSONResponse(body.model_dump(), status_code=status.HTTP_503_SERVICE_UNAVAILABLE)


def _check_workers(database: Database, stale_after: float) -> str:
    try:
        with database.session() as session:
            return "ok" if workers.live(session, stale_after=stale_after) else "no_recent_heartbeat"
    except Exception as exc:  # the beats are rows: with the database down nothing is known of the workers
        logger.warning("readiness: worker beats unreadable: %s", exc)
        return "unknown"


def _check_database(database: Database) -> str:
    try:
        with database.engine.connect() as connection:
            if database.engine.dialect.name == "postgresql":
                connection.execute(text(f"SET LOCAL statement_timeout = {int(CHECK_TIMEOUT_SECONDS * 1000)}"))
            connection.execute(text("SELECT 1"))
        return "ok"
    except Exception as exc:  # any failure means not ready; the reason is logged, not raised
        logger.warning("readiness: database unreachable: %s", exc)
        return "unreachable"


def _check_redis(url: str) -> str:
    import redis

    timeout = CHECK_TIMEOUT_SECONDS
    client = redis.Redis.from_url(url, socket_connect_timeout=timeout, socket_timeout=timeout)
    try:
        client.ping()
        return "ok"
    except redis.RedisError as exc:
        logger.warning("readiness: redis unreachable: %s", exc)
        return "unreachable"
    finally:
        client.close()


def metrics_allowed(request: Request, settings: Settings) -> bool:
    """A client in METRICS_ALLOWED_NETWORKS, or one presenting METRICS_TOKEN as a bearer token.

    The address is the connection's peer as the server reports it (uvicorn replaces it with
    X-Forwarded-For only for its --forwarded-allow-ips), never a header read here.
    """
    if settings.METRICS_TOKEN:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(token.strip().encode(), settings.METRICS_TOKEN.encode()):
            return True
    host = request.client.host if request.client else ""
    try:
        address = ip_address(host)
    except ValueError:
        return False
    return any(address in ip_network(network, strict=False) for network in settings.METRICS_ALLOWED_NETWORKS)


@metrics_router.get("/api/metrics", include_in_schema=False)
async def prometheus_metrics(request: Request, metrics: MetricsDep, settings: SettingsDep) -> Response:
    if not metrics_allowed(request, settings):
        raise MetricsForbidden(
            "Metrics are readable only from METRICS_ALLOWED_NETWORKS or with METRICS_TOKEN.",
            details={"client": request.client.host if request.client else None},
        )
    body, content_type = await to_thread.run_sync(metrics.render)
    return Response(body, media_type=content_type)
