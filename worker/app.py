"""The worker's Celery app: the shared configuration from `core.queue` plus the task modules."""

from __future__ import annotations

import os
from typing import Any

from celery.signals import setup_logging

from core.logs import configure_logging
from core.queue import create_celery
from core.settings import get_settings

# Before the task modules import prometheus_client: its multiprocess mode is chosen from this
# variable at import (its documented switch). Worker pool processes always write their samples to
# this host's folder, which the API's scrape merges; scripts/run sets it (and wipes the folder) itself.
os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", str(get_settings().metrics_dir))
os.makedirs(os.environ["PROMETHEUS_MULTIPROC_DIR"], exist_ok=True)

celery_app = create_celery(get_settings())
celery_app.conf.include = ["worker.tasks"]
celery_app.conf.worker_redirect_stdouts = False
app = celery_app
"""`celery -A worker.app` looks for `app` (or `celery`) in this module."""


@setup_logging.connect
def _configure_logging(**_kwargs: Any) -> None:
    """Use DeepScreen's log format (with job ids) for Celery's own records too, instead of Celery's setup."""
    configure_logging(get_settings().LOG_LEVEL, get_settings().LOG_FORMAT)
