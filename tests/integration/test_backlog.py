"""A backlog of 100 queued jobs older than QUEUED_RESEND_AFTER_SECONDS, with the reaper running: no
duplicate message is sent for them, and once the backlog is done a new upload starts within 5 s
(issue 13: re-sending every old queued job made 682 duplicates of a 100-job backlog, and a new
job then waited 529 s on an idle system). Runs on both stacks (the worker tests' `stack` fixture:
SQLite + the embedded broker, PostgreSQL + Redis). Slow (a few minutes): `pytest -m slow`."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime

import pytest

from tests.backend.factories import png_bytes
from tests.conftest import WorkerProcess, api_client, make_settings, wait_for
from tests.worker.support import job, started, submit

BACKLOG = 100


@pytest.mark.slow
def test_a_backlog_sends_no_duplicates_and_a_new_job_starts_at_once(
    worker_env: dict[str, str], start_worker: Callable[[dict[str, str]], WorkerProcess],
) -> None:
    env = {**worker_env, "REAPER_MODE": "embedded", "REAPER_INTERVAL_SECONDS": "1", "QUEUED_RESEND_AFTER_SECONDS": "2",
           "UPLOAD_RATE_LIMIT": "0", "REQUEST_RATE_LIMIT": "0", "PIPELINE_EXPLAIN_TOP_K": "0"}
    with api_client(make_settings(env)) as api:
        ids = [submit(api, data=png_bytes(64, 48, color=(i, 255 - i, 7)), name=f"{i}.png") for i in range(BACKLOG)]
        worker = started(start_worker, env)  # the backlog is older than QUEUED_RESEND_AFTER_SECONDS by now

        def backlog_done() -> bool:
            return all(job(api, job_id)["state"] in {"succeeded", "failed"} for job_id in ids[-5:])

        wait_for(backlog_done, timeout=900, interval=2, what="the backlog to drain")
        wait_for(lambda: all(job(api, j)["state"] in {"succeeded", "failed"} for j in ids), timeout=120, interval=2,
                 what="every backlog job")
        new_id = submit(api, data=png_bytes(80, 60, color=(1, 2, 3)), name="new.png")
        submitted = datetime.now().astimezone()
        wait_for(lambda: job(api, new_id)["started_at"], timeout=60, interval=0.2, what="the new job to start")
        started_at = datetime.fromisoformat(job(api, new_id)["started_at"].replace("Z", "+00:00"))
        log = worker.log()

    received = len(re.findall(r"job\.analyze\[[^\]]+\] received", log))
    wait = (started_at - submitted).total_seconds()
    print(f"backlog {BACKLOG}: {received} deliveries; new job started {wait:.2f} s after its upload")  # noqa: T201
    # A message delivered while its job is not yet claimed can still be re-sent when a reaper pass
    # (every 1 s here, 15 s by default) falls in that moment: a duplicate or two, never hundreds.
    assert received - (BACKLOG + 1) <= BACKLOG // 50, f"{received - BACKLOG - 1} duplicate deliveries"
    assert wait <= 5.0, f"the new job waited {wait:.1f} s"
