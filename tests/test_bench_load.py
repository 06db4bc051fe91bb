"""The open-loop generator of `bench.load` against a real loopback server: it keeps its send rate
whatever the answers, counts refusals by status, and measures each latency from the request's
scheduled send time."""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from bench.load.__main__ import Report, Submission, open_loop, summarise_open
from tests.servers import free_port


@contextmanager
def fake_api(stall_seconds: float) -> Iterator[str]:
    """POST /api/jobs: every third answer is 429, the others 202 after `stall_seconds`."""
    counter = itertools.count()

    async def create(request: Request) -> JSONResponse:
        await request.body()
        index = next(counter)
        if index % 3 == 2:
            return JSONResponse({"error": {"code": "rate_limited"}}, status_code=429)
        await asyncio.sleep(stall_seconds)
        return JSONResponse({"id": f"job{index}"}, status_code=202)

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(Starlette(routes=[Route("/api/jobs", create, methods=["POST"])]),
                                           host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def test_the_open_loop_keeps_its_rate_while_the_server_stalls() -> None:
    with fake_api(stall_seconds=0.5) as url:
        began = time.perf_counter()
        submissions = asyncio.run(open_loop(url, [b"\xff\xd8 not really a jpeg"] * 30, rate=60))
        sending = max(s.sent for s in submissions) - began
    report = Report(stack="test", clients=30, workers=0, mode="open", rate=60, duration_seconds=0.5)
    summarise_open(report, submissions)

    assert sending < 1.0, "the 30 sends took 0.5 s at 60/s, not one stall (0.5 s) after another"
    assert report.accepted == 20
    assert report.errors_by_status == {"429": 10}
    assert report.submit_p50_ms >= 500, "a stalled answer counts its whole wait"


def test_latency_counts_from_the_scheduled_send_not_the_actual_one() -> None:
    # A generator starved of CPU sends late; the wait it did not send in is still the server's latency.
    late = Submission(scheduled=10.0, sent=10.3, done=10.35, status=202, job_id="a")
    on_time = Submission(scheduled=10.5, sent=10.5, done=10.55, status=202, job_id="b")
    report = Report(stack="test", clients=2, workers=0, mode="open", rate=2, duration_seconds=1)

    summarise_open(report, [late, on_time])

    assert report.submit_max_ms == pytest.approx(350.0)
    assert report.send_lag_max_ms == pytest.approx(300.0)
