"""The FastAPI application factory; `backend.main:app` is what uvicorn serves.

Importing this module must never import torch (a test enforces it): the API shares only the
pipeline's small contracts and media probing, so it starts fast and stays small.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI
from fastapi.middleware.cors import CORSMiddleware

from backend.accounts.deps import limit_requests
from backend.accounts.ratelimit import rate_limiter as create_rate_limiter
from backend.accounts.routes import router as accounts_router
from backend.apidocs import OPENAPI_PATH
from backend.apidocs import router as docs_router
from backend.errors import ERROR_RESPONSES, install_error_handlers
from backend.health.routes import metrics_router
from backend.health.routes import router as health_router
from backend.jobs.routes import router as jobs_router
from backend.live.feed import event_feed
from backend.live.routes import router as live_router
from backend.metrics import Metrics, MetricsMiddleware
from backend.middleware import RequestIdMiddleware, TextGuardMiddleware
from backend.reports.routes import router as reports_router
from backend.shares.routes import router as shares_router
from backend.webapp import SinglePageApp
from core.db import Database
from core.jobs import service as job_service
from core.jobs.storage import Storage
from core.logs import configure_logging
from core.queue import JobQueue, create_celery
from core.retention import service as retention_service
from core.settings import ReaperMode, Settings, get_settings

logger = logging.getLogger(__name__)


class EmbeddedReaper:
    """Runs `reap_stale_jobs` and, every RETENTION_INTERVAL_SECONDS, the retention sweep
    periodically in a daemon thread of the API process.

    The embedded default has no Celery beat; in the distributed setup set REAPER_MODE=beat and
    run `celery beat` instead (several reapers at once are safe, just redundant).
    """

    def __init__(self, database: Database, settings: Settings, queue: JobQueue, storage: Storage) -> None:
        self.database = database
        self.settings = settings
        self.queue = queue
        self.storage = storage
        self.next_sweep = 0.0
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._loop, name="deepscreen-reaper", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.stopped.set()
        self.thread.join(timeout=10)

    def _loop(self) -> None:
        while not self.stopped.wait(self.settings.REAPER_INTERVAL_SECONDS):
            try:
                with self.database.session() as session:
                    job_service.reap_stale_jobs(session, settings=self.settings, queue=self.queue)
            except Exception:  # keep reaping after a transient database error
                logger.exception("reaper pass failed")
            if time.monotonic() >= self.next_sweep:
                self.next_sweep = time.monotonic() + self.settings.RETENTION_INTERVAL_SECONDS
                try:
                    with self.database.session() as session:
                        retention_service.sweep(session, settings=self.settings, storage=self.storage)
                except Exception:  # keep sweeping after a transient database error
                    logger.exception("retention sweep failed")


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    configure_logging(settings.LOG_LEVEL, settings.LOG_FORMAT)
    database = Database.from_settings(settings)
    storage = Storage(settings.storage_dir)
    job_queue = JobQueue(create_celery(settings))
    metrics = Metrics(database, settings, storage.root)
    rate_limiter = create_rate_limiter(settings)
    feed = event_feed(settings)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        storage.ensure_dirs()
        embedded = settings.REAPER_MODE is ReaperMode.embedded
        reaper = EmbeddedReaper(database, settings, job_queue, storage) if embedded else None
        if reaper:
            reaper.start()
        await feed.start()
        try:
            yield
        finally:
            await feed.stop()
            if reaper:
                reaper.stop()
            job_queue.close()
            rate_limiter.close()
            database.dispose()

    app = FastAPI(
        title="DeepScreen API",
        version="0.1.0",
        summary="Screens faces in uploaded images and videos for deepfake manipulation.",
        lifespan=lifespan,
        openapi_url=OPENAPI_PATH,
        docs_url=None,  # backend/apidocs.py serves them from a package, not a CDN
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.database = database
    app.state.storage = storage
    app.state.job_queue = job_queue
    app.state.metrics = metrics
    app.state.rate_limiter = rate_limiter
    app.state.event_feed = feed

    install_error_handlers(app)
    rate_limited = [Depends(limit_requests)]
    app.include_router(jobs_router, dependencies=rate_limited, responses=ERROR_RESPONSES)
    app.include_router(live_router, dependencies=rate_limited, responses=ERROR_RESPONSES)
    app.include_router(accounts_router, dependencies=rate_limited, responses=ERROR_RESPONSES)
    app.include_router(reports_router, dependencies=rate_limited, responses=ERROR_RESPONSES)
    app.include_router(shares_router, dependencies=rate_limited, responses=ERROR_RESPONSES)
    app.include_router(health_router, responses=ERROR_RESPONSES)

    app.include_router(metrics_router, responses=ERROR_RESPONSES)
    app.include_router(docs_router)

    if settings.CORS_ORIGINS:
        app.add_middleware(
            CORSMiddleware, allow_origins=settings.CORS_ORIGINS, allow_methods=["*"], allow_headers=["*"],
            expose_headers=["X-Request-ID", "Location"],
        )
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    app.add_middleware(TextGuardMiddleware)
    app.add_middleware(RequestIdMiddleware)

    # The built web app, served at / in the embedded default; a team deployment serves it from nginx.
    if (settings.FRONTEND_DIST / "index.html").is_file():
        app.mount("/", SinglePageApp(settings.FRONTEND_DIST), name="frontend")
    return app


def __getattr__(name: str) -> FastAPI:
    # `uvicorn backend.main:app` builds the app on first access, so importing this module in
    # tests does not read the environment or touch var/.
    if name == "app":
        application = create_app()
        globals()["app"] = application
        return application
    raise AttributeError(name)
