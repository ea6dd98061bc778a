"""Security: sign-in lock-out, revocable role-scoped API tokens, reads of cases, an append-only audit trail.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-23
"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

# Frozen copies of the column types in tables.py: a migration must not change when tables.py does.
Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
JsonDocument = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
APPEND_ONLY = ("case_event", "case_read")


def Time() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("app_user") as app_user:
        # A plain "0", not sa.text("0"): an SQL expression would make SQLite's batch rebuild app_user, and
        # dropping the old copy deletes every user_role and user_setting row (ON DELETE CASCADE).
        app_user.add_column(sa.Column("failed_signins", sa.Integer(), nullable=False, server_default="0"))
        app_user.add_column(sa.Column("locked_until", Time(), nullable=True))
    op.create_table(
        "api_token",
        sa.Column("id", Id, nullable=False),
        sa.Column("user_id", Id, nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("token_hash", sa.String(128), nullable=False),
        sa.Column("roles", JsonDocument, nullable=True),
        sa.Column("created_at", Time(), nullable=False),
        sa.Column("created_by", sa.String(150), nullable=False),
        sa.Column("expires_at", Time(), nullable=True),
        sa.Column("revoked_at", Time(), nullable=True),
        sa.Column("revoked_by", sa.String(150), nullable=True),
        sa.Column("revoked", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.PrimaryKeyConstraint("id", name="pk_api_token"),
        sa.ForeignKeyConstraint(["user_id"], ["app_user.id"], name="fk_api_token_user_id_app_user"),
        sa.UniqueConstraint("token_hash", name="uq_api_token_token_hash"),
    )
    op.create_index("ix_api_token_user_id", "api_token", ["user_id"])
    # Each user's one token so far becomes a token with all of the user's roles.
    op.execute("INSERT INTO api_token (user_id, name, token_hash, roles, created_at, created_by, revoked) "
               "SELECT id, 'default', token_hash, NULL, CURRENT_TIMESTAMP, 'migration 0006', "
               f"{'false' if op.get_bind().dialect.name == 'postgresql' else '0'} "
               "FROM app_user WHERE token_hash IS NOT NULL")
    op.create_table(
        "case_read",
        sa.Column("id", Id, nullable=False),
        sa.Column("case_id", Id, nullable=False),
        sa.Column("at", Time(), nullable=False),
        sa.Column("actor", sa.String(150), nullable=False),
        sa.Column("channel", sa.String(20), nullable=False),
        sa.Column("what", sa.String(255), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_case_read"),
        sa.ForeignKeyConstraint(["case_id"], ["case_record.id"], name="fk_case_read_case_id_case_record"),
    )
    op.create_index("ix_case_read_case_id_id", "case_read", ["case_id", "id"])
    op.create_index("ix_case_read_actor_id", "case_read", ["actor", "id"])
    _refuse_changes(APPEND_ONLY)


def _refuse_changes(tables: tuple[str, ...]) -> None:
    """Make the database itself refuse UPDATE and DELETE on the audit tables: they only grow."""
    if op.get_bind().dialect.name == "postgresql":
        op.execute("""
            CREATE FUNCTION casework_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                RAISE EXCEPTION 'the % table is append-only: its rows cannot be changed or deleted', TG_TABLE_NAME
                    USING ERRCODE = 'insufficient_privilege';
            END $$""")
        for table in tables:
            op.execute(f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
                       "FOR EACH ROW EXECUTE FUNCTION casework_append_only()")
        return
    for table in tables:
        for action in ("UPDATE", "DELETE"):
            op.execute(f"CREATE TRIGGER {table}_append_only_{action.lower()} BEFORE {action} ON {table} "
                       f"BEGIN SELECT RAISE(ABORT, 'the {table} table is append-only: its rows cannot be changed "
                       "or deleted'); END")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in APPEND_ONLY:
            op.execute(f"DROP TRIGGER {table}_append_only ON {table}")
        op.execute("DROP FUNCTION casework_append_only()")
    else:
        for table in APPEND_ONLY:
            for action in ("update", "delete"):
                op.execute(f"DROP TRIGGER {table}_append_only_{action}")
    op.drop_table("case_read")
    op.drop_index("ix_api_token_user_id", "api_token")
    op.drop_table("api_token")
    with op.batch_alter_table("app_user") as app_user:
        app_user.drop_column("locked_until")
        app_user.drop_column("failed_signins")
