"""Load test of small-image submissions, as a closed crowd or an open loop.

    python -m bench.load --stack embedded|distributed [--clients 200] [--workers N] [--deadline 1800]
                         [--poll 2.0] [--json OUT]
    python -m bench.load --mode open --rate 50 --duration 30 --stack embedded|distributed [--api-processes N]

`--mode closed` (the default): N concurrent clients each submit one small face JPEG at once and
poll it until it is final. `--mode open`: submissions at a fixed rate whatever the answers (send
`i` is scheduled at t0 + i/rate), each latency measured from its *scheduled* send time, so a
server that stalls cannot hide it by slowing the generator down (coordinated omission); then it
waits (up to --deadline) for the database to show every accepted job final.

Starts its own stack on loopback (bench/load/servers.py): `embedded` is the default deployment
(SQLite, kombu's SQLAlchemy broker, one worker process); `distributed` is a private PostgreSQL
cluster and redis-server with two worker processes. Loopback only: it refuses any other address.

Every image is unique: an LFW photo (read by path from the shared data, never copied) re-encoded
with one random pixel, so no job is answered by SHA-256 result reuse and every job really runs.
Rate limits are switched off for the run (all clients share one address). Prints submit latency
p50/p95/p99, errors, time to final state, and checks in the database that every accepted job
reached a final state with exactly one run and one result.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import random
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import httpx
from PIL import Image
from sqlalchemy import create_engine, text

from bench.load.servers import LOOPBACK, Postgres, Redis, Stack, temp_workdir
from core.settings import DEFAULT_CHECKPOINT, REPO_ROOT

FINAL = {"succeeded", "failed", "canceled"}


def data_dir() -> Path:
    return Path(os.environ.get("DEEPSCREEN_DATA_DIR", REPO_ROOT.parent / "shared" / "data"))


def unique_face_jpegs(count: int, seed: int = 0) -> list[bytes]:
    """`count` distinct JPEGs made from LFW photos, each with one random pixel changed."""
    photos = sorted((data_dir() / "lfw-faceswap" / "real").glob("*.jpg"))
    if not photos:
        raise SystemExit(f"no LFW photos under {data_dir() / 'lfw-faceswap' / 'real'} (set DEEPSCREEN_DATA_DIR)")
    rng = random.Random(seed)
    images = []
    for index in range(count):
        with Image.open(photos[index % len(photos)]) as photo:
            image = photo.convert("RGB")
        image.putpixel((rng.randrange(image.width), rng.randrange(image.height)),
                       (rng.randrange(256), rng.randrange(256), rng.randrange(256)))
        buffer = io.BytesIO()
        image.save(buffer, format="JPEG", quality=92)
        images.append(buffer.getvalue())
    return images


@dataclass
class ClientOutcome:
    submit_seconds: float | None = None
    status: int | None = None
    error: str | None = None
    job_id: str | None = None
    final_state: str | None = None
    error_code: str | None = None
    final_seconds: float | None = None
    polls: int = 0


@dataclass
class Report:
    stack: str
    clients: int
    workers: int
    mode: str = "closed"
    api_processes: int = 1
    rate: float = 0.0
    duration_seconds: float = 0.0
    achieved_rate: float = 0.0
    """Open loop: answers per second over the send window (accepted or not)."""
    accepted_rate: float = 0.0
    send_lag_max_ms: float = 0.0
    """Open loop: how late the generator itself sent a request (its own CPU starved); large = invalid run."""
    errors_by_status: dict[str, int] = field(default_factory=dict)
    loadavg_before: str = ""
    loadavg_after_submit: str = ""
    accepted: int = 0
    submit_errors: int = 0
    poll_errors: int = 0
    submit_p50_ms: float = 0.0
    submit_p95_ms: float = 0.0
    submit_p99_ms: float = 0.0
    submit_max_ms: float = 0.0
    final_states: dict[str, int] = field(default_factory=dict)
    error_codes: dict[str, int] = field(default_factory=dict)
    not_final: int = 0
    time_to_final_p50_s: float = 0.0
    time_to_final_max_s: float = 0.0
    wall_seconds: float = 0.0
    throughput_jobs_per_min: float = 0.0
    db_rows: int = 0
    db_rows_not_final: int = 0
    db_rows_run_more_than_once: int = 0
    db_rows_without_result: int = 0
    problems: list[str] = field(default_factory=list)


def percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))]


async def one_client(
    client: httpx.AsyncClient, image: bytes, index: int, *, poll: float, deadline: float, start: asyncio.Event
) -> ClientOutcome:
    outcome = ClientOutcome()
    await start.wait()
    began = time.perf_counter()
    try:
        response = await client.post("/api/jobs", files={"file": (f"face{index}.jpg", image, "image/jpeg")})
    except httpx.HTTPError as exc:
        outcome.error = f"{type(exc).__name__}: {exc}"
        return outcome
    outcome.submit_seconds = time.perf_counter() - began
    outcome.status = response.status_code
    if response.status_code != 202:
        outcome.error = response.text[:300]
        return outcome
    body = response.json()
    outcome.job_id = body["id"]
    headers = {"X-Job-Token": body["access_token"]} if body.get("access_token") else {}
    await asyncio.sleep(random.uniform(0, poll))  # spread the pollers
    while time.monotonic() < deadline:
        outcome.polls += 1
        try:
            polled = await client.get(f"/api/jobs/{outcome.job_id}", headers=headers)
        except httpx.HTTPError as exc:
            outcome.error = f"poll {type(exc).__name__}: {exc}"
            await asyncio.sleep(poll)
            continue
        if polled.status_code != 200:
            outcome.error = f"poll {polled.status_code}: {polled.text[:200]}"
        else:
            job = polled.json()
            if job["state"] in FINAL:
                outcome.final_state = job["state"]
                outcome.error_code = (job.get("error") or {}).get("code")
                outcome.final_seconds = time.perf_counter() - began
                return outcome
        await asyncio.sleep(poll)
    return outcome


async def drive(url: str, images: list[bytes], *, poll: float, deadline_seconds: float) -> list[ClientOutcome]:
    if httpx.URL(url).host != LOOPBACK:
        raise SystemExit(f"refusing to load anything but {LOOPBACK}: {url}")
    limits = httpx.Limits(max_connections=len(images) + 10, max_keepalive_connections=len(images) + 10)
    timeout = httpx.Timeout(120.0, connect=30.0)
    start = asyncio.Event()
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=timeout) as client:
        deadline = time.monotonic() + deadline_seconds
        tasks = [
            asyncio.create_task(one_client(client, image, i, poll=poll, deadline=deadline, start=start))
            for i, image in enumerate(images)
        ]
        await asyncio.sleep(0.1)
        start.set()  # every client submits at once
        return list(await asyncio.gather(*tasks))


@dataclass
class Submission:
    scheduled: float
    sent: float = 0.0
    done: float = 0.0
    status: int | None = None
    error: str | None = None
    job_id: str | None = None


async def submit_at(client: httpx.AsyncClient, image: bytes, index: int, scheduled: float) -> Submission:
    outcome = Submission(scheduled=scheduled, sent=time.perf_counter())
    try:
        response = await client.post("/api/jobs", files={"file": (f"face{index}.jpg", image, "image/jpeg")})
    except httpx.HTTPError as exc:
        outcome.error = type(exc).__name__
    else:
        outcome.status = response.status_code
        if response.status_code == 202:
            outcome.job_id = response.json()["id"]
        else:
            outcome.error = response.text[:300]
    outcome.done = time.perf_counter()
    return outcome


async def open_loop(url: str, images: list[bytes], *, rate: float) -> list[Submission]:
    """Send image `i` at t0 + i/rate, however the earlier ones fare; never waits for an answer to send."""
    if httpx.URL(url).host != LOOPBACK:
        raise SystemExit(f"refusing to load anything but {LOOPBACK}: {url}")
    limits = httpx.Limits(max_connections=len(images) + 10, max_keepalive_connections=200)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=httpx.Timeout(120.0, connect=30.0)) as client:
        t0 = time.perf_counter() + 0.2
        tasks = []
        for index, image in enumerate(images):
            scheduled = t0 + index / rate
            delay = scheduled - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(submit_at(client, image, index, scheduled)))
        return list(await asyncio.gather(*tasks))


def summarise_open(report: Report, submissions: list[Submission]) -> None:
    latencies = [(s.done - s.scheduled) * 1000 for s in submissions]
    report.accepted = sum(1 for s in submissions if s.status == 202)
    report.submit_errors = len(submissions) - report.accepted
    for s in submissions:
        if s.status != 202:
            key = str(s.status) if s.status is not None else (s.error or "no answer")
            report.errors_by_status[key] = report.errors_by_status.get(key, 0) + 1
    report.submit_p50_ms = round(percentile(latencies, 50), 1)
    report.submit_p95_ms = round(percentile(latencies, 95), 1)
    report.submit_p99_ms = round(percentile(latencies, 99), 1)
    report.submit_max_ms = round(max(latencies, default=0.0), 1)
    report.send_lag_max_ms = round(max(((s.sent - s.scheduled) * 1000 for s in submissions), default=0.0), 1)
    first = min(s.scheduled for s in submissions)
    span = max(max(s.done for s in submissions) - first, report.duration_seconds)
    report.achieved_rate = round(len(submissions) / span, 1)
    report.accepted_rate = round(report.accepted / span, 1)


def wait_until_final(database_url: str, job_ids: set[str], *, deadline_seconds: float) -> float:
    """Poll the database (not the API, which would add load) until every accepted job is final."""
    engine = create_engine(database_url)
    began = time.perf_counter()
    final_states = ", ".join(f"'{state}'" for state in sorted(FINAL))
    query = text(f"SELECT COUNT(*) FROM jobs WHERE state NOT IN ({final_states})")
    try:
        while time.perf_counter() - began < deadline_seconds:
            with engine.connect() as connection:
                if connection.execute(query).scalar_one() == 0:
                    break
            time.sleep(2.0)
    finally:
        engine.dispose()
    return time.perf_counter() - began


def summarise_finals(report: Report, database_url: str) -> None:
    """Final states and time to final (created -> finished) read from the rows themselves."""
    engine = create_engine(database_url)
    with engine.connect() as connection:
        rows = connection.execute(text("SELECT state, error_code, created_at, finished_at FROM jobs")).all()
    engine.dispose()
    seconds = []
    for state, error_code, created, finished in rows:
        report.final_states[state] = report.final_states.get(state, 0) + 1
        if error_code:
            report.error_codes[error_code] = report.error_codes.get(error_code, 0) + 1
        if state in FINAL and created is not None and finished is not None:
            created_at = created if not isinstance(created, str) else _parse_time(created)
            finished_at = finished if not isinstance(finished, str) else _parse_time(finished)
            seconds.append((finished_at - created_at).total_seconds())
    report.not_final = sum(1 for state, *_ in rows if state not in FINAL)
    report.time_to_final_p50_s = round(percentile(seconds, 50), 1)
    report.time_to_final_max_s = round(max(seconds, default=0.0), 1)


def _parse_time(value: str):  # noqa: ANN202 - SQLite hands back text; a naive or aware datetime
    from datetime import datetime

    return datetime.fromisoformat(value).replace(tzinfo=None)


def loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "unknown"


def summarise(report: Report, outcomes: list[ClientOutcome], wall: float) -> None:
    latencies = [o.submit_seconds * 1000 for o in outcomes if o.submit_seconds is not None and o.status == 202]
    report.accepted = sum(1 for o in outcomes if o.status == 202)
    report.submit_errors = sum(1 for o in outcomes if o.status != 202)
    report.poll_errors = sum(1 for o in outcomes if o.status == 202 and o.error)
    report.submit_p50_ms = round(percentile(latencies, 50), 1)
    report.submit_p95_ms = round(percentile(latencies, 95), 1)
    report.submit_p99_ms = round(percentile(latencies, 99), 1)
    report.submit_max_ms = round(max(latencies, default=0.0), 1)
    for o in outcomes:
        if o.final_state:
            report.final_states[o.final_state] = report.final_states.get(o.final_state, 0) + 1
        if o.error_code:
            report.error_codes[o.error_code] = report.error_codes.get(o.error_code, 0) + 1
        if o.status != 202:
            report.problems.append(f"submit: {o.status} {o.error}")
    report.not_final = sum(1 for o in outcomes if o.status == 202 and not o.final_state)
    finals = [o.final_seconds for o in outcomes if o.final_seconds is not None]
    report.time_to_final_p50_s = round(percentile(finals, 50), 1)
    report.time_to_final_max_s = round(max(finals, default=0.0), 1)
    report.wall_seconds = round(wall, 1)
    report.throughput_jobs_per_min = round(len(finals) / wall * 60, 1) if wall else 0.0


def check_database(report: Report, database_url: str, job_ids: set[str]) -> None:
    """Every accepted job has exactly one row, is final, ran once, and a succeeded job has a result."""
    engine = create_engine(database_url)
    with engine.connect() as connection:
        rows = connection.execute(text("SELECT id, state, attempts, result IS NOT NULL FROM jobs")).all()
    engine.dispose()
    ids = [row[0] for row in rows]
    report.db_rows = len(rows)
    if set(ids) != job_ids or len(ids) != len(set(ids)):
        report.problems.append(f"rows {len(ids)} vs accepted {len(job_ids)}: ids differ or repeat")
    report.db_rows_not_final = sum(1 for row in rows if row[1] not in FINAL)
    report.db_rows_run_more_than_once = sum(1 for row in rows if row[2] != 1)
    report.db_rows_without_result = sum(1 for row in rows if row[1] == "succeeded" and not row[3])


def stack_env(workdir: Path, *, checkpoint: Path) -> dict[str, str]:
    return {
        "ENVIRONMENT": "test",
        "SECRET_KEY": "load-test-secret-" + "x" * 32,
        "VAR_DIR": str(workdir / "var"),
        "DATABASE_URL": "",
        "REDIS_URL": "",
        "MODEL_CHECKPOINT": str(checkpoint),
        "FRONTEND_DIST": str(workdir / "no-frontend"),
        "LOG_LEVEL": "WARNING",
        "REQUEST_RATE_LIMIT": "0",
        "UPLOAD_RATE_LIMIT": "0",
        "PRO_DAILY_UPLOADS": "1000000",  # the anonymous tier with accounts off; every client shares one address
        "PIPELINE_EXPLAIN_TOP_K": "1",
        "TORCH_THREADS": "1",
        "MIN_FREE_DISK_BYTES": "0",
        "DELETE_UPLOADS_AFTER_PROCESSING": "true",
    }


def run(args: argparse.Namespace) -> Report:
    workdir = temp_workdir(f"deepscreen-load-{args.stack}-")
    env = stack_env(workdir, checkpoint=args.checkpoint)
    redis = postgres = None
    if args.stack == "distributed":
        redis = Redis(workdir / "redis")
        postgres = Postgres(workdir / "postgres")
        env |= {"DATABASE_URL": postgres.url, "REDIS_URL": redis.url}
    workers = args.workers or (2 if args.stack == "distributed" else 1)
    stack = Stack(workdir, env, workers=workers, api_processes=args.api_processes)
    opened = args.mode == "open"
    count = round(args.rate * args.duration) if opened else args.clients
    report = Report(stack=args.stack, clients=count, workers=workers, mode=args.mode,
                    api_processes=args.api_processes, rate=args.rate if opened else 0.0,
                    duration_seconds=args.duration if opened else 0.0)
    images = unique_face_jpegs(count)
    database_url = env["DATABASE_URL"] or f"sqlite:///{workdir / 'var' / 'deepscreen.db'}"
    try:
        if redis and postgres:
            redis.start()
            postgres.start()
        stack.start()
        what = f"{args.rate}/s for {args.duration} s" if opened else f"{count} clients"
        print(f"stack up at {stack.url} ({workers} worker(s), {args.api_processes} API process(es)); {what}",
              file=sys.stderr)
        report.loadavg_before = loadavg()
        began = time.perf_counter()
        if opened:
            submissions = asyncio.run(open_loop(stack.url, images, rate=args.rate))
            report.loadavg_after_submit = loadavg()
            summarise_open(report, submissions)
            job_ids = {s.job_id for s in submissions if s.job_id}
            wait_until_final(database_url, job_ids, deadline_seconds=args.deadline)
            report.wall_seconds = round(time.perf_counter() - began, 1)
            summarise_finals(report, database_url)
            finished = sum(report.final_states.get(state, 0) for state in FINAL)
            report.throughput_jobs_per_min = round(finished / report.wall_seconds * 60, 1)
        else:
            outcomes = asyncio.run(drive(stack.url, images, poll=args.poll, deadline_seconds=args.deadline))
            report.loadavg_after_submit = loadavg()
            summarise(report, outcomes, time.perf_counter() - began)
            job_ids = {o.job_id for o in outcomes if o.job_id}
        check_database(report, database_url, job_ids)
    finally:
        stack.stop()
        if postgres:
            postgres.stop()
        if redis:
            redis.stop()
    return report


def summary_line(report: Report) -> str:
    """One line to paste beside the command (docs/reliability.md)."""
    if report.mode == "open":
        head = (f"open loop {report.rate:g}/s x {report.duration_seconds:g} s: sent {report.clients}, "
                f"answered {report.achieved_rate}/s, accepted {report.accepted} ({report.accepted_rate}/s)")
    else:
        head = f"closed crowd of {report.clients}: accepted {report.accepted}"
    return (
        f"{report.stack}, {report.api_processes} API process(es), {report.workers} worker(s): {head}; "
        f"submit p50/p95/p99/max {report.submit_p50_ms}/{report.submit_p95_ms}/{report.submit_p99_ms}/"
        f"{report.submit_max_ms} ms; errors {report.errors_by_status or report.submit_errors}; "
        f"final {report.final_states}, not final {report.db_rows_not_final}, run more than once "
        f"{report.db_rows_run_more_than_once}; loadavg {report.loadavg_before} -> {report.loadavg_after_submit}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.load", description=__doc__.split("\n\n")[0])
    parser.add_argument("--stack", choices=["embedded", "distributed"], default="embedded")
    parser.add_argument("--mode", choices=["closed", "open"], default="closed")
    parser.add_argument("--clients", type=int, default=200, help="closed crowd: simultaneous clients")
    parser.add_argument("--rate", type=float, default=50.0, help="open loop: submissions per second")
    parser.add_argument("--duration", type=float, default=30.0, help="open loop: seconds of sending")
    parser.add_argument("--api-processes", type=int, default=1, help="uvicorn --workers for the API")
    parser.add_argument("--workers", type=int, default=0, help="worker processes (default: 1 embedded, 2 distributed)")
    parser.add_argument("--deadline", type=float, default=1800.0, help="seconds the clients wait at most")
    parser.add_argument("--poll", type=float, default=2.0, help="seconds between a client's polls")
    parser.add_argument("--checkpoint", type=Path, default=DEFAULT_CHECKPOINT)
    parser.add_argument("--json", type=Path, help="also write the report here")
    args = parser.parse_args(argv)
    report = run(args)
    text_report = json.dumps(asdict(report), indent=2)
    print(text_report)
    print(summary_line(report), file=sys.stderr)
    if args.json:
        args.json.write_text(text_report + "\n")
    ok = (
        report.submit_errors == 0 and report.not_final == 0 and report.db_rows == report.accepted
        and report.db_rows_not_final == 0 and report.db_rows_run_more_than_once == 0
        and report.db_rows_without_result == 0 and not report.problems
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
