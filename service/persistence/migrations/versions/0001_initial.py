"""Initial schema: process versions, cases and what is derived from them, users.

Revision ID: 0001
Revises:
Create Date: 2025-11-23
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

# Frozen copies of the column types in tables.py: a migration must not change when tables.py does.
Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Json = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def Time() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def _id() -> sa.Column:
    return sa.Column("id", Id, nullable=False)


def _case_id(table: str) -> list:
    return [
        sa.Column("case_id", Id, nullable=False),
        sa.ForeignKeyConstraint(["case_id"], ["case_record.id"], name=f"fk_{table}_case_id_case_record"),
    ]


def upgrade() -> None:
    op.create_table(
        "process_version",
        _id(),
        sa.Column("process_id", sa.String(255), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("content_hash", sa.String(128), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("setting", sa.String(100), nullable=False),
        sa.Column("deployed_by", sa.String(150), nullable=False),
        sa.Column("deployed_at", Time(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_process_version"),
        sa.UniqueConstraint("process_id", "version", name="uq_process_version_process_id_version"),
    )
    op.create_table(
        "process_file",
        sa.Column("process_version_id", Id, nullable=False),
        sa.Column("path", sa.String(500), nullable=False),
        sa.Column("content", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("process_version_id", "path", name="pk_process_file"),
        sa.ForeignKeyConstraint(
            ["process_version_id"],
            ["process_version.id"],
            name="fk_process_file_process_version_id_process_version",
            ondelete="CASCADE",
        ),
    )
    op.create_table(
        "case_record",
        _id(),
        sa.Column("process_version_id", Id, nullable=False),
        sa.Column("process_id", sa.String(255), nullable=False),
        sa.Column("state", sa.Text(), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("subject_name", sa.String(255), nullable=False),
        sa.Column("subject_ref", sa.String(100), nullable=False),
        sa.Column("setting", sa.String(100), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("data", Json, nullable=False),
        sa.Column("opened_at", Time(), nullable=False),
        sa.Column("opened_by", sa.String(150), nullable=False),
        sa.Column("closed_at", Time(), nullable=True),
        sa.Column("updated_at", Time(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_case_record"),
        sa.ForeignKeyConstraint(
            ["process_version_id"], ["process_version.id"], name="fk_case_record_process_version_id_process_version"
        ),
    )
    op.create_index("ix_case_record_process_version_id", "case_record", ["process_version_id"])
    op.create_index("ix_case_record_status_process_id", "case_record", ["status", "process_id"])
    op.create_index("ix_case_record_subject_ref", "case_record", ["subject_ref"])

    op.create_table(
        "human_task",
        _id(),
        *_case_id("human_task"),
        sa.Column("task_ref", sa.String(64), nullable=False),
        sa.Column("element_id", sa.String(255), nullable=False),
        sa.Column("title", sa.String(500), nullable=False),
        sa.Column("candidate_role", sa.String(100), nullable=True),
        sa.Column("assignee", sa.String(150), nullable=True),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("created_at", Time(), nullable=False),
        sa.Column("due_at", Time(), nullable=True),
        sa.Column("at_risk_at", Time(), nullable=True),
        sa.Column("form_ref", sa.String(500), nullable=True),
        sa.Column("ui_form_ref", sa.String(500), nullable=True),
        sa.Column("instructions", sa.Text(), nullable=False),
        sa.Column("completed_at", Time(), nullable=True),
        sa.Column("completed_by", sa.String(150), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_human_task"),
        sa.UniqueConstraint("case_id", "task_ref", name="uq_human_task_case_id_task_ref"),
    )
    op.create_index(
        "ix_human_task_status_candidate_role_due_at", "human_task", ["status", "candidate_role", "due_at"]
    )
    op.create_index("ix_human_task_assignee_status", "human_task", ["assignee", "status"])
    op.create_index("ix_human_task_case_id_status", "human_task", ["case_id", "status"])

    op.create_table(
        "timer",
        _id(),
        *_case_id("timer"),
        sa.Column("task_ref", sa.String(64), nullable=False),
        sa.Column("element_id", sa.String(255), nullable=False),
        sa.Column("due_at", Time(), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("lease_owner", sa.String(150), nullable=True),
        sa.Column("lease_expires_at", Time(), nullable=True),
        sa.Column("fired_at", Time(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_timer"),
        sa.UniqueConstraint("case_id", "task_ref", name="uq_timer_case_id_task_ref"),
    )
    op.create_index("ix_timer_status_due_at", "timer", ["status", "due_at"])

    op.create_table(
        "message_wait",
        _id(),
        *_case_id("message_wait"),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("task_ref", sa.String(64), nullable=False),
        sa.Column("element_id", sa.String(255), nullable=False),
        sa.Column("correlation", Json, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_message_wait"),
    )
    op.create_index("ix_message_wait_name", "message_wait", ["name"])
    op.create_index("ix_message_wait_case_id", "message_wait", ["case_id"])

    op.create_table(
        "case_event",
        _id(),
        *_case_id("case_event"),
        sa.Column("at", Time(), nullable=False),
        sa.Column("actor", sa.String(150), nullable=False),
        sa.Column("kind", sa.String(50), nullable=False),
        sa.Column("payload", Json, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_case_event"),
    )
    op.create_index("ix_case_event_case_id_id", "case_event", ["case_id", "id"])

    op.create_table(
        "incident",
        _id(),
        *_case_id("incident"),
        sa.Column("kind", sa.String(50), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("element_id", sa.String(255), nullable=True),
        sa.Column("task_ref", sa.String(64), nullable=True),
        sa.Column("data", Json, nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("resolution", sa.String(50), nullable=True),
        sa.Column("created_at", Time(), nullable=False),
        sa.Column("resolved_at", Time(), nullable=True),
        sa.Column("resolved_by", sa.String(150), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_incident"),
    )
    op.create_index("ix_incident_case_id_status", "incident", ["case_id", "status"])
    op.create_index("ix_incident_status_created_at", "incident", ["status", "created_at"])

    op.create_table(
        "app_user",
        _id(),
        sa.Column("username", sa.String(150), nullable=False),
        sa.Column("display_name", sa.String(255), nullable=False),
        sa.Column("token_hash", sa.String(128), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_app_user"),
        sa.UniqueConstraint("username", name="uq_app_user_username"),
        sa.UniqueConstraint("token_hash", name="uq_app_user_token_hash"),
    )
    op.create_table(
        "user_role",
        sa.Column("user_id", Id, nullable=False),
        sa.Column("role", sa.String(100), nullable=False),
        sa.PrimaryKeyConstraint("user_id", "role", name="pk_user_role"),
        sa.ForeignKeyConstraint(["user_id"], ["app_user.id"], name="fk_user_role_user_id_app_user", ondelete="CASCADE"),
    )

    op.create_table(
        "note",
        _id(),
        *_case_id("note"),
        sa.Column("at", Time(), nullable=False),
        sa.Column("author", sa.String(150), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_note"),
    )
    op.create_index("ix_note_case_id_id", "note", ["case_id", "id"])


def downgrade() -> None:
    for table in (
        "note",
        "user_role",
        "app_user",
        "incident",
        "case_event",
        "message_wait",
        "timer",
        "human_task",
        "case_record",
        "process_file",
        "process_version",
    ):
        op.drop_table(table)
