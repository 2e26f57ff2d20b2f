"""SQLAlchemy 2 async storage (SQLite with aiosqlite, PostgreSQL with asyncpg) and its Alembic migrations."""

from .chats import SqlChatStore
from .console import SqlConsoleStore
from .engine import Checkpoints, create_engine, write_here
from .mail import SqlMailStore
from .migrate import current_revision, head_revision, upgrade, upgrade_sync
from .outbox import SqlOutbox
from .repository import SchemaOutOfDate, SqlAgendaStore, open_store
from .slots import SqlSlotStore
from .speakers import SqlSpeakerStore

__all__ = [
    "Checkpoints",
    "SchemaOutOfDate",
    "SqlAgendaStore",
    "SqlChatStore",
    "SqlConsoleStore",
    "SqlMailStore",
    "SqlOutbox",
    "SqlSlotStore",
    "SqlSpeakerStore",
    "create_engine",
    "current_revision",
    "head_revision",
    "open_store",
    "upgrade",
    "upgrade_sync",
    "write_here",
]
