"""Fault runs against a private distributed stack: nothing accepted may be lost, stuck or run twice.

    python -m bench.reliability [--only worker-kill,redis-restart,postgres-restart,api-restart]
                                [--json OUT]

One stack for all scenarios (bench/load/servers.py): a private PostgreSQL cluster and redis-server
(never the machine's shared ones), the API under uvicorn with the embedded reaper, and two real
Celery worker processes. In order:

- worker-kill: SIGKILL the worker running a video mid-job; the reaper re-queues it, the other
  worker finishes it (attempts == 2).
- redis-restart: SIGKILL redis-server (no persistence: every queued message is gone) while jobs
  are queued and running, start it again; the reaper re-sends the lost messages.
- postgres-restart: `pg_ctl restart -m immediate` (a crash) while jobs run and clients keep
  submitting; submissions during the outage must fail with an error (never a 202 for a lost row),
  running jobs are retried.
- api-restart: SIGKILL the API while slow uploads stream in, then SIGTERM it during uploads;
  interrupted uploads must leave no job row, and the temporary files they leave are counted.

At the end every job in the database must be final (succeeded, or failed with an error code),
each accepted submission must have exactly one row, and no job may have run more than
JOB_MAX_ATTEMPTS times. Prints a JSON report; exits 1 if any check failed.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from PIL import Image
from sqlalchemy import create_engine, text

from bench.load.__main__ import data_dir, stack_env, unique_face_jpegs
from bench.load.servers import Postgres, Redis, Stack, temp_workdir, wait_until
from core.settings import DEFAULT_CHECKPOINT

FINAL = {"succeeded", "failed", "canceled"}
SCENARIOS = ("worker-kill", "redis-restart", "postgres-restart", "api-restart")


@dataclass
class Outcome:
    scenario: str
    ok: bool = True
    facts: dict[str, Any] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    def check(self, condition: bool, problem: str) -> None:
        if not condition:
            self.ok = False
            self.problems.append(problem)


class Client:
    """A tiny API client that keeps each job's access token."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.tokens: dict[str, str] = {}
        self.http = httpx.Client(base_url=stack.url, timeout=httpx.Timeout(60.0, connect=10.0))

    def submit(self, data: bytes, name: str, *, force: bool = False) -> httpx.Response:
        response = self.http.post("/api/jobs", params={"force": "true"} if force else None,
                                  files={"file": (name, data, "application/octet-stream")})
        if response.status_code == 202:
            self.tokens[response.json()["id"]] = response.json().get("access_token") or ""
        return response

    def job(self, job_id: str) -> dict[str, Any]:
        response = self.http.get(f"/api/jobs/{job_id}", headers={"X-Job-Token": self.tokens.get(job_id, "")})
        response.raise_for_status()
        return response.json()  # type: ignore[no-any-return]

    def wait_final(self, job_ids: list[str], timeout: float) -> dict[str, dict[str, Any]]:
        bodies: dict[str, dict[str, Any]] = {}
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for job_id in job_ids:
                if job_id not in bodies:
                    try:
                        body = self.job(job_id)
                    except httpx.HTTPError:
                        continue  # the API may be restarting
                    if body["state"] in FINAL:
                        bodies[job_id] = body
            if len(bodies) == len(job_ids):
                break
            time.sleep(1.0)
        return bodies


class Faults:
    def __init__(self, stack: Stack, redis: Redis, postgres: Postgres, database_url: str) -> None:
        self.stack = stack
        self.redis = redis
        self.postgres = postgres
        self.engine = create_engine(database_url, pool_pre_ping=True)
        self.client = Client(stack)
        self.images = iter(unique_face_jpegs(400, seed=7))
        self.video = data_dir() / "videos" / "fake" / "ffpp_deepfakes_003_000.mp4"

    def rows(self) -> list[Any]:
        with self.engine.connect() as connection:
            return list(connection.execute(text(
                "SELECT id, state, attempts, worker, error_code, result IS NOT NULL FROM jobs"
            )))

    def submit_images(self, count: int) -> list[str]:
        ids = []
        for i in range(count):
            response = self.client.submit(next(self.images), f"face{i}.jpg")
            if response.status_code != 202:
                raise RuntimeError(f"submission refused: {response.status_code} {response.text[:300]}")
            ids.append(response.json()["id"])
        return ids

    def submit_video(self) -> str:
        response = self.client.submit(self.video.read_bytes(), "clip.mp4", force=True)
        if response.status_code != 202:
            raise RuntimeError(f"video refused: {response.status_code} {response.text[:300]}")
        return str(response.json()["id"])

    def wait_running(self, job_id: str, timeout: float = 180) -> dict[str, Any]:
        wait_until(lambda: self.client.job(job_id)["state"] == "running" and self.client.job(job_id)["progress"] > 5,
                   timeout=timeout, what=f"job {job_id} to run", interval=0.3)
        return self.client.job(job_id)

    def judge(self, outcome: Outcome, ids: list[str], bodies: dict[str, dict[str, Any]], *, max_attempts: int) -> None:
        outcome.facts["jobs"] = len(ids)
        outcome.facts["final_states"] = dict(Counter(body["state"] for body in bodies.values()))
        outcome.facts["error_codes"] = dict(Counter(
            (body.get("error") or {}).get("code") for body in bodies.values() if body["state"] == "failed"
        ))
        outcome.facts["attempts"] = dict(Counter(str(body["attempts"]) for body in bodies.values()))
        outcome.check(len(bodies) == len(ids), f"{len(ids) - len(bodies)} job(s) not final in time")
        for job_id, body in bodies.items():
            outcome.check(body["state"] in {"succeeded", "failed"}, f"{job_id} ended {body['state']}")
            if body["state"] == "failed":
                outcome.check(bool((body.get("error") or {}).get("code")), f"{job_id} failed without a code")
            outcome.check(body["attempts"] <= max_attempts, f"{job_id} ran {body['attempts']} times")

    # --- scenarios ---------------------------------------------------------------------------

    def worker_kill(self) -> Outcome:
        outcome = Outcome("worker-kill")
        job_id = self.submit_video()
        running = self.wait_running(job_id)
        index = int(running_worker(self.rows(), job_id).split("@")[0].removeprefix("load")) - 1
        victim = self.stack.workers[index]
        outcome.facts["killed_at_progress"] = running["progress"]
        killed = time.monotonic()
        self.stack.kill_worker(victim)
        bodies = self.client.wait_final([job_id], timeout=400)
        outcome.facts["seconds_to_final_after_kill"] = round(time.monotonic() - killed, 1)
        self.judge(outcome, [job_id], bodies, max_attempts=2)
        if bodies:
            body = bodies[job_id]
            outcome.check(body["state"] == "succeeded", f"video ended {body['state']}: {body.get('error')}")
            outcome.check(body["attempts"] == 2, f"expected 2 attempts, got {body['attempts']}")
            outcome.facts["finished_by"] = running_worker(self.rows(), job_id)
        self.stack.workers[index] = self.stack.start_worker()  # back to two workers
        return outcome

    def redis_restart(self) -> Outcome:
        outcome = Outcome("redis-restart")
        video = self.submit_video()
        ids = [video, *self.submit_images(12)]
        self.wait_running(video)
        states = Counter(self.client.job(job_id)["state"] for job_id in ids)
        outcome.facts["states_at_restart"] = dict(states)
        restarted = time.monotonic()
        self.redis.restart(hard=True, down_seconds=3)
        after = self.submit_images(3)  # the API keeps accepting once Redis is back
        bodies = self.client.wait_final([*ids, *after], timeout=600)
        outcome.facts["seconds_to_all_final"] = round(time.monotonic() - restarted, 1)
        self.judge(outcome, [*ids, *after], bodies, max_attempts=3)
        return outcome

    def postgres_restart(self) -> Outcome:
        outcome = Outcome("postgres-restart")
        video = self.submit_video()
        ids = [video, *self.submit_images(8)]
        self.wait_running(video)
        statuses: Counter[str] = Counter()
        accepted: list[str] = []
        stop = threading.Event()

        def keep_submitting() -> None:
            client = Client(self.stack)
            images = unique_face_jpegs(60, seed=11)
            for i, image in enumerate(images):
                if stop.is_set():
                    return
                try:
                    response = client.submit(image, f"during{i}.jpg")
                    statuses[str(response.status_code)] += 1
                    if response.status_code == 202:
                        accepted.append(response.json()["id"])
                        self.client.tokens.update(client.tokens)
                except httpx.HTTPError as exc:
                    statuses[type(exc).__name__] += 1
                time.sleep(0.5)

        submitter = threading.Thread(target=keep_submitting, daemon=True)
        submitter.start()
        time.sleep(2)
        restarted = time.monotonic()
        self.postgres.restart(mode="immediate", down_seconds=5)
        time.sleep(5)
        stop.set()
        submitter.join(timeout=120)
        outcome.facts["submissions_during_outage"] = dict(statuses)
        bodies = self.client.wait_final([*ids, *accepted], timeout=600)
        outcome.facts["seconds_to_all_final"] = round(time.monotonic() - restarted, 1)
        self.judge(outcome, [*ids, *accepted], bodies, max_attempts=3)
        known = {row[0] for row in self.rows()}
        outcome.check(set(accepted) <= known, "a 202 was answered for a row that does not exist")
        return outcome

    def api_restart(self) -> Outcome:
        outcome = Outcome("api-restart")
        before = len(self.rows())
        tmp = self.stack.workdir / "var" / "storage" / "tmp"
        for mode in ("SIGKILL", "SIGTERM"):
            results: list[str] = []
            threads = [threading.Thread(target=slow_upload, args=(self.stack.url, results), daemon=True)
                       for _ in range(8)]
            for thread in threads:
                thread.start()
            time.sleep(3)  # every upload is mid-stream
            partial = len(list(tmp.glob("*.part")))
            self.stack.stop_api(hard=mode == "SIGKILL")
            for thread in threads:
                thread.join(timeout=120)
            self.stack.start_api()
            outcome.facts[mode] = {
                "uploads_in_flight": len(threads), "partial_files_while_streaming": partial,
                "client_outcomes": dict(Counter(results)),
                "partial_files_left_after_restart": len(list(tmp.glob("*.part"))),
            }
        after = self.rows()
        outcome.facts["job_rows_created"] = len(after) - before
        accepted = sum(count for mode in ("SIGKILL", "SIGTERM")
                       for key, count in outcome.facts[mode]["client_outcomes"].items() if key == "202")
        outcome.check(len(after) - before == accepted, "a job row exists for an upload that was not accepted")
        ids = self.submit_images(2)  # the restarted API works
        self.judge(outcome, ids, self.client.wait_final(ids, timeout=300), max_attempts=1)
        return outcome


def running_worker(rows: list[Any], job_id: str) -> str:
    return next(str(row[3]) for row in rows if row[0] == job_id)


def noise_png(side: int = 900) -> bytes:
    """A ~2.4 MB PNG of random pixels: large enough that a slow upload takes seconds."""
    pixels = np.random.default_rng().integers(0, 256, (side, side, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG", compress_level=0)
    return buffer.getvalue()


def slow_upload(url: str, results: list[str]) -> None:
    """Stream a multipart upload in 32 kB pieces, 0.1 s apart (about 30 s in all)."""
    boundary = "slow-upload-boundary"
    data = noise_png()

    def body() -> Iterator[bytes]:
        yield (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"slow.png\"\r\n\r\n").encode()
        for start in range(0, len(data), 32_768):
            yield data[start : start + 32_768]
            time.sleep(0.1)
        yield f"\r\n--{boundary}--\r\n".encode()

    try:
        response = httpx.post(f"{url}/api/jobs", content=body(), timeout=120,
                              headers={"content-type": f"multipart/form-data; boundary={boundary}"})
        results.append(str(response.status_code))
    except httpx.HTTPError as exc:
        results.append(type(exc).__name__)


def run(only: list[str], checkpoint: Path) -> tuple[list[Outcome], dict[str, Any]]:
    workdir = temp_workdir("deepscreen-faults-")
    redis, postgres = Redis(workdir / "redis"), Postgres(workdir / "postgres")
    env = stack_env(workdir, checkpoint=checkpoint) | {
        "DATABASE_URL": postgres.url, "REDIS_URL": redis.url, "LOG_LEVEL": "INFO",
        "PIPELINE_FRAMES": "32", "HEARTBEAT_SECONDS": "2", "STALE_AFTER_SECONDS": "10",
        "REAPER_INTERVAL_SECONDS": "2", "QUEUED_RESEND_AFTER_SECONDS": "20", "TASK_RETRY_BACKOFF_SECONDS": "2",
        "JOB_SOFT_TIME_LIMIT_SECONDS": "300", "JOB_TIME_LIMIT_SECONDS": "330",
        "DELETE_UPLOADS_AFTER_PROCESSING": "false", "UPLOAD_CHUNK_BYTES": "65536",
    }
    stack = Stack(workdir, env, workers=2)
    outcomes: list[Outcome] = []
    final: dict[str, Any] = {"workdir": str(workdir)}
    try:
        redis.start()
        postgres.start()
        stack.start()
        faults = Faults(stack, redis, postgres, postgres.url)
        for name in SCENARIOS:
            if name not in only:
                continue
            print(f"==> {name}", file=sys.stderr)
            try:
                outcome = getattr(faults, name.replace("-", "_"))()
            except Exception as exc:  # a scenario that cannot even run is a failed scenario
                outcome = Outcome(name, ok=False, problems=[f"{type(exc).__name__}: {exc}"])
            print(json.dumps(asdict(outcome)), file=sys.stderr)
            outcomes.append(outcome)
        rows = faults.rows()
        final["rows"] = len(rows)
        final["states"] = dict(Counter(row[1] for row in rows))
        final["not_final"] = [row[0] for row in rows if row[1] not in FINAL]
        final["failed_without_code"] = [row[0] for row in rows if row[1] == "failed" and not row[4]]
        final["succeeded_without_result"] = [row[0] for row in rows if row[1] == "succeeded" and not row[5]]
        faults.engine.dispose()
    finally:
        stack.stop()
        postgres.stop()
        redis.stop()
    return outcomes, final


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.reliability", description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", default=",".join(SCENARIOS), help="comma-separated scenarios")
    parser.add_argument("--checkpoint", type=Path, default=DEFAULT_CHECKPOINT)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    only = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = set(only) - set(SCENARIOS)
    if unknown:
        parser.error(f"unknown scenarios: {sorted(unknown)}")
    outcomes, final = run(only, args.checkpoint)
    report = {"scenarios": [asdict(o) for o in outcomes], "database": final}
    print(json.dumps(report, indent=2))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    clean = not (final.get("not_final") or final.get("failed_without_code") or final.get("succeeded_without_result"))
    return 0 if clean and all(o.ok for o in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
