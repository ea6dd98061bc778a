"""Passwords for signing in to the web pages.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01
"""
from alembic import op
import sqlalchemy as sa

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("app_user") as app_user:
        # A slow salted hash (scrypt); NULL for users who only use an API token.
        app_user.add_column(sa.Column("password_hash", sa.String(255), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("app_user") as app_user:
        app_user.drop_column("password_hash")
