"""The inbox at hospital scale: partial indexes of open tasks, and a (setting, id) index of cases.

With 100,000 open cases and a million task rows, the inbox's queries read the open tasks
only, from indexes that hold nothing else: a team's queue (open, unclaimed) and every open
or claimed task, each in due order (no due time last) and in priority order, the due-order
ones with every column the inbox filters and counts on. Only indexes are created: no table
is altered, so SQLite rebuilds nothing. On PostgreSQL, statistics on (status, candidate_role,
assignee) together tell the planner how many rows a team's queue holds: taken one by one,
those columns make it guess a few hundred instead of tens of thousands, and it then looks
each task's case up one by one instead of joining.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-24
"""
from alembic import op
import sqlalchemy as sa

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

IN_QUEUE = "status = 'open' AND assignee IS NULL"
OPEN = "status IN ('open', 'claimed')"
BY_DUE = [sa.text("(due_at IS NULL)"), "due_at", "created_at", "id"]
# name -> (columns, WHERE), as in tables.py at this revision.
INDEXES = {
    "ix_human_task_queue_due": (["candidate_role", *BY_DUE, "priority", "case_id", "element_id", "title", "status",
                                 "assignee"], IN_QUEUE),
    "ix_human_task_queue_priority": (["candidate_role", "priority", *BY_DUE, "case_id"], IN_QUEUE),
    "ix_human_task_open_due": ([*BY_DUE, "priority", "case_id", "element_id", "title", "status"], OPEN),
    "ix_human_task_open_priority": (["priority", *BY_DUE, "case_id"], OPEN),
}
STATISTICS = "st_human_task_status_candidate_role_assignee"


def upgrade() -> None:
    op.create_index("ix_case_record_setting_id", "case_record", ["setting", "id"])
    for name, (columns, where) in INDEXES.items():
        op.create_index(name, "human_task", columns, sqlite_where=sa.text(where), postgresql_where=sa.text(where))
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"CREATE STATISTICS {STATISTICS} (dependencies, mcv) ON status, candidate_role, assignee "
                   "FROM human_task")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"DROP STATISTICS {STATISTICS}")
    for name in reversed(INDEXES):
        op.drop_index(name, "human_task")
    op.drop_index("ix_case_record_setting_id", "case_record")
