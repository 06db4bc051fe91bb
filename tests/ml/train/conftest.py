"""Reuse the pipeline tests' shared-data fixtures."""

from tests.ml.conftest import (
    shared_data,  # noqa: F401
    tiny_checkpoint,  # noqa: F401, E402
)
