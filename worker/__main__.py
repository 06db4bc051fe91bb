"""`python -m worker`: a Celery worker for the queues and concurrency named in settings."""

from __future__ import annotations

from backend.queue import MAINTENANCE_QUEUE
from backend.settings import get_settings
from worker.app import celery_app


def main() -> None:
    settings = get_settings()
    queues = [q.strip() for q in settings.WORKER_QUEUES.split(",") if q.strip()]
    celery_app.worker_main([
        "worker",
        "--queues", ",".join([*queues, MAINTENANCE_QUEUE]),
        "--concurrency", str(settings.WORKER_CONCURRENCY),
        "--pool", "prefork",  # time limits need it; the pool process is what a SIGKILL test kills
        "--loglevel", settings.LOG_LEVEL,
        "--without-gossip", "--without-mingle",
    ])


if __name__ == "__main__":
    main()
