"""Load test: N concurrent clients each submit one small face JPEG and poll it until it is final.

    python -m bench.load --stack embedded|distributed [--clients 200] [--workers N] [--deadline 1800]
                         [--poll 2.0] [--json OUT]

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
    stack = Stack(workdir, env, workers=workers)
    report = Report(stack=args.stack, clients=args.clients, workers=workers)
    images = unique_face_jpegs(args.clients)
    try:
        if redis and postgres:
            redis.start()
            postgres.start()
        stack.start()
        print(f"stack up at {stack.url} ({workers} worker(s)); {args.clients} clients", file=sys.stderr)
        began = time.perf_counter()
        outcomes = asyncio.run(drive(stack.url, images, poll=args.poll, deadline_seconds=args.deadline))
        summarise(report, outcomes, time.perf_counter() - began)
        database_url = env["DATABASE_URL"] or f"sqlite:///{workdir / 'var' / 'deepscreen.db'}"
        check_database(report, database_url, {o.job_id for o in outcomes if o.job_id})
    finally:
        stack.stop()
        if postgres:
            postgres.stop()
        if redis:
            redis.stop()
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.load", description=__doc__.split("\n\n")[0])
    parser.add_argument("--stack", choices=["embedded", "distributed"], default="embedded")
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--workers", type=int, default=0, help="worker processes (default: 1 embedded, 2 distributed)")
    parser.add_argument("--deadline", type=float, default=1800.0, help="seconds the clients wait at most")
    parser.add_argument("--poll", type=float, default=2.0, help="seconds between a client's polls")
    parser.add_argument("--checkpoint", type=Path, default=DEFAULT_CHECKPOINT)
    parser.add_argument("--json", type=Path, help="also write the report here")
    args = parser.parse_args(argv)
    report = run(args)
    text_report = json.dumps(asdict(report), indent=2)
    print(text_report)
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
