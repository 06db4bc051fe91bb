"""Worker liveness in the database (it was JSON files under STORAGE_DIR/workers/).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "worker_beats",
        sa.Column("worker", sa.String(length=255), nullable=False),
        sa.Column("beat_at", sa.Float(), nullable=False),
        sa.Column("beat", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("worker", name=op.f("pk_worker_beats")),
    )
    op.create_index("ix_worker_beats_beat_at", "worker_beats", ["beat_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_worker_beats_beat_at", table_name="worker_beats")
    op.drop_table("worker_beats")
