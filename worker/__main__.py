"""`python -m worker`: a Celery worker for the queues and concurrency named in settings."""

from __future__ import annotations

import sys

from core.queue import MAINTENANCE_QUEUE
from core.settings import get_settings
from worker.app import celery_app
from worker.healthcheck import worker_node_name


def main() -> None:
    settings = get_settings()
    if not settings.MODEL_CHECKPOINT.is_file():
        # Refuse to start rather than fail every job: an operator sees this at once.
        sys.exit(
            f"deepscreen worker: no model checkpoint at {settings.MODEL_CHECKPOINT}. "
            "Set MODEL_CHECKPOINT to a DeepScreen .safetensors checkpoint (see .env.example)."
        )
    queues = [q.strip() for q in settings.WORKER_QUEUES.split(",") if q.strip()]
    celery_app.worker_main([
        "worker",
        "--hostname", worker_node_name(),  # what the healthcheck pings (worker/healthcheck.py)
        "--queues", ",".join([*queues, MAINTENANCE_QUEUE]),
        "--concurrency", str(settings.WORKER_CONCURRENCY),
        "--pool", "prefork",  # time limits need it; the pool process is what a SIGKILL test kills
        "--loglevel", settings.LOG_LEVEL,
        "--without-gossip", "--without-mingle",
    ])


if __name__ == "__main__":
    main()
