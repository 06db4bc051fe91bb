"""The worker's Celery app: the shared configuration from `backend.queue` plus the task modules."""

from __future__ import annotations

from backend.queue import create_celery
from backend.settings import get_settings

celery_app = create_celery(get_settings())
celery_app.conf.include = ["worker.tasks"]
app = celery_app
"""`celery -A worker.app` looks for `app` (or `celery`) in this module."""
