"""Reuse the pipeline tests' shared-data fixtures."""

from tests.ml.conftest import shared_data  # noqa: F401
