"""Probes for orchestrators: live = the process answers; ready = its dependencies answer."""

from __future__ import annotations

import logging

from fastapi import APIRouter, status
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy import text

from backend.deps import DatabaseDep, SettingsDep, StorageDep

logger = logging.getLogger(__name__)
router = APIRouter(prefix="/api/health", tags=["health"])


class Health(BaseModel):
    status: str
    checks: dict[str, str] = {}


@router.get("/live", response_model=Health)
def live() -> Health:
    """The API process is up."""
    return Health(status="ok")


@router.get("/ready", response_model=Health, responses={503: {"model": Health}})
def ready(database: DatabaseDep, settings: SettingsDep, storage: StorageDep) -> Health | JSONResponse:
    """The database, the broker (Redis, when configured) and the storage folder are reachable."""
    checks: dict[str, str] = {}
    try:
        with database.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as exc:  # any failure means not ready; the reason is reported, not raised
        logger.warning("readiness: database unreachable: %s", exc)
        checks["database"] = "unreachable"
    if settings.REDIS_URL:
        import redis

        try:
            redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=2, socket_timeout=2).ping()
            checks["redis"] = "ok"
        except redis.RedisError as exc:
            logger.warning("readiness: redis unreachable: %s", exc)
            checks["redis"] = "unreachable"
    checks["storage"] = "ok" if storage.root.is_dir() else "missing"
    if all(value == "ok" for value in checks.values()):
        return Health(status="ok", checks=checks)
    body = Health(status="unavailable", checks=checks)
    return JSONResponse(body.model_dump(), status_code=status.HTTP_503_SERVICE_UNAVAILABLE)
