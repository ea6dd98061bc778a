"""Drop the one API token per user: 0006 copied each into api_token, where tokens now live.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-24
"""
from contextlib import contextmanager

from alembic import op
import sqlalchemy as sa

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


# The tables whose rows point at app_user, as of this migration.
_CHILDREN = ("user_role", "user_setting", "api_token")


def upgrade() -> None:
    with _rebuilding_app_user() as app_user:
        app_user.drop_constraint("uq_app_user_token_hash", type_="unique")
        app_user.drop_column("token_hash")


def downgrade() -> None:
    with _rebuilding_app_user() as app_user:
        app_user.add_column(sa.Column("token_hash", sa.String(128), nullable=True))
        app_user.create_unique_constraint("uq_app_user_token_hash", ["token_hash"])
    # Each user gets back the oldest of their usable tokens that acts with all of their roles.
    op.execute("UPDATE app_user SET token_hash = (SELECT token_hash FROM api_token "
               "WHERE api_token.user_id = app_user.id AND api_token.roles IS NULL AND NOT api_token.revoked "
               "AND api_token.expires_at IS NULL ORDER BY api_token.id LIMIT 1)")


@contextmanager
def _rebuilding_app_user():
    """Alter app_user in a batch; on SQLite, which copies the table anew, keep the rows that point at it.

    SQLite's DROP TABLE of the old copy deletes the user_role and user_setting rows (ON DELETE CASCADE)
    and is refused while api_token rows point at it; foreign keys cannot be switched off inside the
    migration's transaction, so those rows step aside and come back once the new copy is in place.
    """
    sqlite = op.get_bind().dialect.name == "sqlite"
    if sqlite:
        for table in _CHILDREN:
            op.execute(f"CREATE TEMPORARY TABLE kept_{table} AS SELECT * FROM {table}")
            op.execute(f"DELETE FROM {table}")
    with op.batch_alter_table("app_user") as app_user:
        yield app_user
    if sqlite:
        for table in _CHILDREN:
            op.execute(f"INSERT INTO {table} SELECT * FROM kept_{table}")
            op.execute(f"DROP TABLE kept_{table}")
