"""The relational schema: SQLAlchemy Core tables, one per stored record of the domain.

Column names match the fields of `workflows.model` so rows map onto the dataclasses
directly. Schema changes go through an Alembic migration in `migrations/versions/`.
"""
from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.types import TypeDecorator

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING_CONVENTION)

# SQLite only auto-numbers a column declared exactly INTEGER PRIMARY KEY.
Id = BigInteger().with_variant(Integer(), "sqlite")
JsonDocument = JSON().with_variant(JSONB(), "postgresql")


class UtcDateTime(TypeDecorator):
    """A point in time, stored as UTC and always read back timezone-aware in UTC.

    SQLite keeps no time zone, so the value is normalised to UTC before it is stored;
    a naive datetime is refused rather than guessed at.
    """

    impl = DateTime
    cache_ok = True

    def __init__(self) -> None:
        super().__init__(timezone=True)

    def process_bind_param(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"The time {value.isoformat()} has no time zone; store timezone-aware datetimes.")
        value = value.astimezone(timezone.utc)
        return value if dialect.name == "postgresql" else value.replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc)


def _case_id() -> Column:
    return Column("case_id", Id, ForeignKey("case_record.id"), nullable=False)


process_version = Table(
    "process_version",
    metadata,
    Column("id", Id, primary_key=True),
    Column("process_id", String(255), nullable=False),
    Column("version", Integer, nullable=False),
    Column("content_hash", String(128), nullable=False),
    Column("name", String(255), nullable=False),
    Column("setting", String(100), nullable=False),
    Column("deployed_by", String(150), nullable=False),
    Column("deployed_at", UtcDateTime(), nullable=False),
    Column("note", Text),
    UniqueConstraint("process_id", "version"),
)

process_file = Table(
    "process_file",
    metadata,
    Column("process_version_id", Id, ForeignKey("process_version.id", ondelete="CASCADE"), primary_key=True),
    Column("path", String(500), primary_key=True),
    Column("content", LargeBinary, nullable=False),
)

process_draft = Table(
    "process_draft",
    metadata,
    Column("id", Id, primary_key=True),
    Column("set_name", String(100), nullable=False, unique=True),
    Column("revision", Integer, nullable=False),
    Column("based_on_version_id", Id, ForeignKey("process_version.id", ondelete="SET NULL")),
    Column("created_by", String(150), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("updated_by", String(150), nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
)

draft_file = Table(
    "draft_file",
    metadata,
    Column("draft_id", Id, ForeignKey("process_draft.id", ondelete="CASCADE"), primary_key=True),
    Column("path", String(500), primary_key=True),
    Column("content", LargeBinary, nullable=False),
)

case_record = Table(
    "case_record",
    metadata,
    Column("id", Id, primary_key=True),
    Column("process_version_id", Id, ForeignKey("process_version.id"), nullable=False, index=True),
    Column("process_id", String(255), nullable=False),
    Column("state", Text, nullable=False),
    Column("status", String(20), nullable=False),
    Column("subject_name", String(255), nullable=False),
    Column("subject_ref", String(100), nullable=False),
    Column("setting", String(100), nullable=False),
    Column("priority", Integer, nullable=False),
    Column("data", JsonDocument, nullable=False),
    Column("opened_at", UtcDateTime(), nullable=False),
    Column("opened_by", String(150), nullable=False),
    Column("closed_at", UtcDateTime()),
    Column("updated_at", UtcDateTime()),
    Column("version", Integer, nullable=False),
    Column("suspended_at", UtcDateTime()),
    Column("elements_done", JsonDocument),
    Index(None, "status", "process_id"),
    Index(None, "subject_ref"),
    Index(None, "status", "updated_at"),
    # Every case column the inbox filters on, so its case filters read this index, not the wide rows.
    Index(None, "setting", "process_id", "subject_name", "subject_ref"),
    # A task's case looked up by setting alone (the inbox's setting filters; migration 0008).
    Index(None, "setting", "id"),
)

human_task = Table(
    "human_task",
    metadata,
    Column("id", Id, primary_key=True),
    _case_id(),
    Column("task_ref", String(64), nullable=False),
    Column("element_id", String(255), nullable=False),
    Column("title", String(500), nullable=False),
    Column("candidate_role", String(100)),
    Column("assignee", String(150)),
    Column("status", String(20), nullable=False),
    Column("priority", Integer, nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("due_at", UtcDateTime()),
    Column("at_risk_at", UtcDateTime()),
    Column("form_ref", String(500)),
    Column("ui_form_ref", String(500)),
    Column("instructions", Text, nullable=False),
    Column("completed_at", UtcDateTime()),
    Column("completed_by", String(150)),
    Column("adhoc", Boolean, nullable=False, server_default=false()),
    Column("draft", JsonDocument),
    Column("draft_saved_at", UtcDateTime()),
    Column("draft_saved_by", String(150)),
    UniqueConstraint("case_id", "task_ref"),
    Index(None, "status", "candidate_role", "due_at"),
    Index(None, "assignee", "status"),
    Index(None, "case_id", "status"),
)

# The inbox's partial indexes of open tasks (migration 0008, read by repositories/task_filters.py):
# a team's queue and every open task, each in due order and in priority order. Due order is
# (due_at IS NULL, due_at): no due time last, as on the page. The due-order ones carry every
# column the inbox filters and counts on (status and assignee too: SQLite only reads an index
# alone when it holds every column the query names), so counting a view never reads the table.
_IN_QUEUE = text("status = 'open' AND assignee IS NULL")
_OPEN = text("status IN ('open', 'claimed')")
_task = human_task.c
_BY_DUE = (_task.due_at.is_(None), _task.due_at, _task.created_at, _task.id)
Index("ix_human_task_queue_due", _task.candidate_role, *_BY_DUE, _task.priority, _task.case_id, _task.element_id,
      _task.title, _task.status, _task.assignee, sqlite_where=_IN_QUEUE, postgresql_where=_IN_QUEUE)
Index("ix_human_task_queue_priority", _task.candidate_role, _task.priority, *_BY_DUE, _task.case_id,
      sqlite_where=_IN_QUEUE, postgresql_where=_IN_QUEUE)
Index("ix_human_task_open_due", *_BY_DUE, _task.priority, _task.case_id, _task.element_id, _task.title,
      _task.status, sqlite_where=_OPEN, postgresql_where=_OPEN)
Index("ix_human_task_open_priority", _task.priority, *_BY_DUE, _task.case_id, sqlite_where=_OPEN, postgresql_where=_OPEN)

timer = Table(
    "timer",
    metadata,
    Column("id", Id, primary_key=True),
    _case_id(),
    Column("task_ref", String(64), nullable=False),
    Column("element_id", String(255), nullable=False),
    Column("due_at", UtcDateTime(), nullable=False),
    Column("status", String(20), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("lease_owner", String(150)),
    Column("lease_expires_at", UtcDateTime()),
    Column("fired_at", UtcDateTime()),
    Column("retry_at", UtcDateTime()),
    Column("last_error", Text),
    UniqueConstraint("case_id", "task_ref"),
    # Claiming takes the oldest due first, ties by id: the index gives that order without a sort.
    Index(None, "status", "due_at", "id"),
)

message_wait = Table(
    "message_wait",
    metadata,
    Column("id", Id, primary_key=True),
    _case_id(),
    Column("name", String(255), nullable=False),
    Column("task_ref", String(64), nullable=False),
    Column("element_id", String(255), nullable=False),
    Column("correlation", JsonDocument, nullable=False),
    Index(None, "name"),
    Index(None, "case_id"),
)

case_event = Table(
    "case_event",
    metadata,
    Column("id", Id, primary_key=True),
    _case_id(),
    Column("at", UtcDateTime(), nullable=False),
    Column("actor", String(150), nullable=False),
    Column("kind", String(50), nullable=False),
    Column("payload", JsonDocument, nullable=False),
    Index(None, "case_id", "id"),
)

incident = Table(
    "incident",
    metadata,
    Column("id", Id, primary_key=True),
    _case_id(),
    Column("kind", String(50), nullable=False),
    Column("message", Text, nullable=False),
    Column("element_id", String(255)),
    Column("task_ref", String(64)),
    Column("data", JsonDocument, nullable=False),
    Column("status", String(20), nullable=False),
    Column("resolution", String(50)),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("resolved_at", UtcDateTime()),
    Column("resolved_by", String(150)),
    Index(None, "case_id", "status"),
    Index(None, "status", "created_at"),
)

case_flag = Table(
    "case_flag",
    metadata,
    Column("id", Id, primary_key=True),
    _case_id(),
    Column("reason", String(30), nullable=False),
    Column("subject", String(64), nullable=False),
    Column("since", UtcDateTime(), nullable=False),
    Column("detected_at", UtcDateTime(), nullable=False),
    Column("setting", String(100), nullable=False),
    Column("process_id", String(255), nullable=False),
    Column("assignee", String(150)),
    Column("candidate_role", String(100)),
    Column("element_id", String(255)),
    Column("detail", Text, nullable=False),
    UniqueConstraint("case_id", "reason", "subject"),
    Index(None, "reason", "since"),
    Index(None, "setting", "reason"),
)

scheduler_mark = Table(
    "scheduler_mark",
    metadata,
    Column("name", String(100), primary_key=True),
    Column("at", UtcDateTime(), nullable=False),
    Column("owner", String(150), nullable=False),
)

note = Table(
    "note",
    metadata,
    Column("id", Id, primary_key=True),
    _case_id(),
    Column("at", UtcDateTime(), nullable=False),
    Column("author", String(150), nullable=False),
    Column("text", Text, nullable=False),
    Index(None, "case_id", "id"),
)

# Who may use Casework and who read which case: kept in their own module (imported last: they use the helpers above).
from .tables_access import api_token, app_user, case_read, user_role, user_setting  # noqa: E402,F401
