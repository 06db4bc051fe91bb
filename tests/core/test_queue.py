"""Messages reach exactly the queue they are sent to, on both brokers, once a worker has declared
every queue (the broker then knows all bindings)."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from core.queue import (
    IMAGE_QUEUE,
    VIDEO_QUEUE,
    EmbeddedBacklog,
    JobQueue,
    RedisBacklog,
    UnknownBacklog,
    broker_backlog,
    create_celery,
)
from tests.conftest import broker_messages, make_settings


@pytest.mark.parametrize("broker", ["embedded", pytest.param("redis", marks=pytest.mark.redis)])
def test_each_message_lands_in_its_own_queue(
    broker: str, env: dict[str, str], request: pytest.FixtureRequest
) -> None:
    if broker == "redis":
        env = {**env, "REDIS_URL": request.getfixturevalue("redis_url")}
    celery = create_celery(make_settings(env))
    queue = JobQueue(celery)
    with celery.connection_for_write() as connection:
        for declared in celery.amqp.queues.values():
            declared.bind(connection.default_channel).declare()

    queue.send_analyze("image-job", IMAGE_QUEUE)
    queue.send_analyze("video-job", VIDEO_QUEUE)

    assert sorted(broker_messages(celery)) == [("image-job", IMAGE_QUEUE), ("video-job", VIDEO_QUEUE)]
    queue.close()


def test_the_broker_backlog_reader_is_chosen_once_from_the_broker_url(tmp_path: Path) -> None:
    assert isinstance(broker_backlog("redis://127.0.0.1:6379/0"), RedisBacklog)
    assert isinstance(broker_backlog("rediss://cache.example:6380/0"), RedisBacklog)
    embedded = broker_backlog(f"sqla+sqlite:///{tmp_path / 'broker.db'}")
    assert isinstance(embedded, EmbeddedBacklog)
    assert embedded.waiting_job_ids() == set(), "nothing was ever sent"
    assert embedded.purge_delivered() == 0
    embedded.close()
    unknown = broker_backlog("amqp://guest@rabbit//")
    assert isinstance(unknown, UnknownBacklog)
    assert unknown.waiting_job_ids() is None, "the reaper then re-sends as it did before"


def test_the_embedded_broker_file_is_in_wal_mode(env: dict[str, str]) -> None:
    # kombu left it in SQLite's rollback-journal mode: two or three fsyncs per publish, each
    # waiting behind the worker's `BEGIN IMMEDIATE` polls (the embedded stack's submit tail).
    settings = make_settings(env)
    queue = JobQueue(create_celery(settings))
    queue.send_analyze("image-job", IMAGE_QUEUE)
    queue.close()

    with closing(sqlite3.connect(settings.broker_url.removeprefix("sqla+sqlite:///"))) as connection:
        assert connection.execute("PRAGMA journal_mode").fetchone() == ("wal",)
