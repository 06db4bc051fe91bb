"""A file without a face is an inconclusive result, not a failed job.

Jobs that failed with `no_face_found` kept their result (label inconclusive, reason
no_face_found): they become `succeeded` with no error, as new ones are. The code is gone from
the job error codes, so a row still carrying it would not be a valid answer.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_jobs = sa.table(
    "jobs", sa.column("state", sa.String), sa.column("result", sa.JSON), sa.column("error_code", sa.String),
    sa.column("error_message", sa.Text), sa.column("error_details", sa.JSON),
)
_NO_FACE = "no_face_found"


def upgrade() -> None:
    no_face = _jobs.c.error_code == _NO_FACE
    op.execute(
        _jobs.update().where(no_face, _jobs.c.result.is_not(None))
        .values(state="succeeded", error_code=None, error_message=None, error_details=None)
    )
    # Without a result (never written so by any release) there is nothing to show: an internal failure.
    op.execute(_jobs.update().where(no_face).values(error_code="internal"))


def downgrade() -> None:
    # Rows are not told apart after the upgrade: an older release shows these as succeeded and
    # inconclusive, which is also what their stored result says.
    pass
