"""The inbox's task page and case page: which settings a user covers, drafts, ad-hoc tasks.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

# Frozen copies of the column types in tables.py: a migration must not change when tables.py does.
Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
JsonDocument = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    # The settings (acute_hospital, inpatient_rehab, ...) whose cases a user may see; "*" is every setting.
    op.create_table(
        "user_setting",
        sa.Column("user_id", Id, sa.ForeignKey("app_user.id", ondelete="CASCADE", name="fk_user_setting_user_id_app_user"),
                  nullable=False),
        sa.Column("setting", sa.String(100), nullable=False),
        sa.PrimaryKeyConstraint("user_id", "setting", name="pk_user_setting"),
    )
    # Users made before settings existed keep seeing what they saw: every setting.
    op.execute("INSERT INTO user_setting (user_id, setting) SELECT id, '*' FROM app_user")
    with op.batch_alter_table("human_task") as human_task:
        # A task a person added to the case (not one the diagram opened): the engine never sees it.
        human_task.add_column(sa.Column("adhoc", sa.Boolean(), nullable=False, server_default=sa.false()))
        # Form data saved but not submitted: not validated, never given to the engine.
        human_task.add_column(sa.Column("draft", JsonDocument, nullable=True))
        human_task.add_column(sa.Column("draft_saved_at", sa.DateTime(timezone=True), nullable=True))
        human_task.add_column(sa.Column("draft_saved_by", sa.String(150), nullable=True))
    with op.batch_alter_table("case_record") as case_record:
        # Diagram file -> elements the case has completed, for its diagram (the engine prunes its history).
        case_record.add_column(sa.Column("elements_done", JsonDocument, nullable=True))
    # Every case column the inbox filters on: its case filters read this index, not the wide case rows.
    op.create_index("ix_case_record_setting_process_id_subject_name_subject_ref", "case_record",
                    ["setting", "process_id", "subject_name", "subject_ref"])


def downgrade() -> None:
    op.drop_index("ix_case_record_setting_process_id_subject_name_subject_ref", "case_record")
    with op.batch_alter_table("case_record") as case_record:
        case_record.drop_column("elements_done")
    with op.batch_alter_table("human_task") as human_task:
        human_task.drop_column("draft_saved_by")
        human_task.drop_column("draft_saved_at")
        human_task.drop_column("draft")
        human_task.drop_column("adhoc")
    op.drop_table("user_setting")
