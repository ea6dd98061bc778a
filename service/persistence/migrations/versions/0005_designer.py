"""The designer: drafts of diagram sets that designers edit together, and a note on each deployment.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-08
"""
from alembic import op
import sqlalchemy as sa

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

# Frozen copies of the column types in tables.py: a migration must not change when tables.py does.
Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def Time() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("process_version") as process_version:
        # What changed and why, in the deploying designer's words; older versions have none.
        process_version.add_column(sa.Column("note", sa.Text(), nullable=True))
    # One working copy per diagram set, shared by its designers; `revision` counts the saves.
    op.create_table(
        "process_draft",
        sa.Column("id", Id, nullable=False),
        sa.Column("set_name", sa.String(100), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("based_on_version_id", Id, nullable=True),
        sa.Column("created_by", sa.String(150), nullable=False),
        sa.Column("created_at", Time(), nullable=False),
        sa.Column("updated_by", sa.String(150), nullable=False),
        sa.Column("updated_at", Time(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_process_draft"),
        sa.UniqueConstraint("set_name", name="uq_process_draft_set_name"),
        sa.ForeignKeyConstraint(["based_on_version_id"], ["process_version.id"],
                                name="fk_process_draft_based_on_version_id_process_version", ondelete="SET NULL"),
    )
    op.create_table(
        "draft_file",
        sa.Column("draft_id", Id, nullable=False),
        sa.Column("path", sa.String(500), nullable=False),
        sa.Column("content", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("draft_id", "path", name="pk_draft_file"),
        sa.ForeignKeyConstraint(["draft_id"], ["process_draft.id"], name="fk_draft_file_draft_id_process_draft",
                                ondelete="CASCADE"),
    )


def downgrade() -> None:
    op.drop_table("draft_file")
    op.drop_table("process_draft")
    with op.batch_alter_table("process_version") as process_version:
        process_version.drop_column("note")
