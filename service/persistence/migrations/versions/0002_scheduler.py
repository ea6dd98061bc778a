"""The scheduler: timer retries with back-off, paused clocks, stuck-case findings.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""
from alembic import op
import sqlalchemy as sa

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

# Frozen copies of the column types in tables.py: a migration must not change when tables.py does.
Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def Time() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("timer") as timer:
        # A failed firing is retried no earlier than this (back-off), then raises an incident.
        timer.add_column(sa.Column("retry_at", Time(), nullable=True))
        timer.add_column(sa.Column("last_error", sa.Text(), nullable=True))
    # Claiming orders by (due_at, id): with many timers due at the same instant, an index
    # without the id made PostgreSQL read and sort all of them for every batch.
    op.drop_index("ix_timer_status_due_at", table_name="timer")
    op.create_index("ix_timer_status_due_at_id", "timer", ["status", "due_at", "id"])
    with op.batch_alter_table("case_record") as case:
        # When the case was suspended: its clocks stand still until it resumes.
        case.add_column(sa.Column("suspended_at", Time(), nullable=True))
    op.create_index("ix_case_record_status_updated_at", "case_record", ["status", "updated_at"])

    op.create_table(
        "case_flag",
        sa.Column("id", Id, nullable=False),
        sa.Column("case_id", Id, nullable=False),
        sa.Column("reason", sa.String(30), nullable=False),
        sa.Column("subject", sa.String(64), nullable=False),
        sa.Column("since", Time(), nullable=False),
        sa.Column("detected_at", Time(), nullable=False),
        sa.Column("setting", sa.String(100), nullable=False),
        sa.Column("process_id", sa.String(255), nullable=False),
        sa.Column("assignee", sa.String(150), nullable=True),
        sa.Column("candidate_role", sa.String(100), nullable=True),
        sa.Column("element_id", sa.String(255), nullable=True),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_case_flag"),
        sa.ForeignKeyConstraint(["case_id"], ["case_record.id"], name="fk_case_flag_case_id_case_record"),
        sa.UniqueConstraint("case_id", "reason", "subject", name="uq_case_flag_case_id_reason_subject"),
    )
    op.create_index("ix_case_flag_reason_since", "case_flag", ["reason", "since"])
    op.create_index("ix_case_flag_setting_reason", "case_flag", ["setting", "reason"])

    op.create_table(
        "scheduler_mark",
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("at", Time(), nullable=False),
        sa.Column("owner", sa.String(150), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_scheduler_mark"),
    )


def downgrade() -> None:
    op.drop_table("scheduler_mark")
    op.drop_index("ix_case_flag_setting_reason", table_name="case_flag")
    op.drop_index("ix_case_flag_reason_since", table_name="case_flag")
    op.drop_table("case_flag")
    op.drop_index("ix_case_record_status_updated_at", table_name="case_record")
    with op.batch_alter_table("case_record") as case:
        case.drop_column("suspended_at")
    op.drop_index("ix_timer_status_due_at_id", table_name="timer")
    op.create_index("ix_timer_status_due_at", "timer", ["status", "due_at"])
    with op.batch_alter_table("timer") as timer:
        timer.drop_column("last_error")
        timer.drop_column("retry_at")
