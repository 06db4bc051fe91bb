"""Integration tests use the worker tests' two stacks (embedded; PostgreSQL + Redis)."""

from tests.worker.conftest import database_url, stack, worker_env

__all__ = ["database_url", "stack", "worker_env"]
