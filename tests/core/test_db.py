"""Opening a PostgreSQL connection is bounded, so a silent database cannot hold requests forever."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from core.db import Database


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A TCP port that accepts connections and never answers (a hung or black-holed database)."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        yield listener.getsockname()[1]


def test_a_silent_postgres_fails_the_connection_instead_of_hanging(silent_server: int) -> None:
    database = Database(f"postgresql+psycopg://deepscreen@127.0.0.1:{silent_server}/x", connect_timeout_seconds=1)
    outcome: list[BaseException] = []

    def query() -> None:
        try:
            with database.session() as session:
                session.execute(text("SELECT 1"))
        except BaseException as exc:  # noqa: BLE001 - handed to the test thread
            outcome.append(exc)

    worker = threading.Thread(target=query, daemon=True)
    worker.start()
    worker.join(timeout=30)  # libpq without connect_timeout waits for the server indefinitely
    assert not worker.is_alive(), "the connection attempt did not give up"
    assert len(outcome) == 1
    assert isinstance(outcome[0], OperationalError)
    database.engine.dispose()


def test_database_errors_never_carry_bound_parameters(database_url: str) -> None:
    """Error texts are logged ("database unavailable: ..."); an API key's hash appeared in one."""
    database = Database(database_url, connect_timeout_seconds=5)
    secret = "f00dfeed" * 8
    try:
        with pytest.raises(Exception, match="no_such_table") as caught, database.session() as session:
            session.execute(text("SELECT * FROM no_such_table WHERE key_hash = :key"), {"key": secret})
    finally:
        database.dispose()
    assert secret not in str(caught.value)
