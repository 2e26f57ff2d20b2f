"""Several processes on one database: outbox claims, and the list version that last wrote each
speaker (so another process reads only the speakers that changed). Feed tokens are looked up by
their SHA-256, filled in here for the tokens already issued.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-04
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

TOKEN_TABLES = {"chats": ("platform", "chat_id"), "slot_requests": ("ref",)}

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
    conn = op.get_bind()
    for table, key in TOKEN_TABLES.items():
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("feed_token_hash", sa.String(64), nullable=True))
            batch.create_unique_constraint(f"uq_{table}_feed_token_hash", ["feed_token_hash"])
        t = sa.table(table, *(sa.column(c) for c in (*key, "feed_token", "feed_token_hash")))
        rows = conn.execute(sa.select(*(t.c[c] for c in key), t.c.feed_token).where(t.c.feed_token.is_not(None)))
        for row in rows.all():
            conn.execute(sa.update(t).where(*(t.c[c] == row[i] for i, c in enumerate(key)))
                         .values(feed_token_hash=hashlib.sha256(row.feed_token.encode()).hexdigest()))


def downgrade() -> None:
    for table in TOKEN_TABLES:
        with op.batch_alter_table(table) as batch:
            batch.drop_constraint(f"uq_{table}_feed_token_hash", type_="unique")
            batch.drop_column("feed_token_hash")
    op.drop_index("ix_speakers_changed", table_name="speakers")
    with op.batch_alter_table("speakers") as batch:
        batch.drop_column("changed_in")
    with op.batch_alter_table("outbox") as batch:
        batch.drop_column("claimed_by")
