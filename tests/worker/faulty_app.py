"""`celery -A tests.worker.faulty_app worker`: the real worker app, except that the pipeline's first
FAULT_FAILING_RUNS runs raise SQLAlchemy's OperationalError, as a database that goes away while a
job runs does (after its claim, before its result). Runs are counted in FAULT_COUNTER_FILE, shared
by every pool process of the worker. Test-only: nothing outside tests/ imports it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from sqlalchemy.exc import OperationalError

from ml.pipeline import Pipeline
from worker.app import app

__all__ = ["app"]

_real_run = Pipeline.run


def _run_failing_first(self: Pipeline, *args: Any, **kwargs: Any) -> Any:
    counter = Path(os.environ["FAULT_COUNTER_FILE"])
    runs = (int(counter.read_text()) if counter.exists() else 0) + 1
    counter.write_text(str(runs))
    if runs <= int(os.environ["FAULT_FAILING_RUNS"]):
        raise OperationalError("UPDATE jobs ...", {}, ConnectionError(f"injected: the database went away (run {runs})"))
    return _real_run(self, *args, **kwargs)


Pipeline.run = _run_failing_first  # type: ignore[method-assign]
