"""Several processes on one database: outbox claims, and the list version that last wrote each
speaker (so another process reads only the speakers that changed).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.add_column(sa.Column("claimed_by", sa.String(64), nullable=True))
    with op.batch_alter_table("speakers") as batch:
        batch.add_column(sa.Column("changed_in", sa.Integer(), nullable=False, server_default="0"))
    op.create_index("ix_speakers_changed", "speakers", ["list_id", "changed_in"])


def downgrade() -> None:
    op.drop_index("ix_speakers_changed", table_name="speakers")
    with op.batch_alter_table("speakers") as batch:
        batch.drop_column("changed_in")
    with op.batch_alter_table("outbox") as batch:
        batch.drop_column("claimed_by")
