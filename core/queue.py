"""The Celery app's configuration and the one way the API sends work to it.

The API only *sends* tasks by name; the task code lives in `worker/` and imports the pipeline
(and torch), which the API must never load. There is no result backend: the job row is the
record of progress and outcome.

Broker semantics that the design relies on:
- Redis: with `acks_late`, a message whose worker died is delivered again after the
  visibility timeout; `task_reject_on_worker_lost` re-queues it at once when only the pool child died.
- kombu's SQLAlchemy transport (the embedded default): a received message is marked invisible and
  is only restored on a clean shutdown; after a SIGKILL it is gone. The reaper
  (`service.reap_stale_jobs`) covers both cases by re-sending jobs whose heartbeat went stale.
"""

from __future__ import annotations

import base64
import json
import logging
import sqlite3
from collections.abc import Iterable
from contextlib import closing
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from celery import Celery
from kombu import Exchange, Queue

from core.logs import request_id_var
from core.settings import ReaperMode, Settings

if TYPE_CHECKING:
    from sqlalchemy import Engine

logger = logging.getLogger(__name__)

ANALYZE_TASK = "job.analyze"
REAP_TASK = "job.reap"
RETENTION_TASK = "retention.sweep"
REQUEST_ID_HEADER = "deepscreen_request_id"
"""Task message header carrying the API request id, so worker logs join the request's."""
IMAGE_QUEUE = "images"
VIDEO_QUEUE = "videos"
MAINTENANCE_QUEUE = "maintenance"
QUEUES = (IMAGE_QUEUE, VIDEO_QUEUE, MAINTENANCE_QUEUE)


def queue_for_kind(kind: str) -> str:
    """Images and videos have separate Celery queues so a long video never blocks quick images."""
    return IMAGE_QUEUE if kind == "image" else VIDEO_QUEUE


def create_celery(settings: Settings) -> Celery:
    if settings.broker_url.startswith("sqla+sqlite:///"):
        _embedded_broker_in_wal_mode(Path(settings.broker_url.removeprefix("sqla+sqlite:///")))
    app = Celery("deepscreen", broker=settings.broker_url, set_as_current=False)
    transport_options: dict[str, object] = {}
    if settings.broker_url.startswith(("redis://", "rediss://")):
        # Longer than any task may run, so a live task's message is never handed to a second worker.
        transport_options["visibility_timeout"] = settings.JOB_TIME_LIMIT_SECONDS * 2
    # The SQLAlchemy transport passes every transport option to create_engine(): add none for it.
    app.conf.update(
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_soft_time_limit=settings.JOB_SOFT_TIME_LIMIT_SECONDS,
        task_time_limit=settings.JOB_TIME_LIMIT_SECONDS,
        task_ignore_result=True,
        task_serializer="json",
        accept_content=["json"],
        # One direct exchange per queue, so routing is explicit on every broker (tests/core/test_queue.py).
        task_queues=[Queue(name, Exchange(name, type="direct"), routing_key=name) for name in QUEUES],
        task_default_queue=MAINTENANCE_QUEUE,
        task_routes={REAP_TASK: {"queue": MAINTENANCE_QUEUE}, RETENTION_TASK: {"queue": MAINTENANCE_QUEUE}},
        broker_transport_options=transport_options,
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=False,
        worker_send_task_events=False,
        worker_proc_alive_timeout=180,  # pool processes load the model at start; that takes a while
        beat_schedule=(
            {
                "reap-stale-jobs": {"task": REAP_TASK, "schedule": timedelta(seconds=settings.REAPER_INTERVAL_SECONDS)},
                "retention-sweep": {
                    "task": RETENTION_TASK, "schedule": timedelta(seconds=settings.RETENTION_INTERVAL_SECONDS),
                },
            }
            if settings.REAPER_MODE is ReaperMode.beat
            else {}
        ),
    )
    return app


class BrokerBacklog(Protocol):
    """What the reaper asks of the broker, one implementation per broker kind (`broker_backlog`)."""

    def waiting_job_ids(self) -> set[str] | None:
        """Jobs whose analysis message the broker still holds (waiting, or delivered and not yet
        acknowledged); None for a broker this cannot read (the reaper then re-sends as before)."""

    def purge_delivered(self) -> int:
        """Delete delivered messages the broker would keep for ever; returns how many."""

    def close(self) -> None: ...


def broker_backlog(broker_url: str) -> BrokerBacklog:
    """The backlog reader for this broker URL, chosen once per `JobQueue`."""
    if broker_url.startswith(("redis://", "rediss://")):
        return RedisBacklog(broker_url)
    if broker_url.startswith("sqla+"):
        return EmbeddedBacklog(broker_url)
    return UnknownBacklog()


class RedisBacklog:
    """Redis: the two job queues (lists) and kombu's `unacked` hash; acknowledged messages are deleted."""

    def __init__(self, url: str) -> None:
        self.url = url

    def waiting_job_ids(self) -> set[str] | None:
        import redis

        client = redis.Redis.from_url(self.url, socket_timeout=5)
        try:
            raw = [m for name in (IMAGE_QUEUE, VIDEO_QUEUE) for m in client.lrange(name, 0, -1)]
            raw += [json.dumps(json.loads(v)[0]).encode() for v in client.hvals("unacked")]
        finally:
            client.close()
        return set(_job_ids(raw))

    def purge_delivered(self) -> int:
        return 0

    def close(self) -> None:
        return None


class EmbeddedBacklog:
    """kombu's SQLAlchemy transport (the embedded default): every row of the two queues, delivered
    (invisible) ones included, which the reaper purges after reading, so a message delivered a
    moment ago is not taken for lost."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._engine: Engine | None = None

    @property
    def engine(self) -> Engine:
        """One small engine on the database file kombu writes, made on first use."""
        if self._engine is None:
            from sqlalchemy import create_engine

            self._engine = create_engine(self.url.removeprefix("sqla+"), connect_args={"timeout": 30})
        return self._engine

    def _has_messages_table(self) -> bool:
        from sqlalchemy import inspect

        return inspect(self.engine).has_table("kombu_message")

    def waiting_job_ids(self) -> set[str] | None:
        from sqlalchemy import text

        if not self._has_messages_table():
            return set()  # nothing was ever sent through this broker
        query = text(
            "SELECT m.payload FROM kombu_message m JOIN kombu_queue q ON m.queue_id = q.id"
            " WHERE q.name IN (:images, :videos)"
        )
        with self.engine.connect() as connection:
            rows = connection.execute(query, {"images": IMAGE_QUEUE, "videos": VIDEO_QUEUE}).scalars().all()
        return set(_job_ids(row.encode() if isinstance(row, str) else row for row in rows))

    def purge_delivered(self) -> int:
        """kombu's SQLAlchemy transport marks a delivered message invisible and keeps it for ever
        (0.16 -> 1.45 MB over 210 jobs), never delivering it again: dead weight."""
        from sqlalchemy import text

        if not self._has_messages_table():
            return 0
        with self.engine.begin() as connection:
            return connection.execute(text("DELETE FROM kombu_message WHERE NOT visible")).rowcount or 0

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None


class UnknownBacklog:
    def waiting_job_ids(self) -> set[str] | None:
        return None

    def purge_delivered(self) -> int:
        return 0

    def close(self) -> None:
        return None


def _embedded_broker_in_wal_mode(path: Path) -> None:
    """Put the embedded broker's SQLite file in WAL mode, which the file keeps for every later connection.

    kombu opens it in SQLite's default rollback-journal mode, where each publish syncs both the
    journal and the database and waits behind every worker poll (kombu's `BEGIN IMMEDIATE`); in WAL
    mode a commit syncs only the log and readers never wait. kombu builds its own engine, so this is
    set on the file.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with closing(sqlite3.connect(path, timeout=30)) as connection:
            connection.execute("PRAGMA journal_mode=WAL")
    except sqlite3.Error:  # another process holds it; whichever started first sets it, for good
        logger.warning("could not put the embedded broker in WAL mode", exc_info=True)


class JobQueue:
    """Sends analysis tasks; called only after the job row is committed (see `db.run_after_commit`)."""

    def __init__(self, celery: Celery) -> None:
        self.celery = celery
        self.backlog = broker_backlog(celery.conf.broker_url or "")

    def send_analyze(self, job_id: str, queue: str) -> None:
        self.celery.send_task(
            ANALYZE_TASK, args=[job_id], queue=queue, headers={REQUEST_ID_HEADER: request_id_var.get()}
        )
        logger.info("job sent to queue", extra={"job_id": job_id, "queue": queue})

    def waiting_job_ids(self) -> set[str] | None:
        """Jobs whose analysis message the broker still holds (`BrokerBacklog`).

        The reaper re-sends a queued job only when its message is not here: re-sending every job
        queued longer than QUEUED_RESEND_AFTER_SECONDS turned a 100-job backlog into 682 duplicates
        and a 529 s wait for the next upload on an idle system (issue 13). A full read of the
        queues is one LRANGE per queue (Redis) or one SELECT (the embedded broker) per reaper pass.
        """
        return self.backlog.waiting_job_ids()

    def purge_delivered(self) -> int:
        return self.backlog.purge_delivered()

    def close(self) -> None:
        self.backlog.close()
        self.celery.close()


def _job_ids(messages: Iterable[bytes]) -> Iterable[str]:
    """The job id of each `job.analyze` message (kombu's envelope: headers, base64 body [args, kwargs, embed])."""
    for raw in messages:
        try:
            message = json.loads(raw)
            if message.get("headers", {}).get("task") != ANALYZE_TASK:
                continue
            body = message["body"]
            if message.get("properties", {}).get("body_encoding") == "base64":
                body = base64.b64decode(body)
            args = json.loads(body)[0]
            yield str(args[0])
        except (ValueError, KeyError, IndexError, TypeError):
            logger.warning("unreadable broker message skipped")
